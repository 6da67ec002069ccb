"""A quick non-neural reference on the same splits: aeon's MiniRocket (``seqcli train --baseline``).

MiniRocket (Dempster et al., 2021) is what time-series practitioners reach for first: random convolutional kernels and
a linear model, trained in seconds. Fitted on the run's own training split and scored on its validation and test
splits, it tells a user at once whether the network is worth it. Its figures go into ``metrics.json`` under
``baseline`` and beside the model's in the result table.

The input is the prepared first input (scaled like the network's, truncated to ``maxlen``), zero-padded to the longest
sequence, ``(samples, features, timesteps)`` as aeon takes it. Float input and per-sequence tasks only; classification
uses ``MiniRocketClassifier``, regression one ``MiniRocketRegressor`` per target. aeon is an optional dependency group
(it brings numba and scikit-learn); without it, the error says how to install it. aeon is imported only here.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcli.errors import RunError
from seqcli.metrics import classification_report
from seqcli.pipeline import Pipeline
from seqcli.train import TrainResult

NAME = "MiniRocket (aeon)"
INSTALL = "`uv sync --group baseline` (with pip: `pip install aeon`)"
MIN_TIMESTEPS = 9  # MiniRocket's kernels span 9 timesteps


@dataclass(frozen=True)
class Baseline:
    """The reference's metrics per split (the task's headline keys) and its fit time in seconds."""

    name: str
    seconds: float
    splits: dict[str, dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "fit_seconds": round(self.seconds, 3), **self.splits}


def check(pipeline: Pipeline) -> None:
    """Refuse, before anything trains, what the reference cannot do: aeon missing, codes or text, several inputs, per-timestep targets."""
    problem = None
    if pipeline.multi_input:
        problem = "it takes one input, and this model has several"
    elif pipeline.prep.input != "float":
        problem = "it needs real-valued features, and this model reads token codes or text"
    elif pipeline.task.kind.per_timestep:
        problem = f"it predicts one target per sequence, and `task: {pipeline.task.name}` has one per timestep"
    if problem:
        raise RunError(f"--baseline fits {NAME}, but {problem}. Train without --baseline.")
    if importlib.util.find_spec("aeon") is None:
        raise RunError(f"--baseline needs aeon, an optional dependency: install it with {INSTALL}, or train without --baseline.")


def fit(pipeline: Pipeline) -> Baseline:
    """Fit MiniRocket on the training split and score every labelled split; seeded by the spec's seed."""
    spec, task, prep = pipeline.spec, pipeline.task, pipeline.prep
    x = {role: _aeon_input(split.sequences, prep.maxlen) for role, split in pipeline.splits.items() if split.y is not None}
    y = {role: np.asarray(split.y) for role, split in pipeline.splits.items() if split.y is not None}
    start = time.perf_counter()
    if task.kind.numeric:
        from aeon.regression.convolution_based import MiniRocketRegressor

        models = [MiniRocketRegressor(random_state=spec.seed).fit(x["train"], y["train"][:, j]) for j in range(y["train"].shape[1])]
        seconds = time.perf_counter() - start

        def score(role: str) -> dict[str, Any]:
            predicted = np.stack([m.predict(x[role]) for m in models], axis=1)  # standardized, like the network's outputs
            return _headline(task.evaluate(predicted, y[role], prep, spec=spec), task)

    else:
        from aeon.classification.convolution_based import MiniRocketClassifier

        model = MiniRocketClassifier(random_state=spec.seed).fit(x["train"], y["train"])
        seconds = time.perf_counter() - start

        def score(role: str) -> dict[str, Any]:
            return _headline(classification_report(y[role], np.asarray(model.predict(x[role])), prep.classes), task)

    return Baseline(NAME, seconds, {role: score(role) for role in x if role != "train"})


def attach(result: TrainResult, baseline: Baseline) -> TrainResult:
    """``result`` with the baseline's figures in its metrics, saved to the run's ``metrics.json``."""
    metrics = {**result.metrics, "baseline": baseline.to_dict()}
    result.run.write_json("metrics.json", metrics)
    return dataclasses.replace(result, metrics=metrics)


def _aeon_input(sequences: Any, maxlen: int) -> np.ndarray:
    """Ragged ``(timesteps_i, features)`` -> ``(samples, features, timesteps)`` zero-padded at the end (at least 9 timesteps)."""
    width = max(maxlen, MIN_TIMESTEPS)
    padded = sequences.padded(np.arange(len(sequences)), width, post=True, pad_value=0.0)
    return np.ascontiguousarray(padded.transpose(0, 2, 1), dtype=np.float64)


def _headline(report: dict[str, Any], task: Any) -> dict[str, Any]:
    """The task's headline figures of a report (no loss: MiniRocket has none comparable to the network's)."""
    return {key: report[key] for _, key in task.headline if key in report and key != "loss"}
