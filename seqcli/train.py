"""Training: run the pipeline, then fit, checkpoint, log and evaluate; resume.

:func:`prepare` runs the pipeline (:mod:`seqcli.pipeline`), which does all the work that can fail on bad
input (loading, splitting, fitting the preprocessing, building the model) before any run directory exists;
:func:`fit` creates the run directory and trains. :func:`prepare_resume` reopens
an interrupted run. Progress goes to an optional :class:`Progress` hook; this
module never prints.

Every epoch is a function of (seed, epoch) alone: the batch order and the dropout
masks are reseeded at each epoch start, and weights and optimizer state are
committed after it (epochs shorter than :data:`COMMIT_INTERVAL` at most that
often, and always the last one). A resumed run therefore continues exactly where
the interrupted one's last commit left it.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from seqcli import pipeline
from seqcli.backend import import_keras, versions
from seqcli.errors import DataError, RunError, SeqcliError, SpecError
from seqcli.fingerprint import file_key, spec_files, spec_fingerprints
from seqcli.layers import layer_rows
from seqcli.model import learning_rate, restore_training_state, training_state
from seqcli.pipeline import Pipeline
from seqcli.rundir import EpochWriter, RunDir
from seqcli.spec import TASK_KINDS, Spec, spec_from_dict, to_dict, to_yaml

COMMIT_INTERVAL = 1.0  # seconds: an epoch is committed when this long has passed since the last commit (always the last epoch and on stops)


class Progress(Protocol):
    """Receives training progress; the CLI renders it with Rich.

    An implementation may set ``batch_updates = False`` to receive no ``on_batch_end`` calls
    (each one makes Keras copy the running metrics to Python after every batch), and may set
    ``stop_requested = True`` in ``on_epoch_end`` to end training after that epoch, as early stopping
    does (the run completes normally, evaluated on its best epoch; ``seqcli tune`` prunes trials so).
    """

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class Resume:
    """Where an interrupted run stands: its directory, committed epochs and their history."""

    run: RunDir
    epochs_completed: int
    history: list[dict[str, float]]


@dataclass
class TrainResult:
    run: RunDir
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    best_epoch: int
    seconds: float
    stopped_early: bool = False
    warnings: list[str] = field(default_factory=list)
    class_weights: dict[str, float] | None = None


def prepare(spec: Spec, backend: str | None = None) -> Pipeline:
    """Everything before training (:func:`seqcli.pipeline.run`): data, preprocessing fitted on train only, the Keras backend, the model.

    ``backend`` overrides ``spec.backend`` (a resumed run keeps the one it started with).
    Raises :class:`~seqcli.errors.SeqcliError` on bad input; creates no files.
    """
    return pipeline.run(spec, backend=backend)


def prepare_resume(run_path: str | Path, spec_path: str | Path | None = None, overrides: list[str] | None = None) -> tuple[Pipeline, Resume]:
    """Reopen an interrupted, failed or crashed run to continue it from its last committed epoch.

    Refuses completed or still-running runs, and a spec or data that changed since the run started.
    """
    from seqcli.spec import load_spec

    run = RunDir.open(run_path)
    info = run.info()
    if info["status"] == "completed":
        raise RunError(f"Run {run.path} is already completed ({info.get('epochs_completed')} epochs); there is nothing to resume. Start a new run with `seqcli train SPEC`.")
    if run.is_live():
        raise RunError(f"Run {run.path} is still training (process {info['pid']}). Stop that process first, or wait for it.")
    spec = spec_from_dict(run.read_yaml("spec.yaml"))
    if spec_path is not None or overrides:
        if spec_path is None:
            raise SpecError("`--set` with `--resume` would change the run's spec; a resumed run keeps the spec it started with. Drop `--set`, or start a new run.")
        given = load_spec(spec_path, overrides or [])
        changes = spec_changes(to_dict(spec), to_dict(given))
        if changes:
            raise SpecError(
                f"The spec differs from the one run {run.path} started with: {'; '.join(changes)}. A resumed run must keep its spec: "
                "resume with `seqcli train --resume RUN_DIR` alone, or start a new run with the changed spec."
            )
    recorded = info.get("data_fingerprints", {})
    current = spec_fingerprints(spec)
    changed = [f"`{file_key(role)}` ({path})" for role, path in spec_files(spec).items() if recorded.get(role) != current.get(role)]
    if changed:
        raise DataError(
            f"Data changed since run {run.path} started: {', '.join(changed)} no longer match the fingerprints in its run.json. "
            "Resuming would mix two data sets; restore the original files or start a new run."
        )
    prepared = prepare(spec, info.get("versions", {}).get("backend"))
    if prepared.preprocessing_state() != run.read_json("preprocessing.json"):
        raise RunError(f"{run.path / 'preprocessing.json'} does not match the preprocessing fitted now on the same spec and data; the run is corrupt. Start a new run.")
    epochs = int(info.get("epochs_completed", 0))
    history = run.read_json("history.json")[:epochs] if epochs else []
    if len(history) != epochs:
        raise RunError(f"{run.path / 'history.json'} has {len(history)} epochs but run.json says {epochs} were completed; the run is corrupt. Start a new run.")
    if epochs:
        run.settle_checkpoints()
        restore_training_state(prepared.model, run.read_state(epochs), run.state_path(epochs))
    return prepared, Resume(run, epochs, history)


def spec_changes(old: Any, new: Any, path: str = "") -> list[str]:
    """Readable differences between two resolved specs, e.g. "`training.epochs` was 10, now 20"."""
    if path == "output":
        return []  # where runs go does not change what is trained
    if isinstance(old, dict) and isinstance(new, dict):
        return sorted(c for key in old.keys() | new.keys() for c in spec_changes(old.get(key), new.get(key), f"{path}.{key}" if path else key))
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [c for i, (a, b) in enumerate(zip(old, new, strict=True)) for c in spec_changes(a, b, f"{path}[{i}]")]
    return [] if old == new else [f"`{path}` was {old!r}, now {new!r}"]


def fit(
    prepared: Pipeline, progress: Progress | None = None, resume: Resume | None = None, *, run: RunDir | None = None, run_fields: dict[str, Any] | None = None
) -> TrainResult:
    """Train (a new run directory, or the resumed one), commit every epoch, evaluate the best checkpoint.

    ``run``: a new, empty run directory to train into (default: one made now under ``output.dir``);
    ``run_fields``: more fields for a new run's run.json (``seqcli tune`` records its study and trial number).
    """
    spec, model = prepared.spec, prepared.model
    if resume is not None and (run is not None or run_fields):
        raise ValueError("a resumed run keeps its directory and run.json fields")
    run = resume.run if resume else run or RunDir.create(spec.output.dir, spec.output.name or "run")
    history = list(resume.history) if resume else []
    per_batch = progress is not None and getattr(progress, "batch_updates", True)
    writer = EpochWriter(run)
    recorder = (_batch_recorder_class() if per_batch else _recorder_class())(writer, spec, progress, history)
    started = time.perf_counter()
    try:
        if resume is None:
            run.write_text("spec.yaml", to_yaml(spec))
            run.write_json("preprocessing.json", prepared.preprocessing_state())
            run.write_text("model_summary.txt", _summary(model))
            run.write_json("layers.json", [row.__dict__ for row in layer_rows(model, output_axis=output_axis(spec))])
            weights = {"class_weights": prepared.class_weights} if prepared.class_weights else {}
            run.mark_running(created=_now(), name=spec.output.name, seed=spec.seed, versions=versions(), data_fingerprints=prepared.fingerprints, **weights, **(run_fields or {}))
        else:
            run.mark_running(resumed=_now())
            if recorder.best_epoch:
                recorder.best_state = run.read_state(recorder.best_epoch)
        validation = prepared.splits.get("validation")
        first = len(history)
        if first < spec.training.epochs and not recorder.stop:
            batches, steps = prepared.train_batches(first)
            recorder.start_epoch = getattr(batches, "start_epoch", None)  # a PyDataset follows the fit loop's epoch
            model.fit(
                batches,
                validation_data=prepared.eval_batches(validation) if validation else None,
                epochs=spec.training.epochs,
                initial_epoch=first,
                steps_per_epoch=steps,  # one stream of all epochs' batches, each epoch planned from (seed, epoch)
                shuffle=False,  # the plans shuffle
                class_weight=dict(enumerate(prepared.class_weights.values())) if prepared.class_weights else None,
                verbose=0,
                callbacks=[recorder],
            )
        recorder.commit()  # the last epoch, if it ended within COMMIT_INTERVAL of the previous commit
        writer.close()
        if progress is not None:
            progress.on_train_end()
        run.save_model(model, "last")  # the model holds the last epoch's state
        restore_training_state(model, recorder.best_state, run.state_path(recorder.best_epoch))
        run.save_model(model, "best")
        metrics = {"task": spec.task, "checkpoint": "best", "best_epoch": recorder.best_epoch, "monitor": spec.training.monitor}
        for role in ("validation", "test"):
            if role in prepared.splits:
                metrics[role] = prepared.evaluate(model, prepared.splits[role])
        run.write_json("metrics.json", metrics)
        seconds = time.perf_counter() - started
        run.set_status("completed", train_seconds=round(seconds, 2))
        return TrainResult(run, recorder.history, metrics, recorder.best_epoch, seconds, recorder.stop, prepared.warnings, prepared.class_weights)
    except BaseException as exc:  # mark the run, then let the CLI report (or the traceback show) the cause
        with contextlib.suppress(SeqcliError):  # on a full disk these writes fail too; the original error matters more
            recorder.commit()  # every completed epoch is kept
            writer.close()
        with contextlib.suppress(SeqcliError):
            if isinstance(exc, KeyboardInterrupt):
                run.set_status("interrupted")
            else:
                run.set_status("failed", error=str(exc) if isinstance(exc, SeqcliError) else f"{type(exc).__name__}: {exc}")
        raise


def output_axis(spec: Spec) -> str:
    """What the output layer's last axis holds, for the layer table: classes, or regression targets."""
    return "targets" if TASK_KINDS[spec.task].numeric else "classes"


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _improves(current: float, best: float | None, monitor: str, min_delta: float = 0.0) -> bool:
    """Keras' rule: an improvement beats the best so far by more than ``min_delta`` (anything beats no best)."""
    if best is None:
        return True
    return current < best - min_delta if _mode(monitor) == "min" else current > best + min_delta


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _summary(model: Any) -> str:
    lines: list[str] = []
    model.summary(print_fn=lambda line, **_: lines.append(line), line_length=100)
    return "\n".join(lines) + "\n"


@functools.cache
def _recorder_class() -> type:
    """The Keras callback class, defined on first use so importing this module stays TensorFlow-free."""
    keras = import_keras()

    class Recorder(keras.callbacks.Callback):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        """Reseeds each epoch, sets its learning rate, commits it to the run (checkpoint, history, run.json), tracks the best epoch and early stopping.

        Early stopping and the learning-rate schedule are functions of the history, so replaying the committed epochs restores them on resume.
        """

        def __init__(self, writer: EpochWriter, spec: Spec, progress: Progress | None, history: list[dict[str, float]]) -> None:
            super().__init__()
            self.writer, self.spec, self.progress = writer, spec, progress
            self.monitor = spec.training.monitor
            self.history: list[dict[str, float]] = []
            self.best: float | None = None
            self.best_epoch = 0
            self.best_state: dict[str, np.ndarray] = {}  # the best epoch's training state
            self.patience_best: float | None = None
            self.wait = 0
            self.stop = False
            self.start_epoch: Callable[[int], None] | None = None
            self.schedule = spec.training.lr_schedule
            self.learning_rate = spec.training.learning_rate  # the rate of the next epoch
            self.plateau_best: float | None = None
            self.plateau_wait = 0
            self.uncommitted: tuple[dict[str, np.ndarray], int] | None = None  # the last completed epoch's state and number, until committed
            self.committed_at = time.monotonic()
            for row in history:  # replay committed epochs: best epoch, early-stopping and learning-rate state
                self._observe(row)

        def _observe(self, row: dict[str, float]) -> bool:
            """Record one epoch's logs; True when it is the best so far."""
            self.history.append(row)
            current = row[self.monitor]
            improved = _improves(current, self.best, self.monitor)
            if improved:
                self.best, self.best_epoch = current, int(row["epoch"])
            es = self.spec.training.early_stopping
            if es is not None:  # Keras' EarlyStopping rule
                if _improves(current, self.patience_best, self.monitor, es.min_delta):
                    self.patience_best, self.wait = current, 0
                else:
                    self.wait += 1
                    self.stop = self.wait >= es.patience
            if self.schedule is not None and self.schedule.type == "reduce_on_plateau":
                self._plateau(row)
            return improved

        def _plateau(self, row: dict[str, float]) -> None:
            """Keras' ReduceLROnPlateau rule (no cooldown): after `patience` epochs without improvement, multiply the next epochs' rate by `factor`."""
            schedule = self.schedule
            assert schedule is not None  # only called for a reduce_on_plateau schedule (_observe)
            monitor = schedule.monitor or self.monitor
            if _improves(row[monitor], self.plateau_best, monitor, schedule.min_delta):
                self.plateau_best, self.plateau_wait = row[monitor], 0
                return
            self.plateau_wait += 1
            if self.plateau_wait >= schedule.patience and self.learning_rate > schedule.min_lr:
                self.learning_rate, self.plateau_wait = max(self.learning_rate * schedule.factor, schedule.min_lr), 0

        def commit(self) -> None:
            """Commit the last completed epoch, if not done yet; it is written while the next epoch trains."""
            if self.uncommitted is not None:
                state, epoch = self.uncommitted
                self.writer.commit(state, epoch, self.best_epoch, self.best_state, self.history)
                self.uncommitted, self.committed_at = None, time.monotonic()

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.progress is not None:
                self.progress.on_train_begin(self.params["epochs"], self.params["steps"] or 0, len(self.history) + 1)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.start_epoch is not None:
                self.start_epoch(epoch)
            # Dropout masks depend on (seed, epoch) only; checkpoints do not carry the RNG state.
            for i, variable in enumerate(v for v in self.model.non_trainable_variables if v.path.endswith("seed_generator_state")):
                variable.assign(np.array([(self.spec.seed * 1_000_003 + epoch * 7_919 + i) % 2**31, 0], dtype=variable.dtype))
            if self.schedule is not None:
                if self.schedule.type != "reduce_on_plateau":
                    self.learning_rate = learning_rate(self.spec, epoch)
                self.model.optimizer.learning_rate = self.learning_rate

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}}
            if self.schedule is not None:
                row["learning_rate"] = self.learning_rate  # the rate this epoch trained with
            improved = self._observe(row)
            state = training_state(self.model)
            if improved:
                self.best_state = state
            self.uncommitted = (state, epoch + 1)
            if time.monotonic() - self.committed_at >= COMMIT_INTERVAL or self.stop or epoch + 1 == self.params["epochs"]:
                self.commit()
            if self.progress is not None:
                self.progress.on_epoch_end(epoch + 1, {k: v for k, v in row.items() if k != "epoch"}, improved)
                if getattr(self.progress, "stop_requested", False) and not self.stop:
                    self.stop = True  # like early stopping: this epoch is the last
                    self.commit()
            if self.stop:
                self.model.stop_training = True

    return Recorder


@functools.cache
def _batch_recorder_class() -> type:
    """The recorder with a per-batch progress hook; Keras syncs the logs to Python after every batch for it."""

    class BatchRecorder(_recorder_class()):  # type: ignore[misc]  # its base is the Keras callback class that _recorder_class() defines at run time
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.progress.on_batch_end(batch + 1, {k: float(v) for k, v in (logs or {}).items()})

    return BatchRecorder
