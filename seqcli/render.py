"""Rich renderables built from the core's results, and the training progress display.

Results go to stdout (``out``), messages and progress to stderr (``err``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from seqcli.predict import Prediction
    from seqcli.shapes import Trace
    from seqcli.train import TrainResult
    from seqcli.tune import TrialRow, TuneResult

out = Console(soft_wrap=False)
err = Console(stderr=True)


def error(message: str) -> None:
    """One paragraph, on stderr, no traceback."""
    err.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


def warning(message: str) -> None:
    err.print(Text("warning: ", style="bold yellow") + Text(message), soft_wrap=True)


def note(message: str) -> None:
    err.print(Text("note: ", style="bold cyan") + Text(message), soft_wrap=True)


def _fmt(value: float) -> str:
    return f"{value:.4f}"


def _counts(counts: dict[str, int] | None) -> str:
    """``a: 3, b: 5`` for a few classes; ``9 classes, 24-88 each`` for many."""
    if counts is None:
        return "-"
    if len(counts) <= 4:
        return ", ".join(f"{k}: {v}" for k, v in counts.items())
    low, high = min(counts.values()), max(counts.values())
    return f"{len(counts)} classes, {low} each" if low == high else f"{len(counts)} classes, {low}-{high} each"


def trace(result: Trace) -> Group:
    """The inspect-shapes report: arrays, transformations, layers, warnings."""
    arrays = Table(title="Loaded data", title_justify="left")
    arrays.add_column("", no_wrap=True)
    for a in result.arrays:
        arrays.add_column(a.role)
    rows = {
        "file": [Path(a.source).name for a in result.arrays],
        "raw shape": [a.raw_shape for a in result.arrays],
        "dtype": [a.dtype for a in result.arrays],
        "sequences": [str(a.sequences) for a in result.arrays],
        "features": [str(a.features) for a in result.arrays],
        "length min/median/p95/max": [f"{a.length_min} / {a.length_median:g} / {a.length_p95:g} / {a.length_max}" for a in result.arrays],
        "classes": [_counts(a.class_counts) for a in result.arrays],
        "targets": [a.targets or "-" for a in result.arrays],
        "fingerprint": [a.fingerprint[:19] + "..." if a.fingerprint else "-" for a in result.arrays],
    }
    regression = any(a.targets for a in result.arrays)
    for name, values in rows.items():
        if name == ("classes" if regression else "targets"):
            continue  # regression data has targets, classification data classes
        arrays.add_row(name, *values)
    steps = Table(title="Transformations", title_justify="left")
    for column in ("step", "shape after", "detail"):
        steps.add_column(column)
    for step in result.steps:
        steps.add_row(step.name, step.shape, step.detail)
    parts: list[Any] = [arrays, steps]
    if result.layers:
        layers = Table(title=f"Model (input {result.input_shape})", title_justify="left")
        for column in ("layer", "type", "output shape", "params", "mask"):
            layers.add_column(column, justify="right" if column == "params" else "left")
        for row in result.layers:
            layers.add_row(row.name, row.kind, row.output_shape, f"{row.params:,}", "yes" if row.mask else "-")
        layers.add_row("", "", "total", f"{sum(r.params for r in result.layers):,}", "")
        parts.append(layers)
    if result.suggested_spec:  # plain text, no box: it copies into a file as it is (`--yaml` prints it alone)
        parts.append(Text(f"Suggested spec (model input {result.input_shape}); its data path is relative to this folder, so save it here:", style="bold"))
        parts.append(Text(result.suggested_spec.rstrip()))
    for text in result.notes:
        parts.append(Text("note: ", style="bold cyan") + Text(text))
    for text in result.warnings:
        parts.append(Text("warning: ", style="bold yellow") + Text(text))
    if not result.warnings:
        parts.append(Text("No warnings.", style="green"))
    return Group(*parts)


def metrics_table(metrics: dict[str, Any]) -> Table:
    """The task's headline metrics (:attr:`seqcli.tasks.base.Task.headline`) of validation and test."""
    from seqcli.tasks import get as get_task

    headline = get_task(metrics.get("task", "classify")).headline  # runs before seqcli 0.2 were all classify or tag, which share the headline
    table = Table(title=f"Metrics (best checkpoint, epoch {metrics.get('best_epoch', '?')})", title_justify="left")
    table.add_column("split")
    for title, _ in headline:
        table.add_column(title, justify="right")
    for role in ("validation", "test"):
        if role in metrics:
            table.add_row(role, *(_cell(metrics[role].get(key)) for _, key in headline))
    reference = metrics.get("baseline")
    if reference:
        for role in ("validation", "test"):
            if role in reference:
                table.add_row(f"{role}: {reference['name']}", *(_cell(reference[role].get(key)) for _, key in headline), style="dim")
        table.caption_justify = "left"
        table.caption = f"{reference['name']}: fitted in {reference['fit_seconds']:.1f} s on the same training split (seqcli train --baseline)"
    return table


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return _fmt(value)
    return "-" if value is None else str(value)


def train_result(result: TrainResult) -> Group:
    if result.members:
        return ensemble_result(result)
    epochs = len(result.history)
    how = "stopped early" if result.stopped_early else "all epochs"
    head = Text(f"Run: {result.run.path}\n", style="bold") + Text(f"{epochs} epochs ({how}) in {result.seconds:.1f} s; best epoch {result.best_epoch}.")
    if result.class_weights:
        head += Text("\nClass weights in the training loss: " + ", ".join(f"{name} {w:.3g}" for name, w in result.class_weights.items()) + ".")
    if not any(role in result.metrics for role in ("validation", "test")):
        return Group(head, Text("No validation or test split, so nothing was evaluated on held-out data: set `data.validation_split` (e.g. 0.2) or `data.test`."))
    return Group(head, metrics_table(result.metrics))


def ensemble_result(result: TrainResult) -> Group:
    """An ensemble's training: each member's epochs and metrics, the ensemble's (the mean of the members' outputs), and
    the members' spread of every headline metric."""
    from seqcli.tasks import get as get_task

    members, metrics = result.members, result.metrics
    seeds = f"{members[0].seed}-{members[-1].seed}"
    head = Text(f"Run: {result.run.path}\n", style="bold") + Text(f"Ensemble of {len(members)} members (seeds {seeds}) trained in {result.seconds:.1f} s.")
    if result.class_weights:
        head += Text("\nClass weights in the training loss: " + ", ".join(f"{name} {w:.3g}" for name, w in result.class_weights.items()) + ".")
    roles = [role for role in ("validation", "test") if role in metrics]
    if not roles:
        return Group(head, Text("No validation or test split, so nothing was evaluated on held-out data: set `data.validation_split` (e.g. 0.2) or `data.test`."))
    headline = [(title, key) for title, key in get_task(metrics.get("task", "classify")).headline if key != "samples"]
    table = Table(title="Metrics (each member's best checkpoint; the ensemble averages their outputs)", title_justify="left")
    for column in ("model", "seed", "epochs", "best epoch", "split"):
        table.add_column(column, justify="right" if column in ("seed", "epochs", "best epoch") else "left")
    for title, _ in headline:
        table.add_column(title, justify="right")
    for member, scores in zip(members, metrics["members"], strict=True):
        epochs = f"{len(member.history)}" + (" (stopped early)" if member.stopped_early else "")
        for i, role in enumerate(roles):
            lead = [f"member {member.member}", str(member.seed), epochs, str(member.best_epoch)] if i == 0 else ["", "", "", ""]
            table.add_row(*lead, role, *(_cell(scores[role].get(key)) for _, key in headline), end_section=i == len(roles) - 1)
    for i, role in enumerate(roles):
        table.add_row("ensemble" if i == 0 else "", "", "", "", role, *(_cell(metrics[role].get(key)) for _, key in headline), style="bold", end_section=i == len(roles) - 1)
    reference = metrics.get("baseline")
    if reference:  # `train --baseline`
        for i, role in enumerate(r for r in roles if r in reference):
            table.add_row(reference["name"] if i == 0 else "", "", "", "", role, *(_cell(reference[role].get(key)) for _, key in headline), style="dim")
        table.caption_justify = "left"
        table.caption = f"{reference['name']}: fitted in {reference['fit_seconds']:.1f} s on the same training split (seqcli train --baseline)"
    lines = Text("Spread over the members (the seed alone moves these):", style="bold")
    for role in roles:
        for title, key in headline:
            found = metrics.get("spread", {}).get(role, {}).get(key)
            if found is not None and metrics[role].get(key) is not None:
                lines += Text(f"\n  {role} {title} {_fmt(metrics[role][key])} (members {_fmt(found['min'])}-{_fmt(found['max'])}, median {_fmt(found['median'])}, std {_fmt(found['std'])})")
    return Group(head, table, lines)


def prediction(result: Prediction, limit: int = 50) -> Group:
    """The first ``limit`` predictions as a table (per-timestep tasks: one line per sequence), and the scores."""
    if result.timesteps is not None:
        return timestep_prediction(result, limit)
    table = Table(title="Predictions", title_justify="left")
    keys = list(result.rows[0]) if result.rows else []
    table.add_column("id")
    for key in keys:
        table.add_column(_heading(key), justify="right" if isinstance(result.rows[0][key], float) else "left")
    for i in range(min(limit, len(result.ids))):
        table.add_row(result.ids[i], *(_value(key, result.rows[i][key]) for key in keys))
    parts: list[Any] = [table]
    if len(result.ids) > limit:
        parts.append(Text(f"... {len(result.ids) - limit} more rows; use --output FILE (.csv or .json) for all of them."))
    if result.labelled:
        parts.append(Text(f"{_scores(result)} on {len(result.ids)} labelled sequences", style="bold"))
    return Group(*parts)


def _heading(key: str) -> str:
    """``p_walk`` -> ``p(walk)``; other columns as they are."""
    return f"p({key[2:]})" if key.startswith("p_") else key


def _value(key: str, value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if key.startswith("p_") else f"{value:.4g}"
    return str(value)


def _scores(result: Prediction) -> str:
    """``accuracy: 0.9730`` or ``RMSE 0.0412, MAE 0.0301``."""
    names = {"accuracy": "accuracy", "rmse": "RMSE", "mae": "MAE"}
    return ", ".join(f"{names.get(k, k)}: {v:.4f}" for k, v in result.scores.items() if v is not None)


def timestep_prediction(result: Prediction, limit: int = 50, targets_shown: int = 4) -> Group:
    """Per-timestep tasks: one line per sequence. Class labels run-length coded ("rest x12 walk x8"), with the true ones
    and the accuracy when known; values as the first few predicted per target (at most ``targets_shown`` targets), with
    the RMSE over the sequence's timesteps when the targets are known."""
    import numpy as np

    keys = list(result.rows[0]) if result.rows else []
    labels = "predicted" in keys and isinstance(result.rows[0]["predicted"], str)
    table = Table(title=f"Predictions (one {'label' if labels else 'value'} per timestep)", title_justify="left")
    table.add_column("id")
    table.add_column("timesteps", justify="right")
    predicted = [k for k in keys if k.startswith("predicted")]
    true = [k for k in keys if k == "label" or k.startswith("target")]
    shown = (predicted + true) if labels else predicted[:targets_shown]
    for key in shown:
        table.add_column(key)
    if true:
        table.add_column("accuracy" if labels else "RMSE", justify="right")
    starts = [i for i in range(len(result.ids)) if i == 0 or result.ids[i] != result.ids[i - 1]]
    for start, end in list(zip(starts, [*starts[1:], len(result.ids)], strict=True))[:limit]:
        rows = result.rows[start:end]
        cells = [result.ids[start], str(end - start)]
        cells += [_runs([r[k] for r in rows]) if labels else _first([r[k] for r in rows]) for k in shown]
        if true and labels:
            cells.append(f"{sum(r['predicted'] == r['label'] for r in rows) / len(rows):.3f}")
        elif true:
            errors = np.array([[r[p] - r[t] for p, t in zip(predicted, true, strict=True)] for r in rows])
            cells.append(f"{float(np.sqrt(np.mean(errors**2, axis=0)).mean()):.4g}")
        table.add_row(*cells)
    parts: list[Any] = [table]
    if len(predicted) > len(shown) and not labels:
        parts.append(Text(f"... {len(predicted) - len(shown)} more targets; use --output FILE (.csv or .json) for every value."))
    if len(starts) > limit:
        parts.append(Text(f"... {len(starts) - limit} more sequences; use --output FILE (.csv or .json) for every timestep."))
    if result.labelled:
        parts.append(Text(f"{_scores(result)} on {len(result.ids)} labelled timesteps of {len(starts)} sequences", style="bold"))
    return Group(*parts)


def _first(values: list[float], count: int = 3) -> str:
    """``0.12 0.4 0.33 ...``: the first few values of a sequence."""
    return " ".join(f"{v:.3g}" for v in values[:count]) + (" ..." if len(values) > count else "")


def _runs(labels: list[str]) -> str:
    """Run-length coded labels: ``["a", "a", "b"]`` -> ``"a x2 b"``."""
    runs: list[list[Any]] = []
    for label in labels:
        if runs and runs[-1][0] == label:
            runs[-1][1] += 1
        else:
            runs.append([label, 1])
    return " ".join(f"{label} x{count}" if count > 1 else label for label, count in runs)


def _logs(logs: dict[str, float]) -> str:
    """``loss 0.1234  accuracy 0.9000  val_loss ...``: loss first, validation last, then the learning rate of a schedule."""
    order = sorted(logs, key=lambda k: (k == "learning_rate", k.startswith("val_"), k.removeprefix("val_") != "loss", k))
    return "  ".join(f"{k} {logs[k]:.3g}" if k == "learning_rate" else f"{k} {logs[k]:.4f}" for k in order)


class RichProgress:
    """Epoch and batch progress with loss/metrics, on stderr (implements train.Progress)."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("[bold]{task.fields[member]}epoch {task.fields[epoch]}/{task.fields[epochs]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[logs]}"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        )
        self.task: Any = None
        self.epochs = 0
        self.epoch = 1
        self.member = ""  # an ensemble's "member 2/3  ", before each line and the bar

    def on_member_begin(self, member: int, members: int, seed: int) -> None:
        self.member = f"member {member}/{members}  "
        self.bar.console.print(f"[bold]member {member}/{members}[/bold] (seed {seed})", highlight=False, soft_wrap=True)

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        self.epochs = epochs
        if self.task is not None:  # an ensemble's earlier member
            self.bar.remove_task(self.task)
        self.bar.start()
        self.task = self.bar.add_task("train", total=steps or None, epoch=first_epoch, epochs=epochs, logs="", member=self.member)

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.bar.update(self.task, completed=step, logs=_logs(logs))

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        line = f"{self.member}epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  {_logs(logs)}" + ("  [green]* best[/green]" if best else "")
        self.bar.console.print(line, highlight=False, soft_wrap=True)
        self.bar.update(self.task, completed=0, epoch=min(epoch + 1, self.epochs), logs="")

    def on_train_end(self) -> None:
        self.bar.stop()

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()  # also when training raised


def _param(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else _cell(value)


def _run_cell(run: str | None) -> str:
    if run is None:
        return "-"
    try:
        return str(Path(run).relative_to(Path.cwd()))
    except ValueError:
        return run


def _short(name: str, names: list[str]) -> str:
    """The shortest tail of a dotted path that no other searched path shares: ``units`` for ``model.layers[0].units``."""
    parts = name.replace("[", ".[").split(".")
    for k in range(1, len(parts) + 1):
        tail = ".".join(parts[-k:]).replace(".[", "[")
        if sum(other == tail or other.endswith("." + tail) or other.endswith("]." + tail) for other in names) == 1:
            return tail
    return name


def tune_result(result: TuneResult) -> Group:
    """The trials (number, state, values, monitored value, epochs, run), the best trial and its spec, the importances."""
    table = Table(title=f"Study {result.study!r}: {result.finished} of {result.trials_target} trials finished ({result.storage})", title_justify="left")
    names = [p.name for p in result.params]
    table.add_column("trial", justify="right")
    table.add_column("state")
    for name in names:
        table.add_column(_short(name, names), justify="right")
    table.add_column(result.monitor, justify="right")
    table.add_column("epochs", justify="right")
    table.add_column("run")
    for row in result.trials:
        mark = (" spec" if row.baseline else "") + (" *" if result.best is not None and row.number == result.best.number else "")
        state = row.state + (f" (retry of {row.retry_of})" if row.retry_of is not None else "")
        table.add_row(
            f"{row.number}{mark}", state, *(_param(row.params.get(n)) for n in names), _cell(row.value), _cell(row.epochs), _run_cell(row.run)
        )
    parts: list[Any] = [table]
    if result.best is not None and result.best_spec is not None:
        values = ", ".join(f"{k}={_param(v)}" for k, v in result.best.params.items())
        parts.append(
            Text(f"Best: trial {result.best.number}, {result.monitor} {_cell(result.best.value)} ({result.direction}d), {values}.\n", style="bold")
            + Text(f"Its spec: {_run_cell(str(result.best_spec))} (train it with `seqcli train {_run_cell(str(result.best_spec))}`).")
        )
    else:
        parts.append(Text("No trial completed, so there is no best trial yet.", style="yellow"))
    if result.importances:
        importances = Table(title="Parameter importances", title_justify="left")
        importances.add_column("parameter")
        importances.add_column("importance", justify="right")
        for name, value in result.importances.items():
            importances.add_row(name, f"{value:.3f}")
        parts.append(importances)
    if result.importance_note:
        parts.append(Text(result.importance_note))
    if any(row.baseline for row in result.trials):
        parts.append(Text("spec: the spec's own values (trial 0 of a new study); *: the best trial."))
    surplus = sum(row.state == "surplus" for row in result.trials)
    if surplus:
        parts.append(Text(f"{surplus} trial(s) marked surplus were claimed by two workers at once and given up before training."))
    return Group(*parts)


class TuneLines:
    """One line on stderr per trial started and ended (implements tune.TuneProgress)."""

    def on_study(self, study: str, storage: str, finished: int, trials: int) -> None:
        state = f"{finished} of {trials} trials finished" if finished else "new"
        note(f"study {study!r} in {storage}: {state}")

    def on_trial_begin(self, number: int, params: dict[str, Any], run: Path) -> None:
        values = ", ".join(f"{k}={_param(v)}" for k, v in params.items())
        note(f"trial {number}: {values} -> {_run_cell(str(run))}")

    def on_trial_end(self, row: TrialRow) -> None:
        if row.state == "fail":
            warning(f"trial {row.number} failed: {row.error or 'see its run directory'}")
            return
        note(f"trial {row.number} {row.state}: best {_cell(row.value)} in {row.epochs} epoch(s)")
def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


SCORE_TITLES = {"accuracy": "accuracy", "macro_f1": "macro F1", "rmse": "RMSE", "r2": "R²"}
SHORT_TITLES = {"accuracy": "acc", "macro_f1": "F1", "rmse": "RMSE", "r2": "R²"}


def runs_table(found: list[Any], directory: Path) -> Any:
    """``seqcli runs``: one row per run (newest first), the damaged ones' problems below the table."""
    from rich import box

    if not found:
        return Text(f"No runs under {directory}.")
    table = Table(title=f"Runs under {directory}, newest first", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), collapse_padding=True)
    kinds = {tuple(s.scores) for s in found if s.scores}
    scores = list(next(iter(kinds))) if len(kinds) == 1 else []  # one task kind: a column per score; several: one "test scores" column
    monitors = {s.monitor for s in found if s.monitor}
    monitor = next(iter(monitors)) if len(monitors) == 1 else "monitored"
    titles = [SCORE_TITLES.get(k, k) for k in scores] if len(kinds) <= 1 else ["test scores"]
    ensembles = any(s.members > 1 for s in found)  # a column of member counts only then
    for column in ("experiment/run", "status", *(["members"] if ensembles else []), "created", "backend", "epochs", "best", monitor, *titles, "time"):
        table.add_column(column, justify="left" if column in ("experiment/run", "status", "created", "backend") else "right", no_wrap=True)
    styles = {"completed": "green", "crashed": "red", "failed": "red", "damaged": "red", "interrupted": "yellow", "running": "cyan"}
    for s in found:
        epochs = "-" if s.epochs is None else f"{s.epochs}/{s.planned_epochs}" if s.planned_epochs and s.planned_epochs != s.epochs else str(s.epochs)
        monitored = "-" if s.monitored is None else f"{s.monitored:.4f}" if monitor != "monitored" else f"{s.monitor} {s.monitored:.4f}"
        created = _created(s.created)
        val = " (val)" if s.split == "validation" else ""
        if len(kinds) <= 1:
            cells = [_number(s.scores.get(k)) + (val if s.scores.get(k) is not None else "") for k in scores]
        else:
            cells = [" ".join(f"{SHORT_TITLES.get(k, k)} {_number(v, 3)}" for k, v in s.scores.items() if v is not None) + val if s.scores else "-"]
        members = [str(s.members) if s.members == 1 or s.status == "completed" else f"{s.member} of {s.members}"] if ensembles else []
        status = Text(s.status, style=styles.get(s.status, ""))
        table.add_row(f"{s.name}/{s.run_id}", status, *members, created, s.backend or "-", epochs, _number(s.best_epoch), monitored, *cells, _seconds(s.train_seconds))
    parts: list[Any] = [table]
    for s in found:
        if s.problem:
            parts.append(Text(f"{s.name}/{s.run_id}: ", style="bold red") + Text(s.problem))
    return Group(*parts)


def _created(created: str | None) -> str:
    """``Dec 02 02:54`` (UTC) from run.json's ISO time; the run id holds the year."""
    from datetime import datetime

    if not created:
        return "-"
    try:
        return datetime.fromisoformat(created).strftime("%b %d %H:%M")
    except ValueError:
        return created


def comparison(result: Any) -> Group:
    """``seqcli compare``: the spec fields that differ, the metrics side by side, the per-class F1."""
    spec = Table(title="Spec fields that differ", title_justify="left")
    spec.add_column("field")
    for label in result.labels:
        spec.add_column(label, overflow="fold")
    for path, values in result.spec_differences:
        spec.add_row(path, *(_spec_value(v) for v in values))
    parts: list[Any] = [spec if result.spec_differences else Text("The resolved specs are the same.", style="bold")]
    metrics = Table(title="Metrics (best checkpoint)", title_justify="left")
    metrics.add_column("metric")
    for label in result.labels:
        metrics.add_column(label, justify="right")
    for title, values in result.metrics:
        metrics.add_row(title, *(_seconds(v) if title == "training time" else _number(v) for v in values))
    parts.append(metrics)
    if result.per_class_f1:
        f1 = Table(title=f"Per-class F1 ({result.per_class_split})", title_justify="left")
        f1.add_column("class")
        for label in result.labels:
            f1.add_column(label, justify="right")
        for name, values in result.per_class_f1:
            f1.add_row(name, *(_number(v) for v in values))
        parts.append(f1)
    return Group(*parts)


def _spec_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)
