"""Run every benchmark with its defaults, one after another, then print their results as README table rows.

Each script ends with one row of the table in benchmarks/README.md; a script that
fails (e.g. pytorch_peer.py without PyTorch installed) gets a row with its last
line of output instead. Every script starts with an empty JAX compilation cache
(``SEQCLI_CACHE_DIR``), so first epochs include compiling as on a fresh machine.
Takes about 8 minutes on the idle 2-core development machine, 20 on a busy one;
nothing else should run meanwhile.

    uv run python benchmarks/run_all.py [--only NAME ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPTS = ["variable_length.py", "fixed_length.py", "pytorch_peer.py", "efficiency.py", "latency.py", "startup.py", "input_projection.py"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=SCRIPTS, metavar="NAME", help=f"Run only these ({', '.join(SCRIPTS)}).")
    args = parser.parse_args()
    rows, failed = [], []
    for script in args.only or SCRIPTS:
        print(f"\n=== {script}", flush=True)
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as cache:
            env = os.environ | {"SEQCLI_CACHE_DIR": cache}
            child = subprocess.Popen([sys.executable, str(HERE / script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=HERE.parent, env=env)
            lines = []
            assert child.stdout is not None
            for line in child.stdout:
                print(line, end="", flush=True)
                lines.append(line.rstrip("\n"))
            status = child.wait()
        print(f"=== {script}: {time.perf_counter() - start:.0f} s, exit {status}", flush=True)
        row = next((line for line in reversed(lines) if line.startswith("| `")), None)
        if status or row is None:
            failed.append(script)
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            row = f"| `{script}` | | did not finish (exit {status}): {last} | |"
        rows.append(row)
    print("\n| script | comparison | result | target |\n|---|---|---|---|")
    print("\n".join(rows))
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
