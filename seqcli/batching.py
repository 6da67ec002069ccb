"""Batching: which sequences go into which batch, and how far each batch is padded.

With length bucketing, the sequences are sorted by length (ties in random order),
cut into batches, and each batch is padded only to its own longest sequence; the
batch order is shuffled. Given bucket boundaries, no batch crosses one. Without
bucketing, batches are random and padded to ``maxlen``. A training epoch's plan
depends on (seed, epoch) alone, which keeps runs reproducible and resumes exact.
Evaluation and prediction batch by length too and return results in input order.

JAX compiles one program per batch shape, so under JAX (``few_widths=True``) bucketed
batches share a few widths chosen from the data (:func:`shared_widths`): the fewest
that keep the padded steps within 3% of those at each batch's exact width, and no
more than a grid with steps of 25% needs. Batches are cut from the sorted lengths,
so their widths, and with them the shared widths, are the same in every epoch.
A single pass (final evaluation, prediction) runs each shape only a few times, so
there (:func:`one_pass_plan`) narrow batches are padded further, up to a wider
batch's width, while that costs less than compiling another shape.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from seqcli.backend import COMPILE_SECONDS, FORWARD_STEP_SECONDS, Workload, compiles_each_shape, import_keras
from seqcli.sequences import Sequences

PADDING_BUDGET, WIDTH_GROWTH = 0.03, 1.25
CANDIDATES, CANDIDATE_STEP = 1000, 1.002  # more distinct widths than this: first rounded up by at most 0.2%


def shared_widths(widths: tuple[int, ...], budget: float = PADDING_BUDGET) -> dict[int, int]:
    """Each of the batch ``widths`` -> the width it is padded to: the fewest distinct widths, chosen among ``widths``, whose
    padded steps (summed widths) exceed the exact ones' by at most ``budget``, but no more widths than a grid with steps of
    25% (``WIDTH_GROWTH``) needs to span them (the fewest padded steps with that many, then). The widest is always kept.

    A dynamic program over the sorted distinct widths, one more kept width per round (rounds times distinct widths squared;
    beyond ``CANDIDATES`` distinct widths, each is first rounded up by at most 0.2%, which bounds their number).

    >>> shared_widths((10, 11, 12, 30, 31, 100), budget=0.05)  # 198 steps instead of 194
    {10: 12, 11: 12, 12: 12, 30: 31, 31: 31, 100: 100}
    """
    values = np.array(widths, dtype=np.int64)
    rounded = values
    if len(np.unique(values)) > CANDIDATES:
        steps_up = np.ceil(np.log(values) / np.log(CANDIDATE_STEP) - 1e-9)
        rounded = np.minimum(np.maximum(np.ceil(CANDIDATE_STEP**steps_up).astype(np.int64), values), values.max())
    target = dict(_shared_widths(tuple(sorted(rounded.tolist())), budget))
    return {int(width): target[int(r)] for width, r in sorted(zip(values, rounded, strict=True))}


@functools.lru_cache(maxsize=32)
def _shared_widths(widths: tuple[int, ...], budget: float) -> tuple[tuple[int, int], ...]:
    distinct, counts = np.unique(np.array(widths, dtype=np.int64), return_counts=True)
    k = len(distinct)
    before = np.concatenate([[0], np.cumsum(counts)])  # before[i]: batches narrower than distinct[i]
    limit = (1 + budget) * int(counts @ distinct)
    most = 1 + math.ceil(math.log(distinct[-1] / distinct[0]) / math.log(WIDTH_GROWTH))
    j, i = np.arange(k)[:, None], np.arange(k)[None, :]
    padded = np.where(i <= j, distinct[:, None] * (before[1:, None] - before[None, :-1]), np.inf)  # [j, i]: distinct[i..j] padded to distinct[j]
    steps = padded[:, 0]  # steps[j]: fewest steps for distinct[..j] with distinct[j] kept, using as many kept widths as rounds so far
    choices = [np.zeros(k, np.int64)]  # per round: the first distinct index padded to the width kept at j
    while steps[-1] > limit and len(choices) < most:
        options = np.full((k, k), np.inf)
        options[:, 1:] = steps[None, :-1] + padded[:, 1:]  # distinct[..i-1] as before, distinct[i..j] padded to distinct[j]
        choices.append(options.argmin(axis=1))
        steps = options.min(axis=1)
    target: list[tuple[int, int]] = []
    end = k - 1
    for choice in reversed(choices):
        start = int(choice[end])
        target += [(int(width), int(distinct[end])) for width in distinct[start : end + 1]]
        end = start - 1
    return tuple(target)


@dataclass(frozen=True)
class Plan:
    """The batches of one pass: ``batches[i]`` are row indices, ``widths[i]`` the padded timesteps of batch i."""

    batches: list[np.ndarray]
    widths: list[int]


def train_plan(lengths: np.ndarray, boundaries: list[int] | None, maxlen: int, batch_size: int, seed: int, epoch: int, shuffle: bool, few_widths: bool = False) -> Plan:
    """One training epoch's batches, seeded by (seed, epoch).

    ``boundaries`` None: random batches padded to ``maxlen``. Otherwise, within each group of lengths up to a
    boundary: sorted by length (ties in random order) and cut, each batch padded to its longest sequence
    (with ``few_widths``, to the group's :func:`shared_widths`).
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
            cuts = [members[start : start + batch_size] for start in range(0, len(members), batch_size)]
            longest = [int(min(lengths[rows].max(), maxlen)) for rows in cuts]
            target = shared_widths(tuple(longest)) if few_widths and cuts else {width: width for width in longest}
            batches += cuts
            widths += [target[width] for width in longest]
    order = rng.permutation(len(batches)) if shuffle and boundaries is not None else np.arange(len(batches))
    return Plan([batches[i] for i in order], [widths[i] for i in order])


def eval_plan(lengths: np.ndarray, boundaries: list[int] | None, maxlen: int, batch_size: int, few_widths: bool = False) -> Plan:
    """Deterministic batches for evaluation and prediction (by length when bucketing, else input order)."""
    return train_plan(lengths, boundaries, maxlen, batch_size, seed=0, epoch=0, shuffle=False, few_widths=few_widths)


def one_pass_plan(lengths: np.ndarray, prep: Any, batch_size: int, *, few_widths: bool) -> Plan:
    """Batches for one pass over the data (final evaluation, prediction): :func:`eval_plan`'s, and with ``few_widths``
    (JAX, see :func:`seqcli.backend.compiles_each_shape`) few shapes.

    With ``few_widths``, widths are merged upward (:func:`merged_widths`) and every batch gets ``batch_size`` rows, its last
    row repeated (the repeats' outputs are dropped), so a pass compiles only a few programs.
    """
    plan = eval_plan(lengths, prep.boundaries, prep.maxlen, batch_size, few_widths=few_widths)
    if not few_widths or len(plan.batches) == 1:  # one batch: one shape anyway, and no rows to waste
        return plan
    full = [np.concatenate([rows, np.repeat(rows[-1:], batch_size - len(rows))]) for rows in plan.batches]
    return Plan(full, merged_widths(plan.widths, round(COMPILE_SECONDS / FORWARD_STEP_SECONDS)))


def merged_widths(widths: list[int], steps_per_compile: int) -> list[int]:
    """``widths`` with narrow ones raised to the next wider width kept, while padding costs fewer batch steps than a compile.

    From the widest down: a width's batches pad up to the last width kept unless that adds ``steps_per_compile`` or
    more steps in all; then the width is kept (compiled) itself.

    >>> merged_widths([8, 8, 10, 13, 100], steps_per_compile=20)
    [13, 13, 13, 13, 100]
    """
    counts = {width: widths.count(width) for width in set(widths)}
    target: dict[int, int] = {}
    kept = 0
    for width in sorted(counts, reverse=True):
        if not kept or counts[width] * (kept - width) >= steps_per_compile:
            kept = width
        target[width] = kept
    return [target[width] for width in widths]


def workload(prep: Any, train_lengths: np.ndarray, validation_lengths: np.ndarray | None, spec: Any) -> Workload | None:
    """What training ``spec`` on JAX would compile and run (for ``backend: auto``): the distinct ``(rows, width)`` batch
    shapes of training and validation (shared widths), the summed batch widths of one training epoch, and the
    recurrent units per step. None without length bucketing: every batch has one width."""
    if prep.boundaries is None:
        return None
    batch_size = spec.training.batch_size
    plan = train_plan(train_lengths, prep.boundaries, prep.maxlen, batch_size, spec.seed, 0, shuffle=True, few_widths=True)
    shapes = {(len(rows), width) for rows, width in zip(plan.batches, plan.widths, strict=True)}
    evaluated: set[tuple[int, int]] = set()
    if validation_lengths is not None:
        checks = eval_plan(validation_lengths, prep.boundaries, prep.maxlen, batch_size, few_widths=True)
        evaluated = {(len(rows), width) for rows, width in zip(checks.batches, checks.widths, strict=True)}
    units = sum(layer.units * (2 if layer.bidirectional else 1) for layer in spec.model.layers)
    return Workload(len(shapes) + len(evaluated), sum(plan.widths), units, spec.training.epochs)


def padded_share(lengths: np.ndarray, plan: Plan) -> float:
    """Fraction of all batch cells that are padding."""
    cells = sum(len(rows) * width for rows, width in zip(plan.batches, plan.widths, strict=True))
    return 1.0 - float(np.minimum(lengths, max(plan.widths)).sum()) / cells if cells else 0.0


class Packed:
    """One model input's prepared sequences, stored once as the ragged :class:`~seqcli.sequences.Sequences`, as the model
    takes them: ``(timesteps_i, features)`` float32, or ``(timesteps_i,)`` int32 token codes.

    ``name`` is the Keras input it feeds (None: the model has this one input). Batches pad it on demand
    (:meth:`batch`); the first input of a model is padded to the plan's widths, every other one to :meth:`width`.
    """

    def __init__(self, prep: Any, sequences: Sequences, *, name: str | None = None) -> None:
        tokens = self.tokens = prep.input == "tokens"
        if not len(sequences):
            sequences = Sequences(np.zeros((0, prep.n_features)), np.zeros(0, np.int64))
        values = sequences.values[:, 0].astype(np.int32) if tokens else sequences.values.astype(np.float32, copy=False)
        self.sequences = sequences.with_values(values)
        self.name = name
        self.pad_value = 0 if tokens else prep.pad_value
        self.post = prep.padding == "post"
        self.maxlen = int(prep.maxlen)
        self.boundaries: list[int] | None = prep.boundaries
        # Equal lengths: a (samples, timesteps[, features]) view of the same memory, for batches that need no padding.
        self.dense = values.reshape(len(sequences), int(sequences.lengths[0]), *values.shape[1:]) if sequences.same_lengths() else None

    @property
    def lengths(self) -> np.ndarray:
        return self.sequences.lengths

    def cells(self, rows: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
        """Where each cell of the padded ``(batch, width)`` batch reads in the values, and which cells are real (not padding)."""
        return self.sequences.cells(rows, width, post=self.post)

    def batch(self, rows: np.ndarray, width: int) -> np.ndarray:
        """Rows ``rows`` padded to ``width``: ``(batch, width[, features])``, by one vectorized gather.

        >>> class P: input, n_features, pad_value, padding, maxlen, boundaries = "float", 1, 0.0, "post", 3, None
        >>> Packed(P(), Sequences.from_arrays([np.ones((2, 1)), np.full((3, 1), 2.0)])).batch(np.array([1, 0]), 4)[..., 0]
        array([[2., 2., 2., 0.],
               [1., 1., 0., 0.]], dtype=float32)
        """
        if self.dense is not None and width == self.dense.shape[1]:
            return self.dense[rows]
        return self.sequences.padded(rows, width, post=self.post, pad_value=self.pad_value)

    def width(self, rows: np.ndarray, *, few_widths: bool) -> int:
        """The width of this input in a batch of ``rows`` planned by another input: ``maxlen`` without bucketing, else the
        batch's longest sequence, with ``few_widths`` (JAX) rounded up to a 25% grid, so that few shapes are compiled."""
        return own_width(self.lengths[rows], maxlen=self.maxlen, bucketed=self.boundaries is not None, few_widths=few_widths)


def own_width(lengths: np.ndarray, *, maxlen: int, bucketed: bool, few_widths: bool) -> int:
    """The padded width of an input whose batch was planned by another input, from its sequences' ``lengths`` in the batch
    (see :meth:`Packed.width`).

    >>> own_width(np.array([7, 2]), maxlen=90, bucketed=True, few_widths=True), own_width(np.array([7, 2]), maxlen=90, bucketed=False, few_widths=False)
    (8, 90)
    """
    if not bucketed:
        return maxlen
    longest = int(min(lengths.max(), maxlen)) if len(lengths) else 1
    if not few_widths:
        return longest
    return min(maxlen, math.ceil(WIDTH_GROWTH ** math.ceil(math.log(longest) / math.log(WIDTH_GROWTH) - 1e-9)))


def packed_inputs(preps: dict[str, Any], inputs: dict[str, Sequences], *, named: bool) -> list[Packed]:
    """Every input's :class:`Packed` sequences, the first input (which the batches are planned on) first; ``named``: a
    multi-input model, whose Keras inputs carry the inputs' names."""
    return [Packed(prep, inputs[name], name=name if named else None) for name, prep in preps.items()]


def _widths(inputs: list[Packed], rows: np.ndarray, width: int, few_widths: bool) -> list[int]:
    """Each input's width in a batch: the plan's ``width`` for the first, :meth:`Packed.width` for the others."""
    return [width, *(p.width(rows, few_widths=few_widths) for p in inputs[1:])]


def _x(inputs: list[Packed], arrays: list[Any], extra: dict[str, Any] | None = None) -> Any:
    """What the model takes as ``x``: the one array, or ``{input name: array}`` and the batch's ``extra`` inputs."""
    if inputs[0].name is None:
        return arrays[0]
    return {p.name: a for p, a in zip(inputs, arrays, strict=True)} | (extra or {})


class Augment(Protocol):
    def __call__(self, sequences: Sequences, *, epoch: int, batch: int, stream: int = 0) -> Sequences: ...


def dataset(
    inputs: list[Packed],
    targets: np.ndarray | Sequences | None,
    plan_for_epoch: Callable[[int], Plan],
    epochs: range,
    *,
    backend: str,
    augment: Augment | None = None,
    extra: dict[str, np.ndarray] | None = None,
) -> Any:
    """The batches of ``plan_for_epoch(e)`` for every epoch ``e`` in ``epochs``, for ``model.fit``/``predict`` on ``backend``.

    ``x`` is the first input's ``(batch, width[, features])`` floats or ``(batch, width)`` token codes, padded to the plan's
    width, or for several inputs ``{name: ...}``, each padded to its own width (:meth:`Packed.width`). ``targets``: one row
    per sequence, or (per-timestep tasks) ragged per-timestep targets ``(timesteps_i[, targets])``, gathered and padded
    exactly like the first input to ``(batch, width[, targets])`` (padded cells 0; the model's mask drops them).

    Each batch is gathered and padded when it is drawn (no padded copy of the data). On TensorFlow this is a prefetched
    ``tf.data`` pipeline that pads in the graph; on JAX, where each batch goes to the compiled step as a NumPy array
    anyway, a ``keras.utils.PyDataset`` that pads with one NumPy gather per input. ``augment`` (training batches only,
    :class:`seqcli.augment.Augmenter`) transforms each float input's real timesteps of batch ``b`` of epoch ``e`` before
    padding, on either backend in NumPy (a PyDataset). ``extra``: more model inputs by name, one row per sequence
    (``(samples, ...)``, e.g. :func:`seqcli.kernels.features`), whose batch rows are added to ``x`` (named inputs only).
    """
    few_widths = compiles_each_shape(backend)
    assert not extra or inputs[0].name is not None, "extra inputs join named inputs"
    if backend == "jax" or augment is not None:
        return _py_dataset(inputs, targets, plan_for_epoch, epochs, few_widths, augment, extra or {})
    import tensorflow as tf

    extra_tensors = {name: tf.constant(values) for name, values in (extra or {}).items()}

    tensors = [(tf.constant(p.sequences.values), tf.constant(p.sequences.starts), tf.constant(p.lengths)) for p in inputs]  # (total_timesteps[, features]) each
    per_timestep = isinstance(targets, Sequences)
    y = None if targets is None else tf.constant(targets.values if isinstance(targets, Sequences) else targets)  # per timestep: (total_timesteps[, targets])

    def plan_arrays(epoch: np.int64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        plan = plan_for_epoch(int(epoch))
        rows = np.concatenate(plan.batches).astype(np.int64) if plan.batches else np.zeros(0, np.int64)
        widths = [_widths(inputs, b, w, few_widths) for b, w in zip(plan.batches, plan.widths, strict=True)]
        return rows, np.array([len(b) for b in plan.batches], np.int64), np.array(widths, np.int64).reshape(len(plan.batches), len(inputs))

    def one_epoch(epoch: Any) -> Any:
        rows, sizes, widths = tf.numpy_function(plan_arrays, [epoch], [tf.int64, tf.int64, tf.int64])
        rows.set_shape([None])
        sizes.set_shape([None])
        widths.set_shape([None, len(inputs)])
        return tf.data.Dataset.from_tensor_slices((tf.RaggedTensor.from_row_lengths(rows, sizes), widths))

    def pad(packed: Packed, values: Any, starts: Any, lengths: Any, rows: Any, width: Any) -> tuple[Any, Any, Any]:  # Packed.batch in the graph
        steps = tf.range(width)[None, :]
        count = tf.gather(lengths, rows)[:, None]
        offset = steps if packed.post else steps - (width - count)
        real = (offset >= 0) & (offset < count)
        cells = tf.where(real, tf.gather(starts, rows)[:, None] + offset, 0)
        x = tf.gather(values, cells)
        return tf.where(real if values.shape.rank == 1 else real[..., None], x, tf.cast(packed.pad_value, values.dtype)), cells, real  # (batch, width[, features])

    def make(rows: Any, widths: Any) -> Any:
        padded = [pad(p, *t, rows, widths[k]) for k, (p, t) in enumerate(zip(inputs, tensors, strict=True))]
        x = _x(inputs, [x for x, _, _ in padded], {name: tf.gather(t, rows) for name, t in extra_tensors.items()})
        if y is None:
            return x
        if not per_timestep:
            return x, tf.gather(y, rows)
        _, cells, real = padded[0]
        return x, tf.where(real if y.shape.rank == 1 else real[..., None], tf.gather(y, cells), tf.zeros((), y.dtype))  # (batch, width[, targets])

    epochs_ds = tf.data.Dataset.from_tensor_slices(np.array(list(epochs), dtype=np.int64))
    per_epoch = len(plan_for_epoch(epochs[0]).batches) if len(epochs) else 0  # the same in every epoch
    batches = epochs_ds.flat_map(one_epoch).apply(tf.data.experimental.assert_cardinality(per_epoch * len(epochs)))
    return batches.map(make, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _py_dataset(
    inputs: list[Packed],
    targets: np.ndarray | Sequences | None,
    plan_for_epoch: Callable[[int], Plan],
    epochs: range,
    few_widths: bool,
    augment: Augment | None,
    extra: dict[str, np.ndarray],
) -> Any:
    """The NumPy path of :func:`dataset` (JAX, or augmented batches): batches padded by :class:`Packed`."""

    def padded(k: int, p: Packed, rows: np.ndarray, width: int, epoch: int, index: int) -> np.ndarray:
        if augment is None or p.tokens:
            return p.batch(rows, width)
        changed = augment(p.sequences.subset(rows), epoch=epoch, batch=index, stream=k)
        return changed.padded(np.arange(len(rows)), width, post=p.post, pad_value=p.pad_value)

    def make(rows: np.ndarray, width: int, epoch: int, index: int) -> Any:
        widths = _widths(inputs, rows, width, few_widths)
        x = _x(inputs, [padded(k, p, rows, w, epoch, index) for k, (p, w) in enumerate(zip(inputs, widths, strict=True))], {name: v[rows] for name, v in extra.items()})
        if isinstance(targets, Sequences):
            cells, real = inputs[0].cells(rows, width)
            values = targets.values
            return x, np.where(real if values.ndim == 1 else real[..., None], values[cells], 0).astype(values.dtype)  # (batch, width[, targets])
        return x if targets is None else (x, targets[rows])

    return planned(plan_for_epoch, epochs, make)


def planned(plan_for_epoch: Callable[[int], Plan], epochs: range, make: Callable[[np.ndarray, int, int, int], Any]) -> Any:
    """A ``keras.utils.PyDataset`` whose batch ``i`` is ``make(rows_i, width_i, epoch, i)`` of the current epoch's plan.

    The fit loop calls its ``start_epoch(e)`` as each epoch begins. Keras' own ``on_epoch_begin``/``on_epoch_end``
    hooks cannot count epochs: Keras also calls them around the batch it reads for its shapes and when ``fit`` starts.
    """
    keras = import_keras()

    class Batches(keras.utils.PyDataset):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        def __init__(self) -> None:
            super().__init__()
            self.start_epoch(epochs[0] if len(epochs) else 0)

        def __len__(self) -> int:
            return len(self.plan.batches)

        def __getitem__(self, i: int) -> Any:
            return make(self.plan.batches[i], self.plan.widths[i], self.epoch, i)

        def start_epoch(self, epoch: int) -> None:
            self.epoch, self.plan = epoch, plan_for_epoch(epoch)

    return Batches()


def predict_outputs(model: Any, inputs: list[Packed], batch_size: int, *, backend: str, per_timestep: bool) -> np.ndarray | Sequences:
    """The model's outputs in input order: ``(samples, units)``, or with ``per_timestep`` ragged ``(timesteps_i, units)``
    (the first input's real timesteps only)."""
    first = inputs[0]
    few_widths = compiles_each_shape(backend)
    plan = one_pass_plan(first.lengths, first, batch_size, few_widths=few_widths)

    def x(rows: np.ndarray, width: int) -> Any:
        return _x(inputs, [p.batch(rows, w) for p, w in zip(inputs, _widths(inputs, rows, width, few_widths), strict=True)])

    if per_timestep:
        values: np.ndarray | None = None
        for rows, width in zip(plan.batches, plan.widths, strict=True):
            out = np.asarray(model.predict_on_batch(x(rows, width)))  # (batch, width, units)
            cells, real = first.cells(rows, width)
            if values is None:
                values = np.zeros((len(first.sequences.values), out.shape[-1]), out.dtype)
            values[cells[real]] = out[real]  # each real timestep's output at its place in the ragged values
        return first.sequences.with_values(values if values is not None else np.zeros((0, 0)))
    if len(plan.batches) == 1:  # e.g. one sample: no input pipeline to build and trace
        out = np.asarray(model.predict_on_batch(x(plan.batches[0], plan.widths[0])))
    else:
        out = model.predict(dataset(inputs, None, lambda _: plan, range(1), backend=backend), verbose=0)
    outputs = np.empty((len(first.lengths), out.shape[-1]), out.dtype)
    outputs[np.concatenate(plan.batches)] = out  # back to input order (a repeated row is written again, with its own output)
    return outputs
