"""seqcli vs hand-written Keras on fixed-length data: the overhead per epoch.

Same data (4,000 sequences of 8 timesteps x 16 features, 10 classes), same model
(Masking -> LSTM(32) -> softmax), batch size and epochs. The hand-written side is
`model.fit` on one padded array. seqcli's epoch also commits a checkpoint
(weights and optimizer state), the history and run.json, which the hand-written
script does not do; the script reports the training steps and that commit
separately. Steady state is the median of the epochs after the first.

    uv run python benchmarks/fixed_length.py [--epochs 5]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

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
    times: list[float] = []
    start = [0.0]
    callback = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda *_: start.__setitem__(0, time.perf_counter()), on_epoch_end=lambda *_: times.append(time.perf_counter() - start[0])
    )
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[callback])
    return statistics.median(times[1:])


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
            }
        )
        ends: list[float] = []

        class Hook:
            batch_updates = False  # like model.fit(verbose=0) on the other side

            def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
                ends.append(time.perf_counter())

            def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
                pass

            def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
                ends.append(time.perf_counter())

            def on_train_end(self) -> None:
                pass

        core.fit(core.prepare(spec), Hook())
    rundir.RunDir.commit_epoch = original  # type: ignore[method-assign]
    epochs = [b - a for a, b in itertools.pairwise(ends)]  # includes the commit
    steps = [e - c for e, c in zip(epochs, commits, strict=True)]
    return statistics.median(steps[1:]), statistics.median(commits[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    x, y = make_data(4000, seed=0)
    print(f"data: {x.shape[0]} sequences x 8 timesteps x 16 features; LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs")
    base = hand_written(x, y, args)
    steps, commit = seqcli_side(x, y, args)
    print(f"hand-written Keras      : {base:6.3f} s/epoch")
    print(f"seqcli training steps   : {steps:6.3f} s/epoch  ({steps / base - 1:+.1%}; target <= +5%)")
    print(f"seqcli epoch commit     : {commit:6.3f} s/epoch  (checkpoint + history + run.json; {(steps + commit) / base - 1:+.1%} in all)")


if __name__ == "__main__":
    main()
