"""`seqcli runs`, `seqcli compare` and `seqcli plot`: listing runs (crashed and damaged ones too), comparing them, the plots.

The console tables are checked against golden files (tests/golden/runs.txt, compare.txt) on runs written here with fixed
contents; the runs that trained (``smoke_run``, ``interrupted_smoke``) check the real files and the PNGs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from seqcli.cli import app
from seqcli.plots import committed_history
from seqcli.rundir import RunDir
from tests.conftest import ROOT, Interrupted, assert_png, copy_run

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("SEQCLI_UPDATE_GOLDEN") == "1"  # rewrite the golden files instead of comparing
DEAD_PID = 2**22 + 12_345  # above Linux's default pid_max (2**22): never a live process


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "120"})


def fake_run(
    root: Path, name: str, run_id: str, *, status: str = "completed", created: str = "2026-01-02T10:00:00+00:00", units: int = 8, task: str = "classify",
    scores: dict[str, Any] | None = None, epochs: int = 3, best: int = 2, pid: int | None = None,
) -> Path:
    """A run directory with fixed contents (no training), as `seqcli train` writes it."""
    path = root / name / run_id
    (path / "checkpoints").mkdir(parents=True)
    info: dict[str, Any] = {"status": status, "created": created, "name": name, "seed": 0, "versions": {"backend": "jax"}, "epochs_completed": epochs, "best_epoch": best}
    if pid is not None:
        info.update(pid=pid, host=os.uname().nodename)
    if status == "completed":
        info["train_seconds"] = 12.5
    (path / "run.json").write_text(json.dumps(info))
    training = {"epochs": epochs, "monitor": "val_loss", "learning_rate": 0.02}
    spec = {"task": task, "model": {"layers": [{"units": units}, {"units": 8}]}, "training": training, "output": {"dir": str(root), "name": name}}
    (path / "spec.yaml").write_text(yaml.safe_dump(spec))
    (path / "preprocessing.json").write_text("{}")
    history = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e + (0.3 if e > best else 0), "learning_rate": 0.02, "seconds": 2.0} for e in range(1, epochs + 1)]
    (path / "history.json").write_text(json.dumps(history))
    if status == "completed":
        report = scores or {"loss": 0.5, "accuracy": 0.75, "macro_f1": 0.7, "samples": 12, "per_class": {"fall": {"f1": 1.0}, "rise": {"f1": 0.4}}}
        (path / "metrics.json").write_text(json.dumps({"task": task, "best_epoch": best, "monitor": "val_loss", "validation": report, "test": report}))
    return path


def three_runs(root: Path) -> list[Path]:
    return [
        fake_run(root, "smoke", "20260102-100000-aaaaaa"),
        fake_run(root, "smoke", "20260103-090000-bbbbbb", created="2026-01-03T09:00:00+00:00", units=16,
                 scores={"loss": 0.4, "accuracy": 0.8125, "macro_f1": 0.8, "samples": 12, "per_class": {"fall": {"f1": 0.9}, "rise": {"f1": 0.7}, "flat": {"f1": 0.5}}}),
        fake_run(root, "rates", "20260104-080000-cccccc", created="2026-01-04T08:00:00+00:00", task="regress", scores={"loss": 0.2, "rmse": 0.31, "mae": 0.25, "r2": 0.64, "samples": 30}),
    ]


def check_golden(name: str, text: str) -> None:
    lines = "\n".join(line.rstrip() for line in text.splitlines()).strip() + "\n"
    if UPDATE:
        (GOLDEN / name).write_text(lines)
    assert lines == (GOLDEN / name).read_text()


# --------------------------------------------------------------------------- runs


def test_runs_lists_newest_first_with_crashed_and_damaged_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    three_runs(Path("runs"))
    fake_run(Path("runs"), "smoke", "20260105-070000-dddddd", status="running", created="2026-01-05T07:00:00+00:00", pid=DEAD_PID)  # kill -9: its process is gone
    (Path("runs") / "smoke" / "20260101-000000-eeeeee").mkdir()
    (Path("runs") / "smoke" / "20260101-000000-eeeeee" / "run.json").write_text("{not json")
    result = invoke("runs")
    assert result.exit_code == 0, result.output
    check_golden("runs.txt", result.stdout)
    listed = json.loads(invoke("runs", "--json").stdout)
    assert [r["run_id"][:8] for r in listed] == ["20260105", "20260104", "20260103", "20260102", "20260101"]  # newest first
    assert [r["status"] for r in listed] == ["crashed", "completed", "completed", "completed", "damaged"]
    assert listed[1]["scores"] == {"rmse": 0.31, "r2": 0.64} and listed[2]["scores"] == {"accuracy": 0.8125, "macro_f1": 0.8}
    assert listed[0]["train_seconds"] == 6.0  # a run that did not complete: the wall time of its committed epochs
    resumed = Path("runs") / "smoke" / "20260102-100000-aaaaaa" / "run.json"
    resumed.write_text(json.dumps({**json.loads(resumed.read_text()), "resumed": "2026-01-02T11:00:00+00:00", "train_seconds": 1.5}))
    assert json.loads(invoke("runs", "--json").stdout)[3]["train_seconds"] == 6.0  # resumed: every epoch's time, not the last session's
    assert listed[2]["monitored"] == pytest.approx(0.6) and listed[2]["best_epoch"] == 2
    assert "is corrupt" in listed[4]["problem"]


def test_runs_filters_by_name_and_status(tmp_path: Path) -> None:
    three_runs(tmp_path)
    by_name = json.loads(invoke("runs", str(tmp_path), "--name", "smo*", "--json").stdout)
    assert {r["name"] for r in by_name} == {"smoke"} and len(by_name) == 2
    assert json.loads(invoke("runs", str(tmp_path), "--status", "crashed", "--json").stdout) == []
    assert len(json.loads(invoke("runs", str(tmp_path / "smoke"), "--json").stdout)) == 2  # one experiment's folder
    bad = invoke("runs", str(tmp_path), "--status", "done")
    assert bad.exit_code == 1 and "--status 'done' is not a run status. Use one of: running, completed" in bad.output
    missing = invoke("runs", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "does not exist" in missing.output


def test_runs_reads_real_runs(smoke_run: Path, interrupted_smoke: Interrupted, tmp_path: Path) -> None:
    copy_run(smoke_run, tmp_path / "smoke")
    crashed = copy_run(interrupted_smoke.run, tmp_path / "smoke")
    info = json.loads((crashed / "run.json").read_text())
    (crashed / "run.json").write_text(json.dumps({**info, "status": "running", "pid": DEAD_PID}))
    listed = {r["run_id"]: r for r in json.loads(invoke("runs", str(tmp_path), "--json").stdout)}
    done, gone = listed[smoke_run.name], listed[crashed.name]
    assert done["status"] == "completed" and done["epochs"] == 2 and done["split"] == "test" and set(done["scores"]) == {"accuracy", "macro_f1"}
    assert gone["status"] == "crashed" and gone["epochs"] == 1 and gone["planned_epochs"] == 3 and gone["scores"] == {}


def test_runs_and_compare_import_no_keras_and_no_matplotlib(tmp_path: Path) -> None:
    a, b, _ = three_runs(tmp_path)
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom seqcli.cli import app\n"
        f"assert CliRunner().invoke(app, ['runs', {str(tmp_path)!r}]).exit_code == 0\n"
        f"assert CliRunner().invoke(app, ['compare', {str(a)!r}, {str(b)!r}]).exit_code == 0\n"
        "print(sorted(m for m in ('keras', 'tensorflow', 'jax', 'matplotlib') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


# --------------------------------------------------------------------------- compare


def test_compare_shows_spec_differences_metrics_and_per_class_f1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    a, b, _ = three_runs(Path("runs"))
    result = invoke("compare", str(a), str(b))
    assert result.exit_code == 0, result.output
    check_golden("compare.txt", result.stdout)
    data = json.loads(invoke("compare", str(a), str(b), "--json").stdout)
    assert data["spec_differences"] == {"model.layers[0].units": [8, 16]}
    assert data["metrics"]["test accuracy"] == [0.75, 0.8125]
    assert data["per_class_f1"]["classes"] == {"fall": [1.0, 0.9], "rise": [0.4, 0.7], "flat": [None, 0.5]}


def test_compare_refuses_fewer_than_two_runs(tmp_path: Path) -> None:
    (a,) = three_runs(tmp_path)[:1]
    one = invoke("compare", str(a))
    assert one.exit_code == 1 and "`seqcli compare` needs at least two runs (got 1:" in one.output and "Traceback" not in one.output
    none = invoke("compare")
    assert none.exit_code != 0
    absent = invoke("compare", str(a), str(tmp_path / "nothing"))
    assert absent.exit_code == 1 and "does not exist" in absent.output


def test_compare_plot_overlays_validation_curves(smoke_run: Path, interrupted_smoke: Interrupted, tmp_path: Path) -> None:
    out = tmp_path / "curves.png"
    result = invoke("compare", str(smoke_run), str(interrupted_smoke.run), "--plot", str(out))
    assert result.exit_code == 0, result.output
    assert "Spec fields that differ" in result.stdout and "training.epochs" in result.stdout and "Per-class F1 (validation)" in result.stdout
    assert_png(out)
    again = invoke("compare", str(smoke_run), str(interrupted_smoke.run), "--plot", str(out))
    assert again.exit_code == 1 and "already exists" in again.output and "--force" in again.output


def test_compare_plot_to_an_unwritable_place_writes_nothing(smoke_run: Path, tmp_path: Path) -> None:
    a, b = copy_run(smoke_run, tmp_path / "a"), copy_run(smoke_run, tmp_path / "b")
    before = sorted(p.name for p in a.iterdir())
    missing = invoke("compare", str(a), str(b), "--plot", str(tmp_path / "no" / "such" / "c.png"))
    assert missing.exit_code == 1 and "the directory" in missing.output and "does not exist" in missing.output
    blocked = invoke("compare", str(a), str(b), "--plot", str(a / "run.json" / "c.png"))  # a file where a directory should be: also as root
    assert blocked.exit_code == 1 and "run.json is a file, not a directory (Not a directory). Choose another --plot path." in blocked.output
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):
            pytest.skip("running as root: permissions do not stop writes")
        denied = invoke("compare", str(a), str(b), "--plot", str(locked / "c.png"))
        assert denied.exit_code == 1 and "Cannot write" in denied.output and "Permission denied" in denied.output and "Traceback" not in denied.output
        assert list(locked.iterdir()) == []
    finally:
        locked.chmod(0o700)
    assert sorted(p.name for p in a.iterdir()) == before


# --------------------------------------------------------------------------- plots


def test_a_completed_run_has_its_plots(smoke_run: Path) -> None:
    assert_png(smoke_run / "history.png", min_width=600)
    assert_png(smoke_run / "confusion_matrix.png", min_width=600)
    assert not (smoke_run / "predictions.png").exists()  # regression runs only
    history = json.loads((smoke_run / "history.json").read_text())
    assert all(row["seconds"] > 0 and row["learning_rate"] == 0.02 for row in history)
    assert (smoke_run / "history.csv").read_text().splitlines()[0].endswith(",learning_rate,seconds")


def test_plot_redraws_a_crashed_run_from_its_committed_epochs(interrupted_smoke: Interrupted, tmp_path: Path) -> None:
    run = copy_run(interrupted_smoke.run, tmp_path)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "running", "pid": DEAD_PID}))
    history = json.loads((run / "history.json").read_text())
    (run / "history.json").write_text(json.dumps([*history, {**history[0], "epoch": 2}]))  # an epoch written, but not committed in run.json
    assert [row["epoch"] for row in committed_history(RunDir(run))] == [1]
    result = invoke("plot", str(run))
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"wrote history.png to {run}"
    assert_png(run / "history.png")
    assert not (run / "confusion_matrix.png").exists()  # no metrics before the run completes


def test_plot_redraws_a_completed_run(smoke_run: Path, tmp_path: Path) -> None:
    run = copy_run(smoke_run, tmp_path)
    for name in ("history.png", "confusion_matrix.png"):
        (run / name).unlink()
    result = invoke("plot", str(run))
    assert result.exit_code == 0 and result.stdout.strip() == f"wrote history.png, confusion_matrix.png to {run}"
    assert (run / "history.png").read_bytes() == (smoke_run / "history.png").read_bytes()  # the same drawing as at the end of training


def test_plot_refuses_a_run_without_epochs_and_a_missing_one(tmp_path: Path) -> None:
    run = fake_run(tmp_path, "smoke", "20260102-100000-aaaaaa", status="interrupted", epochs=0, best=0)
    result = invoke("plot", str(run))
    assert result.exit_code == 1 and "has no committed epoch yet" in result.output
    shutil.rmtree(run)
    assert invoke("plot", str(run)).exit_code == 1


def test_tensorboard_without_its_package_is_refused_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from seqcli import train
    from seqcli.errors import SpecError
    from tests.conftest import smoke_spec

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tensorboard" else real(name, *a))
    with pytest.raises(SpecError, match=r"`output.tensorboard: true` needs the tensorboard package, which is not installed\. Install it \(`uv sync --extra tensorboard`"):
        train.prepare(smoke_spec(tmp_path, "output.tensorboard=true"))
    assert not (tmp_path / "smoke").exists()


def test_tensorboard_logs_on_request(tmp_path: Path) -> None:
    import importlib.util

    from seqcli import train
    from tests.conftest import smoke_spec

    if importlib.util.find_spec("tensorboard") is None:
        pytest.skip("the tensorboard extra is not installed (uv sync --extra tensorboard)")

    result = train.fit(train.prepare(smoke_spec(tmp_path, "training.epochs=1", "output.tensorboard=true", "model.layers=[{units: 4}]")))
    events = sorted(p.relative_to(result.run.path).parts[:2] for p in (result.run.path / "tensorboard").rglob("events.out.tfevents.*"))
    assert ("tensorboard", "train") in events and ("tensorboard", "validation") in events
    assert json.loads((result.run.path / "run.json").read_text())["status"] == "completed"
