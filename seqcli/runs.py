"""The runs under an output directory, and comparisons of runs: plain data from run.json, metrics.json, history.json
and spec.yaml, read without Keras (or NumPy).

:func:`list_runs` finds every run directory under ``output.dir`` (``<dir>/<name>/<run id>/``), newest first; a damaged
one is listed with its problem instead of stopping the listing. :func:`compare` lines several runs up: the spec fields
that differ (dotted paths), the metrics side by side, and the per-class F1 of classification runs.

An ensemble (``training.ensemble: N``) is summarized by its member count and the ensemble's metrics (the mean of its
members' outputs); while it trains, by the member in training (its epochs and best epoch).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seqcli.errors import RunError, SeqcliError
from seqcli.rundir import RUN_STATUSES, RunDir, ensemble_size, member_file, run_status

DAMAGED = "damaged"  # the status of a run whose files cannot be read
STATUS_FILTERS = (*RUN_STATUSES, DAMAGED)
SCORES = {"classify": ("accuracy", "macro_f1"), "numeric": ("rmse", "r2")}  # the headline test scores a listing shows


@dataclass
class RunSummary:
    """One line of ``seqcli runs``: what a run is and how far it got; ``problem`` says what is wrong with a damaged one."""

    path: str
    name: str
    run_id: str
    status: str
    created: str | None = None
    backend: str | None = None
    task: str | None = None
    epochs: int | None = None
    planned_epochs: int | None = None
    best_epoch: int | None = None
    monitor: str | None = None
    monitored: float | None = None
    split: str | None = None  # where the scores come from: test, else validation
    scores: dict[str, float | None] = field(default_factory=dict)
    train_seconds: float | None = None
    members: int = 1  # an ensemble's member count; its epochs and best epoch are the member in training's (none once completed)
    member: int | None = None  # an ensemble's member in training (the last one, once completed)
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _read(run: RunDir, name: str) -> Any:
    return run.read_json(name) if (run.path / name).exists() else None


def summarize(path: Path) -> RunSummary:
    """The summary of one run directory; never raises for a damaged run (its ``problem`` says what is wrong)."""
    summary = RunSummary(str(path), path.parent.name, path.name, DAMAGED)
    run = RunDir(path)
    try:
        info = run.info()
    except SeqcliError as exc:
        summary.problem = str(exc)
        return summary
    summary.status = run_status(info)
    summary.name = str(info.get("name") or path.parent.name)
    summary.created = info.get("created")
    summary.backend = (info.get("versions") or {}).get("backend")
    summary.epochs = int(info.get("epochs_completed", 0))
    summary.best_epoch = info.get("best_epoch")
    summary.train_seconds = info.get("train_seconds")
    summary.members = ensemble_size(info)
    if summary.members > 1:
        summary.member = int(info.get("member", 1))
        if summary.status == "completed":
            summary.best_epoch = None  # each member has its own (metrics.json)
    try:
        spec = run.read_yaml("spec.yaml")
        training = spec.get("training") or {}
        summary.task, summary.monitor, summary.planned_epochs = spec.get("task", "classify"), training.get("monitor"), training.get("epochs")
        name = member_file("history.json", summary.member or 1)
        history = _read(run, name) or []
        if not isinstance(history, list):
            raise RunError(f"{path / name} is corrupt (not a list of epochs). Train again.")
        committed = history[: summary.epochs]
        if summary.best_epoch and summary.monitor and len(committed) >= summary.best_epoch:
            summary.monitored = committed[summary.best_epoch - 1].get(summary.monitor)
        if summary.members > 1:
            committed = [row for m in range(1, summary.members + 1) for row in _member_history(run, info, m)]
        timed = bool(committed) and all("seconds" in row for row in committed)
        if timed and (summary.train_seconds is None or info.get("resumed")):
            # a run that did not complete, or was resumed (run.json's train_seconds counts the last session only): its epochs' wall time
            summary.train_seconds = round(sum(row["seconds"] for row in committed), 2)
        metrics = _read(run, "metrics.json")
        if isinstance(metrics, dict) and summary.members > 1 and summary.monitor:
            ensemble = (metrics.get("validation") or {}).get(summary.monitor.removeprefix("val_")) if summary.monitor.startswith("val_") else None
            summary.monitored = ensemble if isinstance(ensemble, float) else None
        if isinstance(metrics, dict):
            summary.split = "test" if "test" in metrics else "validation" if "validation" in metrics else None
            report = metrics.get(summary.split or "", {})
            keys = SCORES["classify"] if "accuracy" in report else SCORES["numeric"]
            summary.scores = {key: report.get(key) for key in keys}
    except SeqcliError as exc:
        summary.problem = str(exc)
    return summary


def _member_history(run: RunDir, info: dict[str, Any], member: int) -> list[dict[str, Any]]:
    """The committed epochs of an ensemble's member ``member`` (none before it starts)."""
    entry = (info.get("members") or [{}] * member)[member - 1]
    history = _read(run, member_file("history.json", member)) or []
    return list(history[: int(entry.get("epochs_completed", 0))]) if isinstance(history, list) else []


def find_runs(root: Path) -> list[Path]:
    """The run directories under ``root``: ``root/<name>/<run id>/``; or those of one experiment (``root/<run id>/``); or
    ``root`` itself when it is a run. Hidden folders are skipped."""
    root = Path(root)
    if not root.exists():
        raise RunError(f"{root} does not exist. Give the `output.dir` that `seqcli train` writes runs to (default: runs).")
    if not root.is_dir():
        raise RunError(f"{root} is a file; give the directory holding the runs (the spec's `output.dir`).")
    if (root / "run.json").exists():
        return [root]

    def folders(path: Path) -> list[Path]:
        try:
            return sorted(p for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
        except OSError as exc:
            raise RunError(f"Cannot read {path}: {exc.strerror}.") from None

    children = folders(root)
    if any((child / "run.json").exists() for child in children):
        return children  # an experiment's folder
    return [run for child in children for run in folders(child)]


def _sort_key(summary: RunSummary) -> float:
    if summary.created:
        try:
            return datetime.fromisoformat(summary.created).timestamp()
        except ValueError:
            pass
    try:
        return datetime.strptime(summary.run_id[:15], "%Y%m%d-%H%M%S").replace(tzinfo=UTC).timestamp()  # the id starts with the local creation time
    except ValueError:
        return os.stat(summary.path).st_mtime


def list_runs(root: str | Path = "runs", *, name: str | None = None, status: str | None = None) -> list[RunSummary]:
    """The runs under ``root``, newest first; ``name``: experiment names matching this (``*`` wildcards), ``status``: one of
    :data:`STATUS_FILTERS`."""
    if status is not None and status not in STATUS_FILTERS:
        raise RunError(f"--status {status!r} is not a run status. Use one of: {', '.join(STATUS_FILTERS)}.")
    summaries = [summarize(path) for path in find_runs(Path(root))]
    if name is not None:
        summaries = [s for s in summaries if fnmatch.fnmatchcase(s.name, name)]
    if status is not None:
        summaries = [s for s in summaries if s.status == status]
    return sorted(summaries, key=_sort_key, reverse=True)


# ----------------------------------------------------------------- comparing runs


@dataclass
class Comparison:
    """``seqcli compare``: the runs (their labels), the spec fields that differ, the metrics and the per-class F1."""

    runs: list[RunSummary]
    labels: list[str]
    spec_differences: list[tuple[str, list[Any]]]  # (dotted path, the value in each run; MISSING where a run lacks it)
    metrics: list[tuple[str, list[Any]]]  # (row title, the value in each run; None where a run lacks it)
    per_class_split: str | None = None
    per_class_f1: list[tuple[str, list[float | None]]] = field(default_factory=list)  # (class, F1 in each run)
    histories: list[list[dict[str, float]]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [{"label": label, **run.to_dict()} for label, run in zip(self.labels, self.runs, strict=True)],
            "spec_differences": {path: values for path, values in self.spec_differences},
            "metrics": {title: values for title, values in self.metrics},
            "per_class_f1": {"split": self.per_class_split, "classes": {name: values for name, values in self.per_class_f1}} if self.per_class_f1 else None,
        }


MISSING = "(absent)"


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Every leaf of a nested mapping under its dotted path, list items as ``[i]``.

    >>> flatten({"model": {"layers": [{"units": 8}, {"units": 4}]}, "seed": 0})
    {'model.layers[0].units': 8, 'model.layers[1].units': 4, 'seed': 0}
    """
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{path}.{key}" if path else str(key)).items()}
    if isinstance(value, list) and value:
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{path}[{i}]").items()}
    return {path: value}


def spec_differences(specs: list[dict[str, Any]]) -> list[tuple[str, list[Any]]]:
    """The dotted paths whose values differ between the specs, in the first spec's order, with each spec's value.

    >>> spec_differences([{"seed": 0, "training": {"epochs": 2}}, {"seed": 1, "training": {"epochs": 2}}])
    [('seed', [0, 1])]
    """
    flat = [flatten(spec) for spec in specs]
    paths = list(dict.fromkeys(path for spec in flat for path in spec))
    return [(path, [spec.get(path, MISSING) for spec in flat]) for path in paths if len({repr(spec.get(path, MISSING)) for spec in flat}) > 1]


def _label(run: RunDir, others: list[RunDir]) -> str:
    """The run id, with the experiment's folder when another run shares the id."""
    same = sum(other.path.name == run.path.name for other in others)
    return f"{run.path.parent.name}/{run.path.name}" if same > 1 else run.path.name


def compare(paths: list[str | Path]) -> Comparison:
    """Line up two runs or more (any status; a run needs run.json and spec.yaml): see :class:`Comparison`."""
    if len(paths) < 2:
        given = f"got {len(paths)}: {paths[0]}" if paths else "got none"
        raise RunError(f"`seqcli compare` needs at least two runs ({given}). Give two run directories or more, e.g. `seqcli compare runs/smoke/RUN_A runs/smoke/RUN_B`; `seqcli runs` lists them.")
    runs = [RunDir.open(path) for path in paths]
    summaries = [summarize(run.path) for run in runs]
    for summary in summaries:
        if summary.status == DAMAGED:
            raise RunError(f"Run {summary.path} cannot be compared: {summary.problem}")
    specs = [run.read_yaml("spec.yaml") for run in runs]
    metrics = [(_read(run, "metrics.json") or {}) for run in runs]
    rows: list[tuple[str, list[Any]]] = [
        ("status", [s.status for s in summaries]),
        *([("ensemble members", [s.members for s in summaries])] if any(s.members > 1 for s in summaries) else []),
        ("epochs", [s.epochs for s in summaries]),
        ("best epoch", [s.best_epoch for s in summaries]),
    ]
    monitors = {s.monitor for s in summaries}
    rows.append((f"best {next(iter(monitors))}" if len(monitors) == 1 else "best monitored value", [s.monitored for s in summaries]))
    rows.append(("training time", [s.train_seconds for s in summaries]))
    for role in ("validation", "test"):
        keys = list(dict.fromkeys(k for m in metrics for k, v in (m.get(role) or {}).items() if isinstance(v, int | float) and not isinstance(v, bool)))
        rows += [(f"{role} {key}", [(m.get(role) or {}).get(key) for m in metrics]) for key in keys]
    role = "test" if all("test" in m for m in metrics) else "validation"
    per_class = [(m.get(role) or {}).get("per_class") for m in metrics]
    table: list[tuple[str, list[float | None]]] = []
    if any(per_class):
        classes = list(dict.fromkeys(name for entry in per_class if entry for name in entry))
        table = [(name, [(entry or {}).get(name, {}).get("f1") for entry in per_class]) for name in classes]
    histories = [_committed(run, summary) for run, summary in zip(runs, summaries, strict=True)]
    return Comparison(summaries, [_label(run, runs) for run in runs], spec_differences(specs), rows, role if table else None, table, histories)


def _committed(run: RunDir, summary: RunSummary) -> list[dict[str, float]]:
    """The run's committed epochs; an ensemble's first member's."""
    if summary.members > 1:
        return _member_history(run, run.info(), 1)
    history = _read(run, "history.json") or []
    return list(history[: summary.epochs]) if isinstance(history, list) else []
