"""Generate the `memory_signals` data for `task: regress_timesteps`: two noisy input signals per timestep and two
targets per timestep that depend on earlier inputs, so a model without memory cannot fit them.

- `average`: an exponential moving average of the first input, `a_t = 0.8 a_{t-1} + 0.2 x_t` (from `a_{-1} = 0`);
- `echo`: the second input 5 timesteps earlier (0 for the first 5 timesteps).

Each sequence has 40 to 120 timesteps. Writes `train.npz` (400 sequences) and `test.npz` (100) with the sequences
concatenated: `x` (total_timesteps, 2), `y` (total_timesteps, 2) and `lengths` (sequences,). Deterministic.
Run: `python data/memory_signals/generate.py`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DECAY, LAG = 0.8, 5


def sequence(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``(timesteps, 2)`` and targets ``(timesteps, 2)``: the moving average of input 0, input 1 from ``LAG`` steps earlier."""
    x = rng.normal(0.0, 1.0, (length, 2))
    average = np.empty(length)
    state = 0.0
    for t in range(length):
        state = DECAY * state + (1 - DECAY) * x[t, 0]
        average[t] = state
    echo = np.concatenate([np.zeros(LAG), x[:-LAG, 1]])
    return x, np.stack([average, echo], axis=1)


def write(path: Path, rng: np.random.Generator, count: int) -> None:
    pairs = [sequence(rng, int(rng.integers(40, 121))) for _ in range(count)]
    x = np.concatenate([p[0] for p in pairs]).astype(np.float32)
    y = np.concatenate([p[1] for p in pairs]).astype(np.float32)
    np.savez_compressed(path, x=x, y=y, lengths=np.array([len(p[0]) for p in pairs]))


if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    rng = np.random.default_rng(7)
    write(here / "train.npz", rng, 400)
    write(here / "test.npz", rng, 100)
