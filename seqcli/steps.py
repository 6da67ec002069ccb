"""What preprocessing does to the shapes, step by step: the record the pipeline keeps and ``inspect-shapes`` shows.

Each :class:`~seqcli.data.Step` names a transformation and the shape after it in named axes. Loaders record their
own steps (reshape, transpose, group rows); :func:`preprocessing_steps` adds the fitted ones (scaling or token codes,
padding/truncation or bucketing, the mask). Pure data, no TensorFlow.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from seqcli import batching, preprocess
from seqcli.data import SequenceData, Step
from seqcli.preprocess import Preprocessor
from seqcli.spec import FrontendSpec


@dataclass(frozen=True)
class Padding:
    """How much of the padded batches is padding: ``share`` as trained (bucketed or not), ``share_to_maxlen`` if all were padded to maxlen."""

    share: float
    share_to_maxlen: float
    truncated: int


def real_lengths(data: SequenceData, prep: Preprocessor) -> np.ndarray:
    """Each sequence's timesteps as training sees them: token codes without the data's own padding code."""
    if prep.input == "tokens" and prep.vocabulary is None:
        return preprocess.token_codes(data.sequences, prep.pad_code).lengths
    lengths = _resampled_lengths(data, prep)
    return lengths if prep.shorten is None else np.minimum(lengths, prep.shorten)


def _resampled_lengths(data: SequenceData, prep: Preprocessor) -> np.ndarray:
    """Each float sequence's timesteps after ``resample``, before ``shorten``."""
    return data.sequences.lengths if prep.resample is None else np.full(len(data.sequences), prep.resample, np.int64)


def padding(lengths: np.ndarray, prep: Preprocessor, plan: batching.Plan | None) -> Padding:
    """The padding of the training split's batches (``plan``: the bucketed plan, None without bucketing)."""
    to_maxlen = 1.0 - int(np.minimum(lengths, prep.maxlen).sum()) / (len(lengths) * prep.maxlen) if len(lengths) else 0.0
    share = batching.padded_share(lengths, plan) if plan is not None else to_maxlen
    return Padding(share, to_maxlen, int((lengths > prep.maxlen).sum()))


def bucket_plan(lengths: np.ndarray, prep: Preprocessor, batch_size: int, *, few_widths: bool, planned_by: batching.Plan | None = None) -> batching.Plan | None:
    """An epoch's bucketed batches, as training draws them; None without bucketing. ``planned_by``: the first input's plan,
    whose batches an input of a multi-input model follows, each padded to this input's own width (:func:`batching.own_width`)."""
    if not prep.boundaries:
        return None
    if planned_by is not None:
        own = [batching.own_width(lengths[rows], maxlen=prep.maxlen, bucketed=True, few_widths=few_widths) for rows in planned_by.batches]
        return batching.Plan(planned_by.batches, own)
    return batching.train_plan(np.minimum(lengths, prep.maxlen), prep.boundaries, prep.maxlen, batch_size, 0, 0, shuffle=True, few_widths=few_widths)


def preprocessing_steps(
    data: SequenceData, prep: Preprocessor, lengths: np.ndarray, *, batch_size: int, embedding_dim: int, few_widths: bool, planned_by: tuple[str, batching.Plan] | None = None
) -> list[Step]:
    """The steps after loading (scale or token codes, pad/truncate or bucket, encode and mask) with their shapes.

    ``lengths``: :func:`real_lengths` of ``data``; ``few_widths``: batch widths as under JAX (shared widths). ``planned_by``:
    for an input of a multi-input model that follows another input's batches, that input's name and bucketed plan.
    """
    n = len(data.sequences)
    steps: list[Step] = []
    if prep.input == "tokens" and prep.vocabulary is None:
        assert prep.num_tokens is not None
        stripped = "no padding in the data" if prep.pad_code is None else f"padding code {prep.pad_code} stripped from both ends"
        shifted = "" if prep.pad_code == 0 else "; codes shifted by 1 to keep 0 for padding"
        steps.append(Step("token codes", f"{n} x (timesteps,)", f"{stripped}{shifted}; codes 1..{prep.num_tokens - 1}, codes unseen in training -> {prep.num_tokens}"))
    if prep.resample is not None:
        steps.append(Step("resample", f"(samples={n}, timesteps={prep.resample}, features={prep.n_features})", f"each sequence linearly interpolated to {prep.resample} timesteps"))
    if prep.shorten is not None:
        longer = int((_resampled_lengths(data, prep) > prep.shorten).sum())
        detail = f"{longer} of {n} sequences longer than {prep.shorten} timesteps linearly interpolated to {prep.shorten}"
        steps.append(Step("shorten", f"{n} x (timesteps <= {prep.shorten}, {prep.n_features})", detail))
    if prep.znorm:
        steps.append(Step("z-normalize", f"{n} x (timesteps, {prep.n_features})", "each sequence's every feature to mean 0, std 1 over its own timesteps (the UCR convention)"))
    if prep.input != "tokens" and prep.mean is not None:
        steps.append(Step("standardize", f"{n} x (timesteps, {prep.n_features})", "per-feature mean/std fitted on the real timesteps of the training data"))
    plan = bucket_plan(lengths, prep, batch_size, few_widths=few_widths, planned_by=planned_by[1] if planned_by else None)
    padded = padding(lengths, prep, plan)
    shape = f"(samples={n}, timesteps={prep.maxlen})" if prep.input == "tokens" else f"(samples={n}, timesteps={prep.maxlen}, features={prep.n_features})"
    pad_with = 0 if prep.input == "tokens" else prep.pad_value
    if plan is not None:
        assert prep.boundaries is not None
        steps.append(Step("truncate", f"{n} x (timesteps<={prep.maxlen}, {prep.n_features})", f"{padded.truncated} of {n} sequences longer than maxlen={prep.maxlen} cut ({prep.truncating})"))
        width = "shared width >= longest in batch" if few_widths else "longest in batch"
        shape = f"(batch, timesteps={width})" if prep.input == "tokens" else f"(batch, timesteps={width}, features={prep.n_features})"
        groups = f" within the groups up to {', '.join(map(str, prep.boundaries))}" if len(prep.boundaries) > 1 else ""
        to = f"its longest sequence, rounded up to one of {len(set(plan.widths))} shared widths (one JAX compilation each)" if few_widths else "its longest sequence"
        batches = f"the batches of {planned_by[0]!r} (sorted by its lengths)" if planned_by else f"batches of {batch_size} sorted by length{groups}"
        if planned_by:
            to = "its longest sequence in the batch" + (", rounded up to a 25% grid of widths" if few_widths else "")
        detail = (
            f"{batches}, each {prep.padding}-padded with {pad_with} to {to}: "
            f"{padded.share:.1%} of timesteps are padding (padding all to maxlen: {padded.share_to_maxlen:.1%})"
        )
        steps.append(Step("bucket + pad", shape, detail))
    else:
        detail = f"{prep.padding}-padding with {pad_with}: {padded.share:.1%} of timesteps are padding; {padded.truncated} of {n} sequences truncated ({prep.truncating})"
        steps.append(Step("pad/truncate", shape, detail))
    if prep.input == "tokens":
        steps.append(encoding_step(prep, shape, embedding_dim))
    else:
        steps.append(Step("mask", shape, f"Masking(mask_value={prep.pad_value}): timesteps whose every feature is {prep.pad_value} are skipped by the recurrent layers"))
    return steps


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




def frontend_note(frontend: FrontendSpec | None, prep: Preprocessor) -> str | None:
    """How much the convolutional front-end (``model.frontend``) shortens the sequences the recurrent layers read, and
    which of the shortened timesteps are real; None without shortening."""
    factor = math.prod(block.stride * block.pool for block in (frontend.blocks if frontend is not None else []))
    if factor == 1:
        return None
    timesteps = "a batch's timesteps" if prep.boundaries else f"maxlen {prep.maxlen}"
    after = f"ceil(timesteps / {factor})" if prep.boundaries else str(math.ceil(prep.maxlen / factor))
    return (
        f"The convolutional front-end shortens the sequences {factor}x (strides x pools) before the recurrent layers: {timesteps} -> {after} steps, "
        f"so each recurrent layer runs {factor}x fewer steps. The mask is shortened with them: a sequence of length L keeps ceil(L / {factor}) real steps."
    )
