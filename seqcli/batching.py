"""Batching: which sequences go into which batch, and how far each batch is padded.

With length bucketing, the sequences are sorted by length (ties in random order),
cut into batches, and each batch is padded only to its own longest sequence; the
batch order is shuffled. Given bucket boundaries, no batch crosses one. Without
bucketing, batches are random and padded to ``maxlen``. A training epoch's plan
depends on (seed, epoch) alone, which keeps runs reproducible and resumes exact.
Evaluation and prediction batch by length too and return results in input order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Plan:
    """The batches of one pass: ``batches[i]`` are row indices, ``widths[i]`` the padded timesteps of batch i."""

    batches: list[np.ndarray]
    widths: list[int]


def train_plan(lengths: np.ndarray, boundaries: list[int] | None, maxlen: int, batch_size: int, seed: int, epoch: int, shuffle: bool) -> Plan:
    """One training epoch's batches, seeded by (seed, epoch).

    ``boundaries`` None: random batches padded to ``maxlen``. Otherwise, within each group of lengths up to a
    boundary: sorted by length (ties in random order) and cut, each batch padded to its longest sequence.
    """
    rng = np.random.default_rng([seed, epoch])
    batches: list[np.ndarray] = []
    widths: list[int] = []
    if boundaries is None:
        order = rng.permutation(len(lengths)) if shuffle else np.arange(len(lengths))
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        widths = [maxlen] * len(batches)
    else:
        group = np.searchsorted(np.asarray(boundaries), np.minimum(lengths, maxlen), side="left")
        for g in range(len(boundaries)):
            members = np.flatnonzero(group == g)
            ties = rng.random(len(members)) if shuffle else np.arange(len(members))
            members = members[np.lexsort((ties, lengths[members]))]  # by length; ties random (or in input order)
            for start in range(0, len(members), batch_size):
                rows = members[start : start + batch_size]
                batches.append(rows)
                widths.append(int(min(lengths[rows].max(), maxlen)))
    order = rng.permutation(len(batches)) if shuffle and boundaries is not None else np.arange(len(batches))
    return Plan([batches[i] for i in order], [widths[i] for i in order])


def eval_plan(lengths: np.ndarray, boundaries: list[int] | None, maxlen: int, batch_size: int) -> Plan:
    """Deterministic batches for evaluation and prediction (by length when bucketing, else input order)."""
    return train_plan(lengths, boundaries, maxlen, batch_size, seed=0, epoch=0, shuffle=False)


def padded_share(lengths: np.ndarray, plan: Plan) -> float:
    """Fraction of all batch cells that are padding."""
    cells = sum(len(rows) * width for rows, width in zip(plan.batches, plan.widths, strict=True))
    return 1.0 - float(np.minimum(lengths, max(plan.widths)).sum()) / cells if cells else 0.0


def dataset(prep: Any, sequences: list[np.ndarray], targets: np.ndarray | None, plan_for_epoch: Callable[[int], Plan], epochs: range) -> Any:
    """A ``tf.data.Dataset`` streaming the batches of ``plan_for_epoch(e)`` for every epoch ``e`` in ``epochs``.

    The sequences are stored once, concatenated (no padded copy); each batch is gathered and
    padded to its width in the graph: ``(batch, width, features)`` floats or ``(batch, width)`` token codes.
    """
    from seqcli.backend import import_keras

    import_keras()
    import tensorflow as tf

    tokens = prep.input == "tokens"
    lengths = np.array([len(s) for s in sequences], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    flat = np.concatenate(sequences) if sequences else np.zeros((0, prep.n_features))
    values = tf.constant(flat[:, 0].astype(np.int32) if tokens else flat.astype(np.float32))  # (total_timesteps[, features])
    starts_t, lengths_t = tf.constant(starts), tf.constant(lengths)
    y = tf.constant(targets) if targets is not None else None
    pad_value = 0 if tokens else prep.pad_value

    def plan_arrays(epoch: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        plan = plan_for_epoch(int(epoch))
        rows = np.concatenate(plan.batches).astype(np.int64) if plan.batches else np.zeros(0, np.int64)
        return rows, np.array([len(b) for b in plan.batches], np.int64), np.array(plan.widths, np.int64)

    def one_epoch(epoch: Any) -> Any:
        rows, sizes, widths = tf.numpy_function(plan_arrays, [epoch], [tf.int64, tf.int64, tf.int64])
        rows.set_shape([None])
        sizes.set_shape([None])
        widths.set_shape([None])
        return tf.data.Dataset.from_tensor_slices((tf.RaggedTensor.from_row_lengths(rows, sizes), widths))

    def make(rows: Any, width: Any) -> Any:
        begin, count = tf.gather(starts_t, rows), tf.gather(lengths_t, rows)
        if prep.padding == "post":
            x = tf.gather(values, tf.ragged.range(begin, begin + count)).to_tensor(default_value=pad_value)
        else:  # gather each row backwards, pad at the end, then flip: the padding lands in front
            x = tf.gather(values, tf.ragged.range(begin + count - 1, begin - 1, -1)).to_tensor(default_value=pad_value)
        extra = [[0, 0], [0, width - tf.shape(x, out_type=tf.int64)[1]]] + ([] if tokens else [[0, 0]])
        x = tf.pad(x, extra, constant_values=pad_value)  # (batch, width[, features])
        if prep.padding == "pre":
            x = tf.reverse(x, axis=[1])
        return x if y is None else (x, tf.gather(y, rows))

    epochs_ds = tf.data.Dataset.from_tensor_slices(np.array(list(epochs), dtype=np.int64))
    per_epoch = len(plan_for_epoch(epochs[0]).batches) if len(epochs) else 0  # the same in every epoch
    batches = epochs_ds.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(per_epoch * len(epochs)))
    return batches.map(make, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def predict_proba(model: Any, prep: Any, sequences: list[np.ndarray], batch_size: int) -> np.ndarray:
    """Class probabilities ``(samples, classes)`` in input order; a sigmoid output becomes two columns."""
    lengths = np.array([len(s) for s in sequences])
    plan = eval_plan(lengths, prep.boundaries, prep.maxlen, batch_size)
    out = model.predict(dataset(prep, sequences, None, lambda _: plan, range(1)), verbose=0)
    probs = np.empty_like(out)
    probs[np.concatenate(plan.batches)] = out  # back to input order
    if probs.shape[-1] == 1:
        probs = np.concatenate([1.0 - probs, probs], axis=-1)
    return probs

