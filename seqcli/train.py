"""Training: load and check everything, then fit, checkpoint, log and evaluate.

:func:`prepare` does all the work that can fail on bad input (loading, splitting,
fitting the preprocessing, building the model) before any run directory exists;
:func:`fit` creates the run directory and trains. Progress goes to an optional
:class:`Progress` hook; this module never prints.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from seqcli import data as data_mod
from seqcli import preprocess, shapes
from seqcli.backend import import_keras, seed_everything, versions
from seqcli.data import SequenceData
from seqcli.errors import SeqcliError
from seqcli.metrics import classification_report
from seqcli.model import build_model, probabilities
from seqcli.preprocess import Preprocessor
from seqcli.rundir import RunDir
from seqcli.spec import Spec, to_yaml


class Progress(Protocol):
    """Receives training progress; the CLI renders it with Rich."""

    def on_train_begin(self, epochs: int, steps: int) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class Split:
    """One split, loaded and transformed: ``x`` is ``(batch, maxlen, features)`` (or ``(batch, maxlen)`` tokens), ``y`` ``(batch,)``."""

    data: SequenceData
    x: np.ndarray
    y: np.ndarray


@dataclass
class Prepared:
    spec: Spec
    prep: Preprocessor
    splits: dict[str, Split]
    model: Any
    warnings: list[str]
    fingerprints: dict[str, str]


@dataclass
class TrainResult:
    run: RunDir
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    best_epoch: int
    seconds: float
    stopped_early: bool = False
    warnings: list[str] = field(default_factory=list)


def load_splits(spec: Spec) -> dict[str, SequenceData]:
    """Load train, validation (file or stratified split) and test data as sequences."""
    train = data_mod.load(spec.data.train, spec.data)
    splits = {"train": train}
    if spec.data.validation is not None:
        splits["validation"] = data_mod.load(spec.data.validation, spec.data)
    elif spec.data.validation_split > 0:
        assert train.labels is not None
        train_idx, val_idx = preprocess.stratified_split(train.labels, spec.data.validation_split, spec.seed)
        splits = {"train": train.subset(train_idx), "validation": train.subset(val_idx)}
    if spec.data.test is not None:
        splits["test"] = data_mod.load(spec.data.test, spec.data)
    return splits


def prepare(spec: Spec) -> Prepared:
    """Everything before training: data, preprocessing fitted on train only, the model.

    Raises :class:`~seqcli.errors.SeqcliError` on bad input; creates no files.
    """
    loaded = load_splits(spec)
    prep = preprocess.fit(loaded["train"], spec.preprocessing)
    splits = {}
    for role, part in loaded.items():
        x = prep.transform(part.sequences, [f"{part.source}, {w}" for w in part.where])
        splits[role] = Split(part, x, prep.encode_labels(part))
    warnings = shapes.spec_warnings(spec, loaded["train"]) + shapes.preprocessing_steps(loaded["train"], prep)[1]
    for role, part in loaded.items():
        truncated = shapes.truncation_warning(part, prep, role) if role != "train" else None
        if truncated:
            warnings.append(truncated)
    seed_everything(spec.seed)
    model = build_model(spec, prep)
    files = {"train": spec.data.train, "validation": spec.data.validation, "test": spec.data.test}
    fingerprints = {role: data_mod.fingerprint(f.path) for role, f in files.items() if f is not None}
    return Prepared(spec, prep, splits, model, warnings, fingerprints)


def fit(prepared: Prepared, progress: Progress | None = None) -> TrainResult:
    """Create the run directory, train, checkpoint every epoch and evaluate the best checkpoint."""
    keras = import_keras()
    spec, prep, model = prepared.spec, prepared.prep, prepared.model
    run = RunDir.create(spec.output.dir, spec.output.name or "run")
    recorder = _recorder_class()(run, spec.training.monitor, progress)
    started = time.perf_counter()
    try:
        run.write_text("spec.yaml", to_yaml(spec))
        run.write_json("preprocessing.json", prep.to_dict())
        run.write_text("model_summary.txt", _summary(model))
        run.write_json("layers.json", [row.__dict__ for row in shapes.layer_rows(model)])
        run.set_status(
            "running",
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            name=spec.output.name,
            seed=spec.seed,
            versions=versions(),
            data_fingerprints=prepared.fingerprints,
        )
        callbacks: list[Any] = [recorder]
        if spec.training.early_stopping is not None:
            es = spec.training.early_stopping
            callbacks.append(keras.callbacks.EarlyStopping(monitor=spec.training.monitor, patience=es.patience, min_delta=es.min_delta, mode=_mode(spec.training.monitor)))
        train, validation = prepared.splits["train"], prepared.splits.get("validation")
        model.fit(
            train.x,
            _targets(spec, train.y),
            validation_data=(validation.x, _targets(spec, validation.y)) if validation else None,
            epochs=spec.training.epochs,
            batch_size=spec.training.batch_size,
            shuffle=spec.training.shuffle,
            verbose=0,
            callbacks=callbacks,
        )
        if progress is not None:
            progress.on_train_end()
        model.set_weights(recorder.best_weights)
        metrics = {"checkpoint": "best", "best_epoch": recorder.best_epoch, "monitor": spec.training.monitor}
        for role in ("validation", "test"):
            if role in prepared.splits:
                metrics[role] = evaluate(model, prepared.splits[role], prep, spec)
        run.write_json("metrics.json", metrics)
        seconds = time.perf_counter() - started
        stopped_early = len(recorder.history) < spec.training.epochs
        run.set_status("completed", train_seconds=round(seconds, 2))
        return TrainResult(run, recorder.history, metrics, recorder.best_epoch, seconds, stopped_early, prepared.warnings)
    except BaseException as exc:  # mark the run, then let the CLI report (or the traceback show) the cause
        if isinstance(exc, KeyboardInterrupt):
            run.set_status("interrupted")
        else:
            run.set_status("failed", error=str(exc) if isinstance(exc, SeqcliError) else f"{type(exc).__name__}: {exc}")
        raise


def evaluate(model: Any, split: Split, prep: Preprocessor, spec: Spec) -> dict[str, Any]:
    """Loss, metrics and the classification report of ``model`` on one split."""
    scores = model.evaluate(split.x, _targets(spec, split.y), batch_size=spec.training.batch_size, verbose=0, return_dict=True)
    predicted = probabilities(model, split.x, spec.training.batch_size).argmax(axis=1)
    report = classification_report(split.y, predicted, prep.classes)
    return {"loss": float(scores["loss"]), **report}


def _targets(spec: Spec, y: np.ndarray) -> np.ndarray:
    """Sparse class indices ``(batch,)``; ``(batch, 1)`` floats for a sigmoid output."""
    return y.astype(np.float32)[:, None] if spec.model.output == "sigmoid" else y


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _summary(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines) + "\n"


@functools.cache
def _recorder_class() -> type:
    """The Keras callback class, defined on first use so importing this module stays TensorFlow-free."""
    keras = import_keras()

    class Recorder(keras.callbacks.Callback):
        """History files, last/best checkpoints and progress after every epoch."""

        def __init__(self, run: RunDir, monitor: str, progress: Progress | None) -> None:
            super().__init__()
            self.run, self.monitor, self.progress = run, monitor, progress
            self.history: list[dict[str, float]] = []
            self.best: float | None = None
            self.best_epoch = 0
            self.best_weights: list[Any] = []

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.progress is not None:
                self.progress.on_train_begin(self.params["epochs"], self.params["steps"] or 0)

        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            if self.progress is not None:
                self.progress.on_batch_end(batch + 1, {k: float(v) for k, v in (logs or {}).items()})

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}
            self.history.append({"epoch": epoch + 1, **values})
            self.run.write_history(self.history)
            self.run.save_checkpoint(self.model, "last")
            current = values[self.monitor]
            improved = self.best is None or (current < self.best if _mode(self.monitor) == "min" else current > self.best)
            if improved:
                self.best, self.best_epoch = current, epoch + 1
                self.best_weights = self.model.get_weights()
                self.run.save_checkpoint(self.model, "best")
            self.run.set_status("running", epochs_completed=epoch + 1, best_epoch=self.best_epoch)
            if self.progress is not None:
                self.progress.on_epoch_end(epoch + 1, values, improved)

    return Recorder
