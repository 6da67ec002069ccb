"""Start-up cost of the commands that must not load TensorFlow.

Runs each command several times in fresh processes and prints the median wall
time with its ratio to two baselines measured in the same run: a bare Python
start (the floor) and `import tensorflow` (what `--help` and `validate` avoid).

    uv run python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "experiments" / "japanese_vowels.yaml"


def median_seconds(command: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    py = sys.executable
    cases = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "import tensorflow (avoided)": [py, "-c", "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow"],
        "seqcli --help": [py, "-m", "seqcli", "--help"],
        "seqcli validate SPEC": [py, "-m", "seqcli", "validate", str(SPEC)],
    }
    results = {name: median_seconds(cmd, args.repeat) for name, cmd in cases.items()}
    floor, tf = results["python -c pass (floor)"], results["import tensorflow (avoided)"]
    print(f"{'command':32} {'median s':>9} {'x floor':>8} {'x import tf':>12}")
    for name, seconds in results.items():
        print(f"{name:32} {seconds:9.3f} {seconds / floor:8.1f} {seconds / tf:12.2f}")


if __name__ == "__main__":
    main()
