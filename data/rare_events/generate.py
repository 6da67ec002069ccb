"""Write the rare-events data set: variable-length sensor sequences with an imbalanced label distribution.

Two features per timestep, 15 to 45 timesteps. Every sequence is a noisy oscillation (feature a) and a
noisy level (feature b). Three classes, 88% / 8% / 4%:

- ``normal``: nothing else;
- ``burst``: five timesteps of alternating +-1.4 added to feature a, somewhere in the sequence;
- ``drift``: feature b ramps up (0.05 to 0.10 per timestep) from somewhere in the middle third to the end.

Deterministic: ``python data/rare_events/generate.py`` recreates train.npz and test.npz. Each .npz holds
``x`` (all sequences concatenated, (total_timesteps, 2) float32), ``lengths`` and ``y`` (class names).
"""

from pathlib import Path

import numpy as np

CLASSES = {"normal": 0.88, "burst": 0.08, "drift": 0.04}


def sequence(rng: np.random.Generator, label: str) -> np.ndarray:
    """One sequence ``(timesteps, features=2)``."""
    length = int(rng.integers(15, 46))
    t = np.arange(length)
    noise = np.zeros(length)
    for i in range(1, length):  # AR(1) noise: neighbouring timesteps are alike
        noise[i] = 0.6 * noise[i - 1] + rng.normal(0, 0.4)
    a = np.sin(2 * np.pi * t / rng.uniform(8, 14) + rng.uniform(0, 2 * np.pi)) + noise
    b = rng.normal(0, 0.5) + rng.normal(0, 0.25, length)
    if label == "burst":
        start = int(rng.integers(0, length - 5))
        a[start : start + 5] += 1.4 * (-1.0) ** np.arange(5)
    elif label == "drift":
        start = int(rng.integers(length // 3, 2 * length // 3))
        b[start:] += rng.uniform(0.05, 0.10) * np.arange(1, length - start + 1)
    return np.round(np.stack([a, b], axis=1), 3).astype(np.float32)


def write(path: Path, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = {label: round(n * share) for label, share in CLASSES.items()}
    labels = np.array([label for label, count in counts.items() for _ in range(count)])
    labels = labels[rng.permutation(len(labels))]
    sequences = [sequence(rng, label) for label in labels]
    np.savez_compressed(path, x=np.concatenate(sequences), lengths=np.array([len(s) for s in sequences]), y=labels)


if __name__ == "__main__":
    here = Path(__file__).parent
    write(here / "train.npz", 480, seed=0)
    write(here / "test.npz", 480, seed=1)
