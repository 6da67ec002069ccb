"""seqcli (length bucketing) vs the classic recipe: pad everything to the global maximum.

Both sides train the same model (Masking -> LSTM -> softmax) with the same batch
size and epochs on the same generated data: 500 sequences of 1 feature with
long-tailed lengths 100..1300 (mean about 320), 10 classes told apart by the
frequency of a noisy sine. Steady-state epoch time is the median of the epochs
after the first (which includes tracing). Prints both times, the ratio, both
test accuracies and each side's peak RSS (the process's while that side ran,
TensorFlow's runtime included). Both sides run on the backend seqcli's
``backend: auto`` picks for this data (TensorFlow), or ``--backend``; the first
epoch is printed too, as under JAX it compiles one step per batch width.

    uv run python benchmarks/variable_length.py [--epochs 4] [--units 32] [--backend auto|jax|tensorflow]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import EpochClock, add_backend_option, choose_backend, peak_rss_mib, reset_peak_rss, row, seqcli_train, steady, variable_data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def classic(train: tuple[list[np.ndarray], np.ndarray], test: tuple[list[np.ndarray], np.ndarray], args: argparse.Namespace) -> tuple[float, float, float]:
    """The recipe from countless tutorials: pad_sequences to the longest, Masking, LSTM. (s/epoch, test accuracy, peak RSS MiB)"""
    import keras

    reset_peak_rss()
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
    return steady(clock.times), float(accuracy), peak_rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=0.005)
    add_backend_option(parser)
    args = parser.parse_args()
    train, test = variable_data(500, seed=0), variable_data(200, seed=1)
    backend = choose_backend(args.backend, train, units=args.units, epochs=args.epochs, batch_size=args.batch_size)
    lengths = np.array([len(s) for s in train[0]])
    print(f"data: {len(lengths)} train sequences, lengths {lengths.min()}..{lengths.max()}, mean {lengths.mean():.0f}; 1 feature, 10 classes")
    print(f"model: LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs (steady state = median of epochs 2..{args.epochs}), {backend} backend")
    classic_time, classic_acc, classic_rss = classic(train, test, args)
    seqcli = seqcli_train(train, test, units=args.units, batch_size=args.batch_size, epochs=args.epochs, lr=args.lr)
    print(f"classic pad-to-max : {classic_time:7.2f} s/epoch   test accuracy {classic_acc:.3f}   peak RSS {classic_rss:5.0f} MiB")
    print(f"seqcli bucketing   : {seqcli.epoch:7.2f} s/epoch (first epoch {seqcli.times[0]:.2f} s)   test accuracy {seqcli.accuracy:.3f}   peak RSS {seqcli.peak_rss_mib:5.0f} MiB")
    speedup = classic_time / seqcli.epoch
    print(f"speed-up: {speedup:.2f}x (target >= 2.5x)")
    print(
        row(
            "variable_length.py",
            f"{len(lengths)} sequences, 1 feature, lengths {lengths.min()}..{lengths.max()} (mean {lengths.mean():.0f}); LSTM({args.units}), batch {args.batch_size}, "
            f"{args.epochs} epochs, {backend} backend; seqcli bucketing vs `pad_sequences` to the maximum + `Masking`",
            f"**{speedup:.2f}x** faster ({seqcli.epoch:.2f} vs {classic_time:.2f} s/epoch); accuracy {seqcli.accuracy:.3f} vs {classic_acc:.3f}; "
            f"peak RSS {seqcli.peak_rss_mib:.0f} vs {classic_rss:.0f} MiB",
            f">= 2.5x: **{'met' if speedup >= 2.5 else 'not met'}**",
        )
    )


if __name__ == "__main__":
    main()
