"""The run's plots as PNG bytes: learning curves, confusion matrices, predicted against true values, several runs' curves.

matplotlib is imported only here, inside the functions, with its non-interactive Agg canvas (no pyplot, no display, no
global state), so no other command pays for it. The drawing functions return PNG bytes; :func:`plot_run` reads a run's
files and writes its plots through :class:`~seqcli.rundir.RunDir` (the one writer).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqcli.errors import RunError
from seqcli.rundir import ensemble_size, member_file, member_progress, run_status

if TYPE_CHECKING:
    import numpy as np

    from seqcli.rundir import RunDir

NOT_CURVES = ("epoch", "seconds", "learning_rate")  # history columns that are not a training/validation metric pair
DPI = 100
LINE_STYLES = ("-", "--", "-.", ":")
MARKERS = ("o", "s", "^", "D", "v", "P")
MATRIX_ANNOTATED = 20  # classes up to which each cell of a confusion matrix shows its number


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def curve_names(history: list[dict[str, float]]) -> list[str]:
    """The metrics the history holds, loss first: ``["loss", "accuracy"]`` for columns loss, accuracy, val_loss, val_accuracy.

    >>> curve_names([{"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1, "val_accuracy": 0.4, "seconds": 0.1}])
    ['loss', 'accuracy']
    """
    keys = list(dict.fromkeys(k for row in history for k in row))
    names = list(dict.fromkeys(k.removeprefix("val_") for k in keys if k not in NOT_CURVES))
    return sorted(names, key=lambda k: k != "loss")


def history_png(history: list[dict[str, float]], *, monitor: str, best_epoch: int | None, title: str) -> bytes:
    """Loss and each metric per epoch, training (solid) against validation (dashed), the best epoch marked; the learning
    rate too when it changed."""
    names = curve_names(history)
    rates = [row["learning_rate"] for row in history if "learning_rate" in row]
    panels = names + (["learning_rate"] if len(set(rates)) > 1 else [])
    columns = min(len(panels), 3) or 1
    rows = math.ceil(len(panels) / columns) or 1
    figure = _figure(4.2 * columns, 3.2 * rows)
    figure.suptitle(title, fontsize=10)
    epochs = [int(row["epoch"]) for row in history]
    for i, name in enumerate(panels):
        axes = figure.add_subplot(rows, columns, i + 1)
        if name == "learning_rate":
            axes.plot([int(r["epoch"]) for r in history if "learning_rate" in r], rates, marker=".", color="tab:purple")
            axes.set_yscale("log")
        for key, label, style in ((name, "training", "-"), (f"val_{name}", "validation", "--")):
            points = [(int(r["epoch"]), r[key]) for r in history if key in r and name != "learning_rate"]
            if points:
                axes.plot(*zip(*points, strict=True), style, marker="." if len(points) < 40 else None, label=label)
        monitored = monitor.removeprefix("val_")
        if best_epoch and name == monitored and best_epoch <= len(history) and monitor in history[best_epoch - 1]:
            axes.plot([best_epoch], [history[best_epoch - 1][monitor]], "*", color="tab:green", markersize=13, zorder=5)  # the value that chose it
        if best_epoch:
            axes.axvline(best_epoch, color="tab:green", linestyle=":", linewidth=1.2, label=f"best epoch {best_epoch} ({monitor})")
        axes.set_title(name.replace("_", " "), fontsize=10)
        axes.set_xlabel("epoch")
        if epochs:
            axes.set_xlim(min(epochs) - 0.2 if len(epochs) > 1 else min(epochs) - 1, max(epochs) + (0.2 if len(epochs) > 1 else 1))
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        if i == 0:
            axes.legend(fontsize=8)
    return _png(figure)


def confusion_png(matrix: list[list[int]], classes: list[str], *, title: str) -> bytes:
    """The confusion matrix (rows true, columns predicted) twice: counts, and each row normalized to 1 (the recall)."""
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    counts = np.asarray(matrix, dtype=np.float64)
    totals = counts.sum(axis=1, keepdims=True)
    normalized = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    n = len(classes)
    side = min(max(3.2, 0.45 * n + 1.8), 14.0)
    figure = _figure(2 * side + 0.8, side + 0.4)
    figure.suptitle(title, fontsize=10)
    for i, (values, name, fmt) in enumerate(((counts, "counts", "{:.0f}"), (normalized, "normalized by true class (rows sum to 1)", "{:.2f}"))):
        axes = figure.add_subplot(1, 2, i + 1)
        image = axes.imshow(values, cmap="Blues", vmin=0, vmax=max(float(values.max()), 1e-9) if i == 0 else 1.0)
        bar = figure.colorbar(image, ax=axes, shrink=0.8)
        if i == 0:
            bar.locator = MaxNLocator(integer=True)  # counts: whole numbers on the scale
            bar.update_ticks()
        axes.set_title(name, fontsize=10)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_xticks(range(n), classes, rotation=45 if n > 3 else 0, ha="right" if n > 3 else "center", fontsize=8)
        axes.set_yticks(range(n), classes, fontsize=8)
        if n <= MATRIX_ANNOTATED:
            high = values.max() or 1.0
            for r in range(n):
                for c in range(n):
                    axes.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=8, color="white" if values[r, c] > 0.6 * high else "black")
    return _png(figure)


def predictions_png(true: np.ndarray, predicted: np.ndarray, names: list[str], *, title: str, shown: int = 4) -> bytes:
    """Predicted against true values, one panel per target (the first ``shown``), with the diagonal of perfect predictions."""
    import numpy as np

    count = min(len(names), shown) or 1
    figure = _figure(max(4.4 * count, 5.6), 4.8)
    figure.suptitle(title + (f" (the first {count} of {len(names)} targets)" if len(names) > count else ""), fontsize=10)
    for j in range(count):
        axes = figure.add_subplot(1, count, j + 1)
        x, y = np.asarray(true)[:, j], np.asarray(predicted)[:, j]
        axes.scatter(x, y, s=24 if len(x) < 500 else 8 if len(x) < 5000 else 2, alpha=0.7 if len(x) < 5000 else 0.3, edgecolors="none")
        low, high = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        pad = (high - low) * 0.05 or 1.0
        axes.plot([low - pad, high + pad], [low - pad, high + pad], color="tab:red", linewidth=1, label="predicted = true")
        axes.set_xlim(low - pad, high + pad)
        axes.set_ylim(low - pad, high + pad)
        axes.set_aspect("equal")
        rmse = float(np.sqrt(np.mean((y - x) ** 2)))
        name = names[j] if j < len(names) else "target"
        axes.set_title(f"{'target ' + name if name.isdigit() else name} (RMSE {rmse:.4g}, {len(x)} rows)", fontsize=10)
        axes.set_xlabel("true")
        axes.set_ylabel("predicted")
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8, loc="upper left")
    return _png(figure)


def curves_png(runs: list[tuple[str, list[dict[str, float]]]], *, title: str, best: list[tuple[str | None, int | None]] | None = None) -> bytes:
    """The validation curves of several runs overlaid, one panel per metric (training curves where a run has no validation);
    ``best``: each run's monitor and best epoch, starred on its curve in the monitor's panel."""
    names = list(dict.fromkeys(name for _, history in runs for name in curve_names(history)))
    columns = min(len(names), 3) or 1
    rows = math.ceil(len(names) / columns) or 1
    figure = _figure(4.6 * columns, 3.4 * rows)
    figure.suptitle(title, fontsize=10)
    for i, name in enumerate(names):
        axes = figure.add_subplot(rows, columns, i + 1)
        for j, (label, history) in enumerate(runs):
            key = f"val_{name}" if any(f"val_{name}" in r for r in history) else name
            points = [(int(r["epoch"]), r[key]) for r in history if key in r]
            if points:  # a marker and a dash pattern per run, so that curves lying on each other stay visible
                (line,) = axes.plot(
                    *zip(*points, strict=True),
                    linestyle=LINE_STYLES[j % len(LINE_STYLES)],
                    marker=MARKERS[j % len(MARKERS)] if len(points) < 40 else None,
                    markersize=7 - 1.5 * (j % 3),
                    label=label if key.startswith("val_") else f"{label} (training)",
                )
                monitor, epoch = best[j] if best else (None, None)
                if monitor == key and epoch and epoch <= len(history) and key in history[epoch - 1]:
                    axes.plot([epoch], [history[epoch - 1][key]], "*", color=line.get_color(), markersize=15, markeredgecolor="black", zorder=5)
        axes.set_title(f"validation {name.replace('_', ' ')}", fontsize=10)
        axes.set_xlabel("epoch")
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.grid(alpha=0.3)
        if i == 0:
            axes.legend(fontsize=8, title="* best epoch" if best else None, title_fontsize=8)
    return _png(figure)


# ----------------------------------------------------------------- a run's plots


def committed_history(run: RunDir, *, member: int = 1) -> list[dict[str, float]]:
    """history.json's committed epochs (run.json's ``epochs_completed``: a crashed run's history may hold one more), of
    ensemble member ``member``."""
    info = run.info()
    name = member_file("history.json", member)
    history = run.read_json(name) if (run.path / name).exists() else []
    if not isinstance(history, list) or not all(isinstance(row, dict) and "epoch" in row for row in history):
        raise RunError(f"{run.path / name} is corrupt (not a list of epochs). Train again.")
    epochs = member_progress(info, member)["epochs_completed"] if "epochs_completed" in info or ensemble_size(info) > 1 else len(history)
    return history[:epochs]


def plot_run(run: RunDir, *, status: str | None = None) -> list[Path]:
    """Write the run's plots from its files: history.png from its committed epochs; with metrics.json (a completed run)
    confusion_matrix.png (classification, the test split, else validation) or predictions.png (regression, test_values.npz).
    Returns the files written; a run with no committed epoch is an error. ``status``: the run's, when the caller knows
    better than run.json (training draws the plots just before it marks the run completed)."""
    info = run.info()
    history = committed_history(run)
    if not history:
        raise RunError(f"Run {run.path} has no committed epoch yet, so there is nothing to plot. Plot it once an epoch has completed.")
    title = f"{info.get('name') or run.path.parent.name} / {run.path.name}"
    metrics = run.read_json("metrics.json") if (run.path / "metrics.json").exists() else {}
    spec = run.read_yaml("spec.yaml")
    monitor = str(metrics.get("monitor") or spec.get("training", {}).get("monitor", "val_loss"))
    best = metrics.get("best_epoch") or info.get("best_epoch")
    status = status or run_status(info)
    planned = spec.get("training", {}).get("epochs")
    size = ensemble_size(info)
    if size > 1:  # every member's validation curves, overlaid
        histories = [(m, committed_history(run, member=m)) for m in range(1, size + 1)]
        drawn = [(f"member {m} (seed {info['members'][m - 1].get('seed')})", h) for m, h in histories if h]
        how = f"ensemble of {size} members" + ("" if status == "completed" else f", {status}: {len(drawn)} with committed epochs")
        stars: list[tuple[str | None, int | None]] = [(monitor, member_progress(info, m)["best_epoch"]) for m, h in histories if h]
        written = [run.write_bytes("history.png", curves_png(drawn, title=f"{title}: {how}", best=stars))]
        best = f"of each of the {size} members, outputs averaged"
    else:
        how = f"{len(history)} epochs" if status == "completed" else f"{status}, {len(history)} of {planned} epochs committed"
        written = [run.write_bytes("history.png", history_png(history, monitor=monitor, best_epoch=best, title=f"{title}: {how}"))]
    role = "test" if "test" in metrics else "validation"
    report = metrics.get(role, {})
    if isinstance(report, dict) and "confusion_matrix" in report:
        matrix = report["confusion_matrix"]
        per = "timesteps" if "sequences" in report else "sequences"
        written.append(run.write_bytes("confusion_matrix.png", confusion_png(matrix["rows_true_columns_predicted"], list(matrix["classes"]), title=f"{title}: {role} {per}, best epoch {best}")))
    elif metrics and (run.path / "test_values.npz").exists():
        values = run.read_arrays("test_values.npz")
        names = [str(n) for n in values["names"]]
        written.append(run.write_bytes("predictions.png", predictions_png(values["true"], values["predicted"], names, title=f"{title}: test split, best epoch {best}")))
    return written
