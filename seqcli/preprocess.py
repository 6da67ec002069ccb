"""Fitted, saved transforms: label encoding, scaling, token codes, padding/truncation.

:func:`fit` learns everything from the training data only; the resulting
:class:`Preprocessor` is plain data (saved as JSON in the run) and turns any list
of sequences into one model-ready array. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.spec import PreprocessingSpec, maxlen_percentile


@dataclass
class Preprocessor:
    """Everything needed to turn raw sequences into model input, fitted on training data.

    ``input`` is ``"float"`` (output ``(batch, maxlen, features)`` float32, padding
    masked by ``Masking(mask_value=pad_value)``) or ``"tokens"`` (output
    ``(batch, maxlen)`` int32, code 0 is padding and ``num_tokens`` stands for codes
    unseen in training, masked by ``Embedding(mask_zero=True)``). With length
    bucketing, ``boundaries`` are the bucket widths (the last is ``maxlen``) and a
    batch is padded only to its bucket's width.
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

    def prepare(self, sequences: list[np.ndarray], where: list[str] | None = None) -> list[np.ndarray]:
        """Check, scale and truncate to maxlen, without padding: ``(timesteps_i, features)`` each (batches pad later)."""
        self.check_features(sequences, where)
        scaled = self.scale(sequences, where)
        return [s[: self.maxlen] if self.truncating == "post" else s[-self.maxlen :] for s in scaled]

    def scale(self, sequences: list[np.ndarray], where: list[str] | None = None) -> list[np.ndarray]:
        """Standardize float sequences, or map token codes; each stays (timesteps, features)."""
        if self.input == "tokens":
            return [_tokens(seq, self.num_tokens, where[i] if where else f"sequence {i}") for i, seq in enumerate(sequences)]
        if self.mean is None or self.std is None:
            return [seq.astype(np.float64, copy=False) for seq in sequences]
        mean, std = np.asarray(self.mean), np.asarray(self.std)
        return [(seq - mean) / std for seq in sequences]

    def check_features(self, sequences: list[np.ndarray], where: list[str] | None = None) -> None:
        for i, seq in enumerate(sequences):
            if seq.shape[1] != self.n_features:
                place = where[i] if where else f"sequence {i}"
                raise DataError(
                    f"{place} has {seq.shape[1]} features per timestep, but the model was trained on {self.n_features}. "
                    f"Give data with the same {self.n_features} features, in the same order as in training."
                )

    def encode_labels(self, data: SequenceData) -> np.ndarray:
        """Class indices ``(samples,)`` for the data's labels; unseen labels are an error."""
        assert data.labels is not None
        index = {name: i for i, name in enumerate(self.classes)}
        names = [_label_name(v) for v in data.labels]
        for i, name in enumerate(names):
            if name not in index:
                raise DataError(
                    f"{data.source}, {data.where[i]}: label {name!r} was not among the training classes "
                    f"({', '.join(self.classes)}). Remove those sequences or add the class to the training data."
                )
        return np.array([index[n] for n in names], dtype=np.int64)

    def masked_collisions(self, sequences: list[np.ndarray]) -> int:
        """Real timesteps whose every feature equals the pad value (they would be masked)."""
        if self.input == "tokens":
            return sum(int((_tokens(s, self.num_tokens)[:, 0] == 0).sum()) for s in sequences)
        return sum(int(np.all(s == self.pad_value, axis=1).sum()) for s in self.scale(sequences))


def fit(train: SequenceData, spec: PreprocessingSpec, classes: list[str] | None = None) -> Preprocessor:
    """Learn input kind, maxlen, scaling, token range, bucket boundaries and classes from training data.

    ``classes`` replaces the class names learnt from the labels (for unlabelled data in ``inspect-shapes``).
    """
    kind = resolve_input(train, spec.input)
    sequences = train.sequences
    if kind == "tokens":
        sequences = [strip_token_padding(s) for s in sequences]
        for i, seq in enumerate(sequences):
            place = f"{train.source}, {train.where[i]}"
            _check_codes(seq, place)
            if len(seq) == 0:
                raise DataError(
                    f"{place}: every token code is 0 (padding), so the sequence is empty. "
                    "Remove it, or set `preprocessing.input: float` if 0 is a real value."
                )
    lengths = np.array([len(s) for s in sequences])
    maxlen = resolve_maxlen(spec.maxlen, lengths)
    mean = std = None
    num_tokens = None
    if kind == "float" and spec.standardize:
        # Statistics over real timesteps only: (total_timesteps, features).
        steps = np.concatenate(sequences, axis=0)
        mean = steps.mean(axis=0)
        std = steps.std(axis=0)
        std[std == 0] = 1.0
        mean, std = mean.tolist(), std.tolist()
    if kind == "tokens":
        num_tokens = int(max(int(s.max()) for s in sequences if len(s))) + 1
    classes = classes if classes is not None else class_names(train)
    boundaries = resolve_boundaries(spec, np.minimum(lengths, maxlen), maxlen)
    return Preprocessor(kind, train.n_features, maxlen, spec.padding, spec.truncating, spec.pad_value, classes, mean, std, num_tokens, boundaries)


def resolve_boundaries(spec: PreprocessingSpec, lengths: np.ndarray, maxlen: int) -> list[int] | None:
    """Bucket boundaries (``[maxlen]``: sort all by length), or None without bucketing (the default for equal lengths)."""
    on = spec.bucketing if spec.bucketing is not None else bool(lengths.min() < lengths.max())
    if not on:
        return None
    return sorted({b for b in spec.bucket_boundaries or [] if b < maxlen} | {maxlen})


def resolve_input(data: SequenceData, declared: str) -> str:
    """``float`` or ``tokens``: integer single-feature data is tokens under ``auto``."""
    if declared == "tokens":
        if data.n_features != 1:
            raise DataError(f"`preprocessing.input: tokens` needs one integer code per timestep, but {data.source} has {data.n_features} features per timestep. Use `input: float`.")
        if not data.is_integer:
            for i, seq in enumerate(data.sequences):
                if not np.all(np.mod(seq, 1) == 0):
                    raise DataError(
                        f"`preprocessing.input: tokens` but {data.source}, {data.where[i]} holds non-integer values such as {seq[np.mod(seq, 1) != 0][0]}; "
                        "casting them to integer codes would silently truncate them (the classic `pad_sequences(dtype='int32')` mistake). Use `input: float`."
                    )
        return "tokens"
    if declared == "auto" and data.is_integer and data.n_features == 1:
        return "tokens"
    return "float"


def strip_token_padding(tokens: np.ndarray) -> np.ndarray:
    """Drop leading and trailing 0 codes (existing padding) from a ``(timesteps, 1)`` token sequence."""
    nonzero = np.flatnonzero(tokens[:, 0])
    if nonzero.size == 0:
        return tokens[:0]
    return tokens[nonzero[0] : nonzero[-1] + 1]


def resolve_maxlen(maxlen: int | str | None, lengths: np.ndarray) -> int:
    """The padded length: the longest sequence, a fixed number, or a length percentile."""
    if maxlen is None:
        return int(lengths.max())
    percentile = maxlen_percentile(maxlen)
    if percentile is not None:
        return max(1, math.ceil(np.percentile(lengths, percentile)))
    return int(maxlen)


def class_names(data: SequenceData) -> list[str]:
    """Sorted class names (numerically when every label is a number)."""
    if data.labels is None:
        raise DataError(f"{data.source} has no labels; training data needs one label per sequence.")
    names = sorted({_label_name(v) for v in data.labels}, key=_numeric_first)
    if len(names) < 2:
        raise DataError(f"The training data in {data.source} has a single class ({names[0]!r}); a classifier needs at least two. Check the label column or file.")
    return names


def _numeric_first(name: str) -> tuple[int, float, str]:
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _label_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def _check_codes(codes: np.ndarray, place: str) -> None:
    if (codes < 0).any():
        raise DataError(
            f"{place}: token code {int(codes.min())} is negative; codes must be integers >= 0 (0 is padding). "
            "Fix the codes, or set `preprocessing.input: float` if the values are measurements."
        )


def _tokens(seq: np.ndarray, num_tokens: int | None, place: str = "a sequence") -> np.ndarray:
    codes = strip_token_padding(seq.astype(np.int64))
    _check_codes(codes, place)
    assert num_tokens is not None
    return np.where(codes >= num_tokens, num_tokens, codes)


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` holding out ``fraction`` of every class (seeded)."""
    rng = np.random.default_rng(seed)
    names = np.array([_label_name(v) for v in labels])
    held: list[int] = []
    for name in sorted(set(names)):
        members = np.flatnonzero(names == name)
        rng.shuffle(members)
        count = round(len(members) * fraction)
        held.extend(members[: min(count, len(members) - 1)])
    validation = np.sort(np.array(held, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    if validation.size == 0:
        raise DataError(
            f"`data.validation_split: {fraction}` of {len(labels)} training sequences leaves an empty validation set. "
            "Raise the fraction, give `data.validation`, or set `validation_split: 0` and `training.monitor: loss`."
        )
    return train, validation
