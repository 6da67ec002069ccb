"""The shape-and-mask trace behind ``inspect-shapes`` (pure data, no printing).

A :class:`Trace` is what the pipeline (:mod:`seqcli.pipeline`, run leniently) recorded: the loaded arrays, every
transformation with the shape after it, every model layer with its output shape in named axes and whether it
carries a mask, the task's head and targets, and warnings for the classic mistakes, each with its fix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from seqcli import data as data_mod
from seqcli import pipeline, preprocess
from seqcli import recipe as recipe_mod
from seqcli.data import SequenceData, Step
from seqcli.errors import SpecError
from seqcli.fingerprint import fingerprint
from seqcli.layers import LayerRow, layer_rows
from seqcli.spec import TASK_KINDS, DataFile, Spec, load_spec, spec_from_dict
from seqcli.tasks.classify import label_names, numeric_first


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
    targets: str | None = None  # regression: how many targets and their range


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
    """Shape, dtype, length distribution and class counts (regression: the targets' range) of one loaded file."""
    lengths = data.lengths
    counts, targets = None, None
    values = np.concatenate(data.step_targets) if data.step_targets else data.labels  # per timestep: over all timesteps
    if values is not None and values.dtype.kind == "f" and values.ndim == 2:
        targets = f"{values.shape[1]} x {values.min():.4g}..{values.max():.4g}"
    elif values is not None:
        names, numbers = np.unique(label_names(values), return_counts=True)
        order = sorted(range(len(names)), key=lambda i: numeric_first(str(names[i])))
        counts = {str(names[i]): int(numbers[i]) for i in order}
    dtype = "text -> int64 codes" if data.texts is not None else str(data.sequences[0].dtype)
    return ArraySummary(
        role, data.source, data.format, data.raw_shape, dtype, len(data.sequences), data.n_features,
        int(lengths.min()), float(np.median(lengths)), float(np.percentile(lengths, 95)), int(lengths.max()), counts,
        fingerprint(data.source) if Path(data.source).is_file() else "", targets,
    )


def trace(spec: Spec, *, train: SequenceData | None = None, build: bool = True) -> Trace:
    """Run the pipeline leniently on a spec (``train``: data loaded instead of ``data.train``) and return what it recorded; no training."""
    pipe = pipeline.run(spec, lenient=True, train=train, build=build)
    arrays = [summarize(part, f"{role} ({name})" if pipe.multi_input else role) for role, split in pipe.splits.items() for name, part in split.parts.items()]
    if pipe.multi_input:
        arrays.sort(key=lambda a: a.role.split(" (")[1])  # every input's splits together
    notes = [pipe.task.describe(pipe.prep), *pipe.notes, f"Keras backend: {pipe.backend}" + (f" ({pipe.backend_reason})" if spec.backend == "auto" and pipe.backend_reason else "") + "."]
    if pipe.class_weights:
        how = "balanced over the training split" if spec.training.class_weight == "balanced" else "from the spec"
        notes.append(f"Class weights in the training loss ({how}): " + ", ".join(f"{name} {w:.3g}" for name, w in pipe.class_weights.items()) + ".")
    size = spec.training.ensemble
    if size > 1:
        mean = "predictions" if TASK_KINDS[spec.task].numeric else "class probabilities"
        notes.append(
            f"Ensemble (`training.ensemble: {size}`): {size} models like the one above, member k trained with seed {spec.seed} + k - 1 "
            f"(seeds {spec.seed}-{spec.seed + size - 1}); validation, test and predict use the mean of their {mean}. Training costs {size} times one model's."
        )
    axis = "targets" if TASK_KINDS[spec.task].numeric else "classes"
    layers = layer_rows(pipe.model, output_axis=axis) if pipe.model is not None else []
    return Trace(arrays, pipe.steps, layers, pipe.warnings, notes, "; ".join(input_shape(name if pipe.multi_input else "", p) for name, p in pipe.preps.items()))


def input_shape(name: str, prep: preprocess.Preprocessor) -> str:
    """The model input in named axes, e.g. ``(batch, timesteps=29, features=12)``; ``name`` prefixes it for a multi-input model."""
    timesteps = "timesteps" if prep.boundaries else f"timesteps={prep.maxlen}"
    shape = f"(batch, {timesteps})" if prep.input == "tokens" else f"(batch, {timesteps}, features={prep.n_features})"
    return f"{name} {shape}" if name else shape


def suggest(train: SequenceData, task: str = "classify") -> tuple[Spec, str]:
    """A starting spec for a bare data file (input kind and maxlen from its lengths, in words for text) on the
    recommended recipe (:mod:`seqcli.recipe`, named in the YAML so that keys added to it keep the recipe), and its YAML."""
    lengths = np.array([len(t.split()) for t in train.texts]) if train.texts is not None else train.lengths
    maxlen = "p95" if lengths.max() > 2 * np.percentile(lengths, 95) else None
    labelled = train.labels is not None and len(train) >= 20
    raw: dict[str, Any] = {} if task == "classify" else {"task": task}
    raw |= {
        "data": {"train": train.source, "validation_split": 0.2 if labelled else 0.0},
        "preprocessing": {"input": "text" if train.texts is not None else preprocess.resolve_input(train, "auto"), "maxlen": maxlen},
        "recipe": "recommended",
    }
    if not labelled:
        raw["training"] = {"monitor": "loss"}
    return spec_from_dict(recipe_mod.merged_under(raw, recipe_mod.values(raw, whole_file=recipe_mod.trains_on_the_whole_file(raw)))), yaml.safe_dump(raw, sort_keys=False)


def inspect_spec(spec_path: Path, overrides: Sequence[str] = (), data_path: Path | None = None) -> Trace:
    """``inspect-shapes SPEC``: trace the spec on its data (or on ``data_path``); cross-field problems become warnings."""
    spec = load_spec(spec_path, overrides, strict=False)
    if data_path is None:
        return trace(spec)
    if spec.inputs is not None:
        raise SpecError("--data replaces the data of a one-input spec; this spec has several inputs (`inputs`). Inspect it without --data.")
    train = data_mod.load(DataFile(path=str(data_path)), spec.data, need_labels=False, text=spec.preprocessing.input == "text", targets=TASK_KINDS[spec.task])
    return trace(spec, train=train)


def inspect_data(path: Path) -> Trace:
    """``inspect-shapes FILE``: what a bare data file holds, and a suggested spec and input shape for it.

    A .txt file, and a .jsonl file whose first record has a text but no sequence, are read as raw text; a .ts file
    with ``@targetLabel true`` as regression data.
    """
    options = spec_from_dict({"data": {"train": str(path)}}).data
    task = "regress" if data_mod.has_regression_targets(path) else "classify"
    train = data_mod.load(DataFile(path=str(path)), options, need_labels=False, text=data_mod.looks_like_text(path, options), targets=TASK_KINDS[task])
    spec, text = suggest(train, task)
    result = trace(spec, train=train, build=train.labels is not None)
    if train.labels is None:
        result.notes.append("The file has no labels: train needs one label per sequence, so no model is shown.")
    result.suggested_spec = text
    return result
