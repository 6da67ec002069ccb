"""On-the-fly augmentation of training batches: jitter, scaling, magnitude warp, time warp and window slicing.

Applied to the real timesteps of each training batch's sequences (after scaling, before padding), never to validation,
test or predict data. Every batch draws from its own generator seeded by (seed, epoch, batch, input), so an epoch's
augmented batches are the same in every run of the spec, and a resumed run sees exactly the batches it would have seen.
Pure NumPy.
"""

from __future__ import annotations

import numpy as np

from seqcli.sequences import Sequences
from seqcli.spec import AugmentSpec

KNOTS = 4  # interior knots of the smooth random curves (magnitude and time warp), as in Um et al. (2017)
SALT = 0x5EC  # keeps these generators apart from the batch plans' (seed, epoch) streams


class Augmenter:
    """The spec's augmentations, applied in a fixed order: window slicing, time warp, magnitude warp, scaling, jitter."""

    def __init__(self, spec: AugmentSpec, *, seed: int) -> None:
        self.spec = spec
        self.seed = seed

    @property
    def active(self) -> bool:
        s = self.spec
        return s.window < 1.0 or s.time_warp > 0 or s.magnitude_warp > 0 or s.scaling > 0 or s.jitter > 0

    def describe(self) -> str:
        """One line for inspect-shapes: what is applied, and how it is seeded."""
        s = self.spec
        parts = [
            *([f"window slicing ({s.window:g} of each sequence)"] if s.window < 1.0 else []),
            *([f"time warp (sigma {s.time_warp:g})"] if s.time_warp > 0 else []),
            *([f"magnitude warp (sigma {s.magnitude_warp:g})"] if s.magnitude_warp > 0 else []),
            *([f"scaling (sigma {s.scaling:g})"] if s.scaling > 0 else []),
            *([f"jitter (sigma {s.jitter:g})"] if s.jitter > 0 else []),
        ]
        return ", ".join(parts) + " on the real timesteps of every training batch, seeded by (seed, epoch, batch); validation, test and predict data are never augmented"

    def __call__(self, sequences: Sequences, *, epoch: int, batch: int, stream: int = 0) -> Sequences:
        """``sequences`` (one batch's, ragged ``(timesteps_i, features)``) augmented; ``stream`` tells a model's inputs apart."""
        rng = np.random.default_rng([self.seed, epoch, batch, stream, SALT])
        s = self.spec
        out = sequences.with_values(sequences.values.astype(np.float32, copy=True))
        if s.window < 1.0:
            out = window_slices(out, s.window, rng)
        if s.time_warp > 0:
            out = out.with_values(np.concatenate([time_warped(seq, s.time_warp, rng) for seq in out]) if len(out) else out.values)
        features = out.cell_shape[0] if out.cell_shape else 1
        owner = np.repeat(np.arange(len(out)), out.lengths)  # the sequence of every timestep
        values = out.values
        if s.magnitude_warp > 0:
            values = values * np.concatenate([smooth_curve(int(n), features, s.magnitude_warp, rng) for n in out.lengths]).astype(np.float32)
        if s.scaling > 0:
            values = values * rng.normal(1.0, s.scaling, size=(len(out), features)).astype(np.float32)[owner]
        if s.jitter > 0:
            values = values + rng.normal(0.0, s.jitter, size=values.shape).astype(np.float32)
        return out.with_values(values)


def window_slices(sequences: Sequences, fraction: float, rng: np.random.Generator) -> Sequences:
    """Each sequence cut to a random window of ``fraction`` of its timesteps (at least one).

    >>> cut = window_slices(Sequences.from_arrays([np.arange(10.0)[:, None]]), 0.5, np.random.default_rng(0))
    >>> cut.lengths.tolist(), bool(np.all(np.diff(cut.values[:, 0]) == 1))
    ([5], True)
    """
    keep = np.maximum(1, np.round(sequences.lengths * fraction).astype(np.int64))
    first = sequences.starts + (rng.random(len(sequences)) * (sequences.lengths - keep + 1)).astype(np.int64)
    ends = np.cumsum(keep)
    offsets = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - keep, keep)
    return Sequences(sequences.values[np.repeat(first, keep) + offsets], keep)


def smooth_curve(length: int, features: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``(length, features)`` values around 1: linear interpolation between ``KNOTS`` + 2 evenly spaced knots drawn from N(1, sigma)."""
    knots = rng.normal(1.0, sigma, size=(KNOTS + 2, features))
    at = np.linspace(0.0, max(length - 1, 1), KNOTS + 2)
    steps = np.arange(length, dtype=np.float64)
    return np.stack([np.interp(steps, at, knots[:, f]) for f in range(features)], axis=1)


def time_warped(sequence: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``sequence`` ``(timesteps, features)`` read at smoothly distorted times: a random positive speed curve, integrated and
    scaled so that the first and last timesteps stay, then linear interpolation at those times; the length is kept."""
    length = len(sequence)
    if length < 3:
        return sequence
    speed = np.maximum(smooth_curve(length - 1, 1, sigma, rng)[:, 0], 0.1)  # > 0: time never runs backwards
    times = np.concatenate([[0.0], np.cumsum(speed)])
    times *= (length - 1) / times[-1]
    steps = np.arange(length, dtype=np.float64)
    return np.stack([np.interp(times, steps, sequence[:, f]) for f in range(sequence.shape[1])], axis=1).astype(sequence.dtype)
