"""Generate the `segments` tagging data: noisy 2-feature motion frames, each labelled rest, walk or run.

A sticky Markov chain picks the activity of every frame (segments of about 12 frames). A frame's features are
its activity's level plus strong noise (`magnitude`) and a wave whose frequency depends on the activity
(`wave`), so a single frame is ambiguous and its neighbours are needed to tag it well. Writes long-format CSV
(one row per frame: id, time, magnitude, wave, label) for train and test. Run: `python data/segments/generate.py`.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

STATES = ("rest", "walk", "run")
LEVEL = np.array([0.0, 1.0, 2.0])
FREQUENCY = np.array([0.05, 0.2, 0.4])  # cycles per frame
STAY = 0.92  # chance that the next frame keeps the activity


def sequence(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """One sequence: features ``(timesteps, 2)`` and state indices ``(timesteps,)``."""
    states = np.empty(length, dtype=np.int64)
    states[0] = rng.integers(3)
    for t in range(1, length):
        states[t] = states[t - 1] if rng.random() < STAY else rng.choice([s for s in range(3) if s != states[t - 1]])
    phase = np.cumsum(2 * np.pi * FREQUENCY[states])
    magnitude = LEVEL[states] + rng.normal(0.0, 0.9, length)
    wave = np.sin(phase) + rng.normal(0.0, 0.5, length)
    return np.stack([magnitude, wave], axis=1), states


def write(path: Path, rng: np.random.Generator, count: int) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["id", "time", "magnitude", "wave", "label"])
        for i in range(count):
            x, states = sequence(rng, int(rng.integers(20, 61)))
            for t, (row, state) in enumerate(zip(x, states, strict=True)):
                writer.writerow([f"s{i:03d}", t, f"{row[0]:.3f}", f"{row[1]:.3f}", STATES[state]])


def main() -> None:
    here = Path(__file__).parent
    rng = np.random.default_rng(7)
    write(here / "train.csv", rng, 240)
    write(here / "test.csv", rng, 80)


if __name__ == "__main__":
    main()
