"""The pipeline every command runs: load the splits -> fit the preprocessing on the training split -> prepare each
split -> plan batches -> build the model.

:func:`run` runs it on a spec: ``train`` (and resume) with every check strict, ``inspect-shapes`` with ``lenient=True``,
which turns what training would refuse into warnings and still shows what it can. :func:`from_state` rebuilds it from a
run directory's saved spec and preprocessing for ``predict``, which then prepares new data with :meth:`Pipeline.prepare`.
Whatever the pipeline did is recorded on it (the steps with their shapes, the warnings, the notes, the backend and
why), so the commands render what happened instead of re-orchestrating it. No files are written here.

The task (:mod:`seqcli.tasks`) is a strategy: it reads, fits and encodes the targets, makes the head, and evaluates.
The backend is a value on the pipeline, passed to what needs it.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqcli import batching, diagnostics, multi, preprocess, steps
from seqcli import data as data_mod
from seqcli.backend import backend_before_fitting, choose_backend, compiles_each_shape, seed_everything, use_backend
from seqcli.data import SequenceData, Step
from seqcli.errors import DataError, SpecError
from seqcli.fingerprint import spec_fingerprints
from seqcli.preprocess import Preprocessor
from seqcli.spec import Spec
from seqcli.tasks import Task
from seqcli.tasks import get as get_task
from seqcli.tasks.base import Outputs, Targets

PLACEHOLDER_CLASSES = ["class_0", "class_1"]


@dataclass
class Split:
    """One split, loaded and prepared: ``sequences[i]`` scaled and truncated ``(timesteps_i, features)``; ``y`` the task's
    encoded targets (None for unlabelled data). Batches are padded when they are drawn (:mod:`seqcli.batching`); no padded
    copy of the whole split exists. Multi-input: ``inputs`` holds every input's prepared sequences by name."""

    data: SequenceData
    sequences: list[np.ndarray]
    y: Targets | None
    inputs: dict[str, list[np.ndarray]] | None = None
    notes: list[str] = field(default_factory=list)  # what preparing new data found (sequences longer than maxlen)
    parts: dict[str, SequenceData] | None = None  # multi-input: every input's loaded data by name

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.sequences])


@dataclass
class Pipeline:
    """A spec's data, fitted preprocessing and model, and the record of how they came about (see the module docstring)."""

    spec: Spec
    task: Task
    prep: Preprocessor
    backend: str
    splits: dict[str, Split] = field(default_factory=dict)
    preps: dict[str, Preprocessor] | None = None  # multi-input: one preprocessor per input by name; ``prep`` is the labelled input's
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backend_reason: str = ""
    fingerprints: dict[str, str] = field(default_factory=dict)
    class_weights: dict[str, float] | None = None
    model: Any = None

    def preprocessing_state(self) -> dict[str, Any]:
        """What ``preprocessing.json`` holds: the preprocessor's state, or for a multi-input run ``{name: state}``."""
        return {name: p.to_dict() for name, p in self.preps.items()} if self.preps else self.prep.to_dict()

    def build_model(self) -> Any:
        """Seed and build the compiled Keras model on the pipeline's backend."""
        from seqcli.model import build_model

        use_backend(self.backend)
        seed_everything(self.spec.seed)
        self.model = build_model(self.spec, self.prep, self.preps)
        return self.model

    # ------------------------------------------------------------------ new data (predict)

    def prepare(self, data: SequenceData, role: str = "input") -> Split:
        """Tokenize, check, scale and truncate one input's loaded data like the training data, and encode its targets when it has
        them; a truncation warning goes to the split's notes."""
        data = self.prep.tokenize(data)
        sequences = self.prep.prepare(data.sequences, [f"{data.source}, {w}" for w in data.where])
        notes = [w for w in [diagnostics.truncation_warning(data, self.prep, role)] if w]
        return Split(data, sequences, self.task.encode(self.prep, data) if self.task.has_targets(data) else None, notes=notes)

    def prepare_inputs(self, parts: dict[str, SequenceData]) -> Split:
        """:meth:`prepare` for a multi-input run: one loaded file per input, matched by id to the labelled input."""
        assert self.preps is not None
        first_name = self.spec.input_name
        first = parts[first_name]
        parts = {name: self.preps[name].tokenize(part if name == first_name else multi.match(first, part, name, first_name)) for name, part in parts.items()}
        inputs = multi.prepare_inputs(self.preps, parts)
        found = [diagnostics.truncation_warning(parts[name], prep, f"input {name!r}") for name, prep in self.preps.items()]
        y = self.task.encode(self.prep, first) if self.task.has_targets(first) else None
        return Split(first, inputs[first_name], y, inputs, [w for w in found if w], parts)

    # ------------------------------------------------------------------ batches and outputs

    def train_batches(self, first_epoch: int) -> tuple[Any, int]:
        """Batches of epochs ``first_epoch..`` (each planned from (seed, epoch), so a resumed run sees the same ones) and steps per epoch."""
        spec, split = self.spec, self.splits["train"]
        assert split.y is not None
        targets = self.task.model_targets(spec, self.prep, split.y)
        epochs = range(first_epoch, spec.training.epochs)
        size = spec.training.batch_size
        if self.preps is not None and split.inputs is not None:
            assert isinstance(targets, np.ndarray)
            rows = functools.partial(multi.plan, len(split.sequences), size, spec.seed, shuffle=spec.training.shuffle)
            return multi.dataset(self.preps, split.inputs, targets, lambda epoch: rows(epoch=epoch), epochs), len(rows(epoch=first_epoch).batches)
        lengths, few_widths = split.lengths, compiles_each_shape(self.backend)

        def plan(epoch: int) -> batching.Plan:
            return batching.train_plan(lengths, self.prep.boundaries, self.prep.maxlen, size, spec.seed, epoch, spec.training.shuffle, few_widths)

        return batching.dataset(self.prep, split.sequences, targets, plan, epochs, backend=self.backend), len(plan(first_epoch).batches)

    def eval_batches(self, split: Split) -> Any:
        """One pass over ``split`` with its targets, for validation during training."""
        assert split.y is not None
        targets = self.task.model_targets(self.spec, self.prep, split.y)
        size = self.spec.training.batch_size
        if self.preps is not None and split.inputs is not None:
            assert isinstance(targets, np.ndarray)
            rows = multi.plan(len(split.sequences), size)
            return multi.dataset(self.preps, split.inputs, targets, lambda _: rows, range(1))
        plan = batching.eval_plan(split.lengths, self.prep.boundaries, self.prep.maxlen, size, compiles_each_shape(self.backend))
        return batching.dataset(self.prep, split.sequences, targets, lambda _: plan, range(1), backend=self.backend)

    def outputs(self, model: Any, split: Split) -> Outputs:
        """The model's outputs on ``split`` in input order: ``(samples, units)``, or per timestep one ``(timesteps_i, units)`` array per sequence."""
        size = self.spec.training.batch_size
        if self.preps is not None and split.inputs is not None:
            return multi.predict_outputs(model, self.preps, split.inputs, size)
        return batching.predict_outputs(model, self.prep, split.sequences, size, backend=self.backend, per_timestep=self.task.kind.per_timestep)

    def evaluate(self, model: Any, split: Split) -> dict[str, Any]:
        """The task's metrics of ``model`` on one split (one pass over the data)."""
        assert split.y is not None
        return self.task.evaluate(self.outputs(model, split), split.y, self.prep, spec=self.spec)


# ---------------------------------------------------------------------------- running it


def load_splits(spec: Spec, task: Task, *, need_labels: bool = True, train: SequenceData | None = None) -> dict[str, SequenceData]:
    """Load train, validation (a file, or the task's split of the training data) and test data as sequences (raw texts for
    text input). ``train``: already loaded training data (``inspect-shapes --data``), used instead of ``data.train`` alone."""
    text = spec.preprocessing.input == "text"

    def load(data_file: Any) -> SequenceData:
        return data_mod.load(data_file, spec.data, need_labels=need_labels, text=text, targets=task.kind)

    if train is not None:
        return {"train": train}
    splits = {"train": load(spec.data.train)}
    if spec.data.validation is not None:
        splits["validation"] = load(spec.data.validation)
    elif spec.data.validation_split > 0 and task.has_targets(splits["train"]):
        train_idx, val_idx = task.split(splits["train"], spec.data.validation_split, spec.seed)
        splits = {"train": splits["train"].subset(train_idx), "validation": splits["train"].subset(val_idx)}
    if spec.data.test is not None:
        splits["test"] = load(spec.data.test)
    return splits


def run(spec: Spec, *, backend: str | None = None, lenient: bool = False, train: SequenceData | None = None, build: bool = True) -> Pipeline:
    """Run the pipeline on a spec; ``backend`` overrides ``spec.backend`` (a resumed run keeps the one it started with).

    Strict (``train``): raises :class:`~seqcli.errors.SeqcliError` on bad input. ``lenient`` (``inspect-shapes``): the data
    need no labels (a placeholder output size then), and the spec's cross-field problems, an input kind that does not fit
    the data and unknown class weights become warnings. ``train``: training data loaded by the caller (``--data``).
    ``build``: also build the model. Creates no files.
    """
    task = get_task(spec.task)
    if spec.inputs is not None:
        return _run_multi(spec, task, backend=backend, lenient=lenient, build=build)
    warnings = diagnostics.spec_warnings(spec)  # strict: load_spec has refused cross-field problems already
    pp_spec = spec.preprocessing
    early = backend_before_fitting(spec.backend, pp_spec.input, pp_spec.bucketing)
    backend = backend or (early[0] if early else None)
    if backend is not None:
        use_backend(backend)
    loaded = load_splits(spec, task, need_labels=not lenient, train=train)
    first = loaded["train"]
    found = [diagnostics.channels_first_warning(first, spec.data.layout), diagnostics.regression_labels_warning(first, task.kind)]
    warnings += [w for w in found if w]
    notes: list[str] = []
    if lenient:
        pp_spec = _lenient_input(spec, first, warnings)
    prep = preprocess.fit(first, pp_spec)
    classes = None
    if not task.has_targets(first):
        classes = PLACEHOLDER_CLASSES
        notes.append(_placeholder_note(task))
    prep = task.fit(prep, first, classes=classes)
    loaded = {role: prep.tokenize(part) for role, part in loaded.items()}  # text -> token codes; numeric data as it is
    if lenient:  # a split with other features than training's is an error for train: a warning, and left out
        mismatched = {role: w for role, part in loaded.items() if role != "train" and (w := diagnostics.feature_mismatch_warning(part, prep, role, first.source))}
        warnings += mismatched.values()
        loaded = {role: part for role, part in loaded.items() if role not in mismatched}
    splits = {}
    for role, part in loaded.items():
        sequences = prep.prepare(part.sequences, [f"{part.source}, {w}" for w in part.where])
        splits[role] = Split(part, sequences, task.encode(prep, part) if task.has_targets(part) else None)
    lengths = steps.real_lengths(loaded["train"], prep)
    reason = early[1] if early else ""
    if backend is None:
        validation = steps.real_lengths(loaded["validation"], prep) if "validation" in loaded else None
        backend, reason = choose_backend(spec.backend, batching.workload(prep, lengths, validation, spec))
    few_widths = compiles_each_shape(backend)
    size = spec.training.batch_size
    plan = steps.bucket_plan(lengths, prep, size, few_widths=few_widths)
    warnings += diagnostics.preprocessing_warnings(loaded["train"], prep, lengths, steps.padding(lengths, prep, plan))
    for role, part in loaded.items():
        found = [diagnostics.truncation_warning(part, prep, role) if role != "train" else None, diagnostics.oov_warning(part, prep, role) if role != "train" else None]
        warnings += [w for w in found if w]
    recorded = [*loaded["train"].steps, *steps.preprocessing_steps(loaded["train"], prep, lengths, batch_size=size, embedding_dim=spec.model.embedding_dim, few_widths=few_widths)]
    if prep.input == "tokens" and spec.preprocessing.input == "auto":
        notes.append(f"Integer data with one value per timestep is read as token codes ({(prep.num_tokens or 0) + 1} codes, 0 padding). If these are measurements, set `preprocessing.input: float`.")
    if prep.input == "tokens":
        notes.append(steps.encoding_note(prep, spec.model.embedding_dim))
    weights = _class_weights(spec, task, prep, splits["train"], warnings if lenient else None)
    pipeline = Pipeline(spec, task, prep, backend, splits, None, recorded, warnings, notes, reason, spec_fingerprints(spec), weights)
    if build:
        pipeline.build_model()
    return pipeline


def _placeholder_note(task: Task) -> str:
    given, size = ("targets", "targets") if task.kind.numeric else ("labels", "classes")
    return f"The data has no {given}, so the number of {size} (the output size) is a placeholder."


def _lenient_input(spec: Spec, train: SequenceData, warnings: list[str]) -> Any:
    """``preprocessing`` as the data allows it, for inspection: an input kind that does not fit becomes float, with a warning."""
    pp_spec = spec.preprocessing
    try:
        kind = preprocess.resolve_input(train, pp_spec.input)
    except DataError as exc:
        warnings.append(str(exc))
        kind, pp_spec = "float", dataclasses.replace(pp_spec, input="float")
    if kind == "float" and pp_spec.encoding != "embedding":
        if spec.preprocessing.input != "float":  # else cross_field_problems said it
            warnings.append(f"`preprocessing.encoding: {pp_spec.encoding}` applies to integer token codes and text, but {train.source} is read as float features; it is ignored here.")
        pp_spec = dataclasses.replace(pp_spec, encoding="embedding")
    return pp_spec


def _class_weights(spec: Spec, task: Task, prep: Preprocessor, train: Split, warnings: list[str] | None) -> dict[str, float] | None:
    """The task's class weights on the training split; with ``warnings`` (lenient), a class the data lacks is a warning instead of an error."""
    if train.y is None:
        return None
    try:
        return task.class_weights(spec, prep, train.y)
    except SpecError as exc:
        if warnings is None:
            raise
        warnings.append(str(exc))
        return None


def _run_multi(spec: Spec, task: Task, *, backend: str | None, lenient: bool, build: bool) -> Pipeline:
    """:func:`run` for a multi-input spec: inputs matched by id, one preprocessor per input, a branch per input."""
    warnings = diagnostics.spec_warnings(spec)
    backend, reason = (backend, "") if backend else choose_backend(spec.backend, None)  # no bucketing: one width per input
    use_backend(backend)  # before fitting: a text input's vocabulary is fitted with Keras
    loaded = multi.load_splits(spec, task, need_labels=not lenient)
    first_name = spec.input_name
    labels_warning = diagnostics.regression_labels_warning(loaded["train"][first_name], task.kind)
    warnings += [labels_warning] if labels_warning else []
    preps = multi.fit(spec, loaded["train"])
    loaded = {role: {name: preps[name].tokenize(part) for name, part in parts.items()} for role, parts in loaded.items()}
    notes = [f"Multi-input model: inputs {', '.join(map(repr, preps))}, matched by id; the labels come from {first_name!r}. Every batch takes the same samples from each input."]
    classes = None
    if not task.has_targets(loaded["train"][first_name]):
        classes = PLACEHOLDER_CLASSES
        notes.append(_placeholder_note(task))
    preps[first_name] = task.fit(preps[first_name], loaded["train"][first_name], classes=classes)
    prep = preps[first_name]
    splits = {}
    for role, parts in loaded.items():
        inputs = multi.prepare_inputs(preps, parts)
        part = parts[first_name]
        splits[role] = Split(part, inputs[first_name], task.encode(prep, part) if task.has_targets(part) else None, inputs, parts=parts)
    recorded: list[Step] = []
    size = spec.training.batch_size
    for name, p in preps.items():
        train = loaded["train"][name]
        lengths = steps.real_lengths(train, p)
        own = [*train.steps, *steps.preprocessing_steps(train, p, lengths, batch_size=size, embedding_dim=spec.model.embedding_dim, few_widths=False)]
        recorded += [dataclasses.replace(step, name=f"{name}: {step.name}") for step in own]
        warnings += [f"Input {name!r}: {w}" for w in diagnostics.preprocessing_warnings(train, p, lengths, steps.padding(lengths, p, None))]
        for role, parts in loaded.items():
            truncated = diagnostics.truncation_warning(parts[name], p, role) if role != "train" else None
            if truncated:
                warnings.append(f"Input {name!r}: {truncated}")
    widths = [(name, layers[-1].units * (2 if layers[-1].bidirectional else 1) if layers else 0) for name, (_, _, layers) in multi.sections(spec).items()]
    recorded.append(Step("merge", f"(batch, units={sum(w for _, w in widths)})", "Concatenate the last output of every branch: " + " + ".join(f"{n} {w}" for n, w in widths)))
    weights = _class_weights(spec, task, prep, splits["train"], warnings if lenient else None)
    pipeline = Pipeline(spec, task, prep, backend, splits, preps, recorded, warnings, notes, reason, spec_fingerprints(spec), weights)
    if build and multi.buildable(spec):
        pipeline.build_model()
    elif build:
        notes.append("No model is shown: every branch needs recurrent layers whose last one returns a vector (see the warnings).")
    return pipeline


def from_state(spec: Spec, state: dict[str, Any], *, backend: str) -> Pipeline:
    """The pipeline of a trained run, from its resolved spec and ``preprocessing.json`` (no training data): for ``predict``."""
    preps = {name: Preprocessor.from_dict(s) for name, s in state.items()} if spec.inputs is not None else None
    prep = preps[spec.input_name] if preps is not None else Preprocessor.from_dict(state)
    use_backend(backend)
    return Pipeline(spec, get_task(prep.task), prep, backend, preps=preps)
