"""seqcli (length bucketing) vs the classic recipe: pad everything to the global maximum.

Both sides train the same model (Masking -> LSTM -> softmax) with the same batch
size and epochs on the same generated data: 500 sequences of 1 feature with
long-tailed lengths 100..1300 (mean about 320), 10 classes told apart by the
frequency of a noisy sine. Steady-state epoch time is the median of the epochs
after the first (which includes tracing). Prints both times, the ratio and both
test accuracies.

The first epoch (tracing or compiling) is printed too: under JAX it compiles one
step per distinct batch width, which is why `backend: auto` picks TensorFlow here.

    uv run python benchmarks/variable_length.py [--epochs 4] [--units 32] [--backend tensorflow|jax]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
from common import EpochClock, steady

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def make_data(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Sequences ``(timesteps, 1)`` with lengths 100..1300 (long tail) and labels 0..9."""
    rng = np.random.default_rng(seed)
    lengths = (100 + np.minimum(1200, rng.exponential(220, size=n))).astype(int)
    labels = rng.integers(0, 10, size=n)
    sequences = []
    for length, label in zip(lengths, labels, strict=True):
        t = np.arange(length)
        signal = np.sin(2 * np.pi * (0.01 + 0.006 * label) * t + rng.uniform(0, 2 * np.pi)) + rng.normal(0, 0.3, size=length)
        sequences.append(signal[:, None].astype(np.float32))
    return sequences, labels


def classic(train: tuple[list[np.ndarray], np.ndarray], test: tuple[list[np.ndarray], np.ndarray], args: argparse.Namespace) -> tuple[list[float], float]:
    """The recipe from countless tutorials: pad_sequences to the longest, Masking, LSTM."""
    import keras

    keras.utils.set_random_seed(0)
    maxlen = max(len(s) for s in train[0] + test[0])
    pad = lambda seqs: keras.utils.pad_sequences(seqs, maxlen=maxlen, dtype="float32", padding="post", value=0.0)  # noqa: E731
    inputs = keras.Input((maxlen, 1))
    x = keras.layers.Masking(0.0)(inputs)
    x = keras.layers.LSTM(args.units)(x)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    model.compile(optimizer=keras.optimizers.Adam(args.lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = EpochClock()
    model.fit(pad(train[0]), train[1], batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[clock.keras_callback()])
    accuracy = model.evaluate(pad(test[0]), test[1], verbose=0, return_dict=True)["accuracy"]
    return clock.times, float(accuracy)


def seqcli_side(train: tuple[list[np.ndarray], np.ndarray], test: tuple[list[np.ndarray], np.ndarray], args: argparse.Namespace) -> tuple[list[float], float]:
    from seqcli import train as core
    from seqcli.spec import spec_from_dict

    with tempfile.TemporaryDirectory() as folder:
        for name, (seqs, labels) in (("train", train), ("test", test)):
            np.savez(Path(folder) / f"{name}.npz", x=np.concatenate(seqs), lengths=np.array([len(s) for s in seqs]), y=labels)
        spec = spec_from_dict(
            {
                "data": {"train": f"{folder}/train.npz", "test": f"{folder}/test.npz", "validation_split": 0},
                "preprocessing": {"standardize": False},
                "model": {"layers": [{"units": args.units}]},
                "training": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr, "monitor": "loss", "early_stopping": None},
                "output": {"dir": f"{folder}/runs", "name": "bench"},
                "backend": args.backend,
            }
        )
        clock = EpochClock()
        result = core.fit(core.prepare(spec), clock)
        return clock.times, float(result.metrics["test"]["accuracy"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.005)
    parser.add_argument("--backend", choices=["tensorflow", "jax"], default="tensorflow", help="Keras backend of both sides (auto picks tensorflow for this data)")
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    train, test = make_data(500, seed=0), make_data(200, seed=1)
    lengths = np.array([len(s) for s in train[0]])
    print(f"data: {len(lengths)} train sequences, lengths {lengths.min()}..{lengths.max()}, mean {lengths.mean():.0f}; 1 feature, 10 classes")
    print(f"model: LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs (steady state = median of epochs 2..{args.epochs}), {args.backend} backend")
    classic_times, classic_acc = classic(train, test, args)
    seqcli_times, seqcli_acc = seqcli_side(train, test, args)
    for name, times, accuracy in (("classic pad-to-max", classic_times, classic_acc), ("seqcli bucketing  ", seqcli_times, seqcli_acc)):
        print(f"{name} : {steady(times):7.2f} s/epoch (first epoch {times[0]:.2f} s)   test accuracy {accuracy:.3f}")
    print(f"speed-up: {steady(classic_times) / steady(seqcli_times):.2f}x (target >= 2.5x)")


if __name__ == "__main__":
    main()
