"""The shape-and-mask trace behind ``inspect-shapes`` (pure data, no printing).

A :class:`Trace` lists the loaded arrays, every transformation with the shape
after it, every model layer with its output shape in named axes and whether it
carries a mask, and warnings for the classic mistakes, each with its fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqcli import batching, preprocess
from seqcli import data as data_mod
from seqcli import text as text_mod
from seqcli.backend import backend_before_fitting, choose_backend, compiles_each_shape, use_backend
from seqcli.data import SequenceData, Step
from seqcli.errors import DataError, SpecError
from seqcli.fingerprint import fingerprint
from seqcli.preprocess import Preprocessor
from seqcli.spec import DataFile, Spec, cross_field_problems, load_spec, spec_from_dict

TRUNCATION_WARN_SHARE = 0.05
PADDING_WARN_SHARE = 0.5
OOV_WARN_SHARE = 0.1


@dataclass
class ArraySummary:
    """One loaded file: what it holds, before any preprocessing."""

    role: str
    source: str
    format: str
    raw_shape: str
    dtype: str
    sequences: int
    features: int
    length_min: int
    length_median: float
    length_p95: float
    length_max: int
    class_counts: dict[str, int] | None
    fingerprint: str


@dataclass
class LayerRow:
    """One model layer: output shape in named axes, parameter count, mask."""

    name: str
    kind: str
    output_shape: str
    params: int
    mask: bool


@dataclass
class Trace:
    arrays: list[ArraySummary]
    steps: list[Step]
    layers: list[LayerRow]
    warnings: list[str]
    notes: list[str] = field(default_factory=list)
    input_shape: str = ""
    suggested_spec: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def summarize(data: SequenceData, role: str) -> ArraySummary:
    """Shape, dtype, length distribution and class counts of one loaded file."""
    lengths = data.lengths
    counts = None
    labels = np.concatenate(data.tags) if data.tags else data.labels  # tagging: counts over all timesteps
    if labels is not None:
        names, numbers = np.unique(preprocess.label_names(labels), return_counts=True)
        order = sorted(range(len(names)), key=lambda i: preprocess._numeric_first(str(names[i])))
        counts = {str(names[i]): int(numbers[i]) for i in order}
    dtype = "text -> int64 codes" if data.texts is not None else str(data.sequences[0].dtype)
    return ArraySummary(
        role, data.source, data.format, data.raw_shape, dtype, len(data.sequences), data.n_features,
        int(lengths.min()), float(np.median(lengths)), float(np.percentile(lengths, 95)), int(lengths.max()), counts,
        fingerprint(data.source) if Path(data.source).is_file() else "",
    )


def real_lengths(data: SequenceData, prep: Preprocessor) -> np.ndarray:
    """Each sequence's timesteps as training sees them: token codes without the data's own padding code."""
    if prep.input == "tokens" and prep.vocabulary is None:
        return np.asarray(preprocess.token_codes(data.sequences, prep.pad_code)[1], dtype=int)
    return np.array([len(s) for s in data.sequences])


def preprocessing_steps(
    data: SequenceData, prep: Preprocessor, batch_size: int = 32, embedding_dim: int = 32, few_widths: bool = False, lengths: np.ndarray | None = None
) -> tuple[list[Step], list[str]]:
    """The steps after loading (scale, pad/truncate, mask) with shapes, and warnings about them; ``few_widths``: widths as under JAX.

    ``lengths``: :func:`real_lengths` of ``data``, when the caller has them already.
    """
    warnings: list[str] = []
    n = len(data.sequences)
    steps: list[Step] = []
    if prep.input == "tokens" and prep.vocabulary is None:
        assert prep.num_tokens is not None
        stripped = "no padding in the data" if prep.pad_code is None else f"padding code {prep.pad_code} stripped from both ends"
        shifted = "" if prep.pad_code == 0 else "; codes shifted by 1 to keep 0 for padding"
        steps.append(Step("token codes", f"{n} x (timesteps,)", f"{stripped}{shifted}; codes 1..{prep.num_tokens - 1}, codes unseen in training -> {prep.num_tokens}"))
    elif prep.mean is not None:
        steps.append(Step("standardize", f"{n} x (timesteps, {prep.n_features})", "per-feature mean/std fitted on the real timesteps of the training data"))
    lengths = real_lengths(data, prep) if lengths is None else lengths
    truncated = int((lengths > prep.maxlen).sum())
    share = 1.0 - int(np.minimum(lengths, prep.maxlen).sum()) / (n * prep.maxlen)
    shape = f"(samples={n}, timesteps={prep.maxlen})" if prep.input == "tokens" else f"(samples={n}, timesteps={prep.maxlen}, features={prep.n_features})"
    pad_with = 0 if prep.input == "tokens" else prep.pad_value
    if prep.boundaries:
        plan = batching.train_plan(np.minimum(lengths, prep.maxlen), prep.boundaries, prep.maxlen, batch_size, 0, 0, shuffle=True, few_widths=few_widths)
        bucketed = batching.padded_share(lengths, plan)
        steps.append(Step("truncate", f"{n} x (timesteps<={prep.maxlen}, {prep.n_features})", f"{truncated} of {n} sequences longer than maxlen={prep.maxlen} cut ({prep.truncating})"))
        width = "shared width >= longest in batch" if few_widths else "longest in batch"
        batch_shape = f"(batch, timesteps={width})" if prep.input == "tokens" else f"(batch, timesteps={width}, features={prep.n_features})"
        groups = f" within the groups up to {', '.join(map(str, prep.boundaries))}" if len(prep.boundaries) > 1 else ""
        to = f"its longest sequence, rounded up to one of {len(set(plan.widths))} shared widths (one JAX compilation each)" if few_widths else "its longest sequence"
        detail = (
            f"batches of {batch_size} sorted by length{groups}, each {prep.padding}-padded with {pad_with} to {to}: "
            f"{bucketed:.1%} of timesteps are padding (padding all to maxlen: {share:.1%})"
        )
        steps.append(Step("bucket + pad", batch_shape, detail))
        shape, share = batch_shape, bucketed
    else:
        detail = f"{prep.padding}-padding with {pad_with}: {share:.1%} of timesteps are padding; {truncated} of {n} sequences truncated ({prep.truncating})"
        steps.append(Step("pad/truncate", shape, detail))
    if prep.input == "tokens":
        steps.append(encoding_step(prep, shape, embedding_dim))
    else:
        steps.append(Step("mask", shape, f"Masking(mask_value={prep.pad_value}): timesteps whose every feature is {prep.pad_value} are skipped by the recurrent layers"))
    if n and truncated / n >= TRUNCATION_WARN_SHARE:
        warnings.append(
            f"maxlen={prep.maxlen} truncates {truncated} of {n} sequences ({truncated / n:.0%}; longest {int(lengths.max())}); "
            f"their {'end' if prep.truncating == 'post' else 'beginning'} is cut off. Raise `preprocessing.maxlen` (null = longest, or 'p99')."
        )
    if share >= PADDING_WARN_SHARE:
        warnings.append(
            f"{share:.0%} of all timesteps are padding (median length {np.median(lengths):.0f}, maxlen {prep.maxlen}): most compute goes to padding. "
            "Consider `preprocessing.maxlen: p95`" + (" or `preprocessing.bucketing: true`." if not prep.boundaries else ".")
        )
    collisions = prep.masked_collisions(data.sequences)
    if collisions:
        what = "code 0" if prep.input == "tokens" else f"the pad value {prep.pad_value} in every feature"
        fix = "Shift the codes so that 0 is unused (e.g. add 1)." if prep.input == "tokens" else "Set `preprocessing.pad_value` to a value that never occurs, e.g. -999.0."
        warnings.append(f"{collisions} real timesteps hold {what} (after scaling); they would be silently masked like padding. {fix}")
    return steps, warnings


def encoding_step(prep: Preprocessor, shape: str, embedding_dim: int) -> Step:
    """How the padded codes ``(batch, timesteps)`` become LSTM input, masked, per batch inside the model."""
    assert prep.num_tokens is not None
    after = shape.replace(")", f", features={encoding_width(prep, embedding_dim)})")
    what = {
        "embedding": f"Embedding({prep.num_tokens + 1}, {embedding_dim}, mask_zero=True): a learned vector per code",
        "one_hot": f"one-hot (a frozen Embedding, mask_zero=True): code c -> unit vector c of {prep.num_tokens}, padding -> zeros",
        "float": f"code value (a frozen Embedding, mask_zero=True): code c -> c / {prep.num_tokens}, one feature",
    }[prep.encoding]
    return Step(f"encode ({prep.encoding}) + mask", after, f"{what}; computed per batch inside the model; code 0 timesteps are masked and skipped by the LSTMs")


def encoding_width(prep: Preprocessor, embedding_dim: int) -> int:
    """Features per timestep after encoding token codes."""
    assert prep.num_tokens is not None
    return {"embedding": embedding_dim, "one_hot": prep.num_tokens, "float": 1}[prep.encoding]


def encoding_note(prep: Preprocessor, embedding_dim: int) -> str:
    """The three ways integer codes can enter the LSTMs, with their shapes; the chosen one marked."""
    assert prep.num_tokens is not None
    timesteps = "timesteps" if prep.boundaries else f"timesteps={prep.maxlen}"
    options = [
        f"embedding: (batch, {timesteps}, {embedding_dim}) learned vectors (`model.embedding_dim`), for many codes or when codes relate",
        f"one_hot: (batch, {timesteps}, {prep.num_tokens}), one feature per code, no trained parameters, for a few dozen codes",
        f"float: (batch, {timesteps}, 1), the code as one number, only meaningful when the codes are ordered",
    ]
    marked = [("* " if o.startswith(prep.encoding + ":") else "") + o for o in options]
    return (
        f"Token codes (batch, {timesteps}) can enter the LSTMs three ways, set by `preprocessing.encoding` (* = this spec): {'; '.join(marked)}. "
        "All three are looked up per batch inside the model and mask the padding."
    )


def truncation_warning(data: SequenceData, prep: Preprocessor, role: str) -> str | None:
    """Warn when validation/test/predict sequences are longer than the fitted maxlen."""
    lengths = data.lengths
    longer = int((lengths > prep.maxlen).sum())
    if not longer:
        return None
    return (
        f"{longer} of {len(lengths)} {role} sequences are longer than maxlen={prep.maxlen} (longest {int(lengths.max())}) and are truncated "
        f"({prep.truncating}). Set `preprocessing.maxlen: {int(lengths.max())}` to keep them whole."
    )


def spec_warnings(spec: Spec, data: SequenceData | None = None) -> list[str]:
    """Warnings from the spec alone (and the data's layout, when given)."""
    warnings = list(cross_field_problems(spec))
    slow = [f"model.layers[{i}].recurrent_dropout" for i, layer in enumerate(spec.model.layers) if layer.recurrent_dropout > 0]
    if slow:
        warnings.append(
            f"`{'`, `'.join(slow)}` > 0 disables the fast cuDNN kernel of LSTM and GRU layers on a GPU: training there is several times slower "
            "(on a CPU Keras runs the same generic kernel either way). Use `dropout` instead, or accept the cost."
        )
    if spec.preprocessing.padding == "pre":
        warnings.append(
            "`preprocessing.padding: pre` gives left-padded masks, which the fast cuDNN LSTM/GRU kernel does not support: "
            "on a GPU Keras falls back to the slow kernel. Use `padding: post` (the default)."
        )
    schedule, stopping = spec.training.lr_schedule, spec.training.early_stopping
    if (
        schedule is not None and schedule.type == "reduce_on_plateau" and stopping is not None
        and (schedule.monitor or spec.training.monitor) == spec.training.monitor and schedule.patience >= stopping.patience
    ):
        warnings.append(
            f"`training.lr_schedule.patience` ({schedule.patience}) is not below `training.early_stopping.patience` ({stopping.patience}) on the same "
            "monitor: training stops before the learning rate is ever reduced. Lower the schedule's patience (e.g. to half of early stopping's)."
        )
    if data is not None:
        warning = channels_first_warning(data, spec.data.layout)
        if warning:
            warnings.append(warning)
    return warnings


def channels_first_warning(data: SequenceData, layout: str) -> str | None:
    """Warn when a dense 3-D array looks like (samples, features, timesteps).

    Neighbouring timesteps of real signals are similar, neighbouring features are not:
    if values change much more along the declared time axis than along the feature
    axis, the axes are probably swapped.
    """
    if data.format not in ("npy", "npz") or layout != "channels_last" or any(s.name in ("reshape", "split by lengths") for s in data.steps):
        return None
    if len(set(data.lengths.tolist())) != 1:
        return None
    x = np.stack(data.sequences).astype(np.float64)  # (samples, timesteps, features)
    if x.shape[1] < 3 or x.shape[2] < 3 or np.issubdtype(data.sequences[0].dtype, np.integer):
        return None
    spread = np.abs(x - x.mean()).mean() or 1.0
    along_time = np.abs(np.diff(x, axis=1)).mean() / spread
    along_features = np.abs(np.diff(x, axis=2)).mean() / spread
    if along_time > 2.0 * along_features:
        return (
            f"{data.source} looks channels-first: values change {along_time / max(along_features, 1e-12):.1f}x more between neighbouring "
            f"'timesteps' (axis 1, size {x.shape[1]}) than between neighbouring 'features' (axis 2, size {x.shape[2]}). If the array is "
            "(samples, features, timesteps), set `data.layout: channels_first` and seqcli transposes it."
        )
    return None


def layer_rows(model: Any) -> list[LayerRow]:
    """Every layer's output shape in named axes, parameter count and mask."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape)
        kind = type(layer).__name__
        if kind == "Bidirectional":
            kind = f"Bidirectional({type(layer.forward_layer).__name__})"
        mask = getattr(layer.output, "_keras_mask", None) is not None
        rows.append(LayerRow(layer.name, kind, named_shape(shape, kind, layer.name), int(layer.count_params()), mask))
    return rows


def named_shape(shape: tuple[Any, ...], kind: str, name: str = "") -> str:
    """``(None, 29, 12)`` -> ``(batch, timesteps=29, features=12)``."""
    recurrent = kind in ("LSTM", "GRU") or kind.startswith("Bidirectional")
    last = "classes" if name == "output" else "units" if recurrent else {"Dense": "units", "Dropout": "units", "Concatenate": "units", "Embedding": "embedding"}.get(kind, "features")
    if name.endswith(("one_hot", "code_value")):
        last = "features"
    timesteps = "timesteps" if len(shape) > 1 and shape[1] is None else f"timesteps={shape[1]}" if len(shape) > 1 else ""
    if len(shape) == 3:
        axes = ["batch", timesteps, f"{last}={shape[2]}"]
    elif len(shape) == 2:
        axes = ["batch", timesteps] if kind == "InputLayer" else ["batch", f"{last}={shape[1]}"]
    else:
        axes = ["batch"] + [str(s) for s in shape[1:]]
    return "(" + ", ".join(axes) + ")"


def trace(spec: Spec, train: SequenceData, others: dict[str, SequenceData], *, build: bool = True) -> Trace:
    """Inspect the data flow of a spec on its (already loaded) data; no training."""
    warnings = spec_warnings(spec, train)
    notes: list[str] = []
    pp_spec = spec.preprocessing
    try:
        kind = preprocess.resolve_input(train, spec.preprocessing.input)
    except DataError as exc:
        warnings.append(str(exc))
        kind, pp_spec = "float", dataclasses.replace(spec.preprocessing, input="float")
    if kind == "float" and pp_spec.encoding != "embedding":
        if spec.preprocessing.input != "float":  # else cross_field_problems said it
            warnings.append(f"`preprocessing.encoding: {pp_spec.encoding}` applies to integer token codes and text, but {train.source} is read as float features; it is ignored here.")
        pp_spec = dataclasses.replace(pp_spec, encoding="embedding")
    classes = None
    if spec.task == "tag":
        notes.append(
            "Task: tag (one label per timestep). The last recurrent layer returns sequences and the output is a softmax per timestep "
            "(batch, timesteps, classes); the mask it carries keeps padded timesteps out of the loss and the accuracy."
        )
    if train.labels is None and train.tags is None:
        classes = ["class_0", "class_1"]
        notes.append("The data has no labels, so the number of classes (the output size) is a placeholder.")
    early = backend_before_fitting(spec.backend, pp_spec.input, pp_spec.bucketing)  # (backend, reason), before use_backend sets $KERAS_BACKEND
    if early is not None:
        use_backend(early[0])
    prep = preprocess.fit(train, pp_spec, classes=classes, task=spec.task)
    train, others = prep.tokenize(train), {role: prep.tokenize(part) for role, part in others.items()}
    arrays = [summarize(train, "train")] + [summarize(d, role) for role, d in others.items()]
    if prep.input == "tokens" and spec.preprocessing.input == "auto":
        notes.append(f"Integer data with one value per timestep is read as token codes ({prep.num_tokens + 1} codes, 0 padding). If these are measurements, set `preprocessing.input: float`.")
    if prep.input == "tokens":
        notes.append(encoding_note(prep, spec.model.embedding_dim))
    lengths = real_lengths(train, prep)
    if early is not None:
        backend, reason = early
    else:
        validation = others.get("validation")
        work = batching.workload(prep, lengths, real_lengths(validation, prep) if validation is not None else None, spec)
        backend, reason = choose_backend(spec.backend, work)
    notes.append(f"Keras backend: {backend}" + (f" ({reason})" if spec.backend == "auto" else "") + ".")
    steps, pad_warnings = preprocessing_steps(train, prep, spec.training.batch_size, spec.model.embedding_dim, few_widths=compiles_each_shape(backend), lengths=lengths)
    warnings += pad_warnings
    for role, part in others.items():
        truncated = truncation_warning(part, prep, role)
        if truncated:
            warnings.append(truncated)
        oov = text_mod.oov_share(part.sequences) if prep.vocabulary is not None else 0.0
        if oov >= OOV_WARN_SHARE:
            warnings.append(
                f"{oov:.0%} of the {role} tokens are out of the training vocabulary ({len(prep.vocabulary or [])} codes) and all look alike to the model. "
                "Raise `preprocessing.text.max_tokens`, use `preprocessing.text.level: char`, or add training text."
            )
    if build:
        use_backend(backend)
    if spec.training.class_weight is not None and train.labels is not None and spec.task == "classify":
        try:
            weights = _class_weights(spec, prep, train)
            how = "balanced over the training split" if spec.training.class_weight == "balanced" else "from the spec"
            notes.append(f"Class weights in the training loss ({how}): " + ", ".join(f"{name} {w:.3g}" for name, w in weights.items()) + ".")
        except SpecError as exc:  # a class the data lacks: train refuses it, inspect-shapes shows it
            warnings.append(str(exc))
    layers = layer_rows(_model(spec, prep)) if build else []
    timesteps = "timesteps" if prep.boundaries else f"timesteps={prep.maxlen}"
    input_shape = f"(batch, {timesteps})" if prep.input == "tokens" else f"(batch, {timesteps}, features={prep.n_features})"
    return Trace(arrays, list(train.steps) + steps, layers, warnings, notes, input_shape)


def suggest(train: SequenceData) -> tuple[Spec, str]:
    """A starting spec for a bare data file (input kind and maxlen from its lengths, in words for text), and its YAML."""
    lengths = np.array([len(t.split()) for t in train.texts]) if train.texts is not None else train.lengths
    maxlen = "p95" if lengths.max() > 2 * np.percentile(lengths, 95) else None
    labelled = train.labels is not None and len(train) >= 20
    raw = {
        "data": {"train": train.source, "validation_split": 0.2 if labelled else 0.0},
        "preprocessing": {"input": "text" if train.texts is not None else preprocess.resolve_input(train, "auto"), "maxlen": maxlen},
        "model": {"layers": [{"units": 64}]},
        "training": {"epochs": 30, "batch_size": 32, "monitor": "val_loss" if labelled else "loss"},
    }
    return spec_from_dict(raw), yaml.safe_dump(raw, sort_keys=False)


def _class_weights(spec: Spec, prep: Preprocessor, train: SequenceData) -> dict[str, float]:
    """``training.class_weight`` resolved on the training data (raises SpecError for a class the data lacks)."""
    from seqcli.model import class_weights

    return class_weights(spec, prep.classes, prep.encode_labels(train)) or {}


def _model(spec: Spec, prep: Preprocessor) -> Any:
    from seqcli.model import build_model

    return build_model(spec, prep)



def inspect_spec(spec_path: Path, overrides: Sequence[str] = (), data_path: Path | None = None) -> Trace:
    """``inspect-shapes SPEC``: trace the spec on its data (or on ``data_path``); cross-field problems become warnings."""
    from seqcli.train import load_splits

    spec = load_spec(spec_path, overrides, strict=False)
    if spec.inputs is not None:
        if data_path is not None:
            raise SpecError("--data replaces the data of a one-input spec; this spec has several inputs (`inputs`). Inspect it without --data.")
        return multi_trace(spec)
    if data_path is not None:
        train = data_mod.load(DataFile(path=str(data_path)), spec.data, need_labels=False, text=spec.preprocessing.input == "text", tag=spec.task == "tag")
        return trace(spec, train, {})
    splits = load_splits(spec)
    train = splits.pop("train")
    return trace(spec, train, splits)


def multi_trace(spec: Spec) -> Trace:
    """Inspect a multi-input spec: every input's files and steps (prefixed with its name), the merge of the branches, the layers."""
    from seqcli import multi
    from seqcli.model import build_model

    warnings = spec_warnings(spec)
    loaded = multi.load_splits(spec, need_labels=False)
    train = loaded["train"]
    first = train[spec.input_name]
    notes = [f"Multi-input model: inputs {', '.join(map(repr, train))}, matched by id; the labels come from {spec.input_name!r}. Every batch takes the same samples from each input."]
    classes = None
    if first.labels is None:
        classes = ["class_0", "class_1"]
        notes.append("The data has no labels, so the number of classes (the output size) is a placeholder.")
    preps = multi.fit(spec, train, classes)
    arrays, steps, shapes, widths = [], [], [], []
    for name, (_, _, layers) in multi.sections(spec).items():
        prep = preps[name]
        arrays += [summarize(parts[name], f"{role} ({name})") for role, parts in loaded.items()]
        own_steps, own_warnings = preprocessing_steps(train[name], prep, spec.training.batch_size, spec.model.embedding_dim)
        steps += [dataclasses.replace(step, name=f"{name}: {step.name}") for step in [*train[name].steps, *own_steps]]
        warnings += [f"Input {name!r}: {w}" for w in own_warnings]
        shapes.append(f"{name} (batch, timesteps={prep.maxlen})" if prep.input == "tokens" else f"{name} (batch, timesteps={prep.maxlen}, features={prep.n_features})")
        last = layers[-1] if layers else None
        widths.append((name, last.units * (2 if last.bidirectional else 1) if last else 0))
    steps.append(Step("merge", f"(batch, units={sum(w for _, w in widths)})", "Concatenate the last output of every branch: " + " + ".join(f"{n} {w}" for n, w in widths)))
    backend, reason = choose_backend(spec.backend, None)
    notes.append(f"Keras backend: {backend}" + (f" ({reason})" if spec.backend == "auto" else "") + ".")
    use_backend(backend)
    buildable = all(layers and not layers[-1].return_sequences and all(x.return_sequences is not False for x in layers[:-1]) for _, _, layers in multi.sections(spec).values())
    if not buildable:
        notes.append("No model is shown: every branch needs recurrent layers whose last one returns a vector (see the warnings).")
    layers = layer_rows(build_model(spec, preps[spec.input_name], preps)) if buildable else []
    return Trace(arrays, steps, layers, warnings, notes, "; ".join(shapes))


def inspect_data(path: Path) -> Trace:
    """``inspect-shapes FILE``: what a bare data file holds, and a suggested spec and input shape for it.

    A .txt file, and a .jsonl file whose first record has a text but no sequence, are read as raw text.
    """
    options = spec_from_dict({"data": {"train": str(path)}}).data
    train = data_mod.load(DataFile(path=str(path)), options, need_labels=False, text=data_mod.looks_like_text(path, options))
    spec, text = suggest(train)
    result = trace(spec, train, {}, build=train.labels is not None)
    if train.labels is None:
        result.notes.append("The file has no labels: train needs one label per sequence, so no model is shown.")
    result.suggested_spec = text
    return result
