"""Hyperparameter search: an Optuna study over a spec's ``tune:`` section, each trial a normal run directory.

:func:`search` opens (or creates) the study in its storage, then runs trials until the study has the asked number of
finished (completed or pruned) trials, whoever ran them: several workers pointed at one PostgreSQL study fill it
together, and the count is exact (a worker claims a trial only while fewer are finished or running, and a trial that two
workers claimed at once is given up, before it trains, by the one with the higher number). Each trial applies its values
to the spec like ``--set`` overrides (:meth:`seqcli.spec.Search.trial_spec`), runs :func:`seqcli.train.prepare` and
:func:`seqcli.train.fit`, reports the monitored value after every epoch and stops cleanly when the pruner says so.

The study is bound to the spec it was made from: a fingerprint of the resolved spec without ``tune:`` and ``output``
(with data files by content), kept in the study's attributes. A trial of a process that died (``kill -9``) is marked
failed, on this host at once (its process is gone) and elsewhere when its heartbeat stops, and retried with the same
values. Optuna is imported only here, and only when a search starts. This module never prints.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from seqcli import rundir
from seqcli.errors import SeqcliError, TuneError
from seqcli.fingerprint import spec_files, spec_fingerprints
from seqcli.spec import Search, Spec, TuneParam, to_dict, to_yaml

if TYPE_CHECKING:
    import optuna

HEARTBEAT_S = 10  # a running trial's heartbeat interval
GRACE_S = 60  # a trial whose heartbeat is this old is failed (and retried) by the next worker that looks
MAX_RETRIES = 3  # a trial that died is retried with the same values at most this often
MAX_FAILURES_IN_A_ROW = 3  # a worker gives up after this many trials in a row failed (the same error every time, usually)
IMPORTANCE_TRIALS = 5  # completed trials needed before parameter importances mean anything
SQLITE_FILE = "tune.db"


class TuneProgress(Protocol):
    """Receives the search's progress; the CLI renders it."""

    def on_study(self, study: str, storage: str, finished: int, trials: int) -> None: ...
    def on_trial_begin(self, number: int, params: dict[str, Any], run: Path) -> None: ...
    def on_trial_end(self, row: TrialRow) -> None: ...


@dataclass
class TrialRow:
    """One trial as the table shows it; ``value``: the run's best monitored value (also for a pruned trial)."""

    number: int
    state: str  # complete, pruned, fail, running, waiting, surplus
    params: dict[str, Any]
    value: float | None
    epochs: int | None
    run: str | None
    host: str | None = None
    error: str | None = None
    retry_of: int | None = None
    baseline: bool = False  # the spec's own values (trial 0 of a new study, when they lie in the search space)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TuneResult:
    study: str
    storage: str  # as shown: no password
    monitor: str
    direction: str  # minimize or maximize
    trials_target: int
    params: list[TuneParam]
    trials: list[TrialRow]
    best: TrialRow | None
    best_spec: Path | None
    ran_here: list[int] = field(default_factory=list)
    importances: dict[str, float] | None = None
    importance_note: str | None = None
    seconds: float = 0.0

    @property
    def finished(self) -> int:
        return sum(row.state in ("complete", "pruned") for row in self.trials)

    def to_dict(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "storage": self.storage,
            "monitor": self.monitor,
            "direction": self.direction,
            "trials_target": self.trials_target,
            "finished": self.finished,
            "search_space": {p.name: p.describe() for p in self.params},
            "trials": [row.to_dict() for row in self.trials],
            "best": self.best.to_dict() if self.best else None,
            "best_spec": str(self.best_spec) if self.best_spec else None,
            "ran_here": self.ran_here,
            "importances": self.importances,
            "importance_note": self.importance_note,
            "seconds": round(self.seconds, 2),
        }


class _Surplus(Exception):
    """A trial that another worker's trial made one too many; it is given up before it trains."""


# --------------------------------------------------------------------------- storage


def redact(url: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db`` (also a ``password=`` query value)."""
    from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an unparsable URL)"
    if "@" not in parts.netloc and "pass" not in parts.query.lower():
        return url
    netloc = parts.netloc
    if "@" in netloc:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.split(':', 1)[0]}:***@{host}" if ":" in user else f"{user}@{host}"
    query = urlencode([(k, "***" if k.lower() in ("password", "passwd") else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's password, wherever it appears."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password:
        for secret in {password, unquote(password)}:
            text = text.replace(secret, "***")
    return text.replace(url, redact(url))


def storage_url(spec: Spec, storage: str | None) -> str:
    """The SQLAlchemy URL of the study: ``--storage`` (``postgresql://`` meaning psycopg 3), else ``<output.dir>/<name>/tune.db``."""
    if storage is None:
        folder = rundir.experiment_dir(spec.output.dir, spec.output.name or "run")
        return f"sqlite:///{(folder / SQLITE_FILE).resolve()}"
    scheme, sep, rest = storage.partition("://")
    if not sep:
        raise TuneError(
            "--storage is not a database URL: it has no `scheme://` (it is not shown here, as it may hold a password). Give one like postgresql://USER:PASSWORD@HOST:5432/DATABASE, "
            "or leave --storage out for the SQLite file in the experiment's folder."
        )
    if scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg://{rest}"
    return storage


def _where(url: str) -> str:
    """Where a storage is, for messages: the host and database, never the password."""
    from urllib.parse import urlsplit

    if url.startswith("sqlite:///"):
        return f"the SQLite file {url.removeprefix('sqlite:///')}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "localhost", parts.port
    except ValueError:
        return redact(url)
    kind = parts.scheme.split("+")[0]
    kind = {"postgresql": "PostgreSQL", "mysql": "MySQL"}.get(kind, kind)
    return f"the {kind} server at {host}{f':{port}' if port else ''} (database {parts.path.lstrip('/') or '(default)'!r}, user {parts.username or '(default)'!r})"


def open_storage(url: str) -> optuna.storages.RDBStorage:
    """Optuna's RDB storage with heartbeats (a dead worker's trial is failed and retried); a :class:`TuneError` naming the
    host when the database cannot be reached."""
    import optuna

    with _quiet_optuna():
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)
    connect: dict[str, Any] = {"timeout": 60} if url.startswith("sqlite") else {"connect_timeout": 10} if url.startswith("postgresql") else {}
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    try:
        for attempt in range(5):
            try:
                with _quiet_optuna():
                    return optuna.storages.RDBStorage(
                        url, engine_kwargs={"connect_args": connect}, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S, heartbeat_stale_trial_callback=retry
                    )
            except (IntegrityError, ProgrammingError):  # two workers creating the tables of a new database at once: the other one won
                if attempt == 4:
                    raise
                time.sleep(0.2 + 0.3 * attempt + (os.getpid() % 7) / 20)
        raise AssertionError("unreachable")  # pragma: no cover
    except Exception as exc:  # SQLAlchemy's errors (OperationalError, ArgumentError, ...), a missing driver (ImportError), a bad URL (ValueError)
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0] if str(getattr(exc, "orig", None) or exc).strip() else type(exc).__name__
        fix = (
            "Check that the server runs and accepts connections from here, and the user name, password and database name."
            if not url.startswith("sqlite")
            else "Check that the folder is writable and the file is a study database (`seqcli tune` made it)."
        )
        raise TuneError(f"Cannot open the study storage, {_where(url)}: {_scrub(reason, url)}. {fix}") from None


# --------------------------------------------------------------------------- the study


def spec_fingerprint(spec: Spec) -> tuple[str, dict[str, Any]]:
    """``sha256:...`` of the resolved spec without ``output`` (the search space is not in it), with every data file
    replaced by its content's fingerprint (so workers on machines with other paths agree); and that plain data."""
    by_path = {spec_files(spec)[role]: value for role, value in spec_fingerprints(spec).items()}

    def content(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: content(v) for k, v in value.items()}
        if isinstance(value, list):
            return [content(v) for v in value]
        return by_path.get(value, value) if isinstance(value, str) else value

    data = content({k: v for k, v in to_dict(spec).items() if k != "output"})
    return "sha256:" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest(), data


def direction(monitor: str) -> Literal["minimize", "maximize"]:
    return "minimize" if monitor.endswith("loss") or monitor.endswith(("mae", "rmse")) else "maximize"


def _study(
    storage: optuna.storages.RDBStorage, url: str, search: Search, *, name: str | None, new_study: bool, sampler: Any, pruner: Any
) -> optuna.Study:
    """The study to fill: the named one, or the experiment's latest; a new one with ``new_study``. Refuses a study made
    from another spec."""
    import optuna
    from optuna.exceptions import DuplicatedStudyError

    from seqcli.train import spec_changes

    spec = search.spec
    experiment = spec.output.name or "run"
    fingerprint, data = spec_fingerprint(spec)
    studies = storage.get_all_studies()
    mine = [s for s in studies if s.user_attrs.get("seqcli_experiment") == experiment]
    wanted = direction(spec.training.monitor)
    if new_study:
        taken = {s.study_name for s in studies}
        if name is not None and name in taken:
            raise TuneError(f"A study named {name!r} already exists in {_where(url)}. Choose another --study name, or drop --new-study to continue it.")
        name = name or next(n for n in [experiment, *(f"{experiment}-{k}" for k in range(2, 10_000))] if n not in taken)
    elif name is None:
        name = mine[-1].study_name if mine else experiment
    created = False
    try:
        try:
            study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner, direction=wanted)
            created = True
        except DuplicatedStudyError:  # it exists, or another worker made it a moment ago
            if new_study:  # pragma: no cover - two workers creating one new study with --new-study
                raise TuneError(f"A study named {name!r} was just created by another worker. Run again without --new-study to join it.") from None
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
    except TuneError:
        raise
    except Exception as exc:
        raise TuneError(f"Cannot open the study {name!r} in {_where(url)}: {_scrub(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, url)}.") from None
    attrs = study.user_attrs
    if "seqcli_fingerprint" not in attrs:
        if study.trials and not attrs:
            raise TuneError(f"The study {name!r} in {_where(url)} was not made by `seqcli tune` (it has trials but no spec fingerprint). Name another with --study, or pass --new-study.")
        study.set_user_attr("seqcli_experiment", experiment)
        study.set_user_attr("seqcli_spec", data)
        study.set_user_attr("seqcli_fingerprint", fingerprint)
    elif attrs["seqcli_fingerprint"] != fingerprint:
        changes = spec_changes(attrs.get("seqcli_spec", {}), data)
        shown = "; ".join(changes[:5]) + (f"; and {len(changes) - 5} more" if len(changes) > 5 else "") if changes else "its data files differ"
        raise TuneError(
            f"The study {name!r} in {_where(url)} was made from a different spec: {shown}. Its {len(study.get_trials(deepcopy=False, states=_finished_states()))} finished trial(s) are kept. "
            "Continue it with the spec it was made from, start a new study with --new-study, or name another with --study."
        )
    if study.direction.name.lower() != wanted:  # pragma: no cover - the monitor is part of the fingerprint
        raise TuneError(f"The study {name!r} {study.direction.name.lower()}s, but `training.monitor: {spec.training.monitor}` needs {wanted}. Use --new-study.")
    baseline = _baseline(search)
    if created and baseline is not None:  # trial 0: the spec's own values, the untuned result to beat (only its creator adds it)
        study.enqueue_trial(baseline, user_attrs={"baseline": True})
    return study


def _finished_states() -> tuple[Any, ...]:
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def _fail_dead_trials(study: optuna.Study, storage: optuna.storages.RDBStorage) -> list[int]:
    """Running trials of a process on this host that no longer exists (``kill -9``): failed now, and retried with their
    values (other hosts' dead trials are failed when their heartbeat is older than :data:`GRACE_S`)."""
    import optuna
    from optuna.trial import TrialState

    failed = []
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = trial.user_attrs.get("pid")
        if trial.user_attrs.get("host") != host or not isinstance(pid, int) or _alive(pid):
            continue
        if storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL):  # False: another worker got there first
            failed.append(trial.number)
            run = trial.user_attrs.get("run")
            if run and (Path(run) / "run.json").is_file():
                with contextlib.suppress(SeqcliError):
                    rundir.RunDir(Path(run)).set_status("failed", error=f"its tuner (process {pid}) died; trial {trial.number} of study {study.study_name!r} is retried")
            optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRIES)(study, storage.get_trial(trial._trial_id))
    with contextlib.suppress(Exception):
        optuna.storages.fail_stale_trials(study)
    return failed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna logs every trial (and warns that heartbeats are experimental); seqcli reports trials itself."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


# --------------------------------------------------------------------------- trials


class _Reporter:
    """The training progress hook of a trial: reports the monitored value after each epoch, stops training when pruned.
    An ensemble's trial reports its first member's epochs (pruned, the other members stop after their first epoch)."""

    batch_updates = False

    def __init__(self, trial: optuna.Trial, monitor: str, prune: bool) -> None:
        self.trial, self.monitor, self.prune = trial, monitor, prune
        self.stop_requested = False
        self.pruned_at: int | None = None
        self.member = 1

    def on_member_begin(self, member: int, members: int, seed: int) -> None:
        self.member = member

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:  # pragma: no cover - batch_updates is False
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        value = logs.get(self.monitor)
        if value is None or not math.isfinite(value) or self.member > 1:
            return
        self.trial.report(value, epoch)
        if self.prune and self.trial.should_prune():
            self.stop_requested, self.pruned_at = True, epoch

    def on_train_end(self) -> None:
        pass


def _suggest(trial: optuna.Trial, param: TuneParam) -> Any:
    if param.choices is not None:
        return trial.suggest_categorical(param.name, list(param.choices))
    assert param.low is not None and param.high is not None
    if param.integer:
        return trial.suggest_int(param.name, int(param.low), int(param.high), step=int(param.step or 1), log=param.log)
    return trial.suggest_float(param.name, float(param.low), float(param.high), step=param.step, log=param.log)


def _baseline(search: Search) -> dict[str, Any] | None:
    """The base spec's value of every searched field, when each lies in its choices or range; else None."""
    values: dict[str, Any] = {}
    for param in search.params:
        node: Any = to_dict(search.spec)
        for key in param.keys:
            node = node[key] if isinstance(node, dict) and isinstance(key, str) and key in node else node[key] if isinstance(node, list) and isinstance(key, int) else None
        if param.choices is not None:
            if node not in param.choices:
                return None
        else:
            assert param.low is not None and param.high is not None
            if not (isinstance(node, (int, float)) and not isinstance(node, bool) and param.low <= node <= param.high):
                return None
            if param.step is not None and not math.isclose((node - param.low) / param.step, round((node - param.low) / param.step)):
                return None
        values[param.name] = node
    return values


def _row(trial: Any) -> TrialRow:
    from optuna.storages import RetryHeartbeatStaleTrialCallback

    state = trial.state.name.lower()
    if trial.user_attrs.get("surplus"):
        state = "surplus"
    value = trial.user_attrs.get("best_value", trial.value)
    return TrialRow(
        number=trial.number,
        state=state,
        params=dict(trial.params),
        value=value,
        epochs=trial.user_attrs.get("epochs"),
        run=trial.user_attrs.get("run"),
        host=trial.user_attrs.get("host"),
        error=trial.user_attrs.get("error"),
        retry_of=RetryHeartbeatStaleTrialCallback.retried_trial_number(trial),
        baseline=bool(trial.user_attrs.get("baseline")),
    )


def search(
    search: Search,
    *,
    trials: int,
    storage: str | None = None,
    study_name: str | None = None,
    new_study: bool = False,
    prune: bool = True,
    progress: TuneProgress | None = None,
) -> TuneResult:
    """Run trials until the study has ``trials`` finished ones (see the module's docstring); the table, the best trial's
    spec (written next to the SQLite file, ``<output.dir>/<name>/<study>.best.yaml``) and the importances."""
    if trials < 1:
        raise TuneError(f"--trials must be a positive number of trials. Received: {trials}. Use e.g. --trials 20.")
    spec = search.spec
    started = time.perf_counter()
    folder = rundir.experiment_dir(spec.output.dir, spec.output.name or "run")  # also refuses an unwritable output before any study is touched
    url = storage_url(spec, storage)
    shown = redact(url.replace("postgresql+psycopg://", "postgresql://", 1))
    with _quiet_optuna():
        import optuna

        store = open_storage(url)
        seed = spec.seed if storage is None else (spec.seed * 1_000_003 + os.getpid() * 7_919 + time.time_ns()) % 2**32  # workers must not all draw alike
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, trials // 3)), constant_liar=True)
        pruner = optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=max(2, spec.training.epochs // 10)) if prune else optuna.pruners.NopPruner()
        study = _study(store, url, search, name=study_name, new_study=new_study, sampler=sampler, pruner=pruner)
        context = {"study": study.study_name, "storage": shown}
        ran_here: list[int] = []
        failures: list[str] = []

        def objective(trial: optuna.Trial) -> float:
            from seqcli import train
            from seqcli.rundir import RunDir

            for inherited in ("run", "error", "best_value", "epochs", "surplus"):  # a retried trial starts with its dead original's attributes
                if trial.user_attrs.get(inherited) is not None:
                    trial.set_user_attr(inherited, None)
            trial.set_user_attr("host", socket.gethostname())
            trial.set_user_attr("pid", os.getpid())
            finished_or_running = [
                t.number for t in study.get_trials(deepcopy=False, states=(*_finished_states(), optuna.trial.TrialState.RUNNING)) if not t.user_attrs.get("surplus")
            ]
            if trial.number in sorted(finished_or_running)[trials:]:
                trial.set_user_attr("surplus", True)
                raise _Surplus
            values = {param.name: _suggest(trial, param) for param in search.params}
            try:
                trial_spec = search.trial_spec(values)
                prepared = train.prepare(trial_spec)
                run = RunDir.create(trial_spec.output.dir, trial_spec.output.name or "run")
            except SeqcliError as exc:
                trial.set_user_attr("error", str(exc))
                raise
            trial.set_user_attr("run", str(run.path))
            if progress is not None:
                progress.on_trial_begin(trial.number, values, run.path)
            ran_here.append(trial.number)
            reporter = _Reporter(trial, spec.training.monitor, prune)
            fields = {"tune": {**context, "trial": trial.number, "params": values}}
            try:
                result = train.fit(prepared, reporter, run=run, run_fields=fields)
            except SeqcliError as exc:
                trial.set_user_attr("error", str(exc))
                raise
            best = result.best_value  # an ensemble's: the ensemble's, on validation
            trial.set_user_attr("best_value", best)
            trial.set_user_attr("epochs", len(result.history))
            if reporter.pruned_at is not None:
                run.update(tune={**fields["tune"], "pruned_at_epoch": reporter.pruned_at})
                raise optuna.TrialPruned(f"pruned after epoch {reporter.pruned_at}")
            return float(best)

        def ended(study: optuna.Study, trial: Any) -> None:
            if trial.user_attrs.get("surplus"):
                return
            if trial.state == optuna.trial.TrialState.FAIL:
                failures.append(trial.user_attrs.get("error", "an unexpected error"))
            elif trial.state in _finished_states():
                failures.clear()
            if progress is not None and trial.number in ran_here:
                progress.on_trial_end(_row(trial))

        _fail_dead_trials(study, store)
        if progress is not None:
            progress.on_study(study.study_name, shown, len(study.get_trials(deepcopy=False, states=_finished_states())), trials)
        while True:
            done = study.get_trials(deepcopy=False, states=_finished_states())
            if len(done) >= trials:
                break
            running = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
            if len(done) + len(running) >= trials:  # the last trials run elsewhere: wait for them (one may die and be retried here)
                time.sleep(1.0)
                _fail_dead_trials(study, store)
                continue
            study.optimize(objective, n_trials=1, catch=(SeqcliError, _Surplus), callbacks=[ended])
            if len(failures) >= MAX_FAILURES_IN_A_ROW:
                raise TuneError(f"{len(failures)} trials in a row failed, so the search stops; the last one: {failures[-1]}")
        return _result(study, search, trials=trials, shown=shown, folder=folder, ran_here=ran_here, seconds=time.perf_counter() - started)


def _result(study: optuna.Study, search: Search, *, trials: int, shown: str, folder: Path, ran_here: list[int], seconds: float) -> TuneResult:
    from optuna.trial import TrialState

    spec = search.spec
    rows = [_row(t) for t in study.get_trials(deepcopy=False)]
    complete = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))]
    best_row, best_spec = None, None
    if complete:
        best = study.best_trial
        best_row = next(r for r in rows if r.number == best.number)
        resolved = search.trial_spec(dict(best.params))
        best_spec = folder / f"{study.study_name}.best.yaml"
        header = (
            f"# The best trial of study {study.study_name!r} ({shown}): trial {best.number}, {spec.training.monitor} {best.value:.6g}.\n"
            f"# {', '.join(f'{k}: {v}' for k, v in best.params.items())}. Train it with `seqcli train {_shown_path(best_spec)}`.\n"
        )
        rundir.write_spec_file(best_spec, header + to_yaml(resolved))
    importances, note = _importances(study, len(complete), search)
    return TuneResult(
        study=study.study_name, storage=shown, monitor=spec.training.monitor, direction=direction(spec.training.monitor), trials_target=trials,
        params=search.params, trials=rows, best=best_row, best_spec=best_spec, ran_here=ran_here, importances=importances, importance_note=note, seconds=seconds,
    )


def _shown_path(path: Path) -> str:
    """``path`` relative to the working directory when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _importances(study: optuna.Study, complete: int, search: Search) -> tuple[dict[str, float] | None, str | None]:
    """Optuna's parameter importances: fANOVA when scikit-learn is installed, else PED-ANOVA (no dependency)."""
    import optuna

    if complete < IMPORTANCE_TRIALS:
        return None, f"Parameter importances need at least {IMPORTANCE_TRIALS} completed trials; the study has {complete}."
    import importlib.util

    if importlib.util.find_spec("sklearn") is not None:
        evaluator: Any = optuna.importance.FanovaImportanceEvaluator(seed=search.spec.seed)
        how = "fANOVA"
    else:
        evaluator, how = optuna.importance.PedAnovaImportanceEvaluator(), "PED-ANOVA"
    try:
        found = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except (RuntimeError, ValueError) as exc:
        return None, f"Parameter importances could not be computed ({exc})."
    return {k: float(v) for k, v in found.items()}, f"Parameter importances by {how} over {complete} completed trials."
