"""Evaluation metrics (pure NumPy, no TensorFlow): classification from class indices, regression from values."""

from __future__ import annotations

from typing import Any

import numpy as np


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """``(classes, classes)`` counts; rows are true classes, columns predicted ones.

    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).tolist()
    [[1, 0], [1, 1]]
    """
    matrix = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(matrix, (y_true, y_pred), 1)
    return matrix


def log_loss(probabilities: np.ndarray, y_true: np.ndarray, epsilon: float = 1e-7) -> float:
    """Mean cross-entropy of ``(samples, classes)`` probabilities, clipped like Keras' losses.

    >>> round(log_loss(np.array([[0.5, 0.5], [0.1, 0.9]]), np.array([0, 1])), 4)
    0.3993
    """
    picked = np.clip(probabilities[np.arange(len(y_true)), y_true], epsilon, 1.0 - epsilon)
    return float(-np.log(picked).mean())


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix."""
    matrix = confusion_matrix(y_true, y_pred, len(classes))
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denominator = precision + recall
    f1 = np.divide(2 * precision * recall, denominator, out=np.zeros_like(tp), where=denominator > 0)
    present = support > 0
    per_class = {
        name: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]), "support": int(support[i])}
        for i, name in enumerate(classes)
    }
    return {
        "accuracy": float(tp.sum() / max(len(y_true), 1)),
        "macro_precision": float(precision[present].mean()) if present.any() else 0.0,
        "macro_recall": float(recall[present].mean()) if present.any() else 0.0,
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "samples": len(y_true),
        "per_class": per_class,
        "confusion_matrix": {"classes": list(classes), "rows_true_columns_predicted": matrix.tolist()},
    }


def regression_report(y_true: np.ndarray, y_pred: np.ndarray, baseline: np.ndarray, names: list[str]) -> dict[str, Any]:
    """RMSE, MAE and R² of ``(rows, targets)`` predictions in the targets' own units, per target and averaged over the
    targets, next to what predicting ``baseline`` ``(targets,)`` (the training mean) for every row scores.

    R² is ``1 - SS_res / SS_tot`` around the rows' own mean (0 for a constant target predicted exactly, else -inf-safe).

    >>> report = regression_report(np.array([[1.0], [3.0]]), np.array([[1.5], [2.5]]), np.array([2.0]), ["y"])
    >>> report["rmse"], report["mae"], report["r2"], report["mean_predictor_rmse"]
    (0.5, 0.5, 0.75, 1.0)
    """
    error = y_pred - y_true
    rmse = np.sqrt(np.mean(error**2, axis=0))
    mae = np.mean(np.abs(error), axis=0)
    total = np.sum((y_true - y_true.mean(axis=0)) ** 2, axis=0)
    residual = np.sum(error**2, axis=0)
    r2 = np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), 0.0)
    base_error = baseline[None, :] - y_true
    base_rmse = np.sqrt(np.mean(base_error**2, axis=0))
    base_mae = np.mean(np.abs(base_error), axis=0)
    per_target = {
        name: {"rmse": float(rmse[j]), "mae": float(mae[j]), "r2": float(r2[j]), "mean_predictor_rmse": float(base_rmse[j]), "mean_predictor_mae": float(base_mae[j])}
        for j, name in enumerate(names)
    }
    return {
        "rmse": float(rmse.mean()),
        "mae": float(mae.mean()),
        "r2": float(r2.mean()),
        "mean_predictor_rmse": float(base_rmse.mean()),
        "mean_predictor_mae": float(base_mae.mean()),
        "samples": len(y_true),
        "per_target": per_target,
    }


def regression_loss(name: str, y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The training loss on standardized targets, as Keras computes it: ``mse``, ``mae`` or ``huber`` (delta 1).

    >>> regression_loss("huber", np.array([[0.0], [0.0]]), np.array([[0.5], [2.0]]))
    0.8125
    """
    error = y_pred - y_true
    if name == "mae":
        return float(np.mean(np.abs(error)))
    if name == "huber":
        absolute = np.abs(error)
        return float(np.mean(np.where(absolute <= 1.0, 0.5 * error**2, absolute - 0.5)))
    return float(np.mean(error**2))
