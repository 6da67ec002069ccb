"""Fitted, saved transforms of the inputs: scaling, token codes, text vocabulary, padding/truncation, buckets.

:func:`fit` learns everything from the training data only; the resulting
:class:`Preprocessor` is plain data (saved as JSON in the run) and turns any list
of sequences into one model-ready array. No TensorFlow here, except that text is
tokenized by :mod:`seqcli.text` (Keras' ``TextVectorization``, imported on use).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcli import text as text_mod
from seqcli.data import SequenceData, Step
from seqcli.errors import DataError
from seqcli.sequences import Sequences
from seqcli.spec import PreprocessingSpec, maxlen_percentile


@dataclass
class Preprocessor:
    """Everything needed to turn raw sequences into model input, fitted on training data.

    ``input`` is ``"float"`` (output ``(batch, maxlen, features)`` float32, padding
    masked by ``Masking(mask_value=pad_value)``) or ``"tokens"`` (output
    ``(batch, maxlen)`` int32, code 0 is padding, masked by an ``Embedding(mask_zero=True)``
    that ``encoding`` chooses: learned, one-hot or the code's value). ``num_tokens`` is
    the highest code: for integer data the one that stands for codes unseen in
    training (the data's ``pad_code`` is stripped; unless it is 0, every code is
    shifted by 1 to keep 0 free). Text is tokens too: ``text`` holds the tokenizer
    options and ``vocabulary`` the fitted vocabulary (code 1: out of vocabulary).
    With length bucketing, ``boundaries`` are the bucket widths (the last is
    ``maxlen``) and a batch is padded only to its bucket's width.

    The task's target state (fitted by :meth:`seqcli.tasks.base.Task.fit`) is saved with it: ``task`` names the
    task, ``classes`` the classes of a classification task, ``targets`` the names, mean and std of regression targets.
    """

    input: str
    n_features: int
    maxlen: int
    padding: str
    truncating: str
    pad_value: float
    classes: list[str]
    mean: list[float] | None = None
    std: list[float] | None = None
    num_tokens: int | None = None
    boundaries: list[int] | None = None
    encoding: str = "embedding"
    pad_code: int | None = 0
    text: dict[str, Any] | None = None
    vocabulary: list[str] | None = None
    task: str = "classify"
    targets: dict[str, Any] | None = None
    znorm: bool = False
    resample: int | None = None
    shorten: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Preprocessor:
        return cls(**state)

    @property
    def input_shape(self) -> tuple[int | None, ...]:
        """Model input shape without the batch axis: ``(timesteps, features)`` or ``(timesteps,)``; timesteps None with bucketing."""
        timesteps = None if self.boundaries else self.maxlen
        return (timesteps,) if self.input == "tokens" else (timesteps, self.n_features)

    def width_for(self, length: int) -> int:
        """The padded timesteps of a batch of one sequence of this length: the length itself with bucketing, else maxlen."""
        return min(length, self.maxlen) if self.boundaries else self.maxlen

    def tokenize(self, data: SequenceData) -> SequenceData:
        """Text -> token codes ``(tokens_i, 1)`` with the fitted vocabulary; numeric data unchanged (and checked to be numeric)."""
        if self.vocabulary is None or self.text is None:
            if data.texts is not None:
                raise DataError(f"{data.source} holds raw text, but this model was trained on numeric sequences (input {self.input}). Give the data in its training format.")
            return data
        if data.texts is None:
            raise DataError(f"This model was trained on text (`preprocessing.input: text`), but {data.source} holds numeric sequences. Give texts: a .csv, .jsonl or .txt file, or --text.")
        return tokenize(data, self.vocabulary, self.text)

    def prepare(self, sequences: Sequences, where: list[str] | None = None) -> Sequences:
        """Check, resample and z-normalize (when asked), scale and truncate to maxlen, without padding: ``(timesteps_i, features)``
        each (batches pad later)."""
        self.check_features(sequences, where)
        return self.truncate(self.scale(self.per_sequence(sequences), where))

    def per_sequence(self, sequences: Sequences) -> Sequences:
        """The transforms of each sequence on its own, with no fitted state (:func:`reshaped`). Float input only: the
        spec and :func:`fit` refuse ``resample`` and ``znorm`` for codes, and :func:`fit` sets no ``shorten`` for them."""
        return reshaped(sequences, resample=self.resample, shorten=self.shorten, znorm=self.znorm)

    def truncate(self, sequences: Sequences) -> Sequences:
        """The first (``truncating: post``) or last (``pre``) ``maxlen`` timesteps of every sequence, or of its per-timestep targets."""
        return sequences.truncated(self.maxlen, keep="first" if self.truncating == "post" else "last")

    def scale(self, sequences: Sequences, where: list[str] | None = None) -> Sequences:
        """Standardize float sequences, or map token codes; each stays (timesteps, features)."""
        if self.input == "tokens":
            assert self.num_tokens is not None
            highest = self.num_tokens
            return token_codes(sequences, self.pad_code, where).map(lambda codes: np.minimum(codes, highest))  # codes unseen in training -> num_tokens
        values = sequences.values.astype(np.float64, copy=False)
        if self.mean is not None and self.std is not None:
            values = (values - np.asarray(self.mean)) / np.asarray(self.std)
        return sequences.with_values(values)

    def check_features(self, sequences: Sequences, where: list[str] | None = None) -> None:
        if len(sequences) and sequences.cell_shape != (self.n_features,):
            found = sequences.cell_shape[0] if sequences.cell_shape else 1
            place = where[0] if where else "the data"
            raise DataError(
                f"{place} has {found} features per timestep, but the model was trained on {self.n_features}. "
                f"Give data with the same {self.n_features} features, in the same order as in training."
            )

    def masked_collisions(self, sequences: Sequences) -> int:
        """Real float timesteps whose every feature equals the pad value (they would be masked); token codes never collide (checked)."""
        if self.input == "tokens":
            return 0
        return int(np.all(self.scale(self.per_sequence(sequences)).values == self.pad_value, axis=1).sum())


def fit(train: SequenceData, spec: PreprocessingSpec) -> Preprocessor:
    """Learn input kind, maxlen, scaling, token range and bucket boundaries from training data.

    The targets are the task's to fit (:meth:`seqcli.tasks.base.Task.fit`): this leaves no classes and the task ``classify``.
    """
    kind = resolve_input(train, spec.input)
    if kind == "float" and spec.encoding != "embedding":
        raise DataError(
            f"`preprocessing.encoding: {spec.encoding}` applies to integer token codes and text, but {train.source} is read as float features "
            f"(`preprocessing.input: {spec.input}`, {train.n_features} feature(s) of dtype {train.sequences[0].dtype}). Remove `encoding`, or set `input: tokens` for integer codes."
        )
    options = dataclasses.asdict(spec.text) if kind == "text" else None
    vocabulary = text_mod.fit_vocabulary(train.texts or [], options) if options is not None else None
    pad_code = 0 if kind == "text" else spec.pad_code
    if vocabulary is not None and options is not None:
        if options["oov_token"] in vocabulary[2:]:
            raise DataError(
                f"The out-of-vocabulary token {options['oov_token']!r} occurs as a real token in the training text of {train.source}. "
                "Set `preprocessing.text.oov_token` to a string that does not occur, e.g. '[UNK]'."
            )
        train = tokenize(train, vocabulary, options)
        kind = "tokens"
    sequences = train.sequences
    if kind == "tokens":
        shaping = [key for key, on in (("znorm", spec.znorm), ("resample", spec.resample is not None)) if on]
        if shaping:
            raise DataError(
                f"`preprocessing.{shaping[0]}` transforms real-valued features, but {train.source} is read as integer token codes "
                f"(`preprocessing.input: {spec.input}`). Set `preprocessing.input: float` if the values are measurements, or remove `{shaping[0]}`."
            )
        codes = token_codes(sequences, pad_code, [f"{train.source}, {w}" for w in train.where], fitting=True)
        values, lengths = codes.values, codes.lengths
    else:
        sequences = reshaped(sequences, resample=spec.resample, shorten=spec.shorten, znorm=spec.znorm)
        lengths = sequences.lengths
    maxlen = resolve_maxlen(spec.maxlen, lengths)
    mean = std = None
    num_tokens = None
    if kind == "float" and spec.standardize:
        # Statistics over real timesteps only: (total_timesteps, features).
        steps = sequences.values
        mean = steps.mean(axis=0)
        std = steps.std(axis=0)
        std[std == 0] = 1.0
        mean, std = mean.tolist(), std.tolist()
    if kind == "tokens":
        # The highest code: for text the last vocabulary entry; for integer codes one more than seen, for unseen codes.
        num_tokens = len(vocabulary) - 1 if vocabulary is not None else int(values.max()) + 1
    boundaries = resolve_boundaries(spec, np.minimum(lengths, maxlen), maxlen)
    return Preprocessor(
        kind, train.n_features, maxlen, spec.padding, spec.truncating, spec.pad_value, [], mean, std, num_tokens, boundaries, spec.encoding, pad_code, options, vocabulary,
        znorm=spec.znorm and kind == "float", resample=spec.resample if kind == "float" else None, shorten=spec.shorten if kind == "float" else None,
    )


def reshaped(sequences: Sequences, *, resample: int | None, shorten: int | None, znorm: bool) -> Sequences:
    """The per-sequence transforms of float input, in order: every sequence resampled to ``resample`` timesteps, those
    (then) longer than ``shorten`` resampled to ``shorten`` (:func:`shortened`), then z-normalization (``znorm``)."""
    if resample is not None:
        sequences = resampled(sequences, resample)
    if shorten is not None:
        sequences = shortened(sequences, shorten)
    return znormed(sequences) if znorm else sequences


def resampled(sequences: Sequences, length: int) -> Sequences:
    """Every sequence linearly interpolated to ``length`` timesteps (its first and last kept): ``(samples, length, features)``
    as equal-length :class:`Sequences`; one vectorized gather.

    >>> resampled(Sequences.from_arrays([np.array([[0.0], [2.0]]), np.array([[5.0]])]), 3).values[:, 0].tolist()
    [0.0, 1.0, 2.0, 5.0, 5.0, 5.0]
    """
    lengths, starts = sequences.lengths, sequences.starts
    position = np.linspace(0.0, 1.0, length)[None, :] * (lengths[:, None] - 1)  # (samples, length): where each new step reads
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, lengths[:, None] - 1)
    weight = (position - low)[..., None]
    values = sequences.values.astype(np.float64, copy=False)
    return Sequences.from_dense(values[starts[:, None] + low] * (1.0 - weight) + values[starts[:, None] + high] * weight)


def shortened(sequences: Sequences, limit: int) -> Sequences:
    """The sequences longer than ``limit`` timesteps linearly interpolated to ``limit`` (:func:`resampled`: first and
    last step kept, the whole sequence read at a coarser step); the others unchanged. ``(timesteps_i, features)`` each.

    >>> shortened(Sequences.from_arrays([np.array([[0.0], [1.0], [2.0], [3.0], [4.0]]), np.array([[5.0]])]), 3).values[:, 0].tolist()
    [0.0, 2.0, 4.0, 5.0]
    """
    long = sequences.lengths > limit
    if not long.any():
        return sequences
    if long.all():
        return resampled(sequences, limit)
    short = resampled(sequences.subset(np.flatnonzero(long)), limit)
    rows = iter(short)
    return Sequences.from_arrays([next(rows) if is_long else sequence for sequence, is_long in zip(sequences, long, strict=True)])


def znormed(sequences: Sequences) -> Sequences:
    """Each sequence's every feature to mean 0 and std 1 over its own timesteps (a constant feature becomes 0).

    >>> znormed(Sequences.from_arrays([np.array([[1.0], [3.0]]), np.array([[4.0], [4.0]])])).values[:, 0].tolist()
    [-1.0, 1.0, 0.0, 0.0]
    """
    values = sequences.values.astype(np.float64, copy=False)
    if not len(values):
        return sequences.with_values(values)
    lengths = sequences.lengths[:, None]
    owner = np.repeat(np.arange(len(sequences)), sequences.lengths)  # the sequence of every timestep
    mean = np.add.reduceat(values, sequences.starts) / lengths
    centred = values - mean[owner]
    std = np.sqrt(np.add.reduceat(centred**2, sequences.starts) / lengths)
    std[std < 1e-8] = 1.0
    return sequences.with_values(centred / std[owner])


def tokenize(data: SequenceData, vocabulary: list[str], options: dict[str, Any]) -> SequenceData:
    """``data``'s texts as token codes ``(tokens_i, 1)``; a text without any token is an error naming it."""
    assert data.texts is not None
    codes = text_mod.to_codes(data.texts, vocabulary, options)
    empty = np.flatnonzero(codes.lengths == 0)
    if empty.size:
        i = int(empty[0])
        dropped = " once tokens outside the vocabulary are dropped (`preprocessing.text.oov_token: null`)" if options["oov_token"] is None else ""
        raise DataError(
            f"{data.source}, {data.where[i]}: the text {data.texts[i][:40]!r} has no {options['level']} tokens after tokenizing ({text_mod.describe(options)}){dropped}. "
            "Remove it, or change `preprocessing.text`."
        )
    step = Step(
        "tokenize", f"{len(codes)} x (tokens, 1)",
        f"{text_mod.describe(options)}; vocabulary of {len(vocabulary)} codes fitted on the training texts (0 padding, 1 {vocabulary[1]!r}); "
        f"{text_mod.oov_share(codes):.1%} of these tokens are out of vocabulary",
    )
    return dataclasses.replace(data, sequences=codes, steps=[*data.steps, step])


def resolve_boundaries(spec: PreprocessingSpec, lengths: np.ndarray, maxlen: int) -> list[int] | None:
    """Bucket boundaries (``[maxlen]``: sort all by length), or None without bucketing (the default for equal lengths)."""
    on = spec.bucketing if spec.bucketing is not None else bool(lengths.min() < lengths.max())
    if not on:
        return None
    return sorted({b for b in spec.bucket_boundaries or [] if b < maxlen} | {maxlen})


def resolve_input(data: SequenceData, declared: str) -> str:
    """``float``, ``tokens`` or ``text``: integer single-feature data is tokens under ``auto``."""
    if declared == "text" or data.texts is not None:
        if data.texts is None or declared != "text":
            raise DataError(f"{data.source}: `preprocessing.input: text` needs raw texts, read from .csv/.jsonl/.txt files with `input: text` set when loading.")
        return "text"
    if declared == "tokens":
        if data.n_features != 1:
            raise DataError(f"`preprocessing.input: tokens` needs one integer code per timestep, but {data.source} has {data.n_features} features per timestep. Use `input: float`.")
        fractional = np.flatnonzero(np.mod(data.sequences.values[:, 0], 1) != 0) if not data.is_integer else np.zeros(0)
        if fractional.size:
            i = int(np.searchsorted(data.sequences.starts, fractional[0], side="right")) - 1
            raise DataError(
                f"`preprocessing.input: tokens` but {data.source}, {data.where[i]} holds non-integer values such as {data.sequences.values[fractional[0], 0]}; "
                "casting them to integer codes would silently truncate them (the classic `pad_sequences(dtype='int32')` mistake). Use `input: float`."
            )
        return "tokens"
    if declared == "auto" and data.is_integer and data.n_features == 1:
        return "tokens"
    return "float"


def token_codes(sequences: Sequences, pad_code: int | None, where: list[str] | None = None, *, fitting: bool = False) -> Sequences:
    """Integer sequences ``(timesteps_i, 1)`` -> their codes ``(timesteps_i, 1)`` int64, without the padding.

    ``pad_code`` is stripped from both ends of every sequence; unless it is 0, the codes are shifted by 1, so 0 is
    free for padding (``pad_code`` null: nothing is stripped). A pad code between real codes, or a negative code,
    is an error naming the sequence; ``fitting``: so is a sequence of padding only. Vectorized: a million short
    sequences take about a second.

    >>> codes = token_codes(Sequences.from_arrays([np.array([[0], [3], [1], [0]]), np.array([[2]])]), pad_code=0)
    >>> codes.values[:, 0].tolist(), codes.lengths.tolist()
    ([3, 1, 2], [2, 1])
    >>> token_codes(Sequences.from_arrays([np.array([[-1], [0], [4]])]), pad_code=-1)[0][:, 0].tolist()
    [1, 5]
    """
    if not len(sequences):
        return Sequences(np.zeros((0, 1), np.int64), np.zeros(0, np.int64))
    raw_lengths = sequences.lengths
    flat = sequences.values[:, 0].astype(np.int64)  # (total_timesteps,)
    starts = sequences.starts
    position = np.arange(len(flat))
    real = np.ones(len(flat), bool) if pad_code is None else flat != pad_code
    seq_of = np.repeat(np.arange(len(sequences)), raw_lengths)  # sequence index of every timestep
    nonempty = raw_lengths > 0
    first = np.full(len(sequences), len(flat))
    last = np.full(len(sequences), -1)
    first[nonempty] = np.minimum.reduceat(np.where(real, position, len(flat)), starts[nonempty])
    last[nonempty] = np.maximum.reduceat(np.where(real, position, -1), starts[nonempty])
    keep = (position >= first[seq_of]) & (position <= last[seq_of])

    def place(i: int) -> str:
        return where[i] if where else f"sequence {i}"

    inside = np.flatnonzero(keep & ~real)
    if inside.size:
        i = int(seq_of[inside[0]])
        raise DataError(
            f"{place(i)}: code {pad_code} at timestep {int(inside[0] - starts[i])} lies between real codes, but {pad_code} is the padding code "
            f"(`preprocessing.pad_code`), so it would be masked like padding. If the data has no padding, set `preprocessing.pad_code: null`; "
            f"if it is padded with another code, set `pad_code` to that code; if {pad_code} is both a symbol and the padding, re-encode the data with {pad_code} free (e.g. codes + 1)."
        )
    negative = np.flatnonzero(keep & (flat < 0))
    if negative.size:
        i = int(seq_of[negative[0]])
        raise DataError(
            f"{place(i)}: token code {int(flat[negative[0]])} is negative; codes must be integers >= 0 (0 is padding). "
            "Fix the codes, set `preprocessing.pad_code` if this is the padding code, or set `preprocessing.input: float` if the values are measurements."
        )
    lengths = np.where(last >= first, last - first + 1, 0)
    if fitting and (lengths == 0).any():
        i = int(np.flatnonzero(lengths == 0)[0])
        raise DataError(
            f"{place(i)}: every token code is {pad_code} (padding), so the sequence is empty. "
            "Remove it, set `preprocessing.pad_code` to the code that really pads the data (null: none), or set `preprocessing.input: float` if the values are measurements."
        )
    values = flat[keep]
    return Sequences((values if pad_code == 0 else values + 1)[:, np.newaxis], lengths)


def resolve_maxlen(maxlen: int | str | None, lengths: np.ndarray) -> int:
    """The padded length: the longest sequence, a fixed number, or a length percentile."""
    if maxlen is None:
        return int(lengths.max())
    percentile = maxlen_percentile(maxlen)
    if percentile is not None:
        return max(1, math.ceil(np.percentile(lengths, percentile)))
    return int(maxlen)
