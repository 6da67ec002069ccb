"""``task: regress``: one real value, or a vector of them, per sequence.

Targets ``(samples, targets)`` are read from a ``.ts`` file with ``@targetLabel true``, CSV target column(s), a JSON Lines
key (a number or a list) or a float ``y`` of shape ``(samples,)`` or ``(samples, targets)``. They are standardized with the
training split's mean and standard deviation, which the run saves; the model learns and predicts standardized values
through a linear head ``(batch, targets)``, and everything reported (metrics.json, predictions) is in the original units.
The loss is mse, mae or huber (``training.loss``; auto: mse). Evaluation: RMSE, MAE and R² per target, next to what
predicting the training mean scores.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from seqcli.backend import import_keras
from seqcli.errors import DataError
from seqcli.metrics import regression_loss, regression_report
from seqcli.spec import TASK_KINDS, metric_names
from seqcli.tasks.base import Targets, Task

if TYPE_CHECKING:
    from seqcli.data import SequenceData
    from seqcli.preprocess import Preprocessor
    from seqcli.spec import Spec


class Regress(Task):
    kind = TASK_KINDS["regress"]
    headline: ClassVar[tuple[tuple[str, str], ...]] = (
        ("loss", "loss"), ("RMSE", "rmse"), ("MAE", "mae"), ("R²", "r2"), ("RMSE of the mean", "mean_predictor_rmse"), ("samples", "samples"),
    )
    scores = ("rmse", "mae")

    def raw_targets(self, data: SequenceData) -> np.ndarray:
        """The raw targets ``(rows, targets)``: one row per sequence."""
        assert data.labels is not None
        return data.labels

    def fit(self, prep: Preprocessor, train: SequenceData, *, classes: list[str] | None = None) -> Preprocessor:
        """The targets' names, mean and standard deviation on the training split (a constant target keeps std 1)."""
        if not self.has_targets(train):
            return dataclasses.replace(prep, classes=[], task=self.name, targets={"names": ["target"], "mean": [0.0], "std": [1.0]})
        values = self.raw_targets(train)
        names = train.target_names or (["target"] if values.shape[1] == 1 else [str(j) for j in range(values.shape[1])])
        std = values.std(axis=0)
        std[std == 0] = 1.0
        state = {"names": list(names), "mean": values.mean(axis=0).tolist(), "std": std.tolist()}
        return dataclasses.replace(prep, classes=[], task=self.name, targets=state)

    def encode(self, prep: Preprocessor, data: SequenceData) -> Targets:
        """Standardized targets ``(samples, targets)`` float32; a count of targets other than the training split's is an error."""
        values = self.raw_targets(data)
        check_target_count(prep, values.shape[1], data.source)
        return self.standardize(prep, values).astype(np.float32)

    def standardize(self, prep: Preprocessor, values: np.ndarray) -> np.ndarray:
        mean, std = self.scaling(prep)
        return (values - mean) / std

    def unstandardize(self, prep: Preprocessor, values: np.ndarray) -> np.ndarray:
        mean, std = self.scaling(prep)
        return np.asarray(values, dtype=np.float64) * std + mean

    @staticmethod
    def scaling(prep: Preprocessor) -> tuple[np.ndarray, np.ndarray]:
        assert prep.targets is not None
        return np.asarray(prep.targets["mean"]), np.asarray(prep.targets["std"])

    def columns(self, prep: Preprocessor) -> list[str]:
        assert prep.targets is not None
        return list(prep.targets["names"])

    def _predictions(self, outputs: np.ndarray, prep: Preprocessor) -> np.ndarray:
        return self.unstandardize(prep, outputs)

    def head(self, x: Any, *, spec: Spec, prep: Preprocessor) -> Any:
        keras = import_keras()
        assert prep.targets is not None
        return keras.layers.Dense(len(prep.targets["names"]), activation="linear", name="output")(x)

    def loss(self, spec: Spec) -> Any:
        name = loss_name(spec)
        return import_keras().losses.Huber() if name == "huber" else name

    def metrics(self, spec: Spec) -> list[Any]:
        keras = import_keras()
        made = {"mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"), "rmse": lambda: keras.metrics.RootMeanSquaredError(name="rmse")}
        return [made[name]() for name in metric_names(spec)]

    def describe(self, prep: Preprocessor) -> str:
        assert prep.targets is not None
        names = prep.targets["names"]
        return (
            f"Task: regress (real values per sequence). Targets (samples, targets={len(names)}): {', '.join(names)}, standardized with the training split's mean and std; "
            f"the head is a linear Dense (batch, targets={len(names)})."
        )

    def _evaluate(self, outputs: np.ndarray, y: np.ndarray, prep: Preprocessor, *, spec: Spec) -> dict[str, Any]:
        """The loss on the standardized targets, and RMSE, MAE and R² in the original units (see :func:`~seqcli.metrics.regression_report`)."""
        predicted, true = np.asarray(outputs, dtype=np.float64), np.asarray(y, dtype=np.float64)
        assert prep.targets is not None
        mean, _ = self.scaling(prep)
        report = regression_report(self.unstandardize(prep, true), self.unstandardize(prep, predicted), mean, prep.targets["names"])
        return {"loss": regression_loss(loss_name(spec), true, predicted), **report}

    def _rows(self, outputs: np.ndarray, prep: Preprocessor, y: np.ndarray | None) -> tuple[list[dict[str, Any]], dict[str, float | None]]:
        """``predicted`` (and ``target`` when known) per row, in the original units; with several targets ``predicted_<name>`` and ``target_<name>``."""
        assert prep.targets is not None
        names = prep.targets["names"]
        predicted = self.unstandardize(prep, np.asarray(outputs))
        true = None if y is None else self.unstandardize(prep, np.asarray(y))
        single = len(names) == 1
        rows = []
        for i in range(len(predicted)):
            row: dict[str, Any] = {}
            for j, name in enumerate(names):
                row["predicted" if single else f"predicted_{name}"] = round(float(predicted[i, j]), 6)
                if true is not None:
                    row["target" if single else f"target_{name}"] = round(float(true[i, j]), 6)
            rows.append(row)
        if true is None or not len(true):
            return rows, {"rmse": None, "mae": None}
        return rows, {"rmse": float(np.sqrt(np.mean((predicted - true) ** 2, axis=0)).mean()), "mae": float(np.mean(np.abs(predicted - true), axis=0).mean())}


def loss_name(spec: Spec) -> str:
    """``training.loss`` with ``auto`` resolved to mse."""
    return "mse" if spec.training.loss == "auto" else spec.training.loss


def check_target_count(prep: Preprocessor, count: int, source: str) -> None:
    """Data with another number of targets than the training split had is an error."""
    assert prep.targets is not None
    names = prep.targets["names"]
    if count != len(names):
        raise DataError(
            f"{source} has {count} target(s) per {'timestep' if prep.task == 'regress_timesteps' else 'sequence'}, but the model was trained on {len(names)} "
            f"({', '.join(names)}). Give the same targets, in the same order."
        )
