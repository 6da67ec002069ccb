"""The task interface: what a model predicts, and everything that follows from it.

A task decides what the targets are and how they are read (its :class:`~seqcli.spec.TaskKind`: per sequence or
per timestep, class labels or real values), fitted on the training split, encoded and saved (in the run's
``preprocessing.json``); the output head and the loss; the metrics logged while training and the evaluation
after it; and the rows that ``predict`` writes. Everything else (loading, preprocessing the inputs, batching,
the recurrent stack, the run directory) is shared. Each task is one module here and one entry in
:data:`seqcli.tasks.TASKS`.

Shapes: model outputs for a per-sequence task are ``(samples, units)``; for a per-timestep task one
``(timesteps_i, units)`` array per sequence, real timesteps only. Encoded targets have the same layout.
No TensorFlow at import: Keras is imported inside the methods that build model parts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from seqcli.errors import DataError
from seqcli.sequences import Sequences

if TYPE_CHECKING:
    from seqcli.data import SequenceData
    from seqcli.preprocess import Preprocessor
    from seqcli.spec import Spec, TaskKind

Targets = np.ndarray | Sequences  # (samples, ...) per sequence, or ragged (timesteps_i, ...) per sequence
Outputs = np.ndarray | Sequences


class Task(ABC):
    """One kind of prediction; see the module docstring."""

    kind: ClassVar[TaskKind]
    headline: ClassVar[tuple[tuple[str, str], ...]]  # (column title, metrics.json key): what the end of training shows per split
    scores: ClassVar[tuple[str, ...]]  # what a prediction with known targets reports, e.g. accuracy

    @property
    def name(self) -> str:
        return self.kind.name

    # ------------------------------------------------------------------ targets

    @abstractmethod
    def fit(self, prep: Preprocessor, train: SequenceData, *, classes: list[str] | None = None) -> Preprocessor:
        """``prep`` with this task's target state fitted on the training split: its classes, or the targets' scaling.

        ``classes`` stands in for the classes of unlabelled data (``inspect-shapes`` on a bare file).
        """

    @abstractmethod
    def encode(self, prep: Preprocessor, data: SequenceData) -> Targets:
        """The data's targets as the model learns them (class indices, or standardized values); per-timestep targets truncated like the sequences."""

    def has_targets(self, data: SequenceData) -> bool:
        return (data.step_targets if self.kind.per_timestep else data.labels) is not None

    def split(self, train: SequenceData, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Indices ``(train, validation)`` holding out ``fraction`` of the sequences, seeded (classification overrides it with a stratified split)."""
        return random_split(len(train), fraction, seed)

    def model_targets(self, spec: Spec, prep: Preprocessor, y: Targets) -> Targets:
        """What Keras is fed as ``y``: the encoded targets as they are, unless the task's loss wants another form."""
        return y

    def class_weights(self, spec: Spec, prep: Preprocessor, y: Targets) -> dict[str, float] | None:
        """The weight of every class in the training loss (classification only)."""
        return None

    # ------------------------------------------------------------------ model

    @abstractmethod
    def head(self, x: Any, *, spec: Spec, prep: Preprocessor) -> Any:
        """The output layer, named ``output``, on ``x``: ``(batch, units)``, or ``(batch, timesteps, units)`` for a per-timestep task."""

    @abstractmethod
    def loss(self, spec: Spec) -> Any:
        """The Keras loss (a name or an object)."""

    @abstractmethod
    def metrics(self, spec: Spec) -> list[Any]:
        """The Keras metrics logged every epoch, named as in ``training.metrics``."""

    @abstractmethod
    def describe(self, prep: Preprocessor) -> str:
        """One line for ``inspect-shapes``: the head and the shape of the targets."""

    # ------------------------------------------------------------------ evaluation and prediction

    def evaluate(self, outputs: Outputs, y: Targets, prep: Preprocessor, *, spec: Spec) -> dict[str, Any]:
        """The metrics of one split (``metrics.json``), from the model's outputs and the encoded targets; a per-timestep
        task's over all real timesteps, with ``sequences`` counting the sequences."""
        report = self._evaluate(flat(outputs), flat(y), prep, spec=spec)
        return {**report, "sequences": len(y)} if isinstance(y, Sequences) else report

    def predictions(self, outputs: Outputs, prep: Preprocessor) -> np.ndarray:
        """Per row (a sequence, or a real timestep of one) ``(rows, columns)``: class probabilities, or values in the targets' units."""
        return self._predictions(flat(outputs), prep)

    def rows(self, outputs: Outputs, prep: Preprocessor, y: Targets | None = None) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """The prediction columns of every row (a sequence, or a real timestep of one), and with known targets ``y`` the scores."""
        return self._rows(flat(outputs), prep, None if y is None else flat(y))

    @abstractmethod
    def columns(self, prep: Preprocessor) -> list[str]:
        """What each column of :meth:`predictions` holds: the classes, or the targets' names."""

    # One row per sequence, or per real timestep: what the three methods above do once the outputs are flat.

    @abstractmethod
    def _evaluate(self, outputs: np.ndarray, y: np.ndarray, prep: Preprocessor, *, spec: Spec) -> dict[str, Any]: ...

    @abstractmethod
    def _predictions(self, outputs: np.ndarray, prep: Preprocessor) -> np.ndarray: ...

    @abstractmethod
    def _rows(self, outputs: np.ndarray, prep: Preprocessor, y: np.ndarray | None) -> tuple[list[dict[str, Any]], dict[str, float | None]]: ...


def mean_outputs(outputs: list[Outputs]) -> Outputs:
    """The mean of several models' outputs on the same data, each ``(samples, units)`` or ragged ``(timesteps_i, units)``:
    an ensemble's class probabilities, or standardized predictions; one model's outputs are returned as they are.

    >>> mean_outputs([np.array([[0.2, 0.8]]), np.array([[0.6, 0.4]])]).round(3).tolist()
    [[0.4, 0.6]]
    """
    if len(outputs) == 1:
        return outputs[0]
    first = outputs[0]
    if isinstance(first, Sequences):
        return first.with_values(np.mean(np.stack([o.values for o in outputs if isinstance(o, Sequences)]), axis=0))
    return np.mean(np.stack([np.asarray(o) for o in outputs]), axis=0)


def flat(values: Outputs) -> np.ndarray:
    """Per-timestep arrays concatenated ``(real timesteps, ...)``; a per-sequence array as it is."""
    return values.values if isinstance(values, Sequences) else values


def random_split(samples: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(train, validation)`` holding out ``fraction`` of the sequences (seeded).

    >>> [a.tolist() for a in random_split(5, 0.4, seed=0)]
    [[0, 1, 3], [2, 4]]
    """
    order = np.random.default_rng(seed).permutation(samples)
    count = min(round(samples * fraction), samples - 1)
    if count < 1:
        raise DataError(
            f"`data.validation_split: {fraction}` of {samples} training sequences leaves an empty validation set. "
            "Raise the fraction, give `data.validation`, or set `validation_split: 0` and `training.monitor: loss`."
        )
    return np.sort(order[count:]), np.sort(order[:count])
