"""Training: run the pipeline, then fit, checkpoint, log and evaluate; resume.

:func:`prepare` runs the pipeline (:mod:`seqcli.pipeline`), which does all the work that can fail on bad
input (loading, splitting, fitting the preprocessing, building the model) before any run directory exists;
:func:`fit` creates the run directory and trains. :func:`prepare_resume` reopens
an interrupted or crashed run, or a completed one to train it for more epochs. Progress goes to an optional
:class:`Progress` hook; this module never prints. Ctrl-C is honoured at every batch and epoch
(:mod:`seqcli.interrupt`), and the run is then marked interrupted with every completed epoch kept.

Every epoch is a function of (seed, epoch) alone: the batch order and the dropout
masks are reseeded at each epoch start, and weights and optimizer state are
committed after it (epochs shorter than :data:`COMMIT_INTERVAL` at most that
often, and always the last one). A resumed run therefore continues exactly where
the interrupted one's last commit left it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from seqcli import interrupt, pipeline
from seqcli.backend import import_keras, versions
from seqcli.errors import DataError, RunError, SeqcliError, SpecError
from seqcli.fingerprint import file_key, spec_files, spec_fingerprints
from seqcli.layers import layer_rows
from seqcli.model import adapt_kernels, learning_rate, restore_training_state, training_state
from seqcli.pipeline import Pipeline
from seqcli.rundir import EpochWriter, RunDir, check_output_dir, describe_status, ensemble_size, member_file, member_progress, run_status
from seqcli.spec import TASK_KINDS, Spec, parse_override, spec_from_dict, to_dict, to_yaml
from seqcli.tasks.base import Outputs, mean_outputs

COMMIT_INTERVAL = 1.0  # seconds: an epoch is committed when this long has passed since the last commit (always the last epoch and on stops)


class Progress(Protocol):
    """Receives training progress; the CLI renders it with Rich.

    An implementation may set ``batch_updates = False`` to receive no ``on_batch_end`` calls
    (each one makes Keras copy the running metrics to Python after every batch), and may set
    ``stop_requested = True`` in ``on_epoch_end`` to end training after that epoch, as early stopping
    does (the run completes normally, evaluated on its best epoch; ``seqcli tune`` prunes trials so).
    An ensemble (``training.ensemble`` > 1) trains its members in turn, each from ``on_train_begin`` to
    ``on_train_end``; an implementation may define ``on_member_begin(member, members, seed)``, called before each.
    """

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None: ...
    def on_batch_end(self, step: int, logs: dict[str, float]) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None: ...
    def on_train_end(self) -> None: ...


@dataclass
class Resume:
    """Where a run to continue stands: its directory, committed epochs and their history, its status (interrupted,
    failed, crashed, or completed when it is extended) and, when ``training.epochs`` changes, the epochs it had."""

    run: RunDir
    epochs_completed: int
    history: list[dict[str, float]]
    status: str = "interrupted"
    extended_from: int | None = None
    member: int = 1  # of an ensemble: the member that goes on training (``epochs_completed`` and ``history`` are its own)
    members: int = 1


@dataclass
class MemberResult:
    """One member of an ensemble: its number (from 1), seed, committed history, best epoch, and whether early stopping ended it."""

    member: int
    seed: int
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool


@dataclass
class TrainResult:
    """A completed run. ``history``, ``best_epoch`` and ``stopped_early`` are its model's, for an ensemble its first member's;
    ``members`` lists an ensemble's members (empty for one model), and ``metrics`` is metrics.json (an ensemble's: the mean of its members)."""

    run: RunDir
    history: list[dict[str, float]]
    metrics: dict[str, Any]
    best_epoch: int
    seconds: float
    stopped_early: bool = False
    warnings: list[str] = field(default_factory=list)
    class_weights: dict[str, float] | None = None
    members: list[MemberResult] = field(default_factory=list)

    @property
    def best_value(self) -> float:
        """The monitored value the run is judged by: its best epoch's; for an ensemble, the ensemble's on validation
        (``val_loss`` -> its ``loss``) when evaluated, else the mean of its members' best epochs' values."""
        monitor = self.metrics.get("monitor", "")
        if not self.members:
            return float(self.history[self.best_epoch - 1][monitor]) if self.best_epoch else float("nan")
        ensemble = self.metrics.get("validation", {}).get(monitor.removeprefix("val_")) if monitor.startswith("val_") else None
        if isinstance(ensemble, float):
            return ensemble
        values = [m.history[m.best_epoch - 1][monitor] for m in self.members if m.best_epoch]
        return float(np.mean(values)) if values else float("nan")


def prepare(spec: Spec, backend: str | None = None) -> Pipeline:
    """Everything before training (:func:`seqcli.pipeline.run`): data, preprocessing fitted on train only, the Keras backend, the model.

    ``backend`` overrides ``spec.backend`` (a resumed run keeps the one it started with).
    Raises :class:`~seqcli.errors.SeqcliError` on bad input; creates no files. An ``output.dir`` that no run
    directory can be created under is refused first, before the data is loaded.
    """
    check_output_dir(spec.output.dir, spec.output.name or "run")
    check_tensorboard(spec)
    return pipeline.run(spec, backend=backend)


def check_tensorboard(spec: Spec) -> None:
    """``output.tensorboard: true`` needs the ``tensorboard`` package (TensorFlow's summary writer does); refused before anything is loaded."""
    import importlib.util

    if spec.output.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise SpecError(
            "`output.tensorboard: true` needs the tensorboard package, which is not installed. Install it "
            "(`uv sync --extra tensorboard`, or `pip install tensorboard`), or set `output.tensorboard: false`."
        )


def prepare_resume(run_path: str | Path, spec_path: str | Path | None = None, overrides: list[str] | None = None) -> tuple[Pipeline, Resume]:
    """Reopen an interrupted, failed or crashed run to continue it from its last committed epoch, or a completed one to
    train it further: ``--set training.epochs=N`` (N above the epochs done) is the one override a resumed run takes.

    An ensemble goes on with the first member that has not completed, from its last committed epoch (the completed
    members are not trained again); extended, every member trains on from its own last epoch, in turn.

    Refuses still-running runs, other overrides, a spec or data that changed since the run started, and extending a
    run that stopped early (an ensemble: whose every member stopped early).
    """
    from seqcli.spec import load_spec

    run = RunDir.open(run_path)
    info = run.info()
    status = run_status(info)
    members = ensemble_size(info)
    if status == "running":
        raise RunError(f"{describe_status(run.path, info)} Stop that process first, or wait for it.")
    spec = spec_from_dict(run.read_yaml("spec.yaml"))
    run_backend = info.get("versions", {}).get("backend")
    target = _epochs_override(overrides or [], run.path, run_backend, spec_given=spec_path is not None)
    progress = [member_progress(info, m) for m in range(1, members + 1)]
    resumed = 1 if target is not None else next((m for m, p in enumerate(progress, 1) if p["status"] != "completed"), members)
    epochs = progress[resumed - 1]["epochs_completed"]
    done = max(p["epochs_completed"] for p in progress)  # what every member has trained (fewer: stopped early)
    if status == "completed" and target is None:
        raise RunError(
            f"Run {run.path} is already completed ({epochs} epochs); there is nothing to resume. Train it for more epochs with "
            f"`seqcli train --resume {run.path} --set training.epochs=N` (N > {epochs}), or start a new run with `seqcli train SPEC`."
        )
    if target is not None and target <= done:
        raise SpecError(f"`--set training.epochs={target}` must exceed the {done} epochs run {run.path} has done already. Give a larger number.")
    extended = dataclasses.replace(spec, training=dataclasses.replace(spec.training, epochs=target)) if target is not None else spec
    if spec_path is not None:
        given = load_spec(spec_path, overrides or [])
        changes = spec_changes(to_dict(extended), to_dict(given))
        if changes:
            raise SpecError(
                f"The spec differs from the one run {run.path} started with: {'; '.join(changes)}. A resumed run must keep its spec: "
                "resume with `seqcli train --resume RUN_DIR` alone, or start a new run with the changed spec."
            )
    if target is not None and status == "completed" and all(
        _stopped_early(spec, run.read_json(member_file("history.json", m))[: p["epochs_completed"]]) for m, p in enumerate(progress, 1)
    ):
        es = spec.training.early_stopping
        assert es is not None  # only a run with early stopping stops early
        which = f"Run {run.path} stopped early after epoch {epochs}" if members == 1 else f"Every member of run {run.path} stopped early"
        raise RunError(
            f"{which} ({spec.training.monitor} did not improve for {es.patience} epoch{'' if es.patience == 1 else 's'}); "
            "trained further, it would stop again at once. Start a new run with a larger `training.early_stopping.patience`, or without early stopping."
        )
    recorded = info.get("data_fingerprints", {})
    current = spec_fingerprints(spec)
    changed = [f"`{file_key(role)}` ({path})" for role, path in spec_files(spec).items() if recorded.get(role) != current.get(role)]
    if changed:
        raise DataError(
            f"Data changed since run {run.path} started: {', '.join(changed)} no longer match the fingerprints in its run.json. "
            "Resuming would mix two data sets; restore the original files or start a new run."
        )
    check_tensorboard(extended)
    prepared = pipeline.run(extended, backend=run_backend)  # not prepare(): the run exists, wherever `output.dir` now points
    interrupt.check()
    if prepared.preprocessing_state() != run.read_json("preprocessing.json"):
        raise RunError(f"{run.path / 'preprocessing.json'} does not match the preprocessing fitted now on the same spec and data; the run is corrupt. Start a new run.")
    history = run.read_json(member_file("history.json", resumed))[:epochs] if epochs else []
    if len(history) != epochs:
        raise RunError(
            f"{run.path / member_file('history.json', resumed)} has {len(history)} epochs but run.json says {epochs} were completed; the run is corrupt. Start a new run."
        )
    if epochs:
        run.settle_checkpoints()
        state = run.read_state(epochs, member=resumed)  # member 1's model is the pipeline's; another member's is built when its turn comes (fit)
        if resumed == 1:
            restore_training_state(prepared.model, state, run.state_path(epochs))
    schedule = spec.training.lr_schedule
    if target is not None and target != spec.training.epochs and schedule is not None and schedule.type == "cosine" and epochs:
        prepared.warnings.append(
            f"`training.lr_schedule` is cosine over `training.epochs`: with {target} epochs instead of {spec.training.epochs}, epochs {epochs + 1}-{target} "
            f"follow the {target}-epoch curve, from a rate of {learning_rate(extended, epochs):.3g} (epoch {epochs} trained with {learning_rate(spec, epochs - 1):.3g}), "
            f"so the run differs from a fresh {target}-epoch run."
        )
    extended_from = spec.training.epochs if target is not None and target != spec.training.epochs else None
    return prepared, Resume(run, epochs, history, status, extended_from, member=resumed, members=members)


def _epochs_override(overrides: list[str], run: Path, backend: str | None, *, spec_given: bool) -> int | None:
    """N of a ``training.epochs=N`` override; other overrides are refused on resume (with a SPEC, they are compared with the run's spec)."""
    target = None
    for text in overrides:
        path, value = parse_override(text)
        if path == ["training", "epochs"]:
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise SpecError(f"`--set {text}`: `training.epochs` must be a positive integer. Received: {value!r}.")
            target = value
        elif path == ["backend"] and value == backend:
            continue  # --backend naming the run's own backend
        elif path == ["backend"]:
            raise SpecError(f"`backend: {value}` with `--resume`: run {run} trains on {backend}, and a resumed run keeps its backend. Drop `--backend` (or `--set backend=...`), or start a new run.")
        elif not spec_given:
            raise SpecError(
                f"`--set {text}` with `--resume` would change the run's spec; a resumed run keeps the spec it started with, and takes only "
                "`--set training.epochs=N` (to train for more epochs). Drop `--set`, or start a new run."
            )
    return target


def _stopped_early(spec: Spec, history: list[dict[str, float]]) -> bool:
    """Whether early stopping ended this history (its patience ran out at the last epoch)."""
    es = spec.training.early_stopping
    if es is None:
        return False
    patience = _Patience(spec.training.monitor, es.patience, es.min_delta)
    stops = [patience.observe(row[spec.training.monitor]) for row in history]
    return bool(stops) and stops[-1]


@dataclass
class _Patience:
    """Keras' EarlyStopping rule: training stops once the monitored value has not improved by more than ``min_delta`` for ``patience`` epochs."""

    monitor: str
    patience: int
    min_delta: float
    best: float | None = None
    wait: int = 0

    def observe(self, value: float) -> bool:
        """Record one epoch's value; True when training stops after it."""
        if _improves(value, self.best, self.monitor, self.min_delta):
            self.best, self.wait = value, 0
            return False
        self.wait += 1
        return self.wait >= self.patience


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
    prepared: Pipeline,
    progress: Progress | None = None,
    resume: Resume | None = None,
    *,
    on_run: Callable[[RunDir], None] | None = None,
    run: RunDir | None = None,
    run_fields: dict[str, Any] | None = None,
) -> TrainResult:
    """Train (a new run directory, or the resumed one), commit every epoch, evaluate the best checkpoint.

    An ensemble (``training.ensemble: N``) trains its members in turn, each as a run of one model would train (member k
    with seed ``seed + k - 1``, under ``members/<k>/`` from the second on), skipping those a resumed run has completed;
    then evaluates the mean of their outputs, and each member.

    ``on_run`` is called with the run directory as soon as it exists (or is reopened), before training starts.
    ``run``: a new, empty run directory to train into (default: one made now under ``output.dir``);
    ``run_fields``: more fields for a new run's run.json (``seqcli tune`` records its study and trial number).
    """
    spec, model = prepared.spec, prepared.model
    size = spec.training.ensemble
    if resume is not None and (run is not None or run_fields):
        raise ValueError("a resumed run keeps its directory and run.json fields")
    interrupt.check()
    run = resume.run if resume else run or RunDir.create(spec.output.dir, spec.output.name or "run")
    writer = EpochWriter(run)
    recorders: list[Any] = []  # the member training now last: what a failure commits
    started = time.perf_counter()
    try:
        if on_run is not None:
            on_run(run)
        if resume is None:
            run.write_text("spec.yaml", to_yaml(spec))
            run.write_json("preprocessing.json", prepared.preprocessing_state())
            run.write_text("model_summary.txt", _summary(model))
            run.write_json("layers.json", [row.__dict__ for row in layer_rows(model, output_axis=output_axis(spec))])
            weights = {"class_weights": prepared.class_weights} if prepared.class_weights else {}
            members = _members_fields(spec, None)
            run.mark_running(
                created=_now(), name=spec.output.name, seed=spec.seed, versions=versions(), data_fingerprints=prepared.fingerprints, **weights, **members, **(run_fields or {})
            )
        else:
            extension = {}
            if resume.extended_from is not None:  # `--set training.epochs=N`
                run.write_text("spec.yaml", to_yaml(spec))  # first: until run.json says running, a completed run stays what it was
                done = {"at": _now(), "after_epoch": resume.epochs_completed, "epochs_before": resume.extended_from, "epochs": spec.training.epochs}
                extension = {"extensions": [*run.info().get("extensions", []), done]}
                if size > 1:  # every member trains on, from its own last epoch
                    extension |= _members_fields(spec, run.info()["members"])
            run.mark_running(resumed=_now(), **extension)
            run.discard("metrics.json")  # the completed run's, if it is extended; written again at the end
        results: list[MemberResult] = []
        outputs: dict[str, list[Outputs]] = {role: [] for role in ("validation", "test") if role in prepared.splits}
        for member in range(1, size + 1):
            result, trained = _fit_member(prepared, member, run, writer, progress, resume, recorders)
            results.append(result)
            for role, found in outputs.items():
                found.append(prepared.outputs(trained, prepared.splits[role]))
        writer.close()
        metrics = _evaluate(prepared, results, outputs, run)
        run.write_json("metrics.json", metrics)
        interrupt.check()
        from seqcli.plots import plot_run

        plot_run(run, status="completed")  # drawn as the completed run it is about to be marked
        seconds = time.perf_counter() - started
        run.set_status("completed", train_seconds=round(seconds, 2))
        first = results[0]
        return TrainResult(
            run, first.history, metrics, first.best_epoch, seconds, first.stopped_early, prepared.warnings, prepared.class_weights, results if size > 1 else []
        )
    except BaseException as exc:  # mark the run, then let the CLI report (or the traceback show) the cause
        with interrupt.deferred():  # a second Ctrl-C must not cut this short
            with contextlib.suppress(SeqcliError):  # on a full disk these writes fail too; the original error matters more
                if recorders:
                    recorders[-1].commit()  # every completed epoch is kept
                writer.close()
            with contextlib.suppress(SeqcliError):
                if isinstance(exc, KeyboardInterrupt):
                    run.set_status("interrupted")
                else:
                    run.set_status("failed", error=str(exc) if isinstance(exc, SeqcliError) else f"{type(exc).__name__}: {exc}")
        raise


def _members_fields(spec: Spec, recorded: list[dict[str, Any]] | None) -> dict[str, Any]:
    """run.json's record of an ensemble's members (nothing for one model): every member pending, member 1 up next, with
    the epochs ``recorded`` says each has done (an extended run's), or none."""
    if spec.training.ensemble == 1:
        return {}
    members = []
    for k in range(1, spec.training.ensemble + 1):
        done = recorded[k - 1] if recorded else {}
        members.append({"member": k, "seed": spec.seed + k - 1, "status": "pending", "epochs_completed": done.get("epochs_completed", 0), "best_epoch": done.get("best_epoch", 0)})
    return {"member": 1, "epochs_completed": members[0]["epochs_completed"], "best_epoch": members[0]["best_epoch"], "members": members}


def _fit_member(
    prepared: Pipeline, member: int, run: RunDir, writer: EpochWriter, progress: Progress | None, resume: Resume | None, recorders: list[Any]
) -> tuple[MemberResult, Any]:
    """Train ensemble member ``member`` (a run of one model: its only member) from where run.json says it stands, save its
    last and best models and mark it completed; returns it, with its model holding the best weights. A member that a
    resumed ensemble has completed is not trained again: its best weights are loaded."""
    size = prepared.spec.training.ensemble
    at = member_progress(run.info(), member)
    epochs = at["epochs_completed"]
    pipe = prepared.member(member)
    spec, model = pipe.spec, pipe.model
    history = list(resume.history) if resume is not None and member == resume.member else _committed(run, member, epochs)
    if at["status"] == "completed":  # a resumed ensemble's: not trained again
        restore_training_state(model, run.read_state(at["best_epoch"], member=member), run.state_path(at["best_epoch"], member=member), optimizer=False)
        return MemberResult(member, spec.seed, history, at["best_epoch"], _stopped_early(spec, history)), model
    per_batch = progress is not None and getattr(progress, "batch_updates", True)
    recorder = (_batch_recorder_class() if per_batch else _recorder_class())(writer, spec, progress, history, model, member=member)
    recorders.append(recorder)
    if size > 1:
        run.add_member(member)
        run.set_member(member, status="training")
        begin = getattr(progress, "on_member_begin", None)
        if begin is not None:
            begin(member, size, spec.seed)
    if member > 1 and epochs:  # member 1's model is the pipeline's, which prepare_resume restored
        restore_training_state(model, run.read_state(epochs, member=member), run.state_path(epochs, member=member))
    if not history:  # from its first epoch: the kernel branch's thresholds and standardization are fitted once, here
        adapt_kernels(model, pipe.splits["train"].sequences, seed=spec.seed, pad_value=pipe.prep.pad_value)
    if recorder.best_epoch:
        recorder.best_state = run.read_state(recorder.best_epoch, member=member)
    validation = pipe.splits.get("validation")
    first = len(history)
    if first < spec.training.epochs and not recorder.stop:
        trainer, extra = pipe.trainer(model)  # the model, or its view fed the kernel branch's features computed once
        batches, steps = pipe.train_batches(first, extra.get("train"))
        recorder.start_epoch = getattr(batches, "start_epoch", None)  # a PyDataset follows the fit loop's epoch
        if not model.optimizer.built:  # its variables in the order of the model's weights, which a checkpoint keeps
            model.optimizer.build(model.trainable_variables)
        trainer.fit(
            batches,
            validation_data=pipe.eval_batches(validation, extra.get("validation")) if validation else None,
            epochs=spec.training.epochs,
            initial_epoch=first,
            steps_per_epoch=steps,  # one stream of all epochs' batches, each epoch planned from (seed, epoch)
            shuffle=False,  # the plans shuffle
            class_weight=dict(enumerate(pipe.class_weights.values())) if pipe.class_weights else None,
            verbose=0,
            callbacks=[recorder, *_tensorboard(spec, run, member)],
        )
    interrupt.check()  # a Ctrl-C that a library swallowed during the last epoch
    recorder.commit()  # the last epoch, if it ended within COMMIT_INTERVAL of the previous commit
    writer.wait()
    if progress is not None:
        progress.on_train_end()
    run.save_model(model, "last", member=member)  # the model holds the last epoch's state
    restore_training_state(model, recorder.best_state, run.state_path(recorder.best_epoch, member=member))
    run.save_model(model, "best", member=member)
    if size > 1:
        run.set_member(member, status="completed")
    return MemberResult(member, spec.seed, recorder.history, recorder.best_epoch, recorder.stop), model


def _committed(run: RunDir, member: int, epochs: int) -> list[dict[str, float]]:
    """The first ``epochs`` rows of ensemble member ``member``'s history.json (none before it has trained)."""
    return list(run.read_json(member_file("history.json", member))[:epochs]) if epochs else []


def _evaluate(prepared: Pipeline, members: list[MemberResult], outputs: dict[str, list[Outputs]], run: RunDir) -> dict[str, Any]:
    """metrics.json: the task's metrics of every evaluated split on the members' mean outputs (:func:`seqcli.tasks.base.mean_outputs`;
    one model: its own); for an ensemble also each member's (``members``) and their ``spread``. Writes a regression's test values."""
    spec, task = prepared.spec, prepared.task
    metrics: dict[str, Any] = {"task": spec.task, "checkpoint": "best"}
    if len(members) == 1:
        metrics["best_epoch"] = members[0].best_epoch
    else:
        metrics["ensemble"] = len(members)
    metrics["monitor"] = spec.training.monitor
    own: list[dict[str, Any]] = [{} for _ in members]
    for role, found in outputs.items():
        split = prepared.splits[role]
        assert split.y is not None  # evaluated splits have targets
        mean = mean_outputs(found)
        metrics[role] = task.evaluate(mean, split.y, prepared.prep, spec=spec)
        if len(members) > 1:
            for scores, member_outputs in zip(own, found, strict=True):
                scores[role] = task.evaluate(member_outputs, split.y, prepared.prep, spec=spec)
        if TASK_KINDS[spec.task].numeric and role == "test":
            run.write_arrays(TEST_VALUES, _test_values(prepared, mean, split.y))
    if len(members) > 1:
        metrics["members"] = [
            {"member": m.member, "seed": m.seed, "best_epoch": m.best_epoch, "epochs": len(m.history), "stopped_early": m.stopped_early, **scores}
            for m, scores in zip(members, own, strict=True)
        ]
        metrics["spread"] = {role: spread([scores[role] for scores in own]) for role in outputs}
    return metrics


def spread(reports: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """``{metric: {min, median, max, std}}`` over the members' reports of one split, for every number they share
    (``samples`` aside); ``std`` is the population standard deviation (ddof 0).

    >>> spread([{"accuracy": 0.5, "samples": 8}, {"accuracy": 0.75, "samples": 8}])["accuracy"]
    {'min': 0.5, 'median': 0.625, 'max': 0.75, 'std': 0.125}
    """
    keys = [k for k, v in reports[0].items() if isinstance(v, float) and k != "samples" and all(isinstance(r.get(k), float) for r in reports)]
    found = {}
    for key in keys:
        values = np.array([r[key] for r in reports], dtype=np.float64)
        found[key] = {"min": float(values.min()), "median": float(np.median(values)), "max": float(values.max()), "std": float(values.std())}
    return found


TEST_VALUES = "test_values.npz"  # regression: the test split's true and predicted values, for predictions.png
PLOTTED_VALUES = 20_000  # at most this many (per-timestep) rows are kept in it, a seeded sample of them


def _test_values(prepared: Pipeline, outputs: Any, y: Any) -> dict[str, np.ndarray]:
    """``true``, ``predicted`` ``(rows, targets)`` in the targets' units, and the targets' ``names``, of a regression run's test split."""
    from seqcli.tasks.base import flat

    task = prepared.task
    predicted = task.predictions(outputs, prepared.prep)
    true = task.predictions(flat(y), prepared.prep)  # the encoded targets through the same unscaling as the outputs
    if len(true) > PLOTTED_VALUES:
        keep = np.sort(np.random.default_rng(0).choice(len(true), PLOTTED_VALUES, replace=False))
        true, predicted = true[keep], predicted[keep]
    return {"true": np.asarray(true, np.float64), "predicted": np.asarray(predicted, np.float64), "names": np.array(task.columns(prepared.prep), dtype=str)}


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


def _tensorboard(spec: Spec, run: RunDir, member: int = 1) -> list[Any]:
    """Keras' TensorBoard callback writing to the run's tensorboard/ (an ensemble's member k > 1: tensorboard/member-k/), with ``output.tensorboard: true``."""
    if not spec.output.tensorboard:
        return []
    folder = run.tensorboard_dir() / (f"member-{member}" if member > 1 else "")
    return [import_keras().callbacks.TensorBoard(log_dir=str(folder), write_graph=False)]


@functools.cache
def _recorder_class() -> type:
    """The Keras callback class, defined on first use so importing this module stays TensorFlow-free."""
    keras = import_keras()

    class Recorder(keras.callbacks.Callback):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        """Reseeds each epoch, sets its learning rate, commits it to the run (checkpoint, history, run.json), tracks the best epoch and early stopping.

        Early stopping and the learning-rate schedule are functions of the history, so replaying the committed epochs restores them on resume.
        ``network`` is the model whose state is committed; Keras' ``self.model`` is what ``fit`` runs, which may be its
        view (:meth:`seqcli.pipeline.Pipeline.trainer`) with the same weights and optimizer.
        """

        def __init__(self, writer: EpochWriter, spec: Spec, progress: Progress | None, history: list[dict[str, float]], network: Any, *, member: int = 1) -> None:
            super().__init__()
            self.writer, self.spec, self.progress, self.network, self.member = writer, spec, progress, network, member
            self.monitor = spec.training.monitor
            self.history: list[dict[str, float]] = []
            self.best: float | None = None
            self.best_epoch = 0
            self.best_state: dict[str, np.ndarray] = {}  # the best epoch's training state
            es = spec.training.early_stopping
            self.patience = _Patience(self.monitor, es.patience, es.min_delta) if es is not None else None
            self.stop = False
            self.start_epoch: Callable[[int], None] | None = None
            self.epoch_started = time.perf_counter()
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
            if self.patience is not None:
                self.stop = self.patience.observe(current)
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
                self.writer.commit(state, epoch, self.best_epoch, self.best_state, self.history, member=self.member)
                self.uncommitted, self.committed_at = None, time.monotonic()

        def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
            if self.progress is not None:
                self.progress.on_train_begin(self.params["epochs"], self.params["steps"] or 0, len(self.history) + 1)

        def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()  # a safe point: Keras calls this in the main thread, and defining it costs no synchronization

        def on_test_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            interrupt.check()
            self.epoch_started = time.perf_counter()
            if self.start_epoch is not None:
                self.start_epoch(epoch)
            # Dropout masks depend on (seed, epoch) only; checkpoints do not carry the RNG state.
            for i, variable in enumerate(v for v in self.network.non_trainable_variables if v.path.endswith("seed_generator_state")):
                variable.assign(np.array([(self.spec.seed * 1_000_003 + epoch * 7_919 + i) % 2**31, 0], dtype=variable.dtype))
            if self.schedule is not None:
                if self.schedule.type != "reduce_on_plateau":
                    self.learning_rate = learning_rate(self.spec, epoch)
                self.network.optimizer.learning_rate = self.learning_rate

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items() if k != "learning_rate"}}
            row["learning_rate"] = float(self.learning_rate)  # the rate this epoch trained with
            row["seconds"] = round(time.perf_counter() - self.epoch_started, 4)  # its wall time, validation included (not part of an exact resume)
            improved = self._observe(row)
            state = training_state(self.network)
            if improved:
                self.best_state = state
            self.uncommitted = (state, epoch + 1)
            if time.monotonic() - self.committed_at >= COMMIT_INTERVAL or self.stop or epoch + 1 == self.params["epochs"]:
                self.commit()
            if self.progress is not None:
                shown = {k: v for k, v in row.items() if k not in ("epoch", "seconds") and (k != "learning_rate" or self.schedule is not None)}
                self.progress.on_epoch_end(epoch + 1, shown, improved)
                if getattr(self.progress, "stop_requested", False) and not self.stop:
                    self.stop = True  # like early stopping: this epoch is the last
                    self.commit()
            if self.stop:
                self.model.stop_training = True
            interrupt.check()

    return Recorder


@functools.cache
def _batch_recorder_class() -> type:
    """The recorder with a per-batch progress hook; Keras syncs the logs to Python after every batch for it."""

    class BatchRecorder(_recorder_class()):  # type: ignore[misc]  # its base is the Keras callback class that _recorder_class() defines at run time
        def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
            self.progress.on_batch_end(batch + 1, {k: float(v) for k, v in (logs or {}).items()})

    return BatchRecorder
