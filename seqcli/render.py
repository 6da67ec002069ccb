"""Rich renderables built from the core's results, and the training progress display.

Results go to stdout (``out``), messages and progress to stderr (``err``).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from seqcli.predict import Prediction
    from seqcli.shapes import Trace
    from seqcli.train import TrainResult

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
        "fingerprint": [a.fingerprint[:19] + "..." if a.fingerprint else "-" for a in result.arrays],
    }
    for name, values in rows.items():
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
    if result.suggested_spec:
        parts.append(Panel(result.suggested_spec.rstrip(), title=f"Suggested spec (model input {result.input_shape})", title_align="left"))
    for text in result.notes:
        parts.append(Text("note: ", style="bold cyan") + Text(text))
    for text in result.warnings:
        parts.append(Text("warning: ", style="bold yellow") + Text(text))
    if not result.warnings:
        parts.append(Text("No warnings.", style="green"))
    return Group(*parts)


def metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(title=f"Metrics (best checkpoint, epoch {metrics.get('best_epoch', '?')})", title_justify="left")
    for column in ("split", "loss", "accuracy", "macro F1", "samples"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for role in ("validation", "test"):
        if role in metrics:
            m = metrics[role]
            table.add_row(role, _fmt(m["loss"]), _fmt(m["accuracy"]), _fmt(m["macro_f1"]), str(m["samples"]))
    return table


def train_result(result: TrainResult) -> Group:
    epochs = len(result.history)
    how = "stopped early" if result.stopped_early else "all epochs"
    head = Text(f"Run: {result.run.path}\n", style="bold") + Text(f"{epochs} epochs ({how}) in {result.seconds:.1f} s; best epoch {result.best_epoch}.")
    if result.class_weights:
        head += Text("\nClass weights in the training loss: " + ", ".join(f"{name} {w:.3g}" for name, w in result.class_weights.items()) + ".")
    return Group(head, metrics_table(result.metrics))


def prediction(result: Prediction, limit: int = 50) -> Group:
    if result.timesteps is not None:
        return tag_prediction(result, limit)
    table = Table(title="Predictions", title_justify="left")
    table.add_column("id")
    table.add_column("predicted")
    if result.true is not None:
        table.add_column("label")
    for name in result.classes:
        table.add_column(f"p({name})", justify="right")
    predicted = result.predicted
    for i in range(min(limit, len(result.ids))):
        row = [result.ids[i], predicted[i]] + ([result.true[i]] if result.true is not None else [])
        table.add_row(*row, *(f"{p:.3f}" for p in result.probabilities[i]))
    parts: list[Any] = [table]
    if len(result.ids) > limit:
        parts.append(Text(f"... {len(result.ids) - limit} more rows; use --output FILE (.csv or .json) for all of them."))
    if result.accuracy is not None:
        parts.append(Text(f"accuracy: {result.accuracy:.4f} on {len(result.ids)} labelled sequences", style="bold"))
    return Group(*parts)


def tag_prediction(result: Prediction, limit: int = 50) -> Group:
    """Tagging: one line per sequence with its predicted labels run-length coded ("rest x12 walk x8"), and the true ones when known."""
    table = Table(title="Predictions (one label per timestep)", title_justify="left")
    table.add_column("id")
    table.add_column("timesteps", justify="right")
    table.add_column("predicted")
    if result.true is not None:
        table.add_column("label")
        table.add_column("accuracy", justify="right")
    predicted = result.predicted
    starts = [i for i in range(len(result.ids)) if i == 0 or result.ids[i] != result.ids[i - 1]]
    for start, end in list(zip(starts, [*starts[1:], len(result.ids)], strict=True))[:limit]:
        row = [result.ids[start], str(end - start), _runs(predicted[start:end])]
        if result.true is not None:
            true = result.true[start:end]
            row += [_runs(true), f"{sum(p == t for p, t in zip(predicted[start:end], true, strict=True)) / (end - start):.3f}"]
        table.add_row(*row)
    parts: list[Any] = [table]
    if len(starts) > limit:
        parts.append(Text(f"... {len(starts) - limit} more sequences; use --output FILE (.csv or .json) for every timestep with its probabilities."))
    if result.accuracy is not None:
        parts.append(Text(f"accuracy: {result.accuracy:.4f} on {len(result.ids)} labelled timesteps of {len(starts)} sequences", style="bold"))
    return Group(*parts)


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
            TextColumn("[bold]epoch {task.fields[epoch]}/{task.fields[epochs]}"),
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

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        self.epochs = epochs
        self.bar.start()
        self.task = self.bar.add_task("train", total=steps or None, epoch=first_epoch, epochs=epochs, logs="")

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.bar.update(self.task, completed=step, logs=_logs(logs))

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        line = f"epoch {epoch:>{len(str(self.epochs))}}/{self.epochs}  {_logs(logs)}" + ("  [green]* best[/green]" if best else "")
        self.bar.console.print(line, highlight=False, soft_wrap=True)
        self.bar.update(self.task, completed=0, epoch=min(epoch + 1, self.epochs), logs="")

    def on_train_end(self) -> None:
        self.bar.stop()

    def __enter__(self) -> RichProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.stop()  # also when training raised
