"""Training: load and check everything, then fit, checkpoint, log and evaluate; resume.

:func:`prepare` does all the work that can fail on bad input (loading, splitting,
fitting the preprocessing, building the model) before any run directory exists;
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

from seqcli import batching, multi, preprocess, shapes
from seqcli import data as data_mod
from seqcli.backend import backend_before_fitting, choose_backend, compiles_each_shape, import_keras, seed_everything, use_backend, versions
from seqcli.data import SequenceData
from seqcli.errors import DataError, RunError, SeqcliError, SpecError
from seqcli.fingerprint import file_key, spec_files, spec_fingerprints
from seqcli.metrics import classification_report, log_loss
from seqcli.model import build_model, class_weights, learning_rate, one_hot_targets, restore_training_state, training_state
from seqcli.preprocess import Preprocessor
from seqcli.rundir import EpochWriter, RunDir
from seqcli.spec import Spec, spec_from_dict, to_dict, to_yaml

COMMIT_INTERVAL = 1.0  # seconds: an epoch is committed when this long has passed since the last commit (always the last epoch and on stops)


class Progress(Protocol):
    """Receives training progress; the CLI renders it with Rich.

    An implementation may set ``batch_updates = False`` to receive no ``on_batch_end`` calls
    (each one makes Keras copy the running metrics to Python after every batch).
    """

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class Split:
    """One split, loaded and prepared: ``sequences[i]`` scaled and truncated ``(timesteps_i, features)``, ``y`` class indices ``(samples,)``
    (``task: tag``: a list of per-timestep class indices ``(timesteps_i,)``, truncated like the sequences).

    Batches are padded when they are drawn (see :mod:`seqcli.batching`); no padded copy of the whole split exists.
    """

    data: SequenceData
    sequences: list[np.ndarray]
    y: np.ndarray | list[np.ndarray]
    inputs: dict[str, list[np.ndarray]] | None = None  # multi-input: every input's prepared sequences by name (the labelled one included)

    @property
    def lengths(self) -> np.ndarray:
        return np.array([len(s) for s in self.sequences])


@dataclass
class Prepared:
    spec: Spec
    prep: Preprocessor
    splits: dict[str, Split]
    model: Any
    warnings: list[str]
    fingerprints: dict[str, str]
    backend: str
    class_weights: dict[str, float] | None = None
    preps: dict[str, Preprocessor] | None = None  # multi-input: one preprocessor per input by name; ``prep`` is the labelled input's

    def preprocessing_state(self) -> dict[str, Any]:
        """What ``preprocessing.json`` holds: the preprocessor's state, or for a multi-input run ``{name: state}``."""
        return {name: p.to_dict() for name, p in self.preps.items()} if self.preps else self.prep.to_dict()


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


def load_splits(spec: Spec) -> dict[str, SequenceData]:
    """Load train, validation (file or stratified split) and test data as sequences (raw texts for text input)."""
    text, tag = spec.preprocessing.input == "text", spec.task == "tag"
    train = data_mod.load(spec.data.train, spec.data, text=text, tag=tag)
    splits = {"train": train}
    if spec.data.validation is not None:
        splits["validation"] = data_mod.load(spec.data.validation, spec.data, text=text, tag=tag)
    elif spec.data.validation_split > 0:
        if tag:
            train_idx, val_idx = preprocess.random_split(len(train), spec.data.validation_split, spec.seed)
        else:
            assert train.labels is not None
            train_idx, val_idx = preprocess.stratified_split(train.labels, spec.data.validation_split, spec.seed)
        splits = {"train": train.subset(train_idx), "validation": train.subset(val_idx)}
    if spec.data.test is not None:
        splits["test"] = data_mod.load(spec.data.test, spec.data, text=text, tag=tag)
    return splits


def prepare(spec: Spec, backend: str | None = None) -> Prepared:
    """Everything before training: data, preprocessing fitted on train only, the Keras backend, the model.

    ``backend`` overrides ``spec.backend`` (a resumed run keeps the one it started with).
    Raises :class:`~seqcli.errors.SeqcliError` on bad input; creates no files.
    """
    if spec.inputs is not None:
        return _prepare_multi(spec, backend)
    early = backend_before_fitting(spec.backend, spec.preprocessing.input, spec.preprocessing.bucketing)
    backend = backend or (early[0] if early else None)
    if backend is not None:
        use_backend(backend)
    loaded = load_splits(spec)
    prep = preprocess.fit(loaded["train"], spec.preprocessing, task=spec.task)
    loaded = {role: prep.tokenize(part) for role, part in loaded.items()}  # text -> token codes; numeric data as it is
    splits = {}
    for role, part in loaded.items():
        sequences = prep.prepare(part.sequences, [f"{part.source}, {w}" for w in part.where])
        splits[role] = Split(part, sequences, prep.encode_tags(part) if spec.task == "tag" else prep.encode_labels(part))
    if backend is None:
        validation = splits["validation"].lengths if "validation" in splits else None
        backend, _ = choose_backend(spec.backend, batching.workload(prep, splits["train"].lengths, validation, spec))
    warnings = shapes.spec_warnings(spec, loaded["train"]) + shapes.preprocessing_steps(loaded["train"], prep, spec.training.batch_size, few_widths=compiles_each_shape(backend))[1]
    for role, part in loaded.items():
        truncated = shapes.truncation_warning(part, prep, role) if role != "train" else None
        if truncated:
            warnings.append(truncated)
    weights = class_weights(spec, prep.classes, splits["train"].y) if spec.task == "classify" else None
    use_backend(backend)
    seed_everything(spec.seed)
    model = build_model(spec, prep)
    return Prepared(spec, prep, splits, model, warnings, spec_fingerprints(spec), backend, weights)


def _prepare_multi(spec: Spec, backend: str | None) -> Prepared:
    """:func:`prepare` for a multi-input spec: inputs matched by id, one preprocessor per input, a branch per input."""
    loaded = multi.load_splits(spec)
    preps = multi.fit(spec, loaded["train"])
    prep = preps[spec.input_name]
    splits = {}
    for role, parts in loaded.items():
        inputs = multi.prepare_inputs(preps, parts)
        first = parts[spec.input_name]
        splits[role] = Split(first, inputs[spec.input_name], prep.encode_labels(first), inputs)
    backend = backend or choose_backend(spec.backend, None)[0]
    warnings = shapes.spec_warnings(spec, loaded["train"][spec.input_name])
    for name, p in preps.items():
        warnings += [f"Input {name!r}: {w}" for w in shapes.preprocessing_steps(loaded["train"][name], p, spec.training.batch_size)[1]]
        for role, parts in loaded.items():
            truncated = shapes.truncation_warning(parts[name], p, role) if role != "train" else None
            if truncated:
                warnings.append(f"Input {name!r}: {truncated}")
    weights = class_weights(spec, prep.classes, splits["train"].y) if isinstance(splits["train"].y, np.ndarray) else None
    use_backend(backend)
    seed_everything(spec.seed)
    model = build_model(spec, prep, preps)
    return Prepared(spec, prep, splits, model, warnings, spec_fingerprints(spec), backend, weights, preps)


def prepare_resume(run_path: str | Path, spec_path: str | Path | None = None, overrides: list[str] | None = None) -> tuple[Prepared, Resume]:
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


def fit(prepared: Prepared, progress: Progress | None = None, resume: Resume | None = None) -> TrainResult:
    """Train (a new run directory, or the resumed one), commit every epoch, evaluate the best checkpoint."""
    spec, prep, model = prepared.spec, prepared.prep, prepared.model
    run = resume.run if resume else RunDir.create(spec.output.dir, spec.output.name or "run")
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
            run.write_json("layers.json", [row.__dict__ for row in shapes.layer_rows(model)])
            weights = {"class_weights": prepared.class_weights} if prepared.class_weights else {}
            run.mark_running(created=_now(), name=spec.output.name, seed=spec.seed, versions=versions(), data_fingerprints=prepared.fingerprints, **weights)
        else:
            run.mark_running(resumed=_now())
            if recorder.best_epoch:
                recorder.best_state = run.read_state(recorder.best_epoch)
        train, validation = prepared.splits["train"], prepared.splits.get("validation")
        first = len(history)
        if first < spec.training.epochs and not recorder.stop:
            batches, steps = _train_batches(spec, prep, train, first, prepared.preps)
            recorder.start_epoch = getattr(batches, "start_epoch", None)  # a PyDataset follows the fit loop's epoch
            model.fit(
                batches,
                validation_data=_eval_batches(spec, prep, validation, prepared.preps) if validation else None,
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
        metrics = {"checkpoint": "best", "best_epoch": recorder.best_epoch, "monitor": spec.training.monitor}
        for role in ("validation", "test"):
            if role in prepared.splits:
                metrics[role] = evaluate(model, prepared.splits[role], prep, spec, prepared.preps)
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


def evaluate(model: Any, split: Split, prep: Preprocessor, spec: Spec, preps: dict[str, Preprocessor] | None = None) -> dict[str, Any]:
    """Loss and the classification report of ``model`` on one split (one pass over the data); tagging: over all real timesteps.

    ``preps``: a multi-input model, fed ``split.inputs``.
    """
    if prep.task == "tag":
        per_sequence = batching.predict_tags(model, prep, split.sequences, spec.training.batch_size)
        probs, y = np.concatenate(per_sequence), np.concatenate(split.y)  # (real timesteps, classes), (real timesteps,)
        return {"loss": log_loss(probs, y), **classification_report(y, probs.argmax(axis=1), prep.classes), "sequences": len(per_sequence)}
    if preps is not None and split.inputs is not None:
        probs = multi.predict_proba(model, preps, split.inputs, spec.training.batch_size)
    else:
        probs = batching.predict_proba(model, prep, split.sequences, spec.training.batch_size)
    return {"loss": log_loss(probs, split.y), **classification_report(split.y, probs.argmax(axis=1), prep.classes)}


def _targets(spec: Spec, prep: Preprocessor, y: np.ndarray | list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Sparse class indices ``(samples,)``; ``(samples, 1)`` floats for a sigmoid output; one-hot ``(samples, classes)`` with label smoothing.

    Tagging: the per-sequence index arrays ``(timesteps_i,)`` as they are (batches pad them like the sequences).
    """
    if isinstance(y, list):
        return y
    if spec.model.output == "sigmoid":
        return y.astype(np.float32)[:, None]
    return np.eye(len(prep.classes), dtype=np.float32)[y] if one_hot_targets(spec) else y


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


def _train_batches(spec: Spec, prep: Preprocessor, split: Split, first_epoch: int, preps: dict[str, Preprocessor] | None = None) -> tuple[Any, int]:
    """Batches of epochs ``first_epoch..`` (each planned from (seed, epoch), so a resumed run sees the same ones) and steps per epoch."""
    lengths, size = split.lengths, spec.training.batch_size
    if preps is not None and split.inputs is not None:
        epochs = range(first_epoch, spec.training.epochs)
        targets = _targets(spec, prep, split.y)
        assert isinstance(targets, np.ndarray)
        rows = functools.partial(multi.plan, len(lengths), size, spec.seed, shuffle=spec.training.shuffle)
        return multi.dataset(preps, split.inputs, targets, lambda epoch: rows(epoch=epoch), epochs), len(rows(epoch=first_epoch).batches)

    few_widths = compiles_each_shape()

    def plan(epoch: int) -> batching.Plan:
        return batching.train_plan(lengths, prep.boundaries, prep.maxlen, size, spec.seed, epoch, spec.training.shuffle, few_widths)

    steps = len(plan(first_epoch).batches)
    return batching.dataset(prep, split.sequences, _targets(spec, prep, split.y), plan, range(first_epoch, spec.training.epochs)), steps


def _eval_batches(spec: Spec, prep: Preprocessor, split: Split, preps: dict[str, Preprocessor] | None = None) -> Any:
    if preps is not None and split.inputs is not None:
        rows = multi.plan(len(split.sequences), spec.training.batch_size)
        targets = _targets(spec, prep, split.y)
        assert isinstance(targets, np.ndarray)
        return multi.dataset(preps, split.inputs, targets, lambda _: rows, range(1))
    plan = batching.eval_plan(split.lengths, prep.boundaries, prep.maxlen, spec.training.batch_size, compiles_each_shape())
    return batching.dataset(prep, split.sequences, _targets(spec, prep, split.y), lambda _: plan, range(1))


@functools.cache
def _recorder_class() -> type:
    """The Keras callback class, defined on first use so importing this module stays TensorFlow-free."""
    keras = import_keras()

    class Recorder(keras.callbacks.Callback):
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
            if self.stop:
                self.model.stop_training = True

    return Recorder


@functools.cache
def _batch_recorder_class() -> type:
    """The recorder with a per-batch progress hook; Keras syncs the logs to Python after every batch for it."""

    class BatchRecorder(_recorder_class()):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.progress.on_batch_end(batch + 1, {k: float(v) for k, v in (logs or {}).items()})

    return BatchRecorder
