"""Write the synthetic "motifs" data: integer codes of 25 symbols, 8 to 31 long, 0-padded to 31.

Every sequence is random symbols 1..25 (code 0 is padding, after the sequence). Class
``a`` contains the motif 7-7-19 somewhere, class ``b`` the motif 3-12-3, class ``none``
neither (nor does any sequence hold the other class's motif). Classes are balanced.

``python data/motifs/generate.py`` recreates train_x.npy/train_y.npy (3,000 sequences)
and test_x.npy/test_y.npy (1,000) exactly; ``--samples N --out DIR`` writes N training
sequences into DIR instead (the 1,085,420 x 31 scale run in benchmarks/README.md).
"""

import argparse
from pathlib import Path

import numpy as np

SYMBOLS, WIDTH, MIN_LENGTH = 25, 31, 8
MOTIFS = {"a": np.array([7, 7, 19]), "b": np.array([3, 12, 3])}
CLASSES = np.array(["a", "b", "none"])


def contains(x: np.ndarray, lengths: np.ndarray, motif: np.ndarray) -> np.ndarray:
    """Rows of x (samples, WIDTH) holding ``motif`` within their length."""
    k = len(motif)
    found = np.zeros(len(x), bool)
    for start in range(WIDTH - k + 1):
        found |= np.all(x[:, start : start + k] == motif, axis=1) & (start + k <= lengths)
    return found


def make(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 3
    rng.shuffle(labels)
    lengths = rng.integers(MIN_LENGTH, WIDTH + 1, n)
    x = np.zeros((n, WIDTH), np.int8)
    todo = np.arange(n)
    while todo.size:  # draw, plant the class's motif, redraw rows that hold a motif they should not
        codes = rng.integers(1, SYMBOLS + 1, (todo.size, WIDTH)).astype(np.int8)
        codes[np.arange(WIDTH) >= lengths[todo, None]] = 0
        for c, motif in enumerate(MOTIFS.values()):
            rows = np.flatnonzero(labels[todo] == c)
            starts = rng.integers(0, lengths[todo[rows]] - len(motif) + 1)
            for j, m in enumerate(motif):
                codes[rows, starts + j] = m
        x[todo] = codes
        bad = np.zeros(todo.size, bool)
        for c, motif in enumerate(MOTIFS.values()):
            bad |= contains(codes, lengths[todo], motif) & (labels[todo] != c)
        todo = todo[bad]
    return x, CLASSES[labels]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, help="write this many training sequences (and no test set) into --out")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    parts = {"train": (args.samples, 1)} if args.samples else {"train": (3000, 0), "test": (1000, 1)}
    for name, (n, seed) in parts.items():
        x, y = make(n, seed)
        np.save(args.out / f"{name}_x.npy", x)
        np.save(args.out / f"{name}_y.npy", y)


if __name__ == "__main__":
    main()
