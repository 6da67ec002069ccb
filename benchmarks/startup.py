"""Start-up cost: the commands that must not load TensorFlow, one-sample `predict` on each backend, and the errors
that must come before Keras loads.

Runs each command in fresh processes and prints the median wall time with its range (fastest-slowest) and its ratio
to two baselines measured in the same run: a bare Python start (the floor) and `import tensorflow` (what `--help`
and `validate` avoid, and what `predict` on a TensorFlow run cannot), and each command's peak RSS. The commands take
turns within each repeat, so that a busy spell of the machine spreads over all of them.

`predict` is timed end to end, as a user runs it: `seqcli predict RUN one.npy --quiet`, one (timesteps=10,
features=2) sequence, on a run of experiments/smoke.yaml trained here for 2 epochs on each backend. JAX keeps its
compiled programs in its cache (a temporary one here), as it does for a user: one untimed `predict` per run fills
it first. The errors: an existing `--output` file, INPUT with 3 features for a 2-feature run, and `output.dir` that is
a file for `train`.

    uv run python benchmarks/startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
from common import ROOT, bytecode_warning, row, run_child

SPEC = ROOT / "experiments" / "japanese_vowels.yaml"
SMOKE = ROOT / "experiments" / "smoke.yaml"
IMPORT_TF = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow"
IMPORT_KERAS_JAX = "import os; os.environ['KERAS_BACKEND']='jax'; import keras"


def train_smoke(out: Path, backend: str) -> Path:
    """A 2-epoch run of experiments/smoke.yaml on ``backend`` (not timed)."""
    run_child([sys.executable, "-m", "seqcli", "train", str(SMOKE), "--quiet", "--backend", backend, "--set", "training.epochs=2", "--set", f"output.dir={out / backend}"])
    (run,) = (out / backend / "smoke").iterdir()
    return run


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    if warning := bytecode_warning():
        print(warning)
    py = sys.executable
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        os.environ["SEQCLI_CACHE_DIR"] = str(tmp / "cache")  # the children's JAX compilation cache
        runs = {backend: train_smoke(tmp, backend) for backend in ("jax", "tensorflow")}
        one, three = tmp / "one.npy", tmp / "three.npy"
        np.save(one, np.random.default_rng(0).normal(size=(10, 2)).astype(np.float32))
        np.save(three, np.ones((10, 3)))
        (tmp / "exists.csv").write_text("keep me\n")
        (tmp / "blocker").write_text("a file\n")
        predict = {backend: [py, "-m", "seqcli", "predict", str(run), str(one), "--quiet"] for backend, run in runs.items()}
        for command in predict.values():
            run_child(command)  # JAX compiles into its cache; both read the run once
        cases: dict[str, tuple[list[str], int]] = {
            "python -c pass (floor)": ([py, "-c", "pass"], 0),
            "import tensorflow": ([py, "-c", IMPORT_TF], 0),
            "import keras (JAX backend)": ([py, "-c", IMPORT_KERAS_JAX], 0),
            "seqcli --help": ([py, "-m", "seqcli", "--help"], 0),
            "seqcli validate SPEC": ([py, "-m", "seqcli", "validate", str(SPEC)], 0),
            "predict one sample, JAX run": (predict["jax"], 0),
            "predict one sample, TF run": (predict["tensorflow"], 0),
            "error: --output exists": ([*predict["jax"], "--output", str(tmp / "exists.csv")], 1),
            "error: INPUT has 3 features": ([py, "-m", "seqcli", "predict", str(runs["tensorflow"]), str(three)], 1),
            "error: output.dir is a file": ([py, "-m", "seqcli", "train", str(SMOKE), "--set", f"output.dir={tmp / 'blocker'}"], 1),
        }
        times: dict[str, list[float]] = {name: [] for name in cases}
        peaks: dict[str, float] = dict.fromkeys(cases, 0.0)
        for _ in range(args.repeat):
            for name, (command, status) in cases.items():
                seconds, rss, _ = run_child(command, status=status)
                times[name].append(seconds)
                peaks[name] = max(peaks[name], rss)
    med = {name: statistics.median(values) for name, values in times.items()}
    floor, tf = med["python -c pass (floor)"], med["import tensorflow"]
    print(f"median of {args.repeat} fresh processes each, range fastest-slowest:")
    print(f"{'command':30} {'median s':>9} {'range s':>13} {'x floor':>8} {'x import tf':>12} {'peak RSS MiB':>13}")
    for name, values in times.items():
        print(f"{name:30} {med[name]:9.3f} {min(values):6.2f}-{max(values):<6.2f} {med[name] / floor:8.1f} {med[name] / tf:12.2f} {peaks[name]:13.0f}")
    helps, validates = med["seqcli --help"], med["seqcli validate SPEC"]
    errors = [med[name] for name in cases if name.startswith("error:")]
    jax, tfp = times["predict one sample, JAX run"], times["predict one sample, TF run"]
    print(
        row(
            "startup.py",
            "`seqcli --help` and `seqcli validate`; one-sample `seqcli predict` on a JAX and a TensorFlow run (smoke.yaml, 2 epochs); three errors that need no model; "
            "each in fresh processes vs `python -c pass` and `import tensorflow`",
            f"{helps:.2f} s and {validates:.2f} s ({validates / tf:.2f}x `import tensorflow`, {spread(times['import tensorflow'])}); "
            f"predict {spread(jax)} on JAX ({statistics.median(jax) / tf:.2f}x `import tensorflow`), {spread(tfp)} on TensorFlow ({statistics.median(tfp) / tf:.2f}x); "
            f"errors {min(errors):.2f}-{max(errors):.2f} s (medians); peak RSS {peaks['seqcli --help']:.0f} and {peaks['seqcli validate SPEC']:.0f} MiB, "
            f"predict {peaks['predict one sample, JAX run']:.0f} and {peaks['predict one sample, TF run']:.0f} MiB (TensorFlow alone: {peaks['import tensorflow']:.0f})",
            f"`--help`, `validate` and the errors well under 0.5 s: **{'met' if max(helps, validates, *errors) < 0.5 else 'not met'}**",
        )
    )


if __name__ == "__main__":
    main()
