"""Helpers shared by the benchmark scripts: clocks, the two data sets, the seqcli side, peak memory, FLOPs."""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

Sequences = list[np.ndarray] | np.ndarray  # ``(timesteps_i, features)`` arrays, or one ``(samples, timesteps, features)`` array
Labelled = tuple[Sequences, np.ndarray]


def steady(times: list[float]) -> float:
    """Steady-state epoch time: the median of the epochs after the first (which includes tracing)."""
    return statistics.median(times[1:]) if len(times) > 1 else times[0]


def variable_data(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Benchmark 1's data: sequences ``(timesteps, 1)`` with lengths 100..1300 (long tail) and labels 0..9.

    The class is the frequency of a noisy sine.
    """
    rng = np.random.default_rng(seed)
    lengths = (100 + np.minimum(1200, rng.exponential(220, size=n))).astype(int)
    labels = rng.integers(0, 10, size=n)
    sequences = []
    for length, label in zip(lengths, labels, strict=True):
        t = np.arange(length)
        signal = np.sin(2 * np.pi * (0.01 + 0.006 * label) * t + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.3, size=length)
        sequences.append(signal[:, None].astype(np.float32))
    return sequences, labels


def fixed_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Benchmark 2's data: ``(samples, timesteps=8, features=16)`` floats and labels 0..9 (class = which feature carries a ramp)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.normal(0, 1, size=(n, 8, 16)).astype(np.float32)
    x[np.arange(n), :, y] += np.linspace(0, 2, 8, dtype=np.float32)
    return x, y


def save_npz(path: Path, data: Labelled) -> None:
    """Write sequences as seqcli reads them: a 3-D ``x``, or ragged ``x`` (concatenated) + ``lengths``; labels as ``y``."""
    x, y = data
    if isinstance(x, np.ndarray):
        np.savez(path, x=x, y=y)
    else:
        np.savez(path, x=np.concatenate(x), lengths=np.array([len(s) for s in x]), y=y)


def real_timesteps(x: Sequences) -> int:
    """Unpadded timesteps in all sequences."""
    return int(x.shape[0] * x.shape[1]) if isinstance(x, np.ndarray) else sum(len(s) for s in x)


class EpochClock:
    """Epoch durations, each from the end of the previous epoch (or the start of training) to the end of this one, so that
    the work between epochs counts: a seqcli progress hook (``fit(prepared, clock)``), or a Keras callback for ``model.fit``."""

    batch_updates = False  # like model.fit(verbose=0): no per-batch logs

    def __init__(self) -> None:
        self.times: list[float] = []
        self._start = 0.0

    def begin(self) -> None:
        self._start = time.perf_counter()

    def end(self) -> None:
        self.times.append(time.perf_counter() - self._start)

    def keras_callback(self) -> object:
        import keras

        return keras.callbacks.LambdaCallback(on_train_begin=lambda *_: self.begin(), on_epoch_end=lambda *_: (self.end(), self.begin()))

    # seqcli's train.Progress
    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        self.begin()

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        self.end()  # includes handing the epoch to seqcli's commit thread
        self.begin()

    def on_train_end(self) -> None:
        pass


@dataclass
class SeqcliTiming:
    """Steady-state seconds per epoch, and of the epoch commit that runs in the background meanwhile; test accuracy if a test set was given."""

    epoch: float  # as the user waits for it: training steps, evaluation, handing the epoch to the commit thread
    commit: float  # writing the checkpoint, history and run.json, on the commit thread while the next epoch trains
    commits: int  # epochs committed (epochs under a second are committed about once a second)
    accuracy: float | None
    peak_rss_mib: float
    times: list[float]  # every epoch


def add_backend_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=["auto", "jax", "tensorflow"], default="auto", help="Keras backend of every side; auto: what seqcli picks for this data")


def choose_backend(choice: str, train: Labelled, *, units: int, epochs: int, batch_size: int) -> str:
    """Fix this process's Keras backend before Keras is imported; ``auto`` resolves as seqcli's ``backend: auto`` does for this training."""
    from seqcli import backend, batching, preprocess, steps
    from seqcli.pipeline import load_splits
    from seqcli.tasks import get as get_task

    with tempfile.TemporaryDirectory() as folder:
        spec = _spec(folder, {"train": train}, units=units, batch_size=batch_size, epochs=epochs, lr=0.001, run_dir=None)
        data = load_splits(spec, get_task(spec.task))["train"][spec.input_name]
    prep = preprocess.fit(data, spec.preprocessing)
    chosen, _ = backend.choose_backend(choice, batching.workload(prep, steps.real_lengths(data, prep), None, spec))
    os.environ["KERAS_BACKEND"] = chosen
    return chosen


def _spec(folder: str, files: dict[str, Labelled], *, units: int, batch_size: int, epochs: int, lr: float, run_dir: Path | None) -> Any:
    """The spec of seqcli's side (Masking -> LSTM(units) -> softmax, no validation), its data written to ``folder``."""
    from seqcli.spec import spec_from_dict

    for name, data in files.items():
        save_npz(Path(folder) / f"{name}.npz", data)
    return spec_from_dict(
        {
            "data": {**{name: f"{folder}/{name}.npz" for name in files}, "validation_split": 0},
            "preprocessing": {"standardize": False},
            "model": {"layers": [{"units": units}]},
            "training": {"epochs": epochs, "batch_size": batch_size, "learning_rate": lr, "monitor": "loss", "early_stopping": None},
            "output": {"dir": str(run_dir or Path(folder) / "runs"), "name": "bench"},
        }
    )


def seqcli_train(train: Labelled, test: Labelled | None, *, units: int, batch_size: int, epochs: int, lr: float, run_dir: Path | None = None) -> SeqcliTiming:
    """Train seqcli's model (Masking -> LSTM(units) -> softmax) through the core API, as `seqcli train` would.

    The epoch commit (checkpoint with optimizer state, history, run.json), which runs on a background
    thread, is timed too. The run directory goes to a temporary folder, or under ``run_dir`` if given.
    Peak RSS is the process's during this call (TensorFlow's runtime included).
    """
    from seqcli import rundir
    from seqcli import train as core

    commits: list[float] = []
    original = rundir.RunDir.commit_epoch

    def timed_commit(self: rundir.RunDir, *a: Any, **k: Any) -> None:
        start = time.perf_counter()
        original(self, *a, **k)
        commits.append(time.perf_counter() - start)

    reset_peak_rss()
    rundir.RunDir.commit_epoch = timed_commit  # type: ignore[method-assign]
    try:
        with tempfile.TemporaryDirectory() as folder:
            files = {"train": train} if test is None else {"train": train, "test": test}
            spec = _spec(folder, files, units=units, batch_size=batch_size, epochs=epochs, lr=lr, run_dir=run_dir)
            clock = EpochClock()
            result = core.fit(core.prepare(spec), clock)
    finally:
        rundir.RunDir.commit_epoch = original  # type: ignore[method-assign]
    accuracy = float(result.metrics["test"]["accuracy"]) if test is not None else None
    return SeqcliTiming(steady(clock.times), statistics.median(commits), len(commits), accuracy, peak_rss_mib(), clock.times)


def reset_peak_rss() -> None:
    """Start a new peak-RSS window for :func:`peak_rss_mib` (Linux); elsewhere the peak stays the whole process's."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB since :func:`reset_peak_rss`.

    Linux: ``VmHWM``. Not ``ru_maxrss``, which also counts the parent's memory at the fork
    (it keeps the high-water mark of the memory image that ``exec`` replaced).
    """
    status = Path("/proc/self/status")
    if status.exists():
        return next(int(line.split()[1]) for line in status.read_text().splitlines() if line.startswith("VmHWM:")) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # macOS: bytes


# Runs the command given after the result file, waits for it and writes "<wall seconds> <ru_maxrss>" to that file.
# This small process, not the benchmark (hundreds of MiB with TensorFlow), is the command's parent: see peak_rss_mib.
_LAUNCHER = (
    "import os, subprocess, sys, time; start = time.perf_counter(); child = subprocess.Popen(sys.argv[2:]); _, status, usage = os.wait4(child.pid, 0); "
    "open(sys.argv[1], 'w').write(f'{time.perf_counter() - start} {usage.ru_maxrss}'); sys.exit(os.waitstatus_to_exitcode(status))"
)


def run_child(command: list[str], *, cwd: Path = ROOT, status: int = 0) -> tuple[float, float, str]:
    """Run ``command`` in a fresh process; return its wall seconds, its peak RSS in MiB and its stdout. Raises if it does
    not exit with ``status`` (an error that is measured: 1)."""
    with tempfile.TemporaryDirectory() as folder:
        measured = Path(folder) / "measured"
        done = subprocess.run([sys.executable, "-c", _LAUNCHER, str(measured), *command], capture_output=True, text=True, cwd=cwd)
        if done.returncode != status:
            raise RuntimeError(f"{' '.join(command)} exited {done.returncode}, not {status}:\n{done.stderr[-2000:]}")
        seconds, maxrss = measured.read_text().split()
    return float(seconds), int(maxrss) / (2**20 if sys.platform == "darwin" else 2**10), done.stdout


def bytecode_warning() -> str | None:
    """A warning when TensorFlow has no cached bytecode, so that every fresh process compiles it from source.

    That happens when PYTHONDONTWRITEBYTECODE is set and nothing compiled the virtual environment;
    ``import tensorflow`` then takes several times as long as on a user's machine.
    """
    import importlib.util

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or spec.origin is None or (Path(spec.origin).parent / "__pycache__").is_dir():
        return None
    return "warning: TensorFlow's bytecode is not cached, so every fresh process compiles it (start-up several times slower than a user's); run `uv sync --compile-bytecode` once."


def lstm_train_flops(timesteps: int, features: int, units: int) -> float:
    """Floating-point operations to train an LSTM layer on ``timesteps`` real (sample) timesteps.

    Forward, per sample and timestep: 4 gates, each ``units`` outputs of ``features + units`` inputs:
    ``4 * units * (features + units)`` multiply-adds = ``2 * 4 * units * (features + units)`` FLOPs
    (bias, activations and the output layer are left out). Forward + backward counts as 3x the forward pass.
    """
    return 3 * 2 * 4 * units * (features + units) * timesteps


def verdict(median: float, fastest: float, target: float) -> str:
    """A ratio target's verdict from the median ratio and the ratio of each side's fastest epochs: both must agree."""
    if max(median, fastest) <= target:
        return "met"
    if min(median, fastest) > target:
        return "not met"
    return "unclear (the median and the fastest epochs disagree: a busy machine)"


def row(script: str, comparison: str, result: str, target: str) -> str:
    """One row of benchmarks/README.md's results table, printed last by each script (run_all.py collects them)."""
    return f"| `{script}` | {comparison} | {result} | {target} |"
