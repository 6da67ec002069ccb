"""Resume: an interrupted or killed run continues from its last committed epoch, exactly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from seqcli import train
from seqcli.cli import app
from seqcli.errors import DataError, RunError, SpecError
from seqcli.pipeline import Pipeline
from seqcli.rundir import RunDir, process_identity
from seqcli.spec import load_spec
from tests.conftest import ROOT, SMOKE_SPEC, Interrupted, StopAfter, copy_run, untimed

# Dropout on, so the test also covers the per-epoch reseeding of dropout masks; length buckets for the seeded batch plans.
# One LSTM layer: committing and restoring its state works as for two, with less to trace per training.
SETTINGS = ["training.epochs=4", "training.early_stopping=null", "model.layers=[{units: 8, dropout: 0.2}]", "preprocessing.bucketing=true", "preprocessing.bucket_boundaries=[6]"]

# The early-stopping and learning-rate state do not depend on the model: one LSTM and no test split.
ONE_LAYER = ["model.layers=[{units: 8}]", "data.test=null"]
EARLY_STOPPING = ["training.epochs=12", "training.early_stopping.patience=2", "training.learning_rate=0.05", *ONE_LAYER]
# min_delta 9 makes every epoch after the first one a "plateau": with patience 1 the rate halves after each of them.
PLATEAU = ["training.epochs=5", "training.early_stopping=null", "training.lr_schedule={patience: 1, min_delta: 9}", *ONE_LAYER]


def uninterrupted(out: Path, settings: list[str]) -> train.TrainResult:
    """The smoke spec with ``settings``, trained without a stop: what an interrupted and resumed run with the same settings must reproduce."""
    return train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={out}"])))


@pytest.fixture(scope="module")
def whole(tmp_path_factory: pytest.TempPathFactory) -> train.TrainResult:
    """SETTINGS, uninterrupted: shared by the tests that resume SETTINGS runs."""
    return uninterrupted(tmp_path_factory.mktemp("whole"), SETTINGS)


def only_run(out: Path) -> Path:
    (run,) = (out / "smoke").iterdir()
    return run


def test_interrupted_run_resumes_to_the_same_result(whole: train.TrainResult, tmp_path: Path) -> None:
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*SETTINGS, f"output.dir={out}"])), StopAfter(2))
    run = only_run(out)
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["epochs_completed"]) == ("interrupted", 2)

    prepared, state = train.prepare_resume(run)
    assert state.epochs_completed == 2 and [r["epoch"] for r in state.history] == [1, 2]
    resumed = train.fit(prepared, resume=state)

    assert resumed.run.path == run
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]  # every epoch exactly once
    assert untimed(resumed.history) == untimed(whole.history)  # bit-identical but for the wall times: same batches, dropout masks, optimizer state
    assert resumed.history[:2] == state.history and all(row["seconds"] > 0 for row in resumed.history)  # the replayed epochs' rows are the committed ones, wall times included
    assert resumed.metrics == whole.metrics and resumed.best_epoch == whole.best_epoch
    assert untimed(json.loads((run / "history.json").read_text())) == untimed(whole.history)
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


@pytest.mark.slow  # two more trainings
def test_a_completed_run_trained_further_matches_a_longer_run(whole: train.TrainResult, tmp_path: Path) -> None:
    """`seqcli train --resume RUN --set training.epochs=4` on a completed 2-epoch run gives the uninterrupted 4-epoch run exactly."""
    first = uninterrupted(tmp_path / "runs", [*SETTINGS, "training.epochs=2"])
    run = first.run.path
    assert json.loads((run / "run.json").read_text())["status"] == "completed" and len(first.history) == 2
    prepared, state = train.prepare_resume(run, None, ["training.epochs=4"])
    assert (state.status, state.epochs_completed, state.extended_from) == ("completed", 2, 2)
    extended = train.fit(prepared, resume=state)
    assert untimed(extended.history) == untimed(whole.history) and extended.metrics == whole.metrics  # bit-identical
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["epochs_completed"]) == ("completed", 4)
    assert [(e["after_epoch"], e["epochs_before"], e["epochs"]) for e in info["extensions"]] == [(2, 2, 4)]
    assert "  epochs: 4\n" in (run / "spec.yaml").read_text()
    assert {"best.keras", "last.keras"} <= {p.name for p in (run / "checkpoints").iterdir()}
    with pytest.raises(SpecError, match=r"`--set training\.epochs=4` must exceed the 4 epochs run .* has done already"):
        train.prepare_resume(run, None, ["training.epochs=4"])


def test_training_a_cosine_run_further_warns_that_its_rates_change(smoke_run: Path, tmp_path: Path) -> None:
    run = copy_run(smoke_run, tmp_path)
    spec = (run / "spec.yaml").read_text()
    assert "  lr_schedule: null\n" in spec
    (run / "spec.yaml").write_text(spec.replace("  lr_schedule: null\n", "  lr_schedule:\n    type: cosine\n"))
    prepared, _ = train.prepare_resume(run, None, ["training.epochs=6"])
    (warning,) = [w for w in prepared.warnings if "cosine" in w]
    assert "with 6 epochs instead of 2, epochs 3-6 follow the 6-epoch curve, from a rate of 0.015 (epoch 2 trained with 0.01)" in warning


@pytest.mark.slow  # three more trainings (about 10 s): the commit policy; test_interrupted_run_resumes_to_the_same_result covers resuming
def test_short_epochs_commit_less_often_and_an_interruption_still_keeps_every_epoch(whole: train.TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commits: list[int] = []
    commit_epoch = RunDir.commit_epoch

    def counted(run: RunDir, state: dict, epoch: int, *rest: Any, **options: Any) -> None:
        commits.append(epoch)
        commit_epoch(run, state, epoch, *rest, **options)

    monkeypatch.setattr(RunDir, "commit_epoch", counted)
    monkeypatch.setattr(train, "COMMIT_INTERVAL", 3600.0)  # no epoch is an hour long: only the last one and stops commit
    finished = train.fit(train.prepare(load_spec(SMOKE_SPEC, [*SETTINGS, f"output.dir={tmp_path / 'finished'}"])))
    assert commits == [4] and untimed(finished.history) == untimed(whole.history)  # committing less often changes nothing of the training

    commits.clear()
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*SETTINGS, f"output.dir={out}"])), StopAfter(3))
    assert commits == [3]  # committed on the way out
    run = only_run(out)
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["epochs_completed"]) == ("interrupted", 3)
    assert (run / "checkpoints" / f"epoch-{info['best_epoch']:04d}.npz").exists()  # the best epoch's state is on disk, whichever epoch it was
    resumed = train.fit(*_resume(run))
    assert untimed(resumed.history) == untimed(finished.history) and resumed.metrics == finished.metrics


@pytest.mark.slow  # three trainings (about 8 s) for the early-stopping state on resume
def test_early_stopping_state_survives_resume(tmp_path: Path) -> None:
    whole = uninterrupted(tmp_path / "whole", EARLY_STOPPING)
    assert len(whole.history) < 12  # it does stop early
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*EARLY_STOPPING, f"output.dir={out}"])), StopAfter(len(whole.history) - 1))
    resumed = train.fit(*_resume(only_run(out)))
    assert untimed(resumed.history) == untimed(whole.history) and resumed.stopped_early


@pytest.mark.slow  # three trainings (about 8 s) for the learning-rate state on resume
def test_reduce_on_plateau_state_survives_resume(tmp_path: Path) -> None:
    whole = uninterrupted(tmp_path / "whole", PLATEAU)
    assert [row["learning_rate"] for row in whole.history] == [0.02, 0.02, 0.01, 0.005, 0.0025]
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*PLATEAU, f"output.dir={out}"])), StopAfter(3))
    resumed = train.fit(*_resume(only_run(out)))
    assert untimed(resumed.history) == untimed(whole.history)  # the same rates, and therefore the same losses
    assert resumed.metrics == whole.metrics


def _resume(run: Path) -> tuple[Pipeline, None, train.Resume]:
    prepared, state = train.prepare_resume(run)
    return prepared, None, state


@pytest.fixture
def interrupted_run(interrupted_smoke: Interrupted) -> Path:
    """The session's interrupted smoke run (3 epochs, stopped after epoch 1), read only."""
    return interrupted_smoke.run


def test_resume_refuses_a_changed_spec_with_the_difference(interrupted_run: Path) -> None:
    with pytest.raises(SpecError, match=r"differs from the one run .* started with: `model\.layers\[0\]\.units` was 8, now 16; `training\.epochs` was 3, now 8\."):
        train.prepare_resume(interrupted_run, SMOKE_SPEC, ["model.layers[0].units=16"])
    # The same spec and settings are accepted (where runs go does not count as a change).
    train.prepare_resume(interrupted_run, SMOKE_SPEC, ["training.epochs=3", "output.dir=elsewhere"])
    with pytest.raises(SpecError, match=r"`--set model\.layers\[0\]\.units=16` with `--resume` would change the run's spec; .* takes only `--set training\.epochs=N`"):
        train.prepare_resume(interrupted_run, None, ["model.layers[0].units=16"])


def test_resume_refuses_changed_data(interrupted_run: Path, tmp_path: Path) -> None:
    run = copy_run(interrupted_run, tmp_path)  # its spec is pointed at a copy of the data
    data = tmp_path / "data"
    shutil.copytree(ROOT / "data" / "smoke", data)
    spec_text = (run / "spec.yaml").read_text().replace(str(ROOT / "data" / "smoke"), str(data))
    (run / "spec.yaml").write_text(spec_text)
    info = json.loads((run / "run.json").read_text())
    train.prepare_resume(run)  # a copy with the same bytes is the same data
    with open(data / "test.csv", "a") as handle:
        handle.write("s999,0,1.0,1.0,rise\n")
    with pytest.raises(DataError, match=r"Data changed since run .* started: `data\.test` \(.*test\.csv\) no longer match"):
        train.prepare_resume(run)
    assert json.loads((run / "run.json").read_text()) == info  # refused without touching the run


def test_resume_refuses_completed_and_live_runs(smoke_run: Path, interrupted_run: Path, tmp_path: Path) -> None:
    with pytest.raises(RunError, match="already completed .*nothing to resume"):
        train.prepare_resume(smoke_run)
    run = copy_run(interrupted_run, tmp_path)  # marked as running below
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        info = json.loads((run / "run.json").read_text())
        info.update(status="running", **process_identity(sleeper.pid))  # as the sleeper would have recorded itself
        (run / "run.json").write_text(json.dumps(info))
        with pytest.raises(RunError, match=f"still training \\(process {sleeper.pid}; 1 epoch committed so far\\)\\. Stop that process first"):
            train.prepare_resume(run)
    finally:
        sleeper.kill()
        sleeper.wait()
    train.prepare_resume(run)  # its process is gone: a crashed run, resumable


def test_cli_resume_needs_spec_or_run() -> None:
    result = CliRunner().invoke(app, ["train"])
    assert result.exit_code == 1 and "Give a spec to train" in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(tmp_path: Path, backend: str) -> None:
    """A real training process killed with SIGKILL in the middle of an epoch, resumed through the CLI, on each backend."""
    settings = ["training.epochs=6", "training.early_stopping=null", "training.batch_size=1", "model.layers[0].dropout=0.2"]  # 27 steps per epoch
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}

    def command(*args: str, out: Path) -> list[str]:
        return [sys.executable, "-m", "seqcli", "train", *args, "--quiet", "--backend", backend] + [a for s in [*settings, f"output.dir={out}"] for a in ("--set", s)]

    out = tmp_path / "runs"
    process = subprocess.Popen(command(str(SMOKE_SPEC), out=out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            runs = list((out / "smoke").glob("*/run.json")) if (out / "smoke").exists() else []
            if runs and json.loads(runs[0].read_text() or "{}").get("epochs_completed", 0) >= 1:  # epochs under a second commit about once a second
                break
            time.sleep(0.05)
        else:
            pytest.fail("training did not commit an epoch in time")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    run = only_run(out)
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "running" and 1 <= info["epochs_completed"] < 6  # killed: no chance to mark anything
    assert info["versions"]["backend"] == backend

    resumed = subprocess.run([sys.executable, "-m", "seqcli", "train", "--resume", str(run), "--quiet"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(command(str(SMOKE_SPEC), out=tmp_path / "whole"), cwd=ROOT, capture_output=True, text=True, env=env)
    assert whole.returncode == 0, whole.stderr
    whole_run = only_run(tmp_path / "whole")
    history = json.loads((run / "history.json").read_text())
    assert [r["epoch"] for r in history] == [1, 2, 3, 4, 5, 6]
    assert untimed(history) == untimed(json.loads((whole_run / "history.json").read_text()))
    assert json.loads((run / "metrics.json").read_text()) == json.loads((whole_run / "metrics.json").read_text())
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(p.name for p in (whole_run / "checkpoints").iterdir())


@pytest.mark.slow
def test_two_trainings_started_together_get_their_own_directories(tmp_path: Path) -> None:
    out = tmp_path / "runs"
    args = [sys.executable, "-m", "seqcli", "train", str(SMOKE_SPEC), "--quiet", "--set", f"output.dir={out}", "--set", "training.epochs=2"]
    processes = [subprocess.Popen([*args, "--set", f"seed={seed}"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for seed in (1, 2)]
    for process in processes:
        assert process.wait(timeout=300) == 0, process.stderr.read() if process.stderr else ""
    runs = sorted((out / "smoke").iterdir())
    assert len(runs) == 2
    seeds = set()
    for run in runs:
        info = json.loads((run / "run.json").read_text())
        assert info["status"] == "completed" and info["epochs_completed"] == 2
        assert len(json.loads((run / "history.json").read_text())) == 2
        assert f"seed: {info['seed']}\n" in (run / "spec.yaml").read_text()  # each run holds its own spec
        seeds.add(info["seed"])
    assert seeds == {1, 2}
