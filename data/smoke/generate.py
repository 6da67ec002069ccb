"""Write the tiny smoke-test data set: long-format CSV, 3 classes, 2 features, 4-9 timesteps.

Class "rise" ramps up, "fall" ramps down, "flat" stays level; noise is small, so a
tiny LSTM separates them within a few epochs. Deterministic: run
``python data/smoke/generate.py`` to recreate train.csv and test.csv.
"""

import csv
from pathlib import Path

import numpy as np


def write(path: Path, n_per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    seq_id = 0
    for label, slope in (("rise", 1.0), ("fall", -1.0), ("flat", 0.0)):
        for _ in range(n_per_class):
            length = int(rng.integers(4, 10))
            t = np.arange(length)
            level = rng.normal(0.0, 0.3)
            for step in t:
                a = level + slope * step / 4 + rng.normal(0, 0.05)
                b = np.cos(step / 2) * 0.5 + rng.normal(0, 0.05)
                rows.append((f"s{seq_id:03d}", int(step), round(float(a), 4), round(float(b), 4), label))
            seq_id += 1
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "time", "a", "b", "label"])
        writer.writerows(rows)


if __name__ == "__main__":
    here = Path(__file__).parent
    write(here / "train.csv", 12, seed=0)
    write(here / "test.csv", 4, seed=1)
