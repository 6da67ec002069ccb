"""seqcli vs hand-written Keras on fixed-length data: the overhead per epoch.

Same data (4,000 sequences of 8 timesteps x 16 features, 10 classes), same model
(Masking -> LSTM(32) -> softmax), batch size and epochs. The hand-written side is
`model.fit` on one padded array. seqcli's epoch also commits a checkpoint
(weights and optimizer state), the history and run.json, which the hand-written
script does not do; the script reports the training steps and that commit
separately. Steady state is the median of the epochs after the first. Epochs are
short (about half a second), and this shared machine's speed drifts, so the two
sides run alternately ``--repeats`` times; the median ratio and its range are
printed.

    uv run python benchmarks/fixed_length.py [--epochs 8] [--repeats 3] [--backend jax|tensorflow]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from common import EpochClock, steady

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(samples, timesteps=8, features=16)`` floats and labels 0..9 (class = which feature carries a ramp)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=n)
    x = rng.normal(0, 1, size=(n, 8, 16)).astype(np.float32)
    x[np.arange(n), :, y] += np.linspace(0, 2, 8, dtype=np.float32)
    return x, y


def hand_written(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> float:
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 16))
    h = keras.layers.LSTM(args.units)(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = EpochClock()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[clock.keras_callback()])
    return steady(clock.times)


def seqcli_side(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> tuple[float, float]:
    """(training steps per epoch, epoch commit) in seconds."""
    from seqcli import rundir
    from seqcli import train as core
    from seqcli.spec import spec_from_dict

    commits: list[float] = []
    original = rundir.RunDir.commit_epoch

    def timed_commit(self: rundir.RunDir, *a: object, **k: object) -> None:
        start = time.perf_counter()
        original(self, *a, **k)
        commits.append(time.perf_counter() - start)

    rundir.RunDir.commit_epoch = timed_commit  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory() as folder:
        np.savez(Path(folder) / "train.npz", x=x, y=y)
        spec = spec_from_dict(
            {
                "data": {"train": f"{folder}/train.npz", "validation_split": 0},
                "preprocessing": {"standardize": False},
                "model": {"layers": [{"units": args.units}]},
                "training": {"epochs": args.epochs, "batch_size": args.batch_size, "monitor": "loss", "early_stopping": None},
                "output": {"dir": f"{folder}/runs", "name": "bench"},
                "backend": args.backend,
            }
        )
        clock = EpochClock()
        core.fit(core.prepare(spec), clock)
    rundir.RunDir.commit_epoch = original  # type: ignore[method-assign]
    steps = [epoch - commit for epoch, commit in zip(clock.times, commits, strict=True)]  # clock.times include the commit
    return steady(steps), steady(commits)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--backend", choices=["jax", "tensorflow"], default="jax", help="Keras backend of both sides (auto picks jax for this data)")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    x, y = make_data(4000, seed=0)
    print(f"data: {x.shape[0]} sequences x 8 timesteps x 16 features; LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs, {args.repeats} repeats, {args.backend} backend")
    steps_ratios, total_ratios = [], []
    for repeat in range(args.repeats):
        base = hand_written(x, y, args)
        steps, commit = seqcli_side(x, y, args)
        steps_ratios.append(steps / base)
        total_ratios.append((steps + commit) / base)
        print(f"repeat {repeat + 1}: hand-written {base:.3f} s/epoch, seqcli steps {steps:.3f} s/epoch + commit {commit:.3f} s")
    low, mid, high = min(steps_ratios), statistics.median(steps_ratios), max(steps_ratios)
    print(f"seqcli training steps / hand-written: median {mid:.2f} (range {low:.2f}-{high:.2f}; target <= 1.05)")
    print(f"including seqcli's epoch commit (checkpoint + history + run.json): median {statistics.median(total_ratios):.2f}")


if __name__ == "__main__":
    main()
