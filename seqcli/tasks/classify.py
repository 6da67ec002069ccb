"""``task: classify``: one class label per sequence.

Labels are read as text or numbers and named as text (``1.0`` and ``1`` are the class ``"1"``); the classes are
those of the training split, sorted (numerically when every name is a number), and saved in the run. The head is a
softmax over the classes ``(batch, classes)``, or one sigmoid unit ``(batch, 1)`` for two classes; the loss is
(sparse) categorical or binary cross-entropy. The validation split is stratified. Evaluation: loss, accuracy,
per-class precision/recall/F1 and the confusion matrix.
"""

from __future__ import annotations

import dataclasses
import difflib
from abc import abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from seqcli.backend import import_keras
from seqcli.errors import DataError, SpecError
from seqcli.metrics import classification_report, log_loss
from seqcli.spec import TASK_KINDS, metric_names
from seqcli.tasks.base import Outputs, Targets, Task

if TYPE_CHECKING:
    from seqcli.data import SequenceData
    from seqcli.preprocess import Preprocessor
    from seqcli.spec import Spec


class ClassLabels(Task):
    """What the two classification tasks share: classes fitted on the training split, a softmax (or sigmoid) head, cross-entropy, accuracy, probability rows."""

    headline: ClassVar[tuple[tuple[str, str], ...]] = (("loss", "loss"), ("accuracy", "accuracy"), ("macro F1", "macro_f1"), ("samples", "samples"))
    scores = ("accuracy",)

    @abstractmethod
    def class_names(self, data: SequenceData) -> list[str]:
        """Sorted class names of the training targets; at least two."""

    def fit(self, prep: Preprocessor, train: SequenceData, *, classes: list[str] | None = None) -> Preprocessor:
        return dataclasses.replace(prep, classes=classes if classes is not None else self.class_names(train), task=self.name)

    def head(self, x: Any, *, spec: Spec, prep: Preprocessor) -> Any:
        keras = import_keras()
        n_classes = len(prep.classes)
        if spec.model.output == "sigmoid" and n_classes != 2:
            raise SpecError(f"`model.output: sigmoid` needs exactly two classes, but the training data has {n_classes}. Use `model.output: softmax`.")
        units, activation = (1, "sigmoid") if spec.model.output == "sigmoid" else (n_classes, "softmax")
        return keras.layers.Dense(units, activation=activation, name="output")(x)

    def loss(self, spec: Spec) -> Any:
        """The loss name, or with label smoothing a loss object (categorical cross-entropy on one-hot targets for softmax)."""
        smoothing = spec.training.label_smoothing
        if not smoothing:
            return loss_name(spec)
        keras = import_keras()
        if spec.model.output == "sigmoid":
            return keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
        return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)

    def metrics(self, spec: Spec) -> list[Any]:
        keras = import_keras()
        metrics: list[Any] = []
        for name in metric_names(spec):
            if name == "auc":
                metrics.append(keras.metrics.AUC(name="auc"))
            elif spec.model.output == "sigmoid":
                metrics.append(keras.metrics.BinaryAccuracy(name="accuracy"))
            elif one_hot_targets(spec):
                metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
            else:
                metrics.append(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
        return metrics

    def columns(self, prep: Preprocessor) -> list[str]:
        return list(prep.classes)

    def _predictions(self, outputs: np.ndarray, prep: Preprocessor) -> np.ndarray:
        return self.probabilities(outputs)

    def probabilities(self, outputs: Outputs) -> np.ndarray:
        """Class probabilities ``(rows, classes)``; a sigmoid output ``(rows, 1)`` becomes two columns."""
        probs = np.asarray(outputs)
        return np.concatenate([1.0 - probs, probs], axis=-1) if probs.shape[-1] == 1 else probs

    def _evaluate(self, outputs: np.ndarray, y: np.ndarray, prep: Preprocessor, *, spec: Spec) -> dict[str, Any]:
        probs = self.probabilities(outputs)
        return {"loss": log_loss(probs, y), **classification_report(y, probs.argmax(axis=1), prep.classes)}

    def _rows(self, outputs: np.ndarray, prep: Preprocessor, y: np.ndarray | None) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """``predicted``, ``label`` (known labels) and ``p_<class>`` for every class, per row."""
        probs = self.probabilities(outputs)
        predicted = probs.argmax(axis=1)
        true = y
        rows = []
        for i, p in enumerate(probs):
            row: dict[str, Any] = {"predicted": prep.classes[predicted[i]]}
            if true is not None:
                row["label"] = prep.classes[true[i]]
            row.update({f"p_{name}": round(float(v), 6) for name, v in zip(prep.classes, p, strict=True)})
            rows.append(row)
        return rows, {"accuracy": float(np.mean(predicted == true)) if true is not None and len(true) else None}


class Classify(ClassLabels):
    kind = TASK_KINDS["classify"]

    def class_names(self, data: SequenceData) -> list[str]:
        """Sorted class names of the training labels; at least two."""
        if data.labels is None:
            raise DataError(f"{data.source} has no labels; training data needs one label per sequence.")
        names = sorted(set(label_names(data.labels).tolist()), key=numeric_first)
        if len(names) < 2:
            raise DataError(f"The training data in {data.source} has a single class ({names[0]!r}); a classifier needs at least two. Check the label column or file.")
        return names

    def encode(self, prep: Preprocessor, data: SequenceData) -> Targets:
        """Class indices ``(samples,)``; a label the training split lacks is an error naming the sequence."""
        assert data.labels is not None
        names = label_names(data.labels)
        unknown = np.flatnonzero(~np.isin(names, prep.classes))
        if unknown.size:
            i = int(unknown[0])
            raise DataError(
                f"{data.source}, {data.where[i]}: label {str(names[i])!r} was not among the training classes "
                f"({', '.join(prep.classes)}). Remove those sequences or add the class to the training data."
            )
        return class_indices(names, prep.classes).astype(np.int64)

    def split(self, train: SequenceData, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """The stratified split; when it is empty because most classes have a single sequence, an error that says so."""
        assert train.labels is not None
        try:
            return stratified_split(train.labels, fraction, seed)
        except DataError:
            counts = np.unique(label_names(train.labels), return_counts=True)[1]
            singles = int((counts == 1).sum())
            if 2 * singles <= len(counts):
                raise
        numeric = " They are numbers: if they are real values rather than classes, set `task: regress`." if numeric_labels(train.labels) is not None else ""
        raise DataError(
            f"{train.source}: {'each' if singles == len(counts) else singles} of the {len(counts)} classes of the training labels "
            f"{'has' if singles == len(counts) else 'have'} a single sequence, so the stratified "
            f"`data.validation_split: {fraction}` can hold none of them out and the validation set would be empty; a classifier cannot learn a class "
            f"from one example either.{numeric} For classes, give each class more sequences, or give `data.validation`."
        ) from None

    def model_targets(self, spec: Spec, prep: Preprocessor, y: Targets) -> Targets:
        """Class indices ``(samples,)``; ``(samples, 1)`` floats for a sigmoid output; one-hot ``(samples, classes)`` with label smoothing."""
        assert isinstance(y, np.ndarray)
        if spec.model.output == "sigmoid":
            return y.astype(np.float32)[:, None]
        return np.eye(len(prep.classes), dtype=np.float32)[y] if one_hot_targets(spec) else y

    def class_weights(self, spec: Spec, prep: Preprocessor, y: Targets) -> dict[str, float] | None:
        """The weight of every class in the training loss, or None without ``training.class_weight``.

        ``balanced`` gives class c the weight ``samples / (classes * count_c)`` over the training labels ``y`` (class indices,
        ``(samples,)``), as scikit-learn does: labels [a, a, a, b] give a 4/6 and b 4/2. A mapping must name training classes.
        """
        setting = spec.training.class_weight
        if setting is None:
            return None
        classes = prep.classes
        if setting == "balanced":
            assert isinstance(y, np.ndarray)
            counts = np.bincount(y, minlength=len(classes))
            return {name: len(y) / (len(classes) * int(count)) for name, count in zip(classes, counts, strict=True)}
        for name in setting:
            if name not in classes:
                close = difflib.get_close_matches(name, classes, n=1)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise SpecError(
                    f"`training.class_weight` names the class {name!r}, which is not in the training data (classes: {', '.join(classes)}).{hint} "
                    "Use the class names as they appear in the labels."
                )
        return {name: float(setting.get(name, 1.0)) for name in classes}

    def describe(self, prep: Preprocessor) -> str:
        return f"Task: classify (one label per sequence). Targets (samples,) class indices of {len(prep.classes)} classes; the head is a softmax (batch, classes={len(prep.classes)})."

def loss_name(spec: Spec) -> str:
    """``training.loss``, with ``auto`` resolved: sparse categorical cross-entropy for softmax, binary for sigmoid."""
    if spec.training.loss != "auto":
        return spec.training.loss
    return "binary_crossentropy" if spec.model.output == "sigmoid" else "sparse_categorical_crossentropy"


def one_hot_targets(spec: Spec) -> bool:
    """True when training targets are one-hot ``(batch, classes)`` rows: label smoothing with a softmax output."""
    return spec.training.label_smoothing > 0 and spec.model.output == "softmax"


def numeric_first(name: str) -> tuple[int, float, str]:
    """Sort key: numbers by value first, then the other names."""
    try:
        return (0, float(name), name)
    except ValueError:
        return (1, 0.0, name)


def _label_name(value: Any) -> str:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value.item() if isinstance(value, np.generic) else value)


def label_names(labels: np.ndarray) -> np.ndarray:
    """Every label's class name, ``(samples,)`` strings (named once per distinct value: fast for a million labels).

    >>> label_names(np.array([2.0, 1.0, 2.5])).tolist()
    ['2', '1', '2.5']
    """
    try:
        unique, inverse = np.unique(labels, return_inverse=True)
    except TypeError:  # values NumPy cannot order
        return np.array([_label_name(v) for v in labels], dtype=str)
    return np.array([_label_name(v) for v in unique], dtype=str)[inverse.reshape(-1)]


def numeric_labels(labels: np.ndarray) -> np.ndarray | None:
    """The distinct labels as numbers, sorted; None when one of them is not a finite number."""
    values = []
    for name in np.unique(label_names(labels)):
        try:
            value = float(name)
        except ValueError:
            return None
        if not np.isfinite(value):
            return None
        values.append(value)
    return np.array(sorted(values))


def regression_like(labels: np.ndarray) -> str | None:
    """Why class labels look like real-valued targets, or None: numbers with a fractional part, or more than two distinct
    numbers of which most label a single sequence.

    >>> regression_like(np.array([1.0, 2.0, 3.5, 1.0, 2.0]))
    'numbers with a fractional part, such as 3.5'
    >>> regression_like(np.array([0.12, 7.0, 3.0, 12.0]))
    'numbers with a fractional part, such as 0.12'
    >>> regression_like(np.array([10, 20, 30, 40, 10]))
    '4 distinct numbers, 3 of them on a single sequence'
    >>> regression_like(np.array([1, 2, 1, 2])), regression_like(np.array(["a", "b", "c"]))
    (None, None)
    """
    values = numeric_labels(labels)
    if values is None:
        return None
    fractional = [v for v in values if not float(v).is_integer()]
    if fractional:
        return "numbers with a fractional part, such as " + ", ".join(f"{v:g}" for v in fractional[:3])
    counts = np.unique(label_names(labels), return_counts=True)[1]
    singles = int((counts == 1).sum())
    if len(counts) > 2 and 2 * singles > len(counts):
        return f"{len(counts)} distinct numbers, {singles} of them on a single sequence"
    return None


def class_indices(names: np.ndarray, classes: list[str]) -> np.ndarray:
    """The index in ``classes`` of every name (each must be one of them)."""
    index = {name: i for i, name in enumerate(classes)}
    unique, inverse = np.unique(names, return_inverse=True)
    return np.array([index[n] for n in unique], dtype=np.int64)[inverse.reshape(-1)]


def stratified_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` holding out ``fraction`` of every class (seeded).

    Each class gives ``round(len(class) * fraction)`` of its members, keeping at least one for training. When that
    rounds to nothing in every class (50 sequences in 10 classes at 0.1: half a sequence each), the
    ``round(n * fraction)`` classes with the most members (ties in seeded order) give one each instead, so a small,
    many-class training set still gets the validation split it asked for.
    """
    rng = np.random.default_rng(seed)
    names = label_names(labels)
    shuffled: list[np.ndarray] = []
    held: list[int] = []
    for name in sorted(set(names)):
        members = np.flatnonzero(names == name)
        rng.shuffle(members)
        shuffled.append(members)
        count = round(len(members) * fraction)
        held.extend(members[: min(count, len(members) - 1)])
    if not held:
        spare = [members for members in shuffled if len(members) > 1]
        order = sorted(rng.permutation(len(spare)), key=lambda k: -len(spare[k]))
        held = [int(spare[k][0]) for k in order[: round(len(labels) * fraction)]]
    validation = np.sort(np.array(held, dtype=np.int64))
    train = np.setdiff1d(np.arange(len(labels)), validation)
    if validation.size == 0:
        raise DataError(
            f"`data.validation_split: {fraction}` of {len(labels)} training sequences leaves an empty validation set. "
            "Raise the fraction, give `data.validation`, or set `validation_split: 0` and `training.monitor: loss`."
        )
    return train, validation
