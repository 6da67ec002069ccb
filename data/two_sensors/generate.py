"""Generate the `two_sensors` multi-input data: a motion stream and a temperature stream per sample.

Each sample is a device that is idle or moving, and warming or cooling; its class names both (e.g.
`moving_warming`), so neither stream alone can tell all four classes apart. `motion` holds 24-48 frames of
3 accelerometer axes: noise, plus for a moving device a wave of 0.25 cycles per frame on every axis.
`temperature` holds 8-16 readings of one value drifting up (warming) or down (cooling) by 0.15 per reading,
under noise. Writes JSON Lines (one record per sample: id, sequence, and in motion_*.jsonl the label); the
temperature files list the samples in another order, so the inputs must be matched by id.
Run: `python data/two_sensors/generate.py`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WAVE = 0.25  # cycles per frame of a moving device
DRIFT = 0.15  # temperature change per reading


def sample(rng: np.random.Generator, moving: bool, warming: bool) -> tuple[np.ndarray, np.ndarray]:
    """Motion ``(timesteps, 3)`` and temperature ``(timesteps,)`` of one sample."""
    frames = int(rng.integers(24, 49))
    phase = 2 * np.pi * WAVE * np.arange(frames)[:, None] + rng.uniform(0, 2 * np.pi, 3)
    motion = rng.normal(0.0, 0.8, (frames, 3)) + (np.sin(phase) if moving else 0.0)
    readings = int(rng.integers(8, 17))
    temperature = rng.normal(20.0, 1.0) + (DRIFT if warming else -DRIFT) * np.arange(readings) + rng.normal(0.0, 0.3, readings)
    return motion, temperature


def write(here: Path, split: str, rng: np.random.Generator, count: int) -> None:
    motion_rows, temperature_rows = [], []
    for i in range(count):
        moving, warming = bool(rng.integers(2)), bool(rng.integers(2))
        motion, temperature = sample(rng, moving, warming)
        sample_id = f"{split}{i:03d}"
        label = f"{'moving' if moving else 'idle'}_{'warming' if warming else 'cooling'}"
        motion_rows.append({"id": sample_id, "sequence": np.round(motion, 2).tolist(), "label": label})
        temperature_rows.append({"id": sample_id, "sequence": np.round(temperature, 2).tolist()})
    order = rng.permutation(count)
    (here / f"motion_{split}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in motion_rows))
    (here / f"temperature_{split}.jsonl").write_text("".join(json.dumps(temperature_rows[i]) + "\n" for i in order))


def main() -> None:
    here = Path(__file__).parent
    rng = np.random.default_rng(3)
    write(here, "train", rng, 240)
    write(here, "test", rng, 80)


if __name__ == "__main__":
    main()
