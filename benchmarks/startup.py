"""Start-up cost of the commands that must not load TensorFlow.

Runs each command several times in fresh processes and prints the median wall
time with its ratio to two baselines measured in the same run: a bare Python
start (the floor) and `import tensorflow` (what `--help` and `validate` avoid),
and each command's peak RSS.

    uv run python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys

from common import ROOT, bytecode_warning, row, run_child

SPEC = ROOT / "experiments" / "japanese_vowels.yaml"
IMPORT_TF = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow"


def measure(command: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and highest peak RSS (MiB) of ``command`` over ``repeat`` fresh processes."""
    runs = [run_child(command)[:2] for _ in range(repeat)]
    return statistics.median(seconds for seconds, _ in runs), max(rss for _, rss in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if warning := bytecode_warning():
        print(warning)
    py = sys.executable
    cases = {
        "python -c pass (floor)": [py, "-c", "pass"],
        "import tensorflow (avoided)": [py, "-c", IMPORT_TF],
        "seqcli --help": [py, "-m", "seqcli", "--help"],
        "seqcli validate SPEC": [py, "-m", "seqcli", "validate", str(SPEC)],
    }
    results = {name: measure(cmd, args.repeat) for name, cmd in cases.items()}
    floor, tf = results["python -c pass (floor)"][0], results["import tensorflow (avoided)"][0]
    print(f"{'command':32} {'median s':>9} {'x floor':>8} {'x import tf':>12} {'peak RSS MiB':>13}")
    for name, (seconds, rss) in results.items():
        print(f"{name:32} {seconds:9.3f} {seconds / floor:8.1f} {seconds / tf:12.2f} {rss:13.0f}")
    helps, validates = results["seqcli --help"], results["seqcli validate SPEC"]
    print(
        row(
            "startup.py",
            "`seqcli --help` and `seqcli validate` in fresh processes vs `python -c pass` and `import tensorflow`",
            f"{helps[0]:.2f} s and {validates[0]:.2f} s; {helps[0] / floor:.0f}x and {validates[0] / floor:.0f}x a bare interpreter start, "
            f"{validates[0] / tf:.2f}x `import tensorflow` ({tf:.1f} s); peak RSS {helps[1]:.0f} and {validates[1]:.0f} MiB (TensorFlow: {results['import tensorflow (avoided)'][1]:.0f})",
            f"well under 0.5 s: **{'met' if max(helps[0], validates[0]) < 0.5 else 'not met'}**",
        )
    )


if __name__ == "__main__":
    main()
