"""seqcli vs hand-written Keras on fixed-length data: the overhead per epoch.

Same data (4,000 sequences of 8 timesteps x 16 features, 10 classes), same model
(Masking -> LSTM(32) -> softmax), batch size and epochs. The hand-written side is
`model.fit` on one padded array. seqcli's epoch also commits a checkpoint
(weights and optimizer state), the history and run.json, which the hand-written
script does not do; that commit runs on a background thread while the next epoch
trains (for epochs this short, about once a second), and its duration is printed apart. Both sides' epochs are timed from
one epoch's end to the next one's, so whatever runs between epochs counts.
Steady state is the median of the epochs after the first. Epochs are short
(about a tenth of a second), and this
shared machine's speed drifts, so the two sides run alternately ``--repeats``
times, each starting with the other side; the median ratio, its range and the
ratio of the fastest epochs (the ones least disturbed by other processes) are
printed, and the target counts as met only when both ratios meet it, with each side's peak RSS: the
process's while that side ran (the Keras backend's runtime included), the lowest
over the repeats.

Both sides run on the backend seqcli's ``backend: auto`` picks for this data (JAX), or ``--backend``.

    uv run python benchmarks/fixed_length.py [--epochs 20] [--repeats 9] [--backend auto|jax|tensorflow]
"""

from __future__ import annotations

import argparse
import os
import statistics

import numpy as np
from common import EpochClock, add_backend_option, choose_backend, fixed_data, peak_rss_mib, reset_peak_rss, row, seqcli_train, steady, verdict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def hand_written(x: np.ndarray, y: np.ndarray, args: argparse.Namespace) -> tuple[list[float], float]:
    """(every epoch's seconds, peak RSS MiB)"""
    import keras

    reset_peak_rss()
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 16))
    h = keras.layers.LSTM(args.units)(keras.layers.Masking(0.0)(inputs))
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(h))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    clock = EpochClock()
    model.fit(x, y, batch_size=args.batch_size, epochs=args.epochs, verbose=0, callbacks=[clock.keras_callback()])
    return clock.times, peak_rss_mib()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    add_backend_option(parser)
    args = parser.parse_args()
    x, y = fixed_data(4000, seed=0)
    backend = choose_backend(args.backend, (x, y), units=args.units, epochs=args.epochs, batch_size=args.batch_size)
    print(f"data: {x.shape[0]} sequences x 8 timesteps x 16 features; LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs, {args.repeats} repeats, {backend} backend")
    ratios, fastest, commits, rss = [], [], [], []
    for repeat in range(args.repeats):
        if repeat % 2:  # odd repeats start with seqcli, so that neither side always runs first
            seqcli = seqcli_train((x, y), None, units=args.units, batch_size=args.batch_size, epochs=args.epochs, lr=0.001)  # Keras' Adam default, as "adam" above
        base_times, base_rss = hand_written(x, y, args)
        base = steady(base_times)
        if not repeat % 2:
            seqcli = seqcli_train((x, y), None, units=args.units, batch_size=args.batch_size, epochs=args.epochs, lr=0.001)
        ratios.append(seqcli.epoch / base)
        fastest.append((min(seqcli.times[1:]), min(base_times[1:])))
        commits.append((seqcli.commit, seqcli.commits))
        rss.append((seqcli.peak_rss_mib, base_rss))
        print(
            f"repeat {repeat + 1}: hand-written {base:.4f} s/epoch, seqcli {seqcli.epoch:.4f} s/epoch -> {ratios[-1]:.3f}x "
            f"({seqcli.commits} commits of {args.epochs} epochs, each written in {seqcli.commit:.4f} s on the commit thread meanwhile); "
            f"peak RSS hand-written {base_rss:.0f}, seqcli {seqcli.peak_rss_mib:.0f} MiB"
        )
    low, mid, high = min(ratios), statistics.median(ratios), max(ratios)
    best = min(f[0] for f in fastest) / min(f[1] for f in fastest)
    seqcli_rss, base_rss = min(r[0] for r in rss), min(r[1] for r in rss)  # later repeats also hold what earlier ones left behind
    print(f"seqcli / hand-written per steady-state epoch: median {mid:.3f} (range {low:.3f}-{high:.3f}; fastest epochs {best:.3f}; target <= 1.05)")
    print(f"peak RSS (lowest over repeats): seqcli {seqcli_rss:.0f} MiB, hand-written {base_rss:.0f} MiB")
    print(
        row(
            "fixed_length.py",
            f"{x.shape[0]:,} sequences of 8 timesteps x 16 features; LSTM({args.units}), batch {args.batch_size}, {args.epochs} epochs, "
            f"{args.repeats} alternating repeats, {backend} backend; seqcli vs `model.fit` on one array",
            f"seqcli's epoch, its checkpoint commit included, takes **{mid:.2f}x** the hand-written time (median; range {low:.2f}-{high:.2f}; "
            f"fastest epochs {best:.2f}x); {min(c[1] for c in commits)}-{max(c[1] for c in commits)} of {args.epochs} epochs committed (about once a second), "
            f"each written in {min(c[0] for c in commits) * 1000:.0f}-{max(c[0] for c in commits) * 1000:.0f} ms on the commit thread while training went on; "
            f"peak RSS {seqcli_rss:.0f} vs {base_rss:.0f} MiB",
            f"at most 1.05x: **{verdict(mid, best, 1.05)}**",
        )
    )


if __name__ == "__main__":
    main()
