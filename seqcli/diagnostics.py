"""Warnings about the classic mistakes, each with its fix: from the spec alone, and from the data as preprocessed.

The pipeline collects them for ``train`` (printed before training) and ``inspect-shapes``; ``predict`` adds the
truncation warning for its input. Pure data, no printing, no TensorFlow.
"""

from __future__ import annotations

import numpy as np

from seqcli import text as text_mod
from seqcli.data import SequenceData
from seqcli.preprocess import Preprocessor
from seqcli.spec import Spec, TaskKind, cross_field_problems
from seqcli.steps import Padding, real_lengths
from seqcli.tasks.classify import label_names, regression_like

TRUNCATION_WARN_SHARE = 0.05
PADDING_WARN_SHARE = 0.5
OOV_WARN_SHARE = 0.1


def preprocessing_warnings(data: SequenceData, prep: Preprocessor, lengths: np.ndarray, padded: Padding) -> list[str]:
    """The training split as preprocessed: sequences cut by maxlen, mostly-padding batches, real timesteps that look like padding.

    ``lengths``: real lengths (:func:`seqcli.steps.real_lengths`); ``padded``: the batches' padding (:func:`seqcli.steps.padding`).
    """
    warnings: list[str] = []
    n = len(lengths)
    if n and padded.truncated / n >= TRUNCATION_WARN_SHARE:
        warnings.append(
            f"maxlen={prep.maxlen} truncates {padded.truncated} of {n} sequences ({padded.truncated / n:.0%}; longest {int(lengths.max())}); "
            f"their {'end' if prep.truncating == 'post' else 'beginning'} is cut off. Raise `preprocessing.maxlen` (null = longest, or 'p99')."
        )
    if padded.share >= PADDING_WARN_SHARE:
        warnings.append(
            f"{padded.share:.0%} of all timesteps are padding (median length {np.median(lengths):.0f}, maxlen {prep.maxlen}): most compute goes to padding. "
            "Consider `preprocessing.maxlen: p95`" + (" or `preprocessing.bucketing: true`." if not prep.boundaries else ".")
        )
    collisions = prep.masked_collisions(data.sequences)
    if collisions:
        what = "code 0" if prep.input == "tokens" else f"the pad value {prep.pad_value} in every feature"
        fix = "Shift the codes so that 0 is unused (e.g. add 1)." if prep.input == "tokens" else "Set `preprocessing.pad_value` to a value that never occurs, e.g. -999.0."
        warnings.append(f"{collisions} real timesteps hold {what} (after scaling); they would be silently masked like padding. {fix}")
    return warnings


def oov_warning(data: SequenceData, prep: Preprocessor, role: str) -> str | None:
    """Warn when many of a split's tokens are outside the training vocabulary (text input)."""
    if prep.vocabulary is None:
        return None
    oov = text_mod.oov_share(data.sequences)
    if oov < OOV_WARN_SHARE:
        return None
    return (
        f"{oov:.0%} of the {role} tokens are out of the training vocabulary ({len(prep.vocabulary)} codes) and all look alike to the model. "
        "Raise `preprocessing.text.max_tokens`, use `preprocessing.text.level: char`, or add training text."
    )


def truncation_warning(data: SequenceData, prep: Preprocessor, role: str) -> str | None:
    """Warn when validation/test/predict sequences are longer than the fitted maxlen."""
    lengths = real_lengths(data, prep)  # after resample and shorten
    longer = int((lengths > prep.maxlen).sum())
    if not longer:
        return None
    return (
        f"{longer} of {len(lengths)} {role} sequences are longer than maxlen={prep.maxlen} (longest {int(lengths.max())}) and are truncated "
        f"({prep.truncating}). Set `preprocessing.maxlen: {int(lengths.max())}` to keep them whole."
    )


def feature_mismatch_warning(data: SequenceData, prep: Preprocessor, role: str, train_source: str) -> str | None:
    """For ``inspect-shapes``: a validation/test file whose features per timestep differ from the training data's, which
    ``train`` refuses; the pipeline leaves that split out of the trace."""
    if not data.sequences or data.n_features == prep.n_features:
        return None
    return (
        f"The {role} data {data.source} has {data.n_features} features per timestep, but the training data {train_source} has {prep.n_features}; "
        f"`train` refuses this. Give the {role} data the same {prep.n_features} features, in the same order as in training. It is left out of this trace."
    )


def spec_warnings(spec: Spec) -> list[str]:
    """Warnings from the spec alone: its cross-field problems (which ``train`` refuses), and settings that are slow or useless."""
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
    return warnings


def dropped_mask_warning(layers: list[str]) -> str | None:
    """Warn about model layers that drop the mask of a sequence (:func:`seqcli.layers.dropped_masks`): after them padded
    timesteps look real to the layers that follow, so the width of a batch changes the predictions."""
    if not layers:
        return None
    return (
        f"Layer(s) {', '.join(layers)} receive a masked sequence but return one without a mask: after them padded timesteps count as real "
        "(in the recurrent layers, the pooling and the loss), so predictions depend on how much padding a batch has. "
        "Leave out the setting that adds such a layer, or use seqcli's masked layers (`model.frontend`, `model.pooling`) instead."
    )


def regression_labels_warning(data: SequenceData, kind: TaskKind) -> str | None:
    """Warn when the class labels of a per-sequence classifier look like real values (:func:`seqcli.tasks.classify.regression_like`)."""
    if kind.numeric or kind.per_timestep or data.labels is None:
        return None
    reason = regression_like(data.labels)
    if reason is None:
        return None
    classes = len(np.unique(label_names(data.labels)))
    return (
        f"The labels of {data.source} look like real values, not classes: {reason}. With `task: {kind.name}` every distinct value "
        f"becomes a class ({classes} classes). For real-valued targets set `task: regress`; if these are class labels, ignore this warning."
    )


def channels_first_warning(data: SequenceData, layout: str) -> str | None:
    """Warn when a dense 3-D array looks like (samples, features, timesteps).

    Neighbouring timesteps of real signals are similar, neighbouring features are not:
    if values change much more along the declared time axis than along the feature
    axis, the axes are probably swapped.
    """
    if data.format not in ("npy", "npz") or layout != "channels_last" or data.raw_ndim == 2 or data.is_flat:  # a 2-D array or cut by lengths: not (samples, timesteps, features) as stored
        return None
    if len(set(data.lengths.tolist())) != 1:
        return None
    x = data.sequences.values.reshape(len(data), int(data.lengths[0]), -1).astype(np.float64)  # (samples, timesteps, features)
    if x.shape[1] < 3 or x.shape[2] < 3 or data.is_integer:
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


