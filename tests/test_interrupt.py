"""Ctrl-C: one clear message and exit status 130 at any point, even when a library swallows the KeyboardInterrupt."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from seqcli import interrupt, train
from tests.conftest import ROOT, SMOKE_SPEC, StopAfter, smoke_spec


@pytest.fixture
def handler() -> Iterator[None]:
    """seqcli's SIGINT handler, installed as every command installs it."""
    restore = interrupt.install()
    yield
    interrupt.clear()
    restore()


def press_ctrl_c_inside_a_callback() -> None:
    """What SIGINT does while a library callback runs (JAX's ``_xla_gc_callback``): the KeyboardInterrupt is raised there and dropped."""
    with contextlib.suppress(KeyboardInterrupt):  # swallowed
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]


def test_a_swallowed_interrupt_is_raised_at_the_next_safe_point(handler: None, capsys: pytest.CaptureFixture[str]) -> None:
    class Collected:
        def __del__(self) -> None:
            signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]

    Collected()  # the KeyboardInterrupt raised in __del__ cannot propagate: Python reports it as "Exception ignored"
    assert interrupt.pending()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()
    assert "Exception ignored" not in capsys.readouterr().err  # the one message comes later, from the command
    interrupt.clear()
    interrupt.check()  # handled: nothing left to raise
    with interrupt.deferred():
        signal.getsignal(signal.SIGINT)(signal.SIGINT, None)  # type: ignore[operator]  # recorded only
        interrupt.check()
    with pytest.raises(KeyboardInterrupt):
        interrupt.check()


class SwallowedAfter(StopAfter):
    """Ctrl-C at the end of epoch ``n``, swallowed by a library callback: training must stop anyway."""

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        if epoch == self.n:
            press_ctrl_c_inside_a_callback()


def test_training_stops_when_a_library_swallowed_the_interrupt(handler: None, tmp_path: Path) -> None:
    prepared = train.prepare(smoke_spec(tmp_path, "training.epochs=3", "data.test=null"))
    with pytest.raises(KeyboardInterrupt):
        train.fit(prepared, SwallowedAfter(1))
    (run,) = (tmp_path / "smoke").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["epochs_completed"]) == ("interrupted", 1)  # it stopped in epoch 2 at the latest, with epoch 1 kept


def sigint_when(args: list[str], marker: str, tmp_path: Path) -> tuple[int, str]:
    """`seqcli ARGS` in a fresh process, sent SIGINT as soon as ``marker`` appears on its stderr: exit status and stderr."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
    process = subprocess.Popen([sys.executable, "-m", "seqcli", *args], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            seen.append(line)
            if marker in line:
                process.send_signal(signal.SIGINT)
                break
        else:
            pytest.fail(f"{marker!r} never appeared:\n{''.join(seen)}")
        _, rest = process.communicate(timeout=120)
    finally:
        process.kill()
        process.wait()
    return process.returncode, "".join(seen) + rest


def train_args(out: Path, backend: str) -> list[str]:
    # batch 1: 27 steps per epoch, so that an epoch lasts long enough to be interrupted in
    return ["train", str(SMOKE_SPEC), "--backend", backend, "--set", f"output.dir={out}", "--set", "training.batch_size=1"]


def assert_one_message(stderr: str, message: str) -> None:
    assert "Traceback" not in stderr and "Exception ignored" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and errors[0] == f"error: {message}", stderr


@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_ctrl_c_during_start_up(backend: str, tmp_path: Path) -> None:
    """Sent as the data loads and Keras is imported: before any run directory exists."""
    status, stderr = sigint_when(train_args(tmp_path, backend), "note: loading data", tmp_path)
    assert status == 130, stderr
    assert_one_message(stderr, "Interrupted (Ctrl-C) while loading the data and building the model; no run directory was created.")
    assert not (tmp_path / "smoke").exists()


@pytest.mark.slow  # a fresh process trains for seconds on each backend; test_training_stops_when_a_library_swallowed_the_interrupt covers the fit loop
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_ctrl_c_during_training_names_the_run_and_keeps_its_epochs(backend: str, tmp_path: Path) -> None:
    status, stderr = sigint_when(train_args(tmp_path, backend), "epoch 1/8", tmp_path)
    (run,) = (tmp_path / "smoke").iterdir()
    assert f"note: training run {run}\n" in stderr  # printed when the run directory was created
    info = json.loads((run / "run.json").read_text())
    assert status == 130 and info["status"] == "interrupted" and info["epochs_completed"] >= 1, stderr
    epochs = info["epochs_completed"]
    kept = f"keeps its {epochs} completed epoch{'s' if epochs > 1 else ''}"
    assert_one_message(stderr, f"Interrupted (Ctrl-C). Run {run} is marked 'interrupted' and {kept}; continue it with `seqcli train --resume {run}`.")


def test_ctrl_c_in_another_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command: one message and 130 (Typer alone exits 130 without a word)."""
    from typer.testing import CliRunner

    from seqcli import shapes
    from seqcli.cli import app

    def pressed(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(shapes, "inspect_spec", pressed)
    result = CliRunner().invoke(app, ["inspect-shapes", str(SMOKE_SPEC)])
    assert result.exit_code == 130 and result.stdout == ""
    assert_one_message(result.stderr, "Interrupted (Ctrl-C): `seqcli inspect-shapes` stopped before it finished.")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the command put Python's handler back
