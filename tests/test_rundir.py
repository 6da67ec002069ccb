"""The run directory: unique names, atomic writes, refusing incomplete or corrupt runs."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import pytest

from seqcli import rundir
from seqcli.errors import RunError
from seqcli.metrics import classification_report
from seqcli.rundir import RunDir


def test_runs_never_share_a_directory(tmp_path: Path) -> None:
    paths = {RunDir.create(tmp_path, "exp").path for _ in range(20)}  # same second, 20 distinct directories
    assert len(paths) == 20 and all((p / "checkpoints").is_dir() for p in paths)


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path: Path) -> None:
    target = tmp_path / "metrics.json"
    rundir.write_text(target, "old")

    def full_disk(tmp: Path) -> None:
        tmp.write_text("partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(RunError, match="Cannot write .*metrics.json: No space left on device. Check free disk space"):
        rundir.atomic_write(target, full_disk)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left behind


def test_history_csv_and_json(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "exp")
    run.write_history([{"epoch": 1, "loss": 0.5}, {"epoch": 2, "loss": 0.25, "val_loss": 0.3}])
    assert (run.path / "history.csv").read_text() == "epoch,loss,val_loss\n1,0.5,\n2,0.25,0.3\n"
    assert json.loads((run.path / "history.json").read_text())[1] == {"epoch": 2, "loss": 0.25, "val_loss": 0.3}


def test_status_updates_keep_other_fields(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "exp")
    run.set_status("running", seed=3)
    run.set_status("completed", best_epoch=2)
    info = run.info()
    assert (info["status"], info["seed"], info["best_epoch"]) == ("completed", 3, 2)


def test_open_refuses_incomplete_and_corrupt_runs(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path, "exp")
    with pytest.raises(RunError, match="not a complete seqcli run: run.json is missing"):
        RunDir.open(run.path)
    for name in ("spec.yaml", "preprocessing.json"):
        (run.path / name).write_text("{}")
    (run.path / "run.json").write_text('{"status": "compl')
    with pytest.raises(RunError, match="run.json is corrupt"):
        RunDir.open(run.path).info()


def test_write_output_never_overwrites_without_force(tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    rundir.write_output(out, "a", force=False)
    with pytest.raises(RunError, match="already exists.*--force"):
        rundir.write_output(out, "b", force=False)
    rundir.write_output(out, "b", force=True)
    assert out.read_text() == "b"
    with pytest.raises(RunError, match="does not exist. Create it first"):
        rundir.write_output(tmp_path / "no" / "p.csv", "a", force=False)


def test_classification_report_by_hand() -> None:
    import numpy as np

    # true:      a a b b c ; predicted: a b b b a
    report = classification_report(np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0]), ["a", "b", "c"])
    assert report["accuracy"] == pytest.approx(3 / 5)
    assert report["per_class"]["a"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert report["per_class"]["b"]["precision"] == pytest.approx(2 / 3) and report["per_class"]["b"]["recall"] == 1.0
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert report["confusion_matrix"]["rows_true_columns_predicted"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_epoch_writer_commits_in_the_background_and_reports_failures(tmp_path: Path) -> None:
    import numpy as np

    run = RunDir.create(tmp_path, "exp")
    run.mark_running()
    writer = rundir.EpochWriter(run)
    first = {"model.0": np.arange(6, dtype=np.float32).reshape(2, 3), "optimizer.0": np.array(1)}
    third = {"model.0": -first["model.0"], "optimizer.0": np.array(3)}
    history = [{"epoch": 1, "loss": 0.5}]
    writer.commit(first, 1, 1, first, history)
    history += [{"epoch": 2, "loss": 0.75}, {"epoch": 3, "loss": 0.25}]
    writer.commit(third, 3, 3, third, history)  # epoch 2 was never committed
    writer.wait()
    assert (run.info()["epochs_completed"], run.info()["best_epoch"]) == (3, 3)
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["epoch-0003.npz"]  # epoch 1 is neither last nor best now
    assert {k: v.tolist() for k, v in run.read_state(3).items()} == {k: v.tolist() for k, v in third.items()}
    assert json.loads((run.path / "history.json").read_text()) == history

    (run.path / "checkpoints").rename(run.path / "moved")  # the next checkpoint cannot be written
    writer.commit(third, 4, 3, third, history)
    with pytest.raises(RunError, match="Cannot write .*epoch-0004.npz"):
        writer.close()
    assert run.info()["epochs_completed"] == 3  # run.json still names the last epoch that was committed


def test_a_commit_writes_the_best_epoch_when_it_ended_between_commits(tmp_path: Path) -> None:
    import numpy as np

    run = RunDir.create(tmp_path, "exp")
    run.mark_running()
    best, last = {"model.0": np.zeros(2)}, {"model.0": np.ones(2)}
    run.commit_epoch(last, 4, 2, best, [{"epoch": e, "loss": 1.0} for e in range(1, 5)])
    assert sorted(p.name for p in (run.path / "checkpoints").iterdir()) == ["epoch-0002.npz", "epoch-0004.npz"]
    assert run.read_state(2)["model.0"].tolist() == [0, 0] and run.read_state(4)["model.0"].tolist() == [1, 1]


def test_run_status_tells_a_live_run_from_a_crashed_one(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    run = RunDir.create(tmp_path, "exp")
    run.mark_running(epochs_completed=3)
    info = run.info()
    assert (info["pid"], info["host"]) == (os.getpid(), rundir.socket.gethostname())
    if Path("/proc/self/stat").exists():
        assert info["process_start"] == rundir.process_identity()["process_start"]
    parent = rundir.process_identity(os.getppid())  # a live process that is not this one
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    dead = {"pid": int(gone.stdout), "host": info["host"]}
    assert rundir.run_status({**info, **parent}) == "running"
    assert rundir.run_status({**info, **dead}) == "crashed"
    assert rundir.run_status(info) == "crashed"  # this process is not training it
    assert rundir.run_status({**info, **parent, "host": "elsewhere"}) == "running"  # cannot tell: counted as running
    if "process_start" in parent:  # the pid now belongs to a process that started later: reused
        assert rundir.run_status({**info, **parent, "process_start": parent["process_start"] + "0"}) == "crashed"
    for status in ("completed", "failed", "interrupted"):
        assert rundir.run_status({**info, "status": status}) == status
    assert rundir.describe_status(run.path, {**info, **dead}) == f"Run {run.path} crashed after epoch 3 (its process {dead['pid']} is gone); resume it with `seqcli train --resume {run.path}`."
    assert "is still training (process" in rundir.describe_status(run.path, {**info, **parent})


def test_output_checks_refuse_before_anything_is_written(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file\n")
    with pytest.raises(RunError, match=r"blocker is a file \(Not a directory\)\. Set `output\.dir`"):
        rundir.check_output_dir(blocker, "exp")
    with pytest.raises(RunError, match=r"blocker is a file \(Not a directory\)\. Set `output\.dir`"):
        rundir.check_output_dir(blocker / "deeper" / "runs", "exp")
    rundir.check_output_dir(tmp_path / "new" / "runs", "exp")
    with pytest.raises(RunError, match=r"blocker is a file, not a directory"):
        rundir.check_output(blocker / "p.csv", force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker"]
