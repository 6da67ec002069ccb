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
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from seqcli import batching, diagnostics, memory, multi, preprocess, recipe, steps
from seqcli import data as data_mod
from seqcli import kernels as kernels_mod
from seqcli.augment import Augmenter
from seqcli.backend import backend_before_fitting, choose_backend, compiles_each_shape, seed_everything, use_backend
from seqcli.data import SequenceData, Step
from seqcli.errors import DataError, SpecError
from seqcli.fingerprint import spec_fingerprints
from seqcli.layers import dropped_masks
from seqcli.preprocess import Preprocessor
from seqcli.sequences import Sequences
from seqcli.spec import TASK_KINDS, PreprocessingSpec, Spec, skipped_piece_notes
from seqcli.tasks import Task
from seqcli.tasks import get as get_task
from seqcli.tasks.base import Outputs, Targets

PLACEHOLDER_CLASSES = ["class_0", "class_1"]


@dataclass
class Split:
    """One split, loaded and prepared. ``inputs`` holds every model input's prepared sequences by name, the first input (the
    one ``data`` describes, which carries the targets) first: ragged ``(timesteps_i, features)``, scaled and truncated.
    ``parts`` holds every input's loaded data by name, and ``data`` the first's. ``y``: the task's encoded targets (None
    for unlabelled data). Batches are padded when they are drawn (:mod:`seqcli.batching`); no padded copy exists."""

    data: SequenceData
    inputs: dict[str, Sequences]
    y: Targets | None
    parts: dict[str, SequenceData]
    notes: list[str] = field(default_factory=list)  # what preparing new data found (sequences longer than maxlen)

    @property
    def sequences(self) -> Sequences:
        """The first input's prepared sequences."""
        return next(iter(self.inputs.values()))

    @property
    def lengths(self) -> np.ndarray:
        return self.sequences.lengths


@dataclass
class Pipeline:
    """A spec's data, fitted preprocessing and model, and the record of how they came about (see the module docstring).

    ``preps`` holds one fitted preprocessor per input by name, the first input's first; a one-input model has one.
    """

    spec: Spec
    task: Task
    preps: dict[str, Preprocessor]
    backend: str
    splits: dict[str, Split] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    backend_reason: str = ""
    fingerprints: dict[str, str] = field(default_factory=dict)
    class_weights: dict[str, float] | None = None
    model: Any = None
    features_once: bool = False  # whether training computes the kernel branch's features once (:meth:`build_model` decides it)

    @property
    def prep(self) -> Preprocessor:
        """The first input's preprocessor, which also holds the task's target state (classes, target scaling)."""
        return next(iter(self.preps.values()))

    @property
    def multi_input(self) -> bool:
        return self.spec.inputs is not None

    def preprocessing_state(self) -> dict[str, Any]:
        """What ``preprocessing.json`` holds: the preprocessor's state, or for a multi-input run ``{name: state}``."""
        return {name: p.to_dict() for name, p in self.preps.items()} if self.multi_input else self.prep.to_dict()

    def build_model(self) -> Any:
        """Seed and build the compiled Keras model on the pipeline's backend, once its memory estimate fits this machine;
        the estimate decides whether training may hold the kernel features computed once (:meth:`trainer`)."""
        from seqcli.model import build_model

        samples = len(self.splits["train"].sequences) if "train" in self.splits else None
        computed_once = sum(len(self.splits[role].lengths) for role in self._computed_once_roles())
        self.features_once = memory.check(self.spec, self.preps, samples=samples, computed_once=computed_once).held_bytes > 0
        use_backend(self.backend)
        seed_everything(self.spec.seed)
        self.model = build_model(self.spec, self.preps)
        warning = diagnostics.dropped_mask_warning(dropped_masks(self.model))
        if warning and warning not in self.warnings:
            self.warnings.append(warning)
        return self.model

    def member(self, member: int) -> Pipeline:
        """Ensemble member ``member`` (from 1, ``training.ensemble``): member 1 is this pipeline; another is this pipeline
        (the same splits and fitted preprocessing) with seed ``spec.seed + member - 1``, which draws its weights, batch
        order, dropout masks and augmentation, and a model built fresh with it."""
        if member == 1:
            return self
        spec = dataclasses.replace(self.spec, seed=self.spec.seed + member - 1)
        other = dataclasses.replace(self, spec=spec, warnings=list(self.warnings), model=None)
        other.build_model()
        return other

    # ------------------------------------------------------------------ new data (predict)

    def prepare(self, data: SequenceData) -> Split:
        """:meth:`prepare_inputs` for a one-input run."""
        return self.prepare_inputs({self.spec.input_name: data})

    def prepare_inputs(self, parts: dict[str, SequenceData]) -> Split:
        """Tokenize, check, scale and truncate new data like the training data (one loaded file per input, matched by id to
        the first input), and encode its targets when it has them; truncation warnings go to the split's notes."""
        missing = [name for name in self.preps if name not in parts]
        if missing:
            raise DataError(f"Input(s) {', '.join(map(repr, missing))} missing; this model takes {', '.join(map(repr, self.preps))}.")
        first_name = self.spec.input_name
        parts = _matched({name: parts[name] for name in self.preps}, first_name)
        parts = {name: self.preps[name].tokenize(part) for name, part in parts.items()}
        found = [diagnostics.truncation_warning(parts[name], prep, self._role("input", name)) for name, prep in self.preps.items()]
        return _split(self.task, self.preps, parts, notes=[w for w in found if w])

    def _role(self, role: str, name: str) -> str:
        return f"input {name!r}" if self.multi_input and role == "input" else role

    # ------------------------------------------------------------------ batches and outputs

    def packed(self, split: Split, *, named: bool = False) -> list[batching.Packed]:
        """``split``'s inputs packed for batches; ``named`` (always for several inputs): each under its input's name."""
        return batching.packed_inputs(self.preps, split.inputs, named=named or self.multi_input)

    def trainer(self, model: Any) -> tuple[Any, dict[str, dict[str, np.ndarray]]]:
        """What ``model.fit`` runs to train ``model``, and the extra inputs of each split it trains and validates on.

        ``model`` itself and none, unless its kernel branch's features can be computed once before training
        (:meth:`build_model` decided so, :meth:`_computed_once_roles`) and the view's trainable variables are the
        model's in the model's order (which the optimizer's state follows). Then the view of ``model`` that takes them
        as the input ``kernel_features`` (:func:`seqcli.kernels.cached_view`, compiled with ``model``'s optimizer, so
        training it trains ``model``) and ``{role: {"kernel_features": (samples, features)}}``. Call it once the branch
        is fitted."""
        layer = kernels_mod.layer_of(model)
        if layer is None or not self.features_once:
            return model, {}
        first = self.spec.input_name
        view = kernels_mod.cached_view(model, name=first)
        if view is None:
            return model, {}
        from seqcli.model import compile_model

        compile_model(view, self.spec, model.optimizer)
        pad_value = self.prep.pad_value
        roles = self._computed_once_roles()
        return view, {role: {kernels_mod.FEATURES_INPUT: kernels_mod.features(layer, self.splits[role].inputs[first], pad_value=pad_value)} for role in roles}

    def _computed_once_roles(self) -> list[str]:
        """The splits whose kernel features training may compute once (:meth:`trainer`), if they fit in memory
        (:meth:`build_model`): training and validation; none when augmentation changes the training sequences in every
        batch, or when an input of the model already has the name of the view's input for them."""
        if Augmenter(self.spec.training.augment, seed=self.spec.seed).active or kernels_mod.FEATURES_INPUT in self.preps:
            return []
        return [role for role in ("train", "validation") if role in self.splits]

    def train_batches(self, first_epoch: int, extra: dict[str, np.ndarray] | None = None) -> tuple[Any, int]:
        """Batches of epochs ``first_epoch..`` (each planned from (seed, epoch), so a resumed run sees the same ones) and
        steps per epoch; ``extra``: more inputs by name, one row per training sequence (:meth:`trainer`)."""
        spec, split, prep = self.spec, self.splits["train"], self.prep
        assert split.y is not None
        targets = self.task.model_targets(spec, prep, split.y)
        lengths, few_widths, size = split.lengths, compiles_each_shape(self.backend), spec.training.batch_size

        def plan(epoch: int) -> batching.Plan:
            return batching.train_plan(lengths, prep.boundaries, prep.maxlen, size, spec.seed, epoch, spec.training.shuffle, few_widths)

        epochs = range(first_epoch, spec.training.epochs)
        augmenter = Augmenter(spec.training.augment, seed=spec.seed)
        augment = augmenter if augmenter.active else None
        batches = batching.dataset(self.packed(split, named=bool(extra)), targets, plan, epochs, backend=self.backend, augment=augment, extra=extra)
        return batches, len(plan(first_epoch).batches)

    def eval_batches(self, split: Split, extra: dict[str, np.ndarray] | None = None) -> Any:
        """One pass over ``split`` with its targets, for validation during training; ``extra`` as for :meth:`train_batches`."""
        assert split.y is not None
        targets = self.task.model_targets(self.spec, self.prep, split.y)
        prep = self.prep
        plan = batching.eval_plan(split.lengths, prep.boundaries, prep.maxlen, self.spec.training.batch_size, compiles_each_shape(self.backend))
        return batching.dataset(self.packed(split, named=bool(extra)), targets, lambda _: plan, range(1), backend=self.backend, extra=extra)

    def outputs(self, model: Any, split: Split) -> Outputs:
        """The model's outputs on ``split`` in input order: ``(samples, units)``, or per timestep ragged ``(timesteps_i, units)``."""
        return batching.predict_outputs(model, self.packed(split), self.spec.training.batch_size, backend=self.backend, per_timestep=self.task.kind.per_timestep)

    def evaluate(self, model: Any, split: Split) -> dict[str, Any]:
        """The task's metrics of ``model`` on one split (one pass over the data)."""
        assert split.y is not None
        return self.task.evaluate(self.outputs(model, split), split.y, self.prep, spec=self.spec)


def _matched(parts: dict[str, SequenceData], first_name: str) -> dict[str, SequenceData]:
    """Every input reordered to the first input's sample ids (:func:`seqcli.multi.match`)."""
    first = parts[first_name]
    return {name: part if name == first_name else multi.match(first, part, name, first_name) for name, part in parts.items()}


def _split(task: Task, preps: dict[str, Preprocessor], parts: dict[str, SequenceData], notes: list[str] | None = None) -> Split:
    """One split prepared: each input (already tokenized) checked, scaled and truncated by its own preprocessor; the first's targets encoded."""
    inputs = {name: prep.prepare(parts[name].sequences, [f"{parts[name].source}, {w}" for w in parts[name].where]) for name, prep in preps.items()}
    first = parts[next(iter(preps))]
    y = task.encode(next(iter(preps.values())), first) if task.has_targets(first) else None
    return Split(first, inputs, y, parts, notes or [])


# ---------------------------------------------------------------------------- running it


def load_splits(spec: Spec, task: Task, *, need_labels: bool = True, train: SequenceData | None = None) -> dict[str, dict[str, SequenceData]]:
    """``{role: {input name: data}}`` for train, validation (a file, or the task's split of the training data) and test, as
    sequences (raw texts for text input); every input's rows matched by id to the first input's, which carries the targets.
    ``train``: the first input's training data, already loaded by the caller (``inspect-shapes --data``), used alone."""
    sections = spec.sections()
    first_name = spec.input_name
    if train is not None:
        return {"train": {first_name: train}}
    roles = ["train"] + [role for role in ("validation", "test") if getattr(spec.data, role) is not None]
    splits: dict[str, dict[str, SequenceData]] = {}
    for role in roles:
        loaded = {
            name: data_mod.load(getattr(options, role), options, need_labels=need_labels and name == first_name, text=pp.input == "text", targets=task.kind)
            for name, (options, pp, _) in sections.items()
        }
        splits[role] = _matched(loaded, first_name)
    train_parts = splits["train"]
    if spec.data.validation is None and spec.data.validation_split > 0 and task.has_targets(train_parts[first_name]):
        train_idx, val_idx = task.split(train_parts[first_name], spec.data.validation_split, spec.seed)
        held_out = {"train": {n: d.subset(train_idx) for n, d in train_parts.items()}, "validation": {n: d.subset(val_idx) for n, d in train_parts.items()}}
        splits = held_out | {role: parts for role, parts in splits.items() if role != "train"}
    return splits


def run(spec: Spec, *, backend: str | None = None, lenient: bool = False, train: SequenceData | None = None, build: bool = True) -> Pipeline:
    """Run the pipeline on a spec; ``backend`` overrides ``spec.backend`` (a resumed run keeps the one it started with).

    One path for one input and for several (``inputs``): each input is loaded, matched by id to the first, fitted and
    prepared by its own preprocessor; batches are planned on the first input's lengths.

    Strict (``train``): raises :class:`~seqcli.errors.SeqcliError` on bad input. ``lenient`` (``inspect-shapes``): the data
    need no labels (a placeholder output size then), and the spec's cross-field problems, an input kind that does not fit
    the data and unknown class weights become warnings. ``train``: training data loaded by the caller (``--data``).
    ``build``: also build the model. Creates no files.
    """
    task = get_task(spec.task)
    sections = spec.sections()
    first_name, named = spec.input_name, spec.inputs is not None

    def labelled(name: str, text: str) -> str:  # a message about one input of several names it
        return f"Input {name!r}: {text}" if named else text

    warnings = diagnostics.spec_warnings(spec)  # strict: load_spec has refused cross-field problems already
    early = next((e for e in (backend_before_fitting(spec.backend, pp.input, pp.bucketing) for _, pp, _ in sections.values()) if e), None)
    backend = backend or (early[0] if early else None)
    if backend is not None:
        use_backend(backend)  # before fitting: a text input's vocabulary is fitted with Keras
    loaded = load_splits(spec, task, need_labels=not lenient, train=train)
    notes: list[str] = []
    if named:
        notes.append(f"Multi-input model: inputs {', '.join(map(repr, sections))}, matched by id; the targets come from {first_name!r}. Every batch takes the same samples from each input.")
    preps: dict[str, Preprocessor] = {}
    for name, (options, pp_spec, _) in sections.items():
        part = loaded["train"][name]
        warning = diagnostics.channels_first_warning(part, options.layout)
        if warning:
            warnings.append(labelled(name, warning))
        if lenient:
            pp_spec = _lenient_input(pp_spec, part, warnings, declared=pp_spec.input)
        preps[name] = preprocess.fit(part, pp_spec)
    first = loaded["train"][first_name]
    warning = diagnostics.regression_labels_warning(first, task.kind)
    if warning:
        warnings.append(warning)
    classes = None
    if not task.has_targets(first):
        classes = PLACEHOLDER_CLASSES
        notes.append(_placeholder_note(task))
    preps[first_name] = task.fit(preps[first_name], first, classes=classes)
    loaded = {role: {name: preps[name].tokenize(part) for name, part in parts.items()} for role, parts in loaded.items()}  # text -> token codes
    if lenient:  # a split with other features than training's is an error for train: a warning, and left out
        mismatched = {
            role: [labelled(name, w) for name, part in parts.items() if (w := diagnostics.feature_mismatch_warning(part, preps[name], role, loaded["train"][name].source))]
            for role, parts in loaded.items() if role != "train"
        }
        warnings += [w for found in mismatched.values() for w in found]
        loaded = {role: parts for role, parts in loaded.items() if not mismatched.get(role)}
    splits = {role: _split(task, preps, parts) for role, parts in loaded.items()}
    lengths = {name: steps.real_lengths(loaded["train"][name], prep) for name, prep in preps.items()}
    prep = preps[first_name]
    reason = early[1] if early else ""
    if backend is None:
        validation = steps.real_lengths(loaded["validation"][first_name], prep) if "validation" in loaded else None
        backend, reason = choose_backend(spec.backend, batching.workload(prep, lengths[first_name], validation, spec))
    few_widths = compiles_each_shape(backend)
    size = spec.training.batch_size
    recorded: list[Step] = []
    first_plan = steps.bucket_plan(lengths[first_name], prep, size, few_widths=few_widths) or batching.train_plan(lengths[first_name], None, prep.maxlen, size, 0, 0, True)
    for name, p in preps.items():
        train_part, own_lengths = loaded["train"][name], lengths[name]
        planned_by = (first_name, first_plan) if name != first_name else None
        plan = steps.bucket_plan(own_lengths, p, size, few_widths=few_widths, planned_by=planned_by[1] if planned_by else None)
        found = diagnostics.preprocessing_warnings(train_part, p, own_lengths, steps.padding(own_lengths, p, plan))
        for role, parts in loaded.items():
            if role != "train":
                found += [w for w in (diagnostics.truncation_warning(parts[name], p, role), diagnostics.oov_warning(parts[name], p, role)) if w]
        warnings += [labelled(name, w) for w in found]
        own = [*train_part.steps, *steps.preprocessing_steps(train_part, p, own_lengths, batch_size=size, embedding_dim=spec.model.embedding_dim, few_widths=few_widths, planned_by=planned_by)]
        recorded += [dataclasses.replace(step, name=f"{name}: {step.name}") for step in own] if named else own
        if p.input == "tokens" and sections[name][1].input == "auto":
            codes = f"{(p.num_tokens or 0) + 1} codes, 0 padding"
            notes.append(labelled(name, f"Integer data with one value per timestep is read as token codes ({codes}). If these are measurements, set `preprocessing.input: float`."))
        if p.input == "tokens":
            notes.append(labelled(name, steps.encoding_note(p, spec.model.embedding_dim)))
    notes += skipped_piece_notes(spec.model, prep.input)
    if spec.recipe == "recommended":
        notes.append(
            f"Recipe: recommended (docs/recipe.md): {recipe.summary()}; what the spec sets wins"
            + (", and with `preprocessing.padding: pre` nothing is pooled" if spec.preprocessing.padding == "pre" else "")
            + ". `recipe: plain` keeps the field defaults instead."
        )
        if spec.data.validation is None and spec.data.validation_split == 0 and spec.training.monitor == "loss":
            notes.append(
                "No validation split: the model trains on the whole training file, keeps the epoch with the lowest training loss, and the test file judges it. "
                "Set `data.validation_split: 0.2` to hold out validation data and stop on it."
            )
    shortened = steps.frontend_note(spec.model.frontend, prep)
    if shortened:
        notes.append(labelled(first_name, shortened))
    if named:
        recorded.append(_merge_step(spec, preps))
    augmenter = Augmenter(spec.training.augment, seed=spec.seed)
    if augmenter.active:
        if all(p.input == "tokens" for p in preps.values()):
            problem = "`training.augment` transforms real-valued features, but every input is read as token codes. Remove `training.augment`, or set `preprocessing.input: float`."
            if not lenient:
                raise SpecError(problem)
            warnings.append(problem)
        recorded.append(Step("augment (training)", "(batch, timesteps, features)", augmenter.describe()))
    weights = _class_weights(spec, task, prep, splits["train"], warnings if lenient else None)
    pipeline = Pipeline(spec, task, preps, backend, splits, recorded, warnings, notes, reason, spec_fingerprints(spec), weights)
    if build and multi.buildable(spec):
        pipeline.build_model()
    elif build:
        notes.append("No model is shown: every extra input's branch needs recurrent layers whose last one returns a vector (see the warnings).")
    return pipeline


def _merge_step(spec: Spec, preps: dict[str, Preprocessor]) -> Step:
    """How a multi-input model joins its branches: their last outputs concatenated, or for a per-timestep task, the
    other branches' vectors repeated at every timestep of the first input's branch and concatenated with its outputs."""
    from seqcli.model import Branch

    widths = [(name, Branch.of(spec, name, preps[name]).units()) for name in spec.sections()]
    total = sum(w for _, w in widths)
    parts = " + ".join(f"{n} {w}" for n, w in widths)
    if TASK_KINDS[spec.task].per_timestep:
        first = widths[0][0]
        return Step("merge", f"(batch, timesteps, units={total})", f"At every timestep of {first!r}, its output and the other branches' last outputs, concatenated: {parts}; masked like {first!r}")
    return Step("merge", f"(batch, units={total})", f"Concatenate the last output of every branch: {parts}")


def _placeholder_note(task: Task) -> str:
    given, size = ("targets", "targets") if task.kind.numeric else ("labels", "classes")
    return f"The data has no {given}, so the number of {size} (the output size) is a placeholder."


def _lenient_input(pp_spec: PreprocessingSpec, train: SequenceData, warnings: list[str], *, declared: str) -> PreprocessingSpec:
    """``preprocessing`` as the data allows it, for inspection: an input kind that does not fit becomes float, with a warning."""
    try:
        kind = preprocess.resolve_input(train, pp_spec.input)
    except DataError as exc:
        warnings.append(str(exc))
        kind, pp_spec = "float", dataclasses.replace(pp_spec, input="float")
    if kind == "float" and pp_spec.encoding != "embedding":
        if declared != "float":  # else cross_field_problems said it
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


def from_state(spec: Spec, state: dict[str, Any], *, backend: str) -> Pipeline:
    """The pipeline of a trained run, from its resolved spec and ``preprocessing.json`` (no training data): for ``predict``."""
    states = state if spec.inputs is not None else {spec.input_name: state}
    preps = {name: Preprocessor.from_dict(states[name]) for name in spec.sections()}
    use_backend(backend)
    return Pipeline(spec, get_task(next(iter(preps.values())).task), preps, backend)
