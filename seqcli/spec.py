"""The YAML experiment spec: schema, defaults, validation, overrides, resolved dump.

The schema is the dataclasses below; each field carries its documentation and,
where needed, a range check. :func:`load_spec` is the one place where a spec is
validated: unknown keys (with the closest valid key suggested), wrong types and
ranges are reported with the field's dotted path, what was expected, what was
received, the line in the file and the fix. No TensorFlow here.
"""

from __future__ import annotations

import copy
import dataclasses
import decimal
import difflib
import functools
import math
import os
import re
import types
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

import yaml

from seqcli import recipe as recipe_mod
from seqcli.errors import SpecError
from seqcli.fingerprint import file_key, spec_files

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

REQUIRED: Final = dataclasses.MISSING
_D = TypeVar("_D", bound="DataclassInstance")


@dataclass(frozen=True)
class Check:
    """A range check: ``test(value)`` must hold; ``expected`` says what is allowed. ``at_most``: an upper bound of a
    number, reported as "too large" and shown in the spec reference; ``why``: the reason for it, in parentheses."""

    test: Callable[[Any], bool]
    expected: str
    at_most: int | None = None
    why: str = ""
    fix: str = ""  # the fix when ``test`` fails; empty: the default's example
    explain: Callable[[Any], str | None] | None = None  # what is wrong with a value that fails ``test``

    def up_to(self, at_most: int, why: str = "") -> Check:
        return dataclasses.replace(self, at_most=at_most, why=why)

    def too_large(self, value: Any) -> bool:
        return self.at_most is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value > self.at_most

    def bound(self) -> str:
        """``at most 16,384`` (with the reason), for messages and the spec reference."""
        return f"at most {self.at_most:,}" + (f" ({self.why})" if self.why else "")


# Upper bounds: far beyond what a spec needs, low enough that nothing downstream overflows or tries a huge allocation
# before the memory estimate (seqcli/memory.py) can say what the model needs.
MAX_UNITS = 16_384
MAX_BATCH_SIZE = 65_536
MAX_EPOCHS = 100_000
MAX_MAXLEN = 1_000_000
MAX_SEED = 2**32 - 1
MAX_ENSEMBLE = 50
INT32 = 2**31 - 1

POSITIVE = Check(lambda v: v >= 1, "a positive integer")
NON_NEGATIVE = Check(lambda v: v >= 0, "a non-negative integer")
UNITS = POSITIVE.up_to(MAX_UNITS)
EPOCHS = POSITIVE.up_to(MAX_EPOCHS)
SEED = NON_NEGATIVE.up_to(MAX_SEED, "NumPy and Keras seeds are 32-bit")
ENSEMBLE = POSITIVE.up_to(MAX_ENSEMBLE, "each member is a full training")
PAD_CODE = Check(lambda v: -INT32 - 1 <= v <= INT32, f"an integer from {-INT32 - 1:,} to {INT32:,} (token codes are int32), or null")
RATE = Check(lambda v: 0.0 <= v < 1.0, "a fraction in [0, 1)")
POSITIVE_FLOAT = Check(lambda v: v > 0.0, "a positive number")
NON_NEGATIVE_FLOAT = Check(lambda v: v >= 0.0, "a non-negative number")
FACTOR = Check(lambda v: 0.0 < v < 1.0, "a fraction in (0, 1)")
WINDOW = Check(lambda v: 0.0 < v <= 1.0, "a fraction in (0, 1]")
CLASS_WEIGHT = Check(lambda v: v == "balanced" or all(w > 0 for w in v.values()), "'balanced', or a mapping of class names to positive weights")
VOCABULARY_SIZE = Check(lambda v: v >= 3, "an integer >= 3 (padding, the OOV entry and at least one token), or null").up_to(INT32, "token codes are int32")
MAXLEN = Check(
    lambda v: (isinstance(v, int) and v >= 1) or (isinstance(v, str) and _percentile(v) is not None),
    "null (the longest training sequence), a positive integer, or a percentile such as 'p95'",
).up_to(MAX_MAXLEN)

RUN_FOLDER = Check(
    lambda v: folder_name_problem(v) is None,
    "a folder name: not empty, not '.' or '..', without '/', '\\' or control characters, at most 255 bytes",
    fix="Spaces and non-ASCII letters are fine, e.g. 'my experiment'; remove the key to name runs after the spec file.",
    explain=lambda v: folder_name_problem(v),
)


def folder_name_problem(name: str) -> str | None:
    """What keeps ``name`` from naming one folder (``output.name``), or None when it can."""
    if not name.strip():
        return "it is empty" if not name else "it is only spaces"
    if name in (".", ".."):
        return f"{name!r} stands for {'the folder itself' if name == '.' else 'the folder above'}"
    separators = [c for c in ("/", "\\", os.sep, os.altsep) if c and c in name]
    if separators:
        return f"it contains '{separators[0]}', a path separator"
    control = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    if control is not None:
        return f"it contains the control character {control!r}"
    if len(name.encode("utf-8")) > 255:
        return f"it is {len(name.encode('utf-8'))} bytes long; file systems allow 255"
    return None


def keras_name(name: str | None) -> str:
    """A model name that every Keras backend accepts (TensorFlow's scope names are ASCII letters, digits and ``_.-``),
    made from ``output.name``: accents dropped, other characters replaced by ``_``.

    >>> keras_name("my experiment"), keras_name("nämé"), keras_name("日本"), keras_name("smoke")
    ('my_experiment', 'name', 'seqcli', 'smoke')
    """
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", ascii_name).strip("_.-")
    return cleaned if cleaned and cleaned[0].isalnum() else "seqcli"


def _percentile(text: str) -> float | None:
    match = re.fullmatch(r"p(\d{1,2}(?:\.\d+)?|100)", text)
    if match is None:
        return None
    value = float(match.group(1))
    return value if 0 < value <= 100 else None


def opt(default: Any, doc: str, check: Check | None = None) -> Any:
    """A spec field with its default, one-line documentation and optional range check."""
    meta = {"doc": doc, "check": check}
    if isinstance(default, list) or dataclasses.is_dataclass(default):
        factory = (
            (lambda d=default: [dataclasses.replace(x) if dataclasses.is_dataclass(x) and not isinstance(x, type) else x for x in d])
            if isinstance(default, list) else (lambda d=default: dataclasses.replace(d))
        )
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# --------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class TaskKind:
    """What a task predicts, which decides how targets are read and checked: one target per sequence or one per
    timestep; class labels or real values (regression). Each has its implementation in :mod:`seqcli.tasks`."""

    name: str
    per_timestep: bool
    numeric: bool
    doc: str


TASK_KINDS = {
    kind.name: kind
    for kind in (
        TaskKind("classify", False, False, "one class label per sequence (softmax over the classes, or one sigmoid unit for two)"),
        TaskKind("tag", True, False, "one class label per timestep (a softmax at every timestep; padded timesteps count in neither loss nor metrics)"),
        TaskKind("regress", False, True, "one real value, or a vector of them, per sequence (standardized on the training split; loss mse, mae or huber)"),
        TaskKind(
            "regress_timesteps", True, True,
            "one real value, or a vector of them, per timestep (the loss and the metrics cover real timesteps only)",
        ),
    )
}
TaskName = Literal["classify", "tag", "regress", "regress_timesteps"]


# --------------------------------------------------------------------------- schema


@dataclass
class DataFile:
    """One data file (a string is shorthand for ``{path: ...}``)."""

    path: str = opt(REQUIRED, "Data file, relative to the spec file: .npy, .npz, .ts, .csv, .jsonl (or .txt, raw text without labels).")
    labels: str | None = opt(None, "Labels as a separate .npy file (one label per sequence); for .npy data.")


@dataclass
class NpzKeys:
    x: str = opt("x", "Array of sequences: (samples, timesteps[, features]), or flat values when `lengths` is present.")
    y: str = opt("y", "Array of labels, one per sequence (`task: tag`: one per timestep, (samples, timesteps), or (total_timesteps,) with `lengths`).")
    lengths: str = opt("lengths", "Optional array of sequence lengths; then `x` holds all sequences concatenated, (total_timesteps[, features]).")


DELIMITER = Check(
    lambda v: len(v) == 1 and v not in "\"\r\n",
    "a single character such as ',', ';', '|' or \"\\t\" (a tab: in double quotes), or null (detected from the header line)",
)


@dataclass
class CsvOptions:
    id_column: str = opt("id", "Column that groups rows (timesteps) into sequences.")
    time_column: str | None = opt("time", "Column that orders the rows of a sequence; null keeps file order.")
    label_column: str | None = opt("label", "Column with the sequence's label or target (the same on every row of a sequence; per-timestep tasks: each row's own); null for unlabelled data.")
    target_columns: list[str] | None = opt(None, "Regression with several targets: the target columns, in order (read like `label_column`); null: `label_column` alone.")
    feature_columns: list[str] | None = opt(None, "Feature columns in order; null means every other column.")
    text_column: str = opt("text", "With `preprocessing.input: text`: the column with each sequence's raw text, one row per sequence (`id_column`, if present, names it).")
    delimiter: str | None = opt(
        None, "The character between cells, e.g. ';' (a tab: \"\\t\"). null: whichever of comma, semicolon, tab and vertical bar the header line holds most (a comma if none).", DELIMITER
    )
    allow_scattered_ids: bool = opt(
        False, "Join an id's rows that are in separate blocks of the file (other ids between them) into one sequence; false: an error, since such an id usually names two sequences."
    )
    allow_duplicate_times: bool = opt(False, "Keep rows of a sequence that share a `time_column` value, in file order; false: an error naming the rows.")


@dataclass
class JsonlOptions:
    id_key: str = opt("id", "Key of a record's id; records without it are named by their line number.")
    sequence_key: str = opt("sequence", "Key of the sequence: a list of timesteps, each a list of features ([[f1, f2], ...]) or one number ([v1, v2, ...]).")
    text_key: str = opt("text", "Key of the raw text, read instead of `sequence_key` with `preprocessing.input: text`.")
    label_key: str | None = opt("label", "Key of the label (`task: tag`: a list, one label per timestep); null for unlabelled data.")


@dataclass
class DataSpec:
    train: DataFile = opt(REQUIRED, "Training data (required).")
    validation: DataFile | None = opt(None, "Separate validation data; when null, `validation_split` of the training data is held out.")
    test: DataFile | None = opt(None, "Test data, evaluated once after training.")
    validation_split: float = opt(0.2, "Fraction of training data held out for validation when `validation` is null (stratified by class for classify, random otherwise); 0 disables validation. "
        "The recommended recipe sets 0 when the spec has a test file and no validation settings.", RATE)
    format: Literal["auto", "npy", "npz", "ts", "csv", "jsonl", "txt"] = opt("auto", "File format; auto picks it from the file extension (.jsonl and .ndjson are jsonl).")
    layout: Literal["channels_last", "channels_first"] = opt(
        "channels_last", "Axis order of 3-D arrays: (samples, timesteps, features) or (samples, features, timesteps); channels_first is transposed. .ts files are always channels-first."
    )
    npz: NpzKeys = opt(NpzKeys(), "Array names inside .npz files.")
    csv: CsvOptions = opt(CsvOptions(), "Long-format CSV: one row per timestep (for text: one row per sequence).")
    jsonl: JsonlOptions = opt(JsonlOptions(), "JSON Lines: one JSON object per line and sequence.")
    target_names: list[str] | None = opt(
        None, "Regression: names of the targets, in order, for files that do not name them (.ts, .npy/.npz, JSON Lines); CSV target columns name themselves. null: target, or 0, 1, ..."
    )


@dataclass
class TextSpec:
    level: Literal["word", "char"] = opt("word", "Tokens: words (split on whitespace) or characters (spaces included).")
    max_tokens: int | None = opt(None, "Vocabulary size including padding (code 0) and the OOV entry (code 1): the most frequent training tokens are kept; null: all.", VOCABULARY_SIZE)
    lowercase: bool = opt(True, "Lower-case the text first (Unicode-aware).")
    strip_punctuation: bool | None = opt(None, "Remove ASCII punctuation before splitting. null: for words yes, for characters no.")
    oov_token: str | None = opt("[UNK]", "Vocabulary entry (code 1) for tokens outside the vocabulary; null drops such tokens instead.")


@dataclass
class PreprocessingSpec:
    input: Literal["auto", "float", "tokens", "text"] = opt(
        "auto",
        "float: real-valued features with Masking; tokens: integer codes (see `encoding`, `pad_code`); text: raw strings from .csv/.jsonl/.txt, tokenized with a vocabulary "
        "fitted on the training data (see `text`); auto: tokens for integer data with one value per timestep, else float.",
    )
    encoding: Literal["embedding", "one_hot", "float"] = opt(
        "embedding",
        "How token codes and text enter the LSTMs, looked up per batch inside the model: embedding (learned vectors of `model.embedding_dim`), "
        "one_hot (one feature per code), float (the code as one number, code / highest code). Padding is masked in all three.",
    )
    pad_code: int | None = opt(
        0, "Code that pads integer token data (stripped from both ends of each sequence; an error inside one). null: the data has no padding, every code is a symbol.", PAD_CODE
    )
    text: TextSpec = opt(TextSpec(), "Tokenization of text input.")
    maxlen: int | str | None = opt(None, "Timesteps after padding/truncation: null (longest training sequence), an integer, or a percentile of training lengths such as 'p95'.", MAXLEN)
    padding: Literal["post", "pre"] = opt("post", "Side where padding goes. post keeps masks right-padded (and the fast cuDNN kernel usable).")
    truncating: Literal["post", "pre"] = opt("post", "Side cut from sequences longer than maxlen: post drops the end, pre the beginning.")
    pad_value: float = opt(0.0, "Value used for padding float features and, the same value, for masking them.")
    standardize: bool = opt(True, "Per-feature standardization (mean 0, std 1) fitted on the real timesteps of the training data; float input only.")
    znorm: bool = opt(
        False, "Per-sequence z-normalization (the UCR convention): each sequence's every feature to mean 0, std 1 over its own real timesteps, before `standardize`; float input only."
    )
    resample: int | None = opt(
        None,
        "Resample every sequence to this many timesteps by linear interpolation, before scaling: fixed-length input without padding; float input and per-sequence tasks only. "
        "null: off.",
        POSITIVE.up_to(MAX_MAXLEN),
    )
    shorten: int | None = opt(
        None,
        "Resample only the sequences longer than this many timesteps, to this many, by linear interpolation, before scaling (shorter ones keep their length): "
        "the whole of a long series at a coarser step, where `maxlen` would cut it; fewer timesteps for every layer to run over. After `resample`. "
        "Per-sequence tasks only; token codes and text keep their length. null: off.",
        POSITIVE.up_to(MAX_MAXLEN),
    )
    bucketing: bool | None = opt(None, "Length bucketing: batches of sequences sorted by length, each padded only to its longest one. null: on when lengths vary.")
    bucket_boundaries: list[int] | None = opt(None, "Lengths that no batch crosses, ascending (e.g. to keep very long sequences apart); null: none.")


@dataclass
class RecurrentLayer:
    units: int = opt(64, "Hidden units (per direction when bidirectional).", UNITS)
    cell: Literal["lstm", "gru"] = opt("lstm", "Recurrent cell: lstm, or gru (3 gates instead of 4: a quarter fewer weights).")
    bidirectional: bool = opt(False, "Also read each sequence backwards; the two directions' outputs are concatenated (2 x units).")
    dropout: float = opt(0.0, "Dropout on the layer's inputs.", RATE)
    recurrent_dropout: float = opt(0.0, "Dropout on the recurrent state; > 0 disables the fast cuDNN kernel on a GPU.", RATE)
    return_sequences: bool | None = opt(None, "null: set by seqcli (true for every recurrent layer but the last, and for the last too with `model.pooling` other than [last]).")
    layer_norm: bool = opt(False, "LayerNormalization of this layer's outputs (per timestep, so padding cannot change it), before the next layer.")


@dataclass
class DenseLayer:
    units: int = opt(REQUIRED, "Units (required).", UNITS)
    activation: Literal["relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "linear"] = opt("relu", "Activation function.")
    dropout: float = opt(0.0, "Dropout after this layer.", RATE)


ConvActivation = Literal["relu", "gelu", "tanh", "elu", "selu", "swish", "linear"]
ConvNormalization = Literal["layer", "batch", "none"]
Pooling = Literal["last", "mean", "max", "attention"]
CONV_NORMALIZATION_DOC = (
    "After each convolution: layer (LayerNormalization per timestep), batch (BatchNormalization whose training statistics count real timesteps only), or none. "
    "Padding changes neither."
)


@dataclass
class ConvBlock:
    filters: int = opt(64, "Output channels of the convolution.", POSITIVE)
    kernel_size: int = opt(5, "Timesteps each output step sees, centred; the sequence is extended with zeros at both ends.", POSITIVE)
    stride: int = opt(
        1, "Step between outputs: s > 1 keeps ceil(length / s) timesteps (each real iff the input step it starts at is real); 1 keeps the length. Needs `preprocessing.padding: post`.", POSITIVE
    )
    pool: int = opt(
        1, "Max pooling over windows of this many steps after the block (real steps only): ceil(length / pool) timesteps; 1: none. Needs `preprocessing.padding: post`.", POSITIVE
    )


@dataclass
class FrontendSpec:
    blocks: list[ConvBlock] = opt(
        [ConvBlock()],
        "Conv1D blocks, input side first, each: padding zeroed, convolution, normalization, activation, pooling, padding zeroed. Strides and pools shorten the sequence the recurrent layers read.",
    )
    normalization: ConvNormalization = opt("layer", CONV_NORMALIZATION_DOC)
    activation: ConvActivation = opt("relu", "Activation after the normalization.")


@dataclass
class FcnSpec:
    blocks: list[ConvBlock] = opt(
        [ConvBlock(128, 8), ConvBlock(256, 5), ConvBlock(128, 3)],
        "Conv1D blocks on the input, input side first, as in `model.frontend.blocks`; the default is LSTM-FCN's (Karim et al.). Their output is averaged over the real timesteps.",
    )
    normalization: ConvNormalization = opt("batch", CONV_NORMALIZATION_DOC)
    activation: ConvActivation = opt("relu", "Activation after the normalization.")


@dataclass
class KernelsSpec:
    features: int = opt(
        10_000, "About this many features (a multiple of 84: 84 kernels, each at several dilations with several biases), MiniRocket's default.", POSITIVE.up_to(50_000)
    )


@dataclass
class NgramsSpec:
    longest: int = opt(4, "N-grams of 1 to this many tokens (characters, for `text.level: char`).", POSITIVE.up_to(8))
    buckets: int = opt(131_072, "Rows of the n-gram embedding table; n-grams are hashed into them (more rows, fewer collisions, more weights).", POSITIVE.up_to(4_194_304))
    dim: int = opt(32, "Width of each row, and of the branch's output vector.", UNITS)


@dataclass
class ModelSpec:
    frontend: FrontendSpec | None = opt(
        None,
        "Convolutional front-end before the recurrent layers (of the input that `data` describes); the mask is shortened with the sequence. null: none, the input goes to the recurrent layers.",
    )
    layers: list[RecurrentLayer] = opt([RecurrentLayer()], "Stacked recurrent layers (LSTM or GRU), input side first.")
    pooling: list[Pooling] = opt(
        ["last"],
        "How the last recurrent layer's outputs become one vector per sequence: last (its final state), mean, max (over real timesteps), attention (a learned softmax "
        "weighting of the real timesteps); several are concatenated. Anything but [last] makes the last layer return sequences. Per-sequence tasks only.",
    )
    fcn: FcnSpec | None = opt(
        None, "A fully convolutional branch beside the recurrent layers (LSTM-FCN), on the same input; its masked average over time is concatenated with the pooled recurrent output. null: none."
    )
    kernels: KernelsSpec | None = opt(
        None,
        "A random convolutional kernel branch beside the recurrent layers (MiniRocket's features: 84 fixed kernels at dilations spread over `maxlen`, biases fitted on the "
        "training split, the share of real timesteps above each bias), standardized and concatenated with the other vectors. Real-valued input, per-sequence tasks. null: none.",
    )
    ngrams: NgramsSpec | None = opt(
        None,
        "An n-gram bag branch beside the recurrent layers (fastText's shape): every n-gram of 1 to `longest` tokens hashed into a learned embedding table, the rows of the "
        "sequence's n-grams without padding summed and divided by the square root of their number, and concatenated with the other vectors. Token or text input, per-sequence tasks. null: none.",
    )
    dense: list[DenseLayer] = opt([], "The classifier head: dense layers between the last recurrent layer and the output layer, e.g. [{units: 32, dropout: 0.2}].")
    embedding_dim: int = opt(32, "Embedding size for token input.", UNITS)
    output: Literal["softmax", "sigmoid"] = opt("softmax", "Output layer: softmax over all classes, or sigmoid (two classes only).")


@dataclass
class EarlyStoppingSpec:
    patience: int = opt(10, "Epochs without improvement of `training.monitor` before stopping.", EPOCHS)
    min_delta: float = opt(0.0, "Smallest change that counts as an improvement.", NON_NEGATIVE_FLOAT)


Monitor = Literal["val_loss", "val_accuracy", "val_mae", "val_rmse", "loss", "accuracy", "mae", "rmse"]
Metric = Literal["accuracy", "auc", "mae", "rmse"]
CLASSIFICATION_METRICS, REGRESSION_METRICS = ("accuracy", "auc"), ("mae", "rmse")
CLASSIFICATION_LOSSES, REGRESSION_LOSSES = ("sparse_categorical_crossentropy", "binary_crossentropy"), ("mse", "mae", "huber")


@dataclass
class LRScheduleSpec:
    type: Literal["reduce_on_plateau", "cosine", "exponential"] = opt(
        "reduce_on_plateau",
        "reduce_on_plateau: multiply the rate by `factor` after `patience` epochs without improvement of `monitor`; "
        "cosine: decay from `training.learning_rate` towards `min_lr` over `training.epochs` (half a cosine wave); exponential: multiply by `factor` every epoch.",
    )
    factor: float = opt(0.5, "Multiplier of reduce_on_plateau and exponential.", FACTOR)
    patience: int = opt(5, "reduce_on_plateau: epochs without improvement before the rate is reduced.", EPOCHS)
    min_delta: float = opt(0.0, "reduce_on_plateau: smallest change of `monitor` that counts as an improvement.", NON_NEGATIVE_FLOAT)
    min_lr: float = opt(0.0, "Lower bound of the learning rate.", NON_NEGATIVE_FLOAT)
    monitor: Monitor | None = opt(None, "reduce_on_plateau: the quantity to watch; null: `training.monitor`.")


@dataclass
class AugmentSpec:
    """On-the-fly augmentation of training batches (never of validation, test or predict data)."""

    jitter: float = opt(0.0, "Gaussian noise of this standard deviation added to every real timestep's features (after scaling); 0: off.", NON_NEGATIVE_FLOAT)
    scaling: float = opt(0.0, "Each sequence's features multiplied by a factor drawn from N(1, this); 0: off.", NON_NEGATIVE_FLOAT)
    magnitude_warp: float = opt(0.0, "Each sequence multiplied by a smooth random curve through 4 knots drawn from N(1, this); 0: off.", NON_NEGATIVE_FLOAT)
    time_warp: float = opt(
        0.0, "Each sequence's time axis distorted smoothly (4 knots of speed drawn from N(1, this)) and resampled to its own length; 0: off. Per-sequence tasks only.", NON_NEGATIVE_FLOAT
    )
    window: float = opt(1.0, "Window slicing: each sequence cut to a random window of this fraction of its timesteps; 1: off. Per-sequence tasks only.", WINDOW)


@dataclass
class TrainingSpec:
    epochs: int = opt(30, "Maximum number of epochs.", EPOCHS)
    batch_size: int = opt(32, "Sequences per batch.", POSITIVE.up_to(MAX_BATCH_SIZE))
    optimizer: Literal["adam", "adamw", "rmsprop", "sgd"] = opt("adam", "Optimizer.")
    learning_rate: float = opt(0.001, "Learning rate (the initial one with `lr_schedule`).", POSITIVE_FLOAT)
    clip_norm: float | None = opt(
        None, "Gradient clipping: each step's gradients are scaled down to this global norm when above it (Keras' `global_clipnorm`). null: no clipping.", POSITIVE_FLOAT
    )
    weight_decay: float | None = opt(
        None, "Decoupled weight decay (Keras' `weight_decay`, for every optimizer): each step shrinks the weights by learning_rate x weight_decay. null: the optimizer's own (none; adamw 0.004).",
        NON_NEGATIVE_FLOAT,
    )
    lr_schedule: LRScheduleSpec | None = opt(None, "Learning-rate schedule, applied at the start of each epoch; null keeps `learning_rate` constant.")
    loss: Literal["auto", "sparse_categorical_crossentropy", "binary_crossentropy", "mse", "mae", "huber"] = opt(
        "auto", "auto: sparse categorical cross-entropy for softmax, binary cross-entropy for sigmoid, mse for the regression tasks. mse, mae, huber: regression only."
    )
    metrics: list[Metric] | None = opt(
        None,
        "Metrics logged every epoch. null: accuracy for classify and tag, mae for the regression tasks (on the standardized targets; "
        "metrics.json reports the original units). auc needs model.output: sigmoid; mae and rmse are for regression.",
    )
    monitor: Monitor = opt(
        "val_loss", "Quantity that picks the best checkpoint and drives early stopping. The recommended recipe sets `loss` where it holds out no validation data."
    )
    early_stopping: EarlyStoppingSpec | None = opt(EarlyStoppingSpec(), "Early stopping; null trains for all epochs.")
    shuffle: bool = opt(True, "Shuffle training sequences every epoch (seeded).")
    class_weight: Literal["balanced"] | dict[str, float] | None = opt(
        None,
        "Weight of each class in the training loss: 'balanced' (samples / (classes x class count), from the training split), "
        "or a mapping {class name: weight} (unnamed classes get 1); null: all 1.",
        CLASS_WEIGHT,
    )
    augment: AugmentSpec = opt(AugmentSpec(), "On-the-fly augmentation of the training batches, seeded by (seed, epoch, batch), so resumes stay exact; float input only.")
    label_smoothing: float = opt(0.0, "Train on softened targets: 1 - x for the true class, plus x spread evenly over all classes (x / 2 each for sigmoid); 0: off.", RATE)
    ensemble: int = opt(
        1,
        "Train this many models (members) in one run, member k (from 1) with seed `seed` + k - 1; validation, test and `predict` use the mean of "
        "their probabilities (regression: of their predictions). Costs this many trainings; 1: one model.",
        ENSEMBLE,
    )


@dataclass
class OutputSpec:
    dir: str = opt("runs", "Directory that holds run directories, relative to the working directory.")
    name: str | None = opt(
        None,
        "Experiment name; runs go to <dir>/<name>/<timestamp>-<id>/ (any folder name: spaces and non-ASCII letters are fine, no '/'). null: the spec file's name.",
        RUN_FOLDER,
    )
    tensorboard: bool = opt(
        False,
        "Also write TensorBoard logs (Keras' TensorBoard callback) to the run's tensorboard/ folder; needs the tensorboard package "
        "(`uv sync --extra tensorboard`). `tensorboard --logdir RUN_DIR/tensorboard` shows them.",
    )


@dataclass
class InputSpec:
    """One extra named input of a multi-input model: its data, preprocessing and recurrent branch."""

    data: DataSpec = opt(REQUIRED, "This input's files and loader options, as in `data` (the same splits: train, and validation/test when `data` has them). Labels come from `data`.")
    preprocessing: PreprocessingSpec = opt(PreprocessingSpec(), "This input's preprocessing, as in `preprocessing` (fitted on its own training data).")
    layers: list[RecurrentLayer] = opt([RecurrentLayer()], "This input's recurrent branch, input side first, as in `model.layers`.")


@dataclass
class Spec:
    data: DataSpec = opt(REQUIRED, "Where the sequences and labels come from.")
    preprocessing: PreprocessingSpec = opt(PreprocessingSpec(), "Reshape, scaling, padding and masking.")
    model: ModelSpec = opt(ModelSpec(), "The network.")
    training: TrainingSpec = opt(TrainingSpec(), "The fit loop.")
    output: OutputSpec = opt(OutputSpec(), "Where runs are written.")
    seed: int = opt(0, "Seed for weights, shuffling and the validation split; same spec and seed give the same results on CPU.", SEED)
    backend: Literal["auto", "jax", "tensorflow"] = opt(
        "auto", "Keras backend. auto: $KERAS_BACKEND if it is jax or tensorflow, else jax when all batches have one width, tensorflow with length bucketing."
    )
    task: TaskName = opt(
        "classify",
        "; ".join(f"{kind.name}: {kind.doc}" for kind in TASK_KINDS.values()) + ". Per-timestep tasks make the last recurrent layer return sequences.",
    )
    inputs: dict[str, InputSpec] | None = opt(
        None,
        "Multi-input models: more named inputs, each with its own branch; the branches' last outputs are concatenated before `model.dense`. "
        "`data`, `preprocessing` and `model.layers` describe the input named `input_name`; samples are matched across inputs by id. null: one input.",
    )
    input_name: str = opt("main", "Name of the input that `data` describes, when `inputs` adds more (predict: `--input NAME=FILE`).")
    recipe: Literal["auto", "recommended", "plain"] = opt(
        "auto",
        "The defaults of `model`, `training`, `preprocessing.shorten` and `data.validation_split`. recommended: the recipe measured in docs/recipe.md "
        f"({recipe_mod.summary()}), under what the spec sets; plain: the field defaults listed here. auto: recommended when the spec file has no `model`, "
        "`training` or `inputs` section, a per-sequence task and no `preprocessing.input` text or tokens, else plain. Saved with the run as the one that applied.",
    )

    def sections(self) -> dict[str, tuple[DataSpec, PreprocessingSpec, list[RecurrentLayer]]]:
        """Every input by name, the one that `data` describes (``input_name``, which carries the targets) first: its data
        options, preprocessing and recurrent layers. A one-input model is the case of one section."""
        first = {self.input_name: (self.data, self.preprocessing, self.model.layers)}
        return first | {name: (i.data, i.preprocessing, i.layers) for name, i in (self.inputs or {}).items()}


# --------------------------------------------------------------------------- YAML positions


class _Source:
    """Where values came from: the spec file's lines, or a ``--set`` override."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.lines: dict[str, int] = {}
        self.overridden: dict[str, str] = {}  # dotted path -> where its value came from, e.g. "`--set training.epochs=3`"
        self.quoted: set[str] = set()  # the paths of quoted scalars ('16'), which YAML reads as strings

    def where(self, path: str) -> str:
        for text_path, origin in self.overridden.items():
            if text_path.startswith((path + ".", path + "[")):
                return f" (from {origin})"
        for candidate in _ancestors(path):
            if candidate in self.overridden:
                return f" (from {self.overridden[candidate]})"
            if candidate in self.lines:
                return f" ({self.file}, line {self.lines[candidate]})"
        return ""


def _ancestors(path: str) -> Iterator[str]:
    """``a.b[0].c``, ``a.b[0]``, ``a.b``, ``a``."""
    while path:
        yield path
        path = re.sub(r"(\.?[^.\[\]]+|\[\d+\])$", "", path)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _record_lines(node: yaml.Node, path: str, source: _Source) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = str(key_node.value)
            line = key_node.start_mark.line + 1
            child = _join(path, key)
            if key in seen:
                raise SpecError(
                    f"`{child}` appears twice in {source.file} (lines {seen[key]} and {line}); "
                    "YAML would silently keep the last one. Delete one of them."
                )
            seen[key] = line
            source.lines[child] = line
            _record_lines(value_node, child, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = _join(path, index)
            source.lines[child] = item.start_mark.line + 1
            _record_lines(item, child, source)
    elif isinstance(node, yaml.ScalarNode) and node.style in ("'", '"'):
        source.quoted.add(path)


MAX_ALIAS_EXPANSION: Final = 10_000  # the values that YAML aliases (*name) may add to a document, in all


class _Loader(yaml.SafeLoader):
    """The safe loader, noting the line of every alias (``*name``) it composes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.alias_lines: list[int] = []

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.alias_lines.append(self.peek_event().start_mark.line + 1)
        return super().compose_node(parent, index)


def _compose(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """The YAML node tree and the data of one document (safe loader), refused before it is built when its aliases would
    expand it by more than :data:`MAX_ALIAS_EXPANSION` values or refer to themselves (a "billion laughs" file)."""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is not None and loader.alias_lines:
            _check_aliases(node, file, loader.alias_lines[0])
        return node, None if node is None else loader.construct_document(node)
    finally:
        loader.dispose()


def _check_aliases(root: yaml.Node, file: str, line: int) -> None:
    """Count the values of ``root`` as if every alias were written out, each shared node counted once (fast for any file)."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise SpecError(
                f"{file} has a YAML alias inside the value it refers to (the first alias is at line {line}), so it would expand without end. "
                "Remove the alias, or write the value out."
            )
        open_nodes.add(key)
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[key] = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        return sizes[key]

    added = size(root) - len(sizes)
    if added > MAX_ALIAS_EXPANSION:
        raise SpecError(
            f"{file} uses YAML aliases (`*name`, the first at line {line}) that would expand it by {added:,} values; seqcli reads at most "
            f"{MAX_ALIAS_EXPANSION:,} (a spec never needs more, and a file that expands without bound exhausts memory). Write the repeated values out, or use fewer aliases."
        )


def load_yaml(text: str, file: str) -> Any:
    """YAML data with the safe loader and the alias bound of :func:`_compose` (``file`` names the text in messages); syntax errors
    raise :class:`yaml.YAMLError`, too many aliases :class:`~seqcli.errors.SpecError`."""
    return _compose(text, file)[1]


def parse_yaml(text: str, file: str) -> tuple[Any, _Source]:
    """Parse YAML with the safe loader; return the data and the line of every key."""
    source = _Source(file)
    try:
        node, data = _compose(text, file)
        if node is not None:
            _record_lines(node, "", source)
    except RecursionError:
        raise SpecError(f"{file} nests its values too deeply to read (hundreds of levels). A spec is a few levels deep; check the brackets and indentation.") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise SpecError(
            f"{file} is not valid YAML{at}: {problem}. Check the indentation and the "
            "`key: value` syntax on that line (quote values that contain ':' or '#')."
        ) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"{file} is not valid YAML: {exc}.") from None
    return data, source


# --------------------------------------------------------------------------- conversion


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return f"a {'mapping' if isinstance(value, dict) else 'list'} {value!r}"
    return repr(value)


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        args = get_args(tp)
        return repr(args[0]) if len(args) == 1 else "one of " + ", ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(tp) if a is not type(None)]
        suffix = " or null" if type(None) in get_args(tp) else ""
        return " or ".join(names) + suffix
    if origin is list:
        return "a list"
    if origin is dict:
        return "a mapping of names to numbers"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    return {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[tp]


class _Builder:
    def __init__(self, source: _Source) -> None:
        self.source = source

    def fail(self, path: str, expected: str, value: Any, fix: str) -> SpecError:
        return SpecError(f"`{path}` must be {expected}. Received: {_describe(value)}{self.source.where(path)}. {fix}")

    def build(self, cls: type[_D], raw: Any, path: str) -> _D:
        if cls is DataFile and isinstance(raw, str):
            raw = {"path": raw}
        if cls is DataFile and raw is None:
            raise self.fail(path, "a data file path or {path, labels}", raw, "Give the file's path, relative to the spec file.")
        if cls is DataFile and not isinstance(raw, dict):
            several = " To use several files, combine them into one first." if isinstance(raw, list) else ""
            raise self.fail(
                path, "a data file path or a mapping {path, labels}", raw,
                f"Give one file's path, e.g. `{path.rsplit('.', 1)[-1]}: data/train.csv`, or `{{path: x.npy, labels: y.npy}}`.{several}",
            )
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.fail(path or "the spec", "a mapping of keys to values", raw, f"Write it as `key: value` lines under `{path}:`." if path else "Start from experiments/smoke.yaml.")
        hints = get_type_hints(cls)
        names = [f.name for f in dataclasses.fields(cls)]
        for key in raw:
            if key not in names:
                raise SpecError(self._unknown_key(cls, path, str(key), names))
        values = {}
        for f in dataclasses.fields(cls):
            child = _join(path, f.name)
            if f.name not in raw:
                if f.default is REQUIRED and f.default_factory is REQUIRED:
                    where = self.source.where(path) if path else f" ({self.source.file})"
                    under = f"under `{path}`" if path else "at the top level"
                    raise SpecError(f"`{child}` is required but missing{where}. {f.metadata['doc']} Add `{f.name}:` {under}.")
                continue
            value = self.convert(hints[f.name], raw[f.name], child, f.metadata.get("check"))
            check: Check | None = f.metadata.get("check")
            if check is not None and value is not None and (not check.test(value) or check.too_large(value)):
                if check.fix:
                    fix = check.fix
                elif f.default not in (REQUIRED, None):
                    fix = f"Use e.g. {_describe(f.default)} (the default)."
                elif f.default is None:
                    fix = "Use one of those, or remove the key for the default (null)."
                else:
                    fix = "See the spec reference in docs/spec-reference.md."
                if check.test(value):  # too large
                    raise SpecError(f"`{child}` is too large: {check.bound()}. Received: {_describe(value)}{self.source.where(child)}. {fix}")
                problem = check.explain(value) if check.explain else None
                raise self.fail(child, check.expected, value, f"{problem[0].upper()}{problem[1:]}. {fix}" if problem else fix)
            values[f.name] = value
        return cls(**values)

    def _unknown_key(self, cls: type, path: str, key: str, names: list[str]) -> str:
        if cls is Spec:
            names = [*names, "tune"]  # the search space of `seqcli tune`, read by load_search
        where = self.source.where(_join(path, key))
        section = f"`{path}`" if path else "the top level"
        message = f"Unknown key `{_join(path, key)}`{where}. Valid keys in {section}: {', '.join(names)}."
        close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
        if close:
            return message + f" Did you mean `{_join(path, close[0])}`?"
        elsewhere = [row[0] for row in reference_rows() if row[0].rsplit(".", 1)[-1] == key]
        if elsewhere:
            section_key = elsewhere[0].rsplit(".", 1)[0]
            if section_key.endswith("[]"):
                return message + f" `{key}` belongs in each item of `{section_key[:-2]}`: move it to `{elsewhere[0]}`."
            return message + f" `{key}` belongs under `{section_key}`: move it to `{elsewhere[0]}`."
        return message + " Remove it or fix its spelling."

    def convert(self, tp: Any, value: Any, path: str, check: Check | None = None) -> Any:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if value is None:
                if type(None) in args:
                    return None
                raise self.fail(path, _type_name(tp), value, "Give it a value or remove the key to use the default.")
            for arg in args:
                if arg is type(None):
                    continue
                if dataclasses.is_dataclass(arg) or get_origin(arg) is list or _matches(arg, value):
                    return self.convert(arg, value, path, check)
                if (get_origin(arg) is dict and isinstance(value, dict)) or (get_origin(arg) is Literal and isinstance(value, str)):
                    return self.convert(arg, value, path, check)
            scalars = [a for a in args if a in (int, float, bool)]
            fix = self._scalar_fix(scalars[0], value, path, check) if len(scalars) == len(args) - 1 == 1 else "See the spec reference in docs/spec-reference.md."
            raise self.fail(path, _type_name(tp), value, fix)
        if origin is Literal:
            choices = get_args(tp)
            if value in choices and not isinstance(value, bool):
                return value
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise self.fail(path, _type_name(tp), value, f"Use one of the listed values.{hint}")
        if origin is list:
            if not isinstance(value, list):
                raise self.fail(path, "a list", value, f"Write it as a YAML list (`- item` lines under `{path.rsplit('.', 1)[-1]}:`).")
            (item_type,) = get_args(tp)
            return [self.convert(item_type, item, _join(path, i)) for i, item in enumerate(value)]
        if origin is dict:
            return self._mapping(tp, value, path)
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.build(tp, value, path)
        if not _matches(tp, value):
            raise self.fail(path, _type_name(tp), value, self._scalar_fix(tp, value, path, check))
        return float(value) if tp is float else value

    def _scalar_fix(self, tp: Any, value: Any, path: str, check: Check | None) -> str:
        """What is wrong with a scalar of the wrong type, and how to write it (``check``: the field's range)."""
        if tp not in (int, float, bool):
            return "Quote it if YAML reads it as another type."
        if isinstance(value, str) and path in self.source.quoted:
            return f"Write {_type_name(tp)} without quotes."
        number = _number(value) if isinstance(value, str) else None
        if tp is int and number is not None:  # YAML 1.1 reads 1e3 (an exponent without a '.') as a string
            exact = decimal.Decimal(value.strip().replace("_", ""))  # exact, and compared without building a 400-digit int
            if exact != exact.to_integral_value():
                return f"{value} is not a whole number (and YAML reads it as text). Write an integer in digits."
            if check is not None and check.at_most is not None and exact > check.at_most:
                return f"YAML reads {value} as text, not as a number, and as a number it would be too large: {check.bound()}."
            if abs(exact) >= 2**63:
                return f"{value} is far too large for any integer (YAML reads it as text, too). Write an integer in digits."
            digits = int(exact)
            if check is not None and not check.test(digits):
                return f"YAML reads {value} as text, not as a number, and as a number it would not be {check.expected}."
            return f"YAML reads {value} as text, not as a number. Write the integer in digits: {digits}."
        if tp is float and number is not None:
            if not math.isfinite(number):
                return f"{value} is too large for a number (YAML reads it as text, too). Write a finite number."
            return f"YAML reads {value} as text, not as a number: write it with a decimal point and a signed exponent, {_yaml_float(number)}, or in full, {number!r}."
        if tp is int and isinstance(value, float) and not isinstance(value, bool):
            if value.is_integer():
                return f"Write it without the decimal point: {int(value)}."
            return f"{value!r} is not a whole number. Write an integer."
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is not a finite number. Write a finite number."
        return f"Write {_type_name(tp)}."

    def _mapping(self, tp: Any, value: Any, path: str) -> dict[str, Any]:
        """A ``{name: value}`` mapping; names may be numbers in YAML (``1: 2.0``), kept as text like labels are."""
        if not isinstance(value, dict):
            raise self.fail(path, _type_name(tp), value, f"Write it as `name: value` lines under `{path.rsplit('.', 1)[-1]}:`.")
        _, value_type = get_args(tp)
        out = {}
        for key, item in value.items():
            if isinstance(key, bool) or key is None or not isinstance(key, (str, int, float)):
                raise self.fail(
                    path, "a mapping with names as keys", value,
                    f"The key {_describe(key)} is not a name: YAML reads unquoted yes/no/true/false/on/off/null as other types. Quote it, e.g. 'yes': 2.0.",
                )
            name = str(int(key)) if isinstance(key, float) and key.is_integer() else str(key)
            out[name] = self.convert(value_type, item, _join(path, name))
        return out


def _number(text: str) -> float | None:
    """``'1e400'`` -> inf, ``'1e-3'`` -> 0.001: a string that reads as a number, else None."""
    try:
        return float(text.replace("_", "")) if re.fullmatch(r"\s*[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?\s*", text) else None
    except ValueError:
        return None


def _yaml_float(number: float) -> str:
    """``1e-3`` as YAML 1.1 reads it as a float: ``1.0e-03``."""
    mantissa, exponent = f"{number:e}".split("e")
    mantissa = mantissa.rstrip("0")
    return f"{mantissa}{'0' if mantissa.endswith('.') else ''}e{exponent}"


def _matches(tp: Any, value: Any) -> bool:
    if tp is bool:
        return isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if tp is str:
        return isinstance(value, str)
    return False


# --------------------------------------------------------------------------- cross-field checks


def metric_names(spec: Spec) -> list[str]:
    """The metrics logged every epoch: ``training.metrics``, or the task's default."""
    if spec.training.metrics is not None:
        return list(spec.training.metrics)
    return ["mae"] if TASK_KINDS[spec.task].numeric else ["accuracy"]


def cross_field_problems(spec: Spec) -> list[str]:
    """Rules that involve several fields; empty when the spec is consistent."""
    problems = []
    layers = spec.model.layers
    if not layers:
        problems.append("`model.layers` is empty: the model needs at least one recurrent layer, e.g. `layers: [{units: 64}]`.")
    for i, layer in enumerate(layers[:-1]):
        if layer.return_sequences is False:
            problems.append(
                f"`model.layers[{i}].return_sequences` is false, but `model.layers[{i + 1}]` is another {layers[i + 1].cell.upper()}, which needs "
                f"the full sequence (batch, timesteps, units) as input. Remove the key (seqcli sets it) or set it to true."
            )
    kind = TASK_KINDS[spec.task]
    per_timestep = kind.per_timestep
    if per_timestep and layers and layers[-1].return_sequences is False:
        problems.append(
            f"`model.layers[{len(layers) - 1}].return_sequences` is false, but `task: {spec.task}` predicts one {_target_word(kind)} per timestep, so the last recurrent layer "
            "returns the whole sequence. Remove the key (seqcli sets it to true)."
        )
    if spec.seed + spec.training.ensemble - 1 > MAX_SEED:
        problems.append(
            f"`training.ensemble: {spec.training.ensemble}` trains members with seeds {spec.seed}..{spec.seed + spec.training.ensemble - 1}, "
            f"but seeds are at most {MAX_SEED:,} (NumPy and Keras seeds are 32-bit). Lower `seed` to {MAX_SEED - spec.training.ensemble + 1:,} or less, or `training.ensemble`."
        )
    problems += _task_problems(spec, kind)
    problems += _shape_changing_problems(spec, kind)
    if spec.inputs is not None:
        problems += _input_problems(spec)
    if not per_timestep and layers and layers[-1].return_sequences and not sequence_pooling(spec):
        last, cell = len(layers) - 1, layers[-1].cell.upper()
        per_step, verb, model = ("regress_timesteps", "predict", "the regressor") if kind.numeric else ("tag", "label", "the classifier")
        problems.append(
            f"`model.layers[{last}].return_sequences` is true for the last {cell}: its output is per timestep "
            f"(batch, timesteps, {layers[-1].units * (2 if layers[-1].bidirectional else 1)}), so {model} would predict one {_target_word(kind)} per timestep instead of "
            f"one per sequence. Remove the key (seqcli sets it to false for the last {cell}), or set `task: {per_step}` to {verb} every timestep."
        )
    has_validation = spec.data.validation is not None or spec.data.validation_split > 0
    schedule = spec.training.lr_schedule
    monitors = {"training.monitor": spec.training.monitor}
    if schedule is not None and schedule.monitor is not None:
        monitors["training.lr_schedule.monitor"] = schedule.monitor
    for key, monitor in monitors.items():
        if monitor.startswith("val_") and not has_validation:
            problems.append(
                f"`{key}` is {monitor!r} but there is no validation data (`data.validation` is null and "
                f"`data.validation_split` is 0). Set `{key}: loss`, or hold out data with `data.validation_split: 0.2`."
            )
        metric = monitor.removeprefix("val_")
        foreign = REGRESSION_METRICS if not kind.numeric else CLASSIFICATION_METRICS
        if metric in foreign:
            problems.append(
                f"`{key}` is {monitor!r}, but {metric!r} is a {'classification' if kind.numeric else 'regression'} metric and `task: {spec.task}` predicts "
                f"{'real values' if kind.numeric else 'classes'}. Monitor `{'val_' if monitor.startswith('val_') else ''}loss` or one of {', '.join(metric_names(spec))}."
            )
        elif metric != "loss" and metric not in metric_names(spec):
            if spec.training.metrics is not None:
                problems.append(f"`{key}` is {monitor!r} but {metric!r} is not in `training.metrics`. Add it there.")
            else:
                logged = ", ".join(metric_names(spec))
                problems.append(f"`{key}` is {monitor!r} but {metric!r} is not logged (`task: {spec.task}` logs {logged} by default). Add it to `training.metrics`, or monitor {logged}.")
    if schedule is not None and schedule.min_lr >= spec.training.learning_rate:
        problems.append(
            f"`training.lr_schedule.min_lr` ({schedule.min_lr:g}) is not below `training.learning_rate` ({spec.training.learning_rate:g}), "
            "so the schedule could never lower the rate. Lower `min_lr` (e.g. 0)."
        )
    if "auc" in metric_names(spec) and spec.model.output != "sigmoid" and not kind.numeric:
        problems.append("`training.metrics` has 'auc', which needs a two-class model with `model.output: sigmoid`. Remove 'auc' or set `model.output: sigmoid`.")
    bounds = spec.preprocessing.bucket_boundaries
    if bounds is not None and (any(b < 1 for b in bounds) or bounds != sorted(set(bounds))):
        problems.append(f"`preprocessing.bucket_boundaries` must be positive lengths in ascending order without repeats. Received: {bounds}. E.g. [50, 100, 200].")
    if bounds is not None and spec.preprocessing.bucketing is False:
        problems.append("`preprocessing.bucket_boundaries` is set but `preprocessing.bucketing` is false. Remove one of the two.")
    pp = spec.preprocessing
    if pp.input == "float" and pp.encoding != "embedding":
        problems.append(
            f"`preprocessing.encoding: {pp.encoding}` applies to integer token codes and text, but `preprocessing.input` is 'float' (features go through Masking as they are). "
            "Remove `encoding`, or set `input: tokens` for integer codes."
        )
    if pp.input == "text" and spec.data.format in ("npy", "npz", "ts"):
        problems.append(f"`preprocessing.input: text` reads raw text from .csv, .jsonl or .txt files, but `data.format` is {spec.data.format!r}. Set `data.format: auto` (or csv/jsonl).")
    loss = spec.training.loss
    if (loss == "binary_crossentropy") != (spec.model.output == "sigmoid") and loss in CLASSIFICATION_LOSSES:
        problems.append(f"`training.loss` {loss!r} does not fit `model.output` {spec.model.output!r}. Use `loss: auto`.")
    if loss == "sparse_categorical_crossentropy" and spec.training.label_smoothing > 0:
        problems.append(
            "`training.label_smoothing` needs one-hot targets, so seqcli trains with categorical cross-entropy (the same loss on one-hot targets) "
            "instead of `training.loss: sparse_categorical_crossentropy`. Set `training.loss: auto`."
        )
    problems += _csv_problems(spec)
    problems += _pooling_problems(spec)
    problems += _conv_problems(spec)
    problems += _input_piece_problems(spec)
    return problems


def sequence_pooling(spec: Spec) -> bool:
    """Whether `model.pooling` pools the last recurrent layer's outputs over time (anything but [last]), so that it returns sequences."""
    return spec.model.pooling != ["last"]


def _pooling_problems(spec: Spec) -> list[str]:
    """`model.pooling`: at least one head, each once, over the sequence of the last recurrent layer; per-sequence tasks only."""
    pooling, layers, kind = spec.model.pooling, spec.model.layers, TASK_KINDS[spec.task]
    shown = "[" + ", ".join(pooling) + "]"
    problems = []
    if not pooling:
        problems.append("`model.pooling` is empty, so the recurrent outputs would never become one vector per sequence. Remove the key for the default [last], or list heads, e.g. [last, mean].")
    repeated = sorted({p for p in pooling if pooling.count(p) > 1})
    if repeated:
        problems.append(f"`model.pooling` is {shown}: {', '.join(repeated)} appears more than once and would give the same values twice. List each head once, e.g. [last, mean].")
    if pooling and sequence_pooling(spec) and kind.per_timestep:
        problems.append(
            f"`model.pooling` is {shown}, but `task: {spec.task}` predicts one {_target_word(kind)} per timestep, so nothing is pooled over time. Remove `model.pooling` (the default [last])."
        )
    elif pooling and sequence_pooling(spec) and layers and layers[-1].return_sequences is False:
        problems.append(
            f"`model.layers[{len(layers) - 1}].return_sequences` is false, but `model.pooling` {shown} pools the last layer's outputs over time, so that layer returns the whole sequence. "
            "Remove the key (seqcli sets it)."
        )
    return problems


def _conv_problems(spec: Spec) -> list[str]:
    """`model.frontend` and `model.fcn`: blocks to run; shortening (stride, pool) needs post-padding and, in the front-end, a per-sequence task; the FCN's vector, a per-sequence task."""
    kind, problems = TASK_KINDS[spec.task], []
    for key, stack in (("model.frontend", spec.model.frontend), ("model.fcn", spec.model.fcn)):
        if stack is None:
            continue
        if not stack.blocks:
            problems.append(f"`{key}.blocks` is empty. Give at least one block, e.g. `blocks: [{{filters: 64, kernel_size: 5}}]`, or remove `{key}` for none.")
        shortening = [f"`{key}.blocks[{i}].{name}` is {value}" for i, block in enumerate(stack.blocks) for name, value in (("stride", block.stride), ("pool", block.pool)) if value > 1]
        if shortening and spec.preprocessing.padding == "pre":
            problems.append(
                f"{shortening[0]}, which shortens the sequence, but `preprocessing.padding` is 'pre': which timesteps are kept would depend on how much padding comes "
                "before each sequence, so the width of a batch would change the predictions. Set `preprocessing.padding: post` (the default), or stride and pool 1."
                + (
                    " The recommended recipe sets these pools unless the spec sets `preprocessing.padding: pre` (in its file or by --set); to search over the padding side, "
                    "set `recipe: plain` or write the `model` section."
                    if spec.recipe == "recommended" else ""
                )
            )
        if shortening and kind.per_timestep and key == "model.frontend":
            problems.append(
                f"{shortening[0]}, which shortens the sequence, but `task: {spec.task}` predicts one {_target_word(kind)} per input timestep. Set stride and pool to 1 (the default) in every block."
            )
    if spec.model.fcn is not None and kind.per_timestep:
        problems.append(
            f"`model.fcn` adds one vector per sequence (its average over time), but `task: {spec.task}` predicts one {_target_word(kind)} per timestep. "
            "Remove `model.fcn`; `model.frontend` (stride and pool 1) works per timestep."
        )
    return problems


@dataclass(frozen=True)
class InputPiece:
    """A model piece that reads one kind of input and adds one vector per sequence: its wording in errors and notes."""

    needs: Literal["float", "tokens"]  # the fitted input kind it reads (text is read as tokens)
    vector: str  # what its vector holds
    reads: str  # what it does with the input
    mismatch: str  # why the other kind does not fit
    keep: str  # the `preprocessing.input` values it takes


INPUT_PIECES: Final = {
    "kernels": InputPiece("float", "the share of timesteps above each bias", "convolves real-valued series", "token codes have no order of magnitude to convolve", "`input: float`"),
    "ngrams": InputPiece("tokens", "from all its n-grams", "hashes token codes", "real values have no n-grams", "`input: tokens` or `text`"),
}
"""The model keys of the pieces that read one kind of input: the spec refuses a declared input of the other kind
(:func:`_input_piece_problems`), and a model built on data that ``input: auto`` read as the other kind leaves the piece
out with a note (:func:`skipped_piece_notes`)."""

INPUT_KIND_WORDS: Final = {"float": "real values", "tokens": "integer token codes"}


def input_piece(model: ModelSpec, key: str, input_kind: str) -> Any:
    """``model``'s piece ``key`` (an :data:`INPUT_PIECES` key) when it is set and reads ``input_kind``, else None."""
    return getattr(model, key) if INPUT_PIECES[key].needs == input_kind else None


def skipped_piece_notes(model: ModelSpec, input_kind: str) -> list[str]:
    """Why a model has no kernel or n-gram branch although ``model`` asks for one: the first input's fitted kind
    ``input_kind`` (``float`` or ``tokens``) is not the one the piece reads."""
    return [
        f"`model.{key}` is left out: the data was read as {INPUT_KIND_WORDS[input_kind]}, and the branch {piece.reads}. Read the data as {piece.keep} to keep it."
        for key, piece in INPUT_PIECES.items()
        if getattr(model, key) is not None and piece.needs != input_kind
    ]


def _input_piece_problems(spec: Spec) -> list[str]:
    """`model.kernels`, `model.ngrams`: one vector per sequence, of the input kind each reads."""
    problems, kind, declared = [], TASK_KINDS[spec.task], spec.preprocessing.input
    for key, piece in INPUT_PIECES.items():
        if getattr(spec.model, key) is None:
            continue
        if kind.per_timestep:
            problems.append(
                f"`model.{key}` adds one vector per sequence ({piece.vector}), but `task: {spec.task}` predicts one {_target_word(kind)} per timestep. Remove `model.{key}`."
            )
        elif declared != "auto" and (declared == "float") != (piece.needs == "float"):
            problems.append(f"`model.{key}` {piece.reads}, but `preprocessing.input` is '{declared}': {piece.mismatch}. Remove `model.{key}`, or read the data as {piece.keep}.")
    return problems


def _csv_problems(spec: Spec) -> list[str]:
    """`data.csv.allow_duplicate_times` needs a time column to have duplicates in."""
    sections = {"data": spec.data} | {f"inputs.{name}.data": extra.data for name, extra in (spec.inputs or {}).items()}
    return [
        f"`{key}.csv.allow_duplicate_times` is true, but `{key}.csv.time_column` is null: rows keep their file order and have no times to repeat. Remove one of the two."
        for key, data in sections.items()
        if data.csv.allow_duplicate_times and data.csv.time_column is None
    ]


INPUT_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def _shape_changing_problems(spec: Spec, kind: TaskKind) -> list[str]:
    """Resampling, time warping and window slicing change a sequence's timesteps: float input only, and per-timestep
    targets would no longer line up with them."""
    problems = []
    augment = spec.training.augment
    # Float input only, refused for codes; `preprocessing.shorten` is not among them: codes keep their length under it
    # (fit sets none for them), so the recipe can give it to every per-sequence spec.
    float_only = {
        "preprocessing.resample": spec.preprocessing.resample is not None,
        "training.augment.time_warp": augment.time_warp > 0,
        "training.augment.window": augment.window < 1,
    }
    changing = {**float_only, "preprocessing.shorten": spec.preprocessing.shorten is not None}
    for key in (k for k, on in changing.items() if on):
        if kind.per_timestep:
            problems.append(f"`{key}` changes the timesteps of every sequence, but `task: {spec.task}` has a target per timestep, which would no longer line up. Remove `{key}`.")
    numeric = {
        "preprocessing.znorm": spec.preprocessing.znorm,
        **float_only,
        **{f"training.augment.{k}": getattr(augment, k) > 0 for k in ("jitter", "scaling", "magnitude_warp")},
    }
    if spec.preprocessing.input in ("tokens", "text"):
        for key in (k for k, on in numeric.items() if on):
            problems.append(f"`{key}` transforms real-valued features, but `preprocessing.input` is {spec.preprocessing.input!r} (codes). Remove `{key}`.")
    if spec.preprocessing.resample is not None and (spec.preprocessing.maxlen is not None or spec.preprocessing.bucketing):
        problems.append("`preprocessing.resample` makes every sequence the same length, so `maxlen` and `bucketing` have nothing to do. Remove them.")
    return problems


def _input_problems(spec: Spec) -> list[str]:
    """Rules for multi-input specs (`inputs`)."""
    assert spec.inputs is not None
    problems = []
    if not spec.inputs:
        problems.append("`inputs` is an empty mapping. Give at least one more named input, or remove `inputs` for a one-input model.")
    names = [spec.input_name, *spec.inputs]
    for name in names:
        if not INPUT_NAME.fullmatch(name):
            problems.append(f"Input name {name!r} must start with a letter and hold only letters, digits and '_' (it names the model input and its layers), e.g. 'accel'.")
    if spec.input_name in spec.inputs:
        problems.append(f"`inputs.{spec.input_name}` has the name of the input that `data` describes (`input_name: {spec.input_name}`). Rename one of them.")
    per_timestep = TASK_KINDS[spec.task].per_timestep
    for name, section in spec.inputs.items():
        prefix, data, layers = f"inputs.{name}.", section.data, section.layers
        layers_key = f"{prefix}layers"
        if not layers:
            problems.append(f"`{layers_key}` is empty: each input needs at least one recurrent layer, e.g. `layers: [{{units: 16}}]`.")
        for i, layer in enumerate(layers[:-1]):
            if layer.return_sequences is False:
                problems.append(f"`{layers_key}[{i}].return_sequences` is false, but another recurrent layer follows. Remove the key (seqcli sets it).")
        if layers and layers[-1].return_sequences:
            joined = "repeated at every timestep of the first input and concatenated with its outputs" if per_timestep else "concatenated with the other branches"
            problems.append(f"`{layers_key}[{len(layers) - 1}].return_sequences` is true for the branch's last layer, whose vector output is {joined}. Remove the key.")
        for role in ("validation", "test"):
            if (getattr(data, role) is None) != (getattr(spec.data, role) is None):
                has = "has" if getattr(spec.data, role) is not None else "has no"
                problems.append(f"`data` {has} a `{role}` file, so `{prefix}data.{role}` must {'be given' if has == 'has' else 'be removed'} too: all inputs share the same splits.")
    return problems


def _target_word(kind: TaskKind) -> str:
    return "target" if kind.numeric else "label"


def _task_problems(spec: Spec, kind: TaskKind) -> list[str]:
    """The rules of the spec's task (:data:`TASK_RULES`)."""
    return [problem for rule in TASK_RULES[kind.name] for problem in rule(spec)]


def _classification_problems(spec: Spec) -> list[str]:
    """Class labels: regression losses and metrics do not apply."""
    problems = []
    if spec.training.loss in REGRESSION_LOSSES:
        problems.append(f"`training.loss: {spec.training.loss}` is a regression loss, but `task: {spec.task}` predicts classes. Use `loss: auto`, or set `task: regress`.")
    wrong = [m for m in spec.training.metrics or [] if m in REGRESSION_METRICS]
    if wrong:
        problems.append(f"`training.metrics` has {', '.join(map(repr, wrong))}, a regression metric, but `task: {spec.task}` predicts classes. Use accuracy (or auc), or set `task: regress`.")
    return problems


def _tagging_problems(spec: Spec) -> list[str]:
    """Options that `task: tag` does not support."""
    problems = []
    if spec.model.output == "sigmoid":
        problems.append("`task: tag` predicts a softmax over the classes at every timestep, but `model.output` is 'sigmoid'. Set `model.output: softmax` (it handles two classes too).")
    if spec.training.label_smoothing > 0:
        problems.append("`training.label_smoothing` is not supported with `task: tag`. Remove it (or set 0).")
    return problems


def _per_timestep_problems(spec: Spec) -> list[str]:
    """One target per timestep: of numeric sequences (not tokenized text, not .ts files), and no per-sequence class weights."""
    problems = []
    word = _target_word(TASK_KINDS[spec.task])
    if spec.training.class_weight is not None and spec.task == "tag":
        problems.append("`training.class_weight` is not supported with `task: tag` (Keras weighs whole sequences, not timesteps). Remove it.")
    if spec.preprocessing.input == "text":
        problems.append(
            f"`task: {spec.task}` needs one {word} per timestep of numeric sequences, but `preprocessing.input: text` tokenizes raw text (tokens and {word}s would not line up). "
            "Give token codes as sequences instead."
        )
    if spec.data.format == "ts":
        problems.append(f"`task: {spec.task}` reads per-timestep targets from .csv, .jsonl, .npy or .npz files; .ts files hold one target per sequence. Convert the data.")
    return problems


def _regression_problems(spec: Spec) -> list[str]:
    """Real-valued targets: no classifier options."""
    problems = []
    task = spec.task
    if spec.model.output == "sigmoid":
        problems.append(f"`model.output: sigmoid` is a two-class output, but `task: {task}` predicts real values with a linear output. Remove `model.output`.")
    if spec.training.loss in CLASSIFICATION_LOSSES:
        problems.append(f"`training.loss: {spec.training.loss}` is a classification loss, but `task: {task}` predicts real values. Use mse, mae or huber (auto: mse).")
    wrong = [m for m in spec.training.metrics or [] if m in CLASSIFICATION_METRICS]
    if wrong:
        problems.append(f"`training.metrics` has {', '.join(map(repr, wrong))}, a classification metric, but `task: {task}` predicts real values. Use mae or rmse (or null).")
    if spec.training.class_weight is not None:
        problems.append(f"`training.class_weight` weighs classes, but `task: {task}` has none. Remove it.")
    if spec.training.label_smoothing > 0:
        problems.append(f"`training.label_smoothing` softens class targets, but `task: {task}` has none. Remove it.")
    return problems


def _targets_problems(spec: Spec) -> list[str]:
    """`data.csv.target_columns` and `data.target_names` name regression targets."""
    problems = []
    if any(section.csv.target_columns is not None for section in _data_sections(spec)):
        problems.append(f"`data.csv.target_columns` names regression targets, but `task: {spec.task}` predicts classes from `data.csv.label_column`. Remove it, or set `task: regress`.")
    if any(section.target_names is not None for section in _data_sections(spec)):
        problems.append(f"`data.target_names` names regression targets, but `task: {spec.task}` predicts classes. Remove it, or set `task: regress`.")
    return problems


def _data_sections(spec: Spec) -> list[DataSpec]:
    return [spec.data, *(i.data for i in (spec.inputs or {}).values())]


TASK_RULES: dict[str, tuple[Callable[[Spec], list[str]], ...]] = {
    "classify": (_classification_problems, _targets_problems),
    "tag": (_classification_problems, _tagging_problems, _per_timestep_problems, _targets_problems),
    "regress": (_regression_problems,),
    "regress_timesteps": (_regression_problems, _per_timestep_problems),
}


# --------------------------------------------------------------------------- public API


def parse_override(text: str) -> tuple[list[str | int], Any]:
    """Split ``model.layers[0].units=64`` into its path and YAML-parsed value."""
    key, sep, raw_value = text.partition("=")
    key = key.strip()
    if not sep or not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[-?\d+\])*", key):
        raise SpecError(f"`--set {text}` is not PATH=VALUE. Write it like `--set training.epochs=3` or `--set model.layers[0].units=64`.")
    path: list[str | int] = [int(t[1:-1]) if t.startswith("[") else t.lstrip(".") for t in re.findall(r"\.?[A-Za-z_]\w*|\[-?\d+\]", key)]
    try:
        value = load_yaml(raw_value, f"`--set {text}`") if raw_value.strip() else None
    except yaml.YAMLError:
        raise SpecError(f"The value in `--set {text}` is not valid YAML. Quote it: `--set {key}='\"{raw_value}\"'`.") from None
    return path, value


def apply_override(raw: dict[str, Any], text: str, source: _Source) -> None:
    """Set one ``PATH=VALUE`` override in the raw spec mapping (validated later with the rest)."""
    path, value = parse_override(text)
    dotted = _set_value(raw, path, value, f"--set {text}")
    quoted = text.partition("=")[2].strip()[:1] in ("'", '"')
    (source.quoted.add if quoted else source.quoted.discard)(dotted)
    source.overridden[dotted] = f"`--set {text}`"


def _set_value(raw: dict[str, Any], path: Sequence[str | int], value: Any, label: str) -> str:
    """Set ``value`` at ``path`` in the raw spec mapping, the way ``--set`` does (missing sections from the defaults);
    returns the dotted path. ``label`` names the setting in errors (``--set PATH=VALUE``, or ``tune.PATH``)."""
    node: Any = raw
    dotted = ""
    defaults: Any = default_mapping()
    for step, key in enumerate(path):
        last = step == len(path) - 1
        defaults = defaults.get(key) if isinstance(defaults, dict) and isinstance(key, str) else (defaults[0] if isinstance(defaults, list) and defaults else None)
        if isinstance(key, int) and key < 0:
            raise SpecError(_negative_index(label, list(path), step, node, dotted))
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                size = len(node) if isinstance(node, list) else 0
                raise SpecError(f"`{label}`: `{dotted}` has {size} item(s), so index [{key}] does not exist. Add the item in the spec file first.")
        elif not isinstance(node, dict):
            raise SpecError(f"`{label}`: `{dotted}` is not a mapping, so it has no key `{key}`.")
        dotted = _join(dotted, key)
        if last:
            node[key] = value
        else:
            if isinstance(key, str) and node.get(key) is None:
                node[key] = _copy(defaults) if isinstance(defaults, (dict, list)) else {}
            node = node[key]
    return dotted


def _negative_index(label: str, path: list[str | int], step: int, node: Any, dotted: str) -> str:
    """The message for ``--set model.layers[-1].units=4`` (``label``: ``--set PATH=VALUE`` or ``tune.PATH``): which index to write instead."""
    key = path[step]
    assert isinstance(key, int)
    message = f"`{label}`: negative indexes such as [{key}] are not supported; count from the first item, [0]."
    if isinstance(node, list) and len(node) + key >= 0:
        fixed = functools.reduce(_join, [len(node) + key if i == step else k for i, k in enumerate(path)], "")
        if label.startswith("--set "):
            return message + f" `{dotted}` has {len(node)} item(s), so write `--set {fixed}={label.partition('=')[2]}`."
        return message + f" `{dotted}` has {len(node)} item(s), so write `tune.{fixed}`."
    size = len(node) if isinstance(node, list) else 0
    return message + f" `{dotted}` has {size} item(s); write an index from 0 to {size - 1}." if size else message + f" `{dotted}` has no items yet: add them in the spec file first."


def _copy(value: Any) -> Any:
    return yaml.safe_load(yaml.safe_dump(value))


def load_spec(path: str | Path, overrides: Sequence[str] = (), *, strict: bool = True) -> Spec:
    """Read, override, validate and resolve a spec file.

    Data paths are resolved relative to the spec file, ``output.dir`` relative to
    the working directory, and ``output.name`` defaults to the file's stem.
    With ``strict=False`` the cross-field rules are left to the caller
    (``inspect-shapes`` shows them as warnings). A ``tune:`` section (the search
    space of ``seqcli tune``) is validated too, then left out: see :func:`load_search`.
    """
    return load_search(path, overrides, strict=strict, tune_required=False).spec


def _read_raw(path: str | Path) -> tuple[dict[str, Any], _Source, Path]:
    """The spec file's raw mapping and the line of every key, or a :class:`SpecError` for a file that is not a spec."""
    file = Path(path)
    if not file.exists() and file.is_symlink():
        raise SpecError(f"Spec file {file} is a symbolic link that leads nowhere (to a missing file, or round in a loop). Point it at the spec, or give the spec's own path.")
    if not file.exists():
        raise SpecError(f"Spec file {file} does not exist. Check the path; `seqcli validate --help` shows the usage.")
    if file.is_dir():
        raise SpecError(f"{file} is a directory; give the path of a YAML spec file inside it.")
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"Cannot read spec file {file}: {exc.strerror or exc}. Check its permissions.") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"Spec file {file} is not UTF-8 text (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r}). Save it as UTF-8.") from None
    raw, source = parse_yaml(text, str(file))
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SpecError(f"{file} must hold a YAML mapping with the sections data, preprocessing, model, training and output. Received: {_describe(raw)}.")
    return raw, source, file


def _finish(raw: dict[str, Any], source: _Source, file: Path, *, strict: bool) -> Spec:
    """Build, check and resolve a raw spec mapping (after its overrides)."""
    spec = _Builder(source).build(Spec, raw, "")
    if strict:
        problems = cross_field_problems(spec)
        if problems:
            raise SpecError(problems[0])
    if spec.output.name is None and folder_name_problem(file.stem) is not None:
        raise SpecError(
            f"The spec file's name {file.stem!r} names its runs' folder by default, but {folder_name_problem(file.stem)}. "
            "Set `output.name` (e.g. `output: {name: my-experiment}`), or rename the file."
        )
    return resolve(spec, _absolute(file.parent, "The spec file's folder"), file.stem)


# --------------------------------------------------------------------------- the search space (`tune:`)

RANGE_KEYS = ("low", "high", "log", "step")


@dataclass(frozen=True)
class TuneParam:
    """One searched field: a list of choices, or a range of integers or numbers (``log``: sampled on a log scale)."""

    name: str  # the dotted path as written under `tune:`, e.g. "model.layers[0].units"
    keys: tuple[str | int, ...]
    choices: tuple[Any, ...] | None = None
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    integer: bool = False

    def describe(self) -> str:
        """``[32, 64, 128]``, ``1e-04 .. 0.01 (log)``, ``1 .. 3 step 1``."""
        if self.choices is not None:
            return "[" + ", ".join(_describe(c) for c in self.choices) + "]"
        text = f"{self.low:g} .. {self.high:g}"
        return text + (" (log)" if self.log else "") + (f" step {self.step:g}" if self.step is not None else "")


@dataclass
class Search:
    """A spec and its search space: ``spec`` is the spec without ``tune:`` (every default filled in, resolved);
    :meth:`trial_spec` applies one trial's values the way ``--set`` applies overrides, and validates the result like a file."""

    spec: Spec
    params: list[TuneParam]
    file: Path
    raw: dict[str, Any]  # the spec file's mapping after --set, without `tune:`
    source: _Source

    def trial_spec(self, values: dict[str, Any]) -> Spec:
        raw, source = copy.deepcopy(self.raw), _Source(self.source.file)
        source.lines, source.quoted, source.overridden = dict(self.source.lines), set(self.source.quoted), dict(self.source.overridden)
        for param in self.params:
            dotted = _set_value(raw, param.keys, values[param.name], f"tune.{param.name}")
            source.overridden[dotted] = f"`tune.{param.name}` = {_describe(values[param.name])}"
        return _finish(raw, source, self.file, strict=True)


def load_search(path: str | Path, overrides: Sequence[str] = (), *, strict: bool = True, tune_required: bool = True) -> Search:
    """Read a spec and its ``tune:`` section: the base spec is validated like :func:`load_spec`'s, and every choice and
    both ends of every range are applied to it and validated, so a trial's spec can fail only on a combination of values."""
    raw, source, file = _read_raw(path)
    had_tune = "tune" in raw
    tune = raw.pop("tune", None)
    for text_override in overrides:
        if parse_override(text_override)[0][0] == "tune":
            raise SpecError(f"`--set {text_override}`: `tune` cannot be set with --set; edit the `tune:` section of {file}.")
    raw = _with_recipe(raw, overrides, source, tuned=had_tune)
    for text_override in overrides:
        if parse_override(text_override)[0][0] != "recipe":
            apply_override(raw, text_override, source)
    spec = _finish(copy.deepcopy(raw), source, file, strict=strict)
    if not had_tune and tune_required:
        raise SpecError(
            f"{file} has no `tune:` section, so there is nothing to search. Add one that maps dotted spec paths to choices or ranges, e.g. "
            "`tune: {model.layers[0].units: [32, 64, 128], training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}}` (see docs/tuning.md)."
        )
    search = Search(spec, [], file, raw, source)
    if had_tune:
        search.params = _tune_params(tune, source)
        for param in search.params:  # every value alone, on the base spec
            ends = param.choices if param.choices is not None else (param.low, param.high)
            for value in ends:
                _check_value(search, param, value, strict=strict)
    return search


def _with_recipe(raw: dict[str, Any], overrides: Sequence[str], source: _Source, *, tuned: bool) -> dict[str, Any]:
    """``raw`` with ``recipe`` resolved (``auto``: by the file's own sections, so that a ``--set`` does not switch the
    recipe off) and, for ``recommended``, the recipe's values filled in where the file has none, before the other
    overrides apply (they fill a section they create from the field defaults). The recipe's pieces follow the task and
    input kind that the overrides leave (`--set task=tag` gets none that reduce over time); whether it trains on the
    whole training file depends on the spec with the recipe's other values and every override (a
    ``--set data.validation_split=0.2`` keeps validation, a ``--set training.epochs=10`` does not), and on whether it
    is ``tuned``."""
    if raw.get("recipe", "auto") == "auto":
        raw["recipe"] = "recommended" if recipe_mod.applies(raw) else "plain"
    for text_override in overrides:
        if parse_override(text_override)[0][0] == "recipe":
            apply_override(raw, text_override, source)
    if raw.get("recipe") != "recommended":
        return raw
    others = [text for text in overrides if parse_override(text)[0][0] != "recipe"]
    overridden = copy.deepcopy(raw)  # the task and input kind the recipe's pieces depend on, as --set leaves them
    for text_override in others:
        apply_override(overridden, text_override, copy.deepcopy(source))
    final = recipe_mod.merged_under(copy.deepcopy(raw), recipe_mod.values(overridden, whole_file=False))
    for text_override in others:
        apply_override(final, text_override, copy.deepcopy(source))
    return recipe_mod.merged_under(raw, recipe_mod.values(overridden, whole_file=recipe_mod.trains_on_the_whole_file(final, tuned=tuned)))


def _check_value(search: Search, param: TuneParam, value: Any, *, strict: bool) -> None:
    """Validate ``value`` of ``param`` alone on the base spec."""
    raw, source = copy.deepcopy(search.raw), _Source(search.source.file)
    source.lines, source.quoted, source.overridden = dict(search.source.lines), set(search.source.quoted), dict(search.source.overridden)
    dotted = _set_value(raw, param.keys, value, f"tune.{param.name}")
    line = search.source.lines.get(f"tune.{param.name}", search.source.lines.get("tune"))
    at = f", {search.source.file} line {line}" if line else ""
    source.overridden[dotted] = f"`tune.{param.name}`{at}"
    _finish(raw, source, search.file, strict=strict)


def _tune_fail(source: _Source, name: str, expected: str, value: Any, fix: str) -> SpecError:
    line = source.lines.get(f"tune.{name}" if name else "tune")
    at = f" ({source.file}, line {line})" if line else ""
    key = f"tune.{name}" if name else "tune"
    return SpecError(f"`{key}` must be {expected}. Received: {_describe(value)}{at}. {fix}")


def _tune_params(tune: Any, source: _Source) -> list[TuneParam]:
    example = "e.g. `model.layers[0].units: [32, 64, 128]` or `training.learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}`"
    if not isinstance(tune, dict) or not tune:
        raise _tune_fail(source, "", "a mapping of dotted spec paths to choices or ranges", tune, f"Write one line per searched field, {example}.")
    params = []
    for name, value in tune.items():
        name = str(name)
        keys = _tune_keys(name, source)
        leaf = _schema_leaf(keys, name, source)
        if isinstance(value, list):
            if not value:
                raise _tune_fail(source, name, "a non-empty list of choices", value, "List at least two values to choose from, e.g. [32, 64, 128].")
            bad = [v for v in value if not (v is None or isinstance(v, (bool, int, float, str)))]
            if bad:
                raise _tune_fail(source, name, "a list of choices that are numbers, strings, true/false or null", value, f"{_describe(bad[0])} is not one; list plain values.")
            if len(set(map(repr, value))) != len(value):
                raise _tune_fail(source, name, "a list of different choices", value, "Remove the repeated value.")
            params.append(TuneParam(name, keys, choices=tuple(_as_number(v, leaf) for v in value)))
        elif isinstance(value, dict):
            params.append(_tune_range(name, keys, leaf, {k: _as_number(v, leaf) for k, v in value.items()}, source))
        else:
            raise _tune_fail(source, name, "a list of choices or a range {low, high}", value, f"Write {example}.")
    return params


def _as_number(value: Any, leaf: Any) -> Any:
    """``'1e-4'`` -> 1e-4 for a number field: YAML 1.1 reads an exponent without a '.' as text, which `tune:` ranges and choices forgive."""
    args = get_args(leaf) if get_origin(leaf) in (Union, types.UnionType) else (leaf,)
    number = _number(value) if isinstance(value, str) and float in args else None
    return number if number is not None and math.isfinite(number) else value


def _tune_keys(name: str, source: _Source) -> tuple[str | int, ...]:
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[-?\d+\])*", name):
        line = source.lines.get(f"tune.{name}", source.lines.get("tune"))
        at = f" ({source.file}, line {line})" if line else ""
        raise SpecError(f"`tune` key {name!r}{at} is not a dotted spec path. Write it like `training.learning_rate` or `model.layers[0].units`.")
    keys: tuple[str | int, ...] = tuple(int(t[1:-1]) if t.startswith("[") else t.lstrip(".") for t in re.findall(r"\.?[A-Za-z_]\w*|\[-?\d+\]", name))
    if keys[0] in ("output", "tune"):
        raise SpecError(f"`tune.{name}`: `{keys[0]}` cannot be searched ({'where runs go' if keys[0] == 'output' else 'the search space'} is not a hyperparameter). Remove `{name}` from `tune:`.")
    return keys


def _unwrap(tp: Any) -> Any:
    """``X | None`` -> ``X`` for a section (dataclass, list or mapping); other types as they are."""
    if get_origin(tp) in (Union, types.UnionType):
        sections = [a for a in get_args(tp) if dataclasses.is_dataclass(a) or get_origin(a) in (list, dict)]
        if len(sections) == 1:
            return sections[0]
    return tp


def _schema_leaf(keys: Sequence[str | int], name: str, source: _Source) -> Any:
    """The schema type at ``keys``, or a :class:`SpecError` naming the first key that does not exist (with the closest one)."""
    tp: Any = Spec
    dotted = ""
    line = source.lines.get(f"tune.{name}", source.lines.get("tune"))
    at = f" ({source.file}, line {line})" if line else ""
    for key in keys:
        tp = _unwrap(tp)
        if isinstance(key, int):
            if get_origin(tp) is not list:
                raise SpecError(f"Unknown path `tune.{name}`{at}: `{dotted}` is not a list, so it has no item [{key}]. Remove the index.")
            tp = get_args(tp)[0]
        elif isinstance(tp, type) and dataclasses.is_dataclass(tp) and tp is not DataFile:
            names = [f.name for f in dataclasses.fields(tp)]
            if key not in names:
                section = f"`{dotted}`" if dotted else "the top level"
                close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                hint = f" Did you mean `tune.{name.replace(_join(dotted, key), _join(dotted, close[0]), 1)}`?" if close else " Fix its spelling."
                raise SpecError(f"Unknown path `tune.{name}`{at}: {section} has no key `{key}`. Valid keys in {section}: {', '.join(names)}.{hint}")
            tp = get_type_hints(tp)[key]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            raise SpecError(f"Unknown path `tune.{name}`{at}: `{dotted}` is a single value, so it has no key `{key}`. Search `{dotted}` itself.")
        dotted = _join(dotted, key)
    return tp


def _tune_range(name: str, keys: tuple[str | int, ...], leaf: Any, value: dict[Any, Any], source: _Source) -> TuneParam:
    for key in value:
        if key not in RANGE_KEYS:
            close = difflib.get_close_matches(str(key), RANGE_KEYS, n=1, cutoff=0.5)
            hint = f" Did you mean `{close[0]}`?" if close else ""
            raise _tune_fail(source, name, "a range with the keys low, high, and optionally log or step", value, f"Unknown key `{key}`.{hint}")
    args = get_args(leaf) if get_origin(leaf) in (Union, types.UnionType) else (leaf,)
    if float not in args and int not in args:
        raise _tune_fail(source, name, f"a list of choices (`{name}` is {_type_name(leaf)}, so it has no range)", value, "List the values to try, e.g. [a, b].")
    integer = float not in args
    kind = "integers" if integer else "numbers"
    for end in ("low", "high"):
        if end not in value:
            raise _tune_fail(source, name, "a range with both `low` and `high`", value, f"Add `{end}:`.")
        v = value[end]
        ok = isinstance(v, int) and not isinstance(v, bool) if integer else isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
        if not ok:
            raise _tune_fail(
                source, name, f"a range of {kind} (`{name}` is {_type_name(leaf)})", value,
                f"`{end}` is {_describe(v)}; write {'an integer' if integer else 'a number'}.",
            )
    low, high = value["low"], value["high"]
    if not low < high:
        raise _tune_fail(source, name, "a range with low below high", value, f"Swap them, or widen the range (low {low!r}, high {high!r}).")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise _tune_fail(source, name, "a range whose `log` is true or false", value, "Write `log: true` to sample on a log scale.")
    if log and low <= 0:
        raise _tune_fail(source, name, "a log range with a positive low end", value, f"A log scale has no {low!r}; start it above 0, e.g. low: {high / 100:g}.")
    step = value.get("step")
    if step is not None:
        ok = (isinstance(step, int) if integer else isinstance(step, (int, float))) and not isinstance(step, bool) and step > 0
        if not ok:
            raise _tune_fail(source, name, f"a range whose `step` is a positive {'integer' if integer else 'number'}", value, "Remove `step`, or give it a positive value.")
        if log:
            raise _tune_fail(source, name, "a range with either `log` or `step`", value, "A log range takes no step; remove one of them.")
    return TuneParam(name, keys, low=low, high=high, log=log, step=step, integer=integer)


def _absolute(path: Path, key: str) -> Path:
    """``path`` made absolute with symbolic links resolved; a link loop is an error that names ``key`` (the field, as written in the message)."""
    try:
        return path.resolve()
    except (RuntimeError, OSError) as exc:  # RuntimeError("Symlink loop from ...") before Python 3.13
        raise SpecError(
            f"{key} is {path}, which cannot be followed: {exc.strerror if isinstance(exc, OSError) and exc.strerror else 'a symbolic link loop'}. "
            "Point the link at a real file (`ls -l` shows where it leads), or give the file's own path."
        ) from None


def check_data_files(spec: Spec) -> None:
    """Raise a :class:`SpecError` naming every data file of a resolved spec (each with its key) that does not exist or is a
    directory; ``validate`` checks this, the loaders check it again when they read."""
    problems = []
    for role, path in spec_files(spec).items():
        if os.path.isdir(path):
            problems.append(f"`{file_key(role)}` is {path}, a directory, not a data file")
        elif not os.path.isfile(path):
            problems.append(f"`{file_key(role)}` is {path}, which does not exist")
    if problems:
        raise SpecError(
            "; ".join(problems) + ". Paths in a spec are relative to the spec file's folder; correct the "
            + ("paths, or put the files there." if len(problems) > 1 else "path, or put the file there.")
        )


def resolve(spec: Spec, base_dir: Path, name: str) -> Spec:
    """Make data paths absolute (relative to ``base_dir``) and fill ``output.name``."""

    def absolute(data_file: DataFile, key: str) -> DataFile:
        labels = str(_absolute(base_dir / data_file.labels, f"`{key}.labels`")) if data_file.labels else None
        return DataFile(path=str(_absolute(base_dir / data_file.path, f"`{key}`")), labels=labels)

    def files(data: DataSpec, prefix: str) -> DataSpec:
        validation = None if data.validation is None else absolute(data.validation, f"{prefix}.validation")
        test = None if data.test is None else absolute(data.test, f"{prefix}.test")
        return dataclasses.replace(data, train=absolute(data.train, f"{prefix}.train"), validation=validation, test=test)

    inputs = None if spec.inputs is None else {n: dataclasses.replace(i, data=files(i.data, f"inputs.{n}.data")) for n, i in spec.inputs.items()}
    output = dataclasses.replace(spec.output, name=spec.output.name or name)
    return dataclasses.replace(spec, data=files(spec.data, "data"), output=output, inputs=inputs)


def spec_from_dict(raw: dict[str, Any]) -> Spec:
    """Rebuild a resolved spec saved in a run directory (validated like a file)."""
    return _Builder(_Source("the run's spec.yaml")).build(Spec, raw, "")


def to_dict(spec: Spec) -> dict[str, Any]:
    """The spec as plain data, every default filled in."""
    return dataclasses.asdict(spec)


def to_yaml(spec: Spec) -> str:
    """The resolved spec as YAML, in schema order."""
    return yaml.safe_dump(to_dict(spec), sort_keys=False, default_flow_style=False)


def maxlen_percentile(maxlen: int | str | None) -> float | None:
    """The percentile of a ``'p95'``-style maxlen, else None."""
    return _percentile(maxlen) if isinstance(maxlen, str) else None


def default_mapping() -> dict[str, Any]:
    """Every field's default as plain data (required fields are None)."""

    def walk(cls: type) -> dict[str, Any]:
        out: dict[str, Any] = {}
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.default_factory is not REQUIRED:
                value = f.default_factory()
                if dataclasses.is_dataclass(value) and not isinstance(value, type):
                    out[f.name] = dataclasses.asdict(value)
                else:
                    out[f.name] = [dataclasses.asdict(v) if dataclasses.is_dataclass(v) and not isinstance(v, type) else v for v in value]
            elif f.default is REQUIRED:
                out[f.name] = walk(hints[f.name]) if dataclasses.is_dataclass(hints[f.name]) and hints[f.name] is not DataFile else None
            else:
                out[f.name] = f.default
        return out

    return walk(Spec)


def reference_rows() -> list[tuple[str, str, str, str]]:
    """(key, type, default, meaning) for every spec field, in schema order."""
    rows: list[tuple[str, str, str, str]] = []

    def walk(cls: type, prefix: str) -> None:
        hints = get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            key = _join(prefix, f.name)
            inner = next((a for a in get_args(tp) if dataclasses.is_dataclass(a)), tp)
            if get_origin(tp) is list and dataclasses.is_dataclass(get_args(tp)[0]):
                inner = get_args(tp)[0]
                key = key + "[]"
            if isinstance(inner, type) and dataclasses.is_dataclass(inner) and inner is not DataFile:
                if type(None) in get_args(tp):
                    rows.append((key, "a mapping or null", "`null`" if f.default is None else "a mapping", f.metadata["doc"]))
                walk(inner, key)
                continue
            mapped = next((a for a in get_args(tp) if get_origin(a) is dict and dataclasses.is_dataclass(get_args(a)[1])), None)
            if mapped is not None:  # `inputs`: NAME -> InputSpec, whose sections are documented where they are defined
                rows.append((key, "a mapping of names to mappings, or null", "`null`", f.metadata["doc"]))
                for sub in dataclasses.fields(get_args(mapped)[1]):
                    sub_default = "required" if sub.default_factory is REQUIRED else "`[{units: 64}]`" if sub.name == "layers" else "the defaults of `preprocessing`"
                    rows.append((f"{key}.NAME.{sub.name}", "a list" if sub.name == "layers" else "a mapping", sub_default, sub.metadata["doc"]))
                continue
            if f.default is REQUIRED and f.default_factory is REQUIRED:
                default = "required"
            elif f.default_factory is not REQUIRED:
                default = "`" + yaml.safe_dump(f.default_factory(), default_flow_style=True).strip() + "`"
            else:
                default = "`" + yaml.safe_dump(f.default, default_flow_style=True).strip().removesuffix("...").strip() + "`"
            type_text = "path or {path, labels}" if inner is DataFile else _type_name(tp)
            check: Check | None = f.metadata["check"]
            bound = f" {check.bound()[0].upper()}{check.bound()[1:]}." if check is not None and check.at_most is not None else ""
            rows.append((key, type_text, default, f.metadata["doc"] + bound))

    walk(Spec, "")
    return rows


def reference_markdown() -> str:
    """The spec reference table of docs/spec-reference.md."""
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{k}` | {t} | {d} | {m} |" for k, t, d, m in reference_rows()]
    return "\n".join(lines)
