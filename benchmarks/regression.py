"""The regression examples against their peers, in one run.

1. ``experiments/covid_regression.yaml`` (``task: regress``, Covid3Month from the TSER archive): seqcli's test RMSE
   (median over ``--seeds``) vs predicting the training mean and vs aeon's ``MiniRocketRegressor``, which leads the TSER
   bake-offs at a tiny fraction of the training time. MiniRocket is fitted once per seed as seqcli is (``random_state``
   0, 1, 2 for ``--seeds 3``: it draws its biases from random training sequences), and its median is reported.
2. ``experiments/memory_signals.yaml`` (``task: regress_timesteps``, generated): seqcli's test R² per target vs a model
   without memory, a least-squares linear map from each timestep's inputs to its targets, fitted on the training split.

aeon runs in a child process: by default this interpreter when it has aeon (seqcli's optional ``baseline`` group,
``uv sync --group baseline``), else ``benchmarks/.venv-aeon`` if it exists; ``--aeon-python`` names another:

    uv run --group baseline python benchmarks/regression.py [--seeds 3] [--aeon-python PATH]

Without aeon the MiniRocket row says how to install it. Each seqcli training runs through the CLI in a fresh process,
as a user runs it.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def train(spec: str, out: Path, seed: int) -> dict:
    """Train ``spec`` with ``seed`` through the CLI; the run's metrics.json and its training seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "seqcli", "train", spec, "--quiet", "--set", f"seed={seed}", "--set", f"output.dir={out}"], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        sys.exit(f"seqcli train {spec} failed:\n{done.stderr}")
    (run,) = next(out.iterdir()).iterdir()
    return {"metrics": json.loads((run / "metrics.json").read_text()), "seconds": time.perf_counter() - started}


MINIROCKET = """
import json, sys, time
import numpy as np
from aeon.regression.convolution_based import MiniRocketRegressor
data = np.load(sys.argv[1])
x, y = {r: data[f"x_{r}"] for r in ("train", "test")}, {r: data[f"y_{r}"] for r in ("train", "test")}
MiniRocketRegressor(random_state=0).fit(x["train"][:8], y["train"][:8])  # numba compilation, not counted
rmse, seconds = [], []
for seed in range(int(sys.argv[2])):
    started = time.perf_counter()
    model = MiniRocketRegressor(random_state=seed).fit(x["train"], y["train"])
    seconds.append(time.perf_counter() - started)
    rmse.append(float(np.sqrt(np.mean((model.predict(x["test"]) - y["test"]) ** 2))))
print(json.dumps({"rmse": rmse, "seconds": float(np.median(seconds))}))
"""

INSTALL = "uv sync --group baseline (or --aeon-python PATH, an interpreter with aeon)"


def default_aeon_python() -> Path:
    """This interpreter when it has aeon, else ``benchmarks/.venv-aeon``'s (which may not exist)."""
    return Path(sys.executable) if importlib.util.find_spec("aeon") else ROOT / "benchmarks" / ".venv-aeon" / "bin" / "python"


def minirocket_rmse(python: Path, tmp: Path, seeds: int) -> tuple[list[float], float] | str:
    """aeon's MiniRocketRegressor on Covid3Month, in ``python``, fitted with ``random_state`` 0 to ``seeds`` - 1: the
    test RMSE of each fit and the median fit seconds (the first fit in a process compiles numba code; not counted)."""
    if not python.exists():
        return f"no aeon environment at {python}: {INSTALL}"
    from seqcli.data import load
    from seqcli.spec import TASK_KINDS, DataFile, spec_from_dict

    options = spec_from_dict({"data": {"train": "x.ts"}}).data
    arrays = {}
    for role in ("train", "test"):
        data = load(DataFile(path=str(ROOT / f"data/covid3month/Covid3Month_{role.upper()}.ts")), options, targets=TASK_KINDS["regress"])
        arrays[f"x_{role}"] = np.stack(data.sequences).transpose(0, 2, 1)  # (samples, channels, timesteps), aeon's layout
        arrays[f"y_{role}"] = data.labels[:, 0]  # type: ignore[index]
    np.savez(tmp / "covid.npz", **arrays)
    done = subprocess.run([str(python), "-c", MINIROCKET, str(tmp / "covid.npz"), str(seeds)], capture_output=True, text=True)
    if done.returncode != 0:
        return f"aeon is not installed in {python}: {INSTALL}" if "ModuleNotFoundError" in done.stderr else f"failed: {done.stderr.strip().splitlines()[-1]}"
    result = json.loads(done.stdout)
    return result["rmse"], result["seconds"]


def memoryless_r2() -> list[float]:
    """Per target, the test R² of the best linear map from a timestep's own inputs to its targets (no memory)."""
    def arrays(name: str) -> tuple[np.ndarray, np.ndarray]:
        with np.load(ROOT / f"data/memory_signals/{name}.npz") as f:
            return np.c_[f["x"], np.ones(len(f["x"]))], f["y"]

    (x, y), (x_test, y_test) = arrays("train"), arrays("test")
    weights = np.linalg.lstsq(x, y, rcond=None)[0]
    residual = ((x_test @ weights - y_test) ** 2).sum(axis=0)
    return (1 - residual / ((y_test - y_test.mean(axis=0)) ** 2).sum(axis=0)).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3, help="seqcli trainings per example (seeds 0..N-1); the median is reported")
    parser.add_argument("--aeon-python", type=Path, default=default_aeon_python(), help="an interpreter with aeon installed (default: this one when it has aeon)")
    args = parser.parse_args()
    seeds = range(args.seeds)
    with tempfile.TemporaryDirectory() as tmp:
        covid = [train("experiments/covid_regression.yaml", Path(tmp) / f"covid-{s}", s) for s in seeds]
        memory = [train("experiments/memory_signals.yaml", Path(tmp) / f"memory-{s}", s) for s in seeds]
        rocket = minirocket_rmse(args.aeon_python, Path(tmp), args.seeds)
    rmse = [c["metrics"]["test"]["rmse"] for c in covid]
    mean_rmse = covid[0]["metrics"]["test"]["mean_predictor_rmse"]
    print(f"Covid3Month test RMSE: seqcli {statistics.median(rmse):.4f} (median of {len(rmse)}: {', '.join(f'{v:.4f}' for v in rmse)}; "
          f"{statistics.median(c['seconds'] for c in covid):.0f} s per training, process start included)")
    print(f"  predicting the training mean: {mean_rmse:.4f}")
    if isinstance(rocket, tuple):
        print(f"  aeon MiniRocketRegressor: {statistics.median(rocket[0]):.4f} (median of random_state 0-{args.seeds - 1}: {', '.join(f'{v:.4f}' for v in rocket[0])}; fit {rocket[1]:.1f} s)")
    else:
        print(f"  aeon MiniRocketRegressor: {rocket}")
    names = list(memory[0]["metrics"]["test"]["per_target"])
    r2 = {name: [m["metrics"]["test"]["per_target"][name]["r2"] for m in memory] for name in names}
    baseline = memoryless_r2()
    for name, base in zip(names, baseline, strict=True):
        print(f"memory_signals test R² of {name!r}: seqcli {statistics.median(r2[name]):.3f} (median of {len(r2[name])}: {', '.join(f'{v:.3f}' for v in r2[name])}); "
              f"a model without memory (linear, per timestep) {base:.3f}")
    print(f"  ({statistics.median(m['seconds'] for m in memory):.0f} s per training)")


if __name__ == "__main__":
    main()
