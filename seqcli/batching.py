"""Batching: which sequences go into which batch, and how far each batch is padded.

Length bucketing groups sequences of similar length; each batch is padded only to
its bucket's upper boundary instead of the global ``maxlen``, so little compute
goes to padding and only a few distinct batch shapes exist (compiled steps are
reused). A training epoch's plan depends on (seed, epoch) alone, which keeps runs
reproducible and resumes exact. Evaluation and prediction batch by length too and
return results in the input order. Without bucketing everything is one bucket
at ``maxlen``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

MAX_BUCKETS = 8


def auto_boundaries(lengths: np.ndarray, maxlen: int, batch_size: int) -> list[int]:
    """Bucket upper bounds from the length distribution: quantiles, at most 8 buckets, the last one ``maxlen``.

    >>> auto_boundaries(np.array([10] * 50 + [100] * 50), 100, 8)
    [10, 100]
    """
    ordered = np.sort(np.minimum(lengths, maxlen))
    buckets = int(min(MAX_BUCKETS, max(1, len(ordered) // (4 * batch_size))))  # at least ~4 batches per bucket
    ranks = np.ceil(np.arange(1, buckets) * len(ordered) / buckets).astype(int) - 1  # the k-th of `buckets` equal shares
    return sorted({int(ordered[r]) for r in ranks} | {maxlen})


@dataclass(frozen=True)
class Plan:
    """The batches of one pass: ``batches[i]`` are row indices, ``widths[i]`` the padded timesteps of batch i."""

    batches: list[np.ndarray]
    widths: list[int]


def _bucket_index(lengths: np.ndarray, boundaries: list[int]) -> np.ndarray:
    return np.searchsorted(np.asarray(boundaries), lengths, side="left")


def train_plan(lengths: np.ndarray, boundaries: list[int], batch_size: int, seed: int, epoch: int, shuffle: bool) -> Plan:
    """One training epoch: shuffle within buckets, cut into batches, shuffle the batch order (all seeded by epoch)."""
    rng = np.random.default_rng([seed, epoch])
    bucket = _bucket_index(lengths, boundaries)
    batches, widths = [], []
    for b, boundary in enumerate(boundaries):
        members = np.flatnonzero(bucket == b)
        if shuffle:
            members = rng.permutation(members)
        for start in range(0, len(members), batch_size):
            batches.append(members[start : start + batch_size])
            widths.append(boundary)
    order = rng.permutation(len(batches)) if shuffle else np.arange(len(batches))
    return _vary_first_two(Plan([batches[i] for i in order], [widths[i] for i in order]))


def _vary_first_two(plan: Plan) -> Plan:
    """Make batches 0 and 1 differ in width when the plan has several widths.

    Keras infers a PyDataset's tensor signature from its first two batches; if they
    share a width, timesteps would be fixed and a later, wider batch rejected.
    """
    widths = plan.widths
    if len(widths) < 3 or widths[0] != widths[1] or len(set(widths)) == 1:
        return plan
    j = next(i for i, w in enumerate(widths) if w != widths[0])
    order = list(range(len(widths)))
    order[1], order[j] = order[j], order[1]
    return Plan([plan.batches[i] for i in order], [widths[i] for i in order])


def eval_plan(lengths: np.ndarray, boundaries: list[int], batch_size: int) -> Plan:
    """Deterministic batches for evaluation and prediction: input order within each bucket."""
    return train_plan(lengths, boundaries, batch_size, seed=0, epoch=0, shuffle=False)


def padded_share(lengths: np.ndarray, plan: Plan) -> float:
    """Fraction of all batch cells that are padding."""
    cells = sum(len(rows) * width for rows, width in zip(plan.batches, plan.widths, strict=True))
    return 1.0 - float(np.minimum(lengths, max(plan.widths)).sum()) / cells if cells else 0.0


def batch_arrays(prep: Any, sequences: list[np.ndarray], rows: np.ndarray, width: int) -> np.ndarray:
    """Pad the chosen (already scaled and truncated) sequences to ``width``: ``(batch, width, features)`` or ``(batch, width)``."""
    from seqcli.preprocess import pad

    chosen = [sequences[i] for i in rows]
    if prep.input == "tokens":
        return pad([s[:, 0] for s in chosen], width, prep.padding, prep.truncating, 0, np.int32)
    return pad(chosen, width, prep.padding, prep.truncating, prep.pad_value, np.float32)


def keras_batches(prep: Any, sequences: list[np.ndarray], targets: np.ndarray | None, plan_for_epoch: Any, first_epoch: int = 0) -> Any:
    """A ``keras.utils.PyDataset`` over the plans ``plan_for_epoch(epoch)``, starting at ``first_epoch``."""
    from seqcli.backend import import_keras

    keras = import_keras()

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first_epoch
            self.plan: Plan = plan_for_epoch(self.epoch)

        def __len__(self) -> int:
            return len(self.plan.batches)

        def __getitem__(self, i: int) -> Any:
            rows = self.plan.batches[i]
            x = batch_arrays(prep, sequences, rows, self.plan.widths[i])
            return x if targets is None else (x, targets[rows])

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.plan = plan_for_epoch(self.epoch)

    return Batches()


def predict_proba(model: Any, prep: Any, sequences: list[np.ndarray], boundaries: list[int], batch_size: int) -> np.ndarray:
    """Class probabilities ``(samples, classes)`` in input order; a sigmoid output becomes two columns."""
    lengths = np.array([len(s) for s in sequences])
    plan = eval_plan(lengths, boundaries, batch_size)
    out = model.predict(keras_batches(prep, sequences, None, lambda _: plan), verbose=0)
    probs = np.empty_like(out)
    probs[np.concatenate(plan.batches)] = out  # back to input order
    if probs.shape[-1] == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=-1)
    return probs

