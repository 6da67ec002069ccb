"""Multi-input models: several named inputs, each with its own data, preprocessing and recurrent branch.

The input that ``data`` describes (named ``input_name``) carries the labels; every other input
(``inputs: {name: ...}``) is matched to it sample by sample by id (npz/CSV/JSONL ids, else the
index), so all inputs share one row order and the same splits. One :class:`Preprocessor` is fitted
per input. Batches take the same rows from every input, each padded to its own ``maxlen``:
Keras receives ``x`` as ``{name: (batch, maxlen_name[, features_name])}``. No length bucketing.
No TensorFlow here at import.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np

from seqcli import batching, preprocess
from seqcli import data as data_mod
from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.preprocess import Preprocessor
from seqcli.spec import DataSpec, PreprocessingSpec, RecurrentLayer, Spec
from seqcli.tasks import Task


def sections(spec: Spec) -> dict[str, tuple[DataSpec, PreprocessingSpec, list[RecurrentLayer]]]:
    """Every input by name, the labelled one (``input_name``) first: its data options, preprocessing and recurrent layers."""
    assert spec.inputs is not None
    first = {spec.input_name: (spec.data, spec.preprocessing, spec.model.layers)}
    return first | {name: (i.data, i.preprocessing, i.layers) for name, i in spec.inputs.items()}


def match(first: SequenceData, other: SequenceData, name: str, first_name: str) -> SequenceData:
    """``other`` reordered to ``first``'s sample ids; an error naming the ids one input has and the other lacks."""
    if other.ids == first.ids:
        return other
    position = {sample_id: i for i, sample_id in enumerate(other.ids)}
    missing = [i for i in first.ids if i not in position]
    extra = sorted(set(other.ids) - set(first.ids))
    if missing or extra or len(other.ids) != len(first.ids):
        parts = []
        if missing:
            parts.append(f"{len(missing)} id(s) of {first.source} are missing from it ({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''})")
        if extra:
            parts.append(f"it has {len(extra)} id(s) that {first.source} lacks ({', '.join(map(repr, extra[:5]))}{', ...' if len(extra) > 5 else ''})")
        if not parts:
            parts.append(f"it has {len(other.ids)} samples with repeated ids, {first.source} {len(first.ids)}")
        raise DataError(
            f"Input {name!r} ({other.source}) does not match input {first_name!r} sample for sample: {'; '.join(parts)}. "
            "Every input needs one sequence per sample, with the same ids (files without ids are matched by position, so they need the same number of samples)."
        )
    return other.subset(np.array([position[i] for i in first.ids]))


def load_splits(spec: Spec, task: Task, *, need_labels: bool = True) -> dict[str, dict[str, SequenceData]]:
    """``{role: {input name: data}}`` for train, validation (a file or the task's split of the labelled input) and test; rows matched by id."""
    by_name = sections(spec)
    first_name = spec.input_name
    roles = ["train"] + [role for role in ("validation", "test") if getattr(spec.data, role) is not None]
    splits: dict[str, dict[str, SequenceData]] = {}
    for role in roles:
        loaded = {
            name: data_mod.load(getattr(options, role), options, need_labels=need_labels and name == first_name, text=pp.input == "text", targets=task.kind)
            for name, (options, pp, _) in by_name.items()
        }
        first = loaded[first_name]
        splits[role] = {name: part if name == first_name else match(first, part, name, first_name) for name, part in loaded.items()}
    if spec.data.validation is None and spec.data.validation_split > 0 and task.has_targets(splits["train"][first_name]):
        train_idx, val_idx = task.split(splits["train"][first_name], spec.data.validation_split, spec.seed)
        train = splits["train"]
        splits = {"train": {n: d.subset(train_idx) for n, d in train.items()}, "validation": {n: d.subset(val_idx) for n, d in train.items()}} | {r: s for r, s in splits.items() if r != "train"}
    return splits


def fit(spec: Spec, train: dict[str, SequenceData]) -> dict[str, Preprocessor]:
    """One preprocessor per input, fitted on that input's training data (no bucketing); the task fits the targets on the labelled input's."""
    return {name: preprocess.fit(train[name], dataclasses.replace(pp, bucketing=False)) for name, (_, pp, _) in sections(spec).items()}


def buildable(spec: Spec) -> bool:
    """Whether every branch has recurrent layers whose last one returns a vector (else the spec's warnings say why not)."""
    return all(layers and not layers[-1].return_sequences and all(x.return_sequences is not False for x in layers[:-1]) for _, _, layers in sections(spec).values())


def prepare_inputs(preps: dict[str, Preprocessor], parts: dict[str, SequenceData]) -> dict[str, list[np.ndarray]]:
    """Each input's sequences (texts: already tokenized) checked, scaled and truncated by its own preprocessor: ``(timesteps_i, features)`` each."""
    missing = [name for name in preps if name not in parts]
    if missing:
        raise DataError(f"Input(s) {', '.join(map(repr, missing))} missing; this model takes {', '.join(map(repr, preps))}.")
    return {name: prep.prepare(parts[name].sequences, [f"{parts[name].source}, {w}" for w in parts[name].where]) for name, prep in preps.items()}


def dataset(preps: dict[str, Preprocessor], inputs: dict[str, list[np.ndarray]], targets: np.ndarray | None, plan_for_epoch: Callable[[int], batching.Plan], epochs: range) -> Any:
    """A ``keras.utils.PyDataset`` (either backend) over the plans of ``epochs``: ``x`` is ``{name: (batch, maxlen_name[, features])}``.

    The same rows come from every input; each is padded to its own ``maxlen`` by :meth:`batching.Packed.batch`.
    The fit loop calls ``start_epoch(e)`` as each epoch begins (see :func:`batching.planned`).
    """
    packed = {name: batching.Packed(prep, inputs[name]) for name, prep in preps.items()}

    def make(rows: np.ndarray, _width: int) -> Any:
        x = {name: p.batch(rows, preps[name].maxlen) for name, p in packed.items()}
        return x if targets is None else (x, targets[rows])

    return batching.planned(plan_for_epoch, epochs, make)


def plan(samples: int, batch_size: int, seed: int = 0, epoch: int = 0, shuffle: bool = False) -> batching.Plan:
    """Batches of rows (random with ``shuffle``, seeded by (seed, epoch), else in order); widths are per input, so none here."""
    return batching.train_plan(np.zeros(samples, np.int64), None, 0, batch_size, seed, epoch, shuffle)


def predict_outputs(model: Any, preps: dict[str, Preprocessor], inputs: dict[str, list[np.ndarray]], batch_size: int) -> np.ndarray:
    """The model's outputs ``(samples, units)`` in input order."""
    samples = len(next(iter(inputs.values())))
    order = plan(samples, batch_size)
    return np.asarray(model.predict(dataset(preps, inputs, None, lambda _: order, range(1)), verbose=0))
