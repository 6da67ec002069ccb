"""Keras backends: how `backend: auto` chooses, and a run predicts the same whichever backend loads it.

This test process runs on one backend (see conftest.py); the other one runs in subprocesses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import backend, predict
from seqcli.cli import app
from seqcli.errors import RunError
from tests.conftest import ROOT, SMOKE_SPEC, SMOKE_TEST

SESSION = os.environ["KERAS_BACKEND"]
OTHER = "jax" if SESSION == "tensorflow" else "tensorflow"


def seqcli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI in a fresh process (a fresh Keras, free to load another backend)."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return subprocess.run([sys.executable, "-m", "seqcli", *args], cwd=ROOT, capture_output=True, text=True, env=env)


def probabilities(payload: dict) -> np.ndarray:
    return np.array([[row[f"p_{name}"] for name in payload["classes"]] for row in payload["predictions"]])


@pytest.mark.parametrize(
    ("declared", "env", "bucketing", "expected"),
    [
        ("auto", None, False, "jax"),
        ("auto", None, True, "tensorflow"),
        ("auto", "jax", True, "jax"),
        ("auto", "torch", False, "jax"),  # not one of ours: the rule decides
        ("tensorflow", "jax", False, "tensorflow"),
        ("jax", None, True, "jax"),
    ],
)
def test_auto_backend_follows_keras_backend_then_the_batch_widths(monkeypatch: pytest.MonkeyPatch, declared: str, env: str | None, bucketing: bool, expected: str) -> None:
    if env is None:
        monkeypatch.delenv("KERAS_BACKEND", raising=False)
    else:
        monkeypatch.setenv("KERAS_BACKEND", env)
    assert backend.resolve_backend(declared, bucketing) == expected


def test_switching_backend_in_a_process_is_a_clear_error() -> None:
    backend.import_keras()
    with pytest.raises(RunError, match=rf"already loaded with the {SESSION} backend in this process and cannot switch to {OTHER}"):
        backend.use_backend(OTHER)
    backend.use_backend(SESSION)  # the same backend is fine


def test_a_run_predicts_the_same_on_either_backend(tmp_path: Path) -> None:
    """Trained in a subprocess on the other backend; predicted there and here, on this process's backend."""
    out = tmp_path / "runs"
    trained = seqcli("train", str(SMOKE_SPEC), "--quiet", "--backend", OTHER, "--set", "training.epochs=2", "--set", f"output.dir={out}")
    assert trained.returncode == 0, trained.stderr
    (run,) = (out / "smoke").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert info["versions"]["backend"] == OTHER and info["versions"][OTHER] == __import__(OTHER).__version__

    there = seqcli("predict", str(run), str(SMOKE_TEST), "--format", "json")  # the run's own backend
    assert there.returncode == 0, there.stderr
    here = CliRunner().invoke(app, ["predict", str(run), str(SMOKE_TEST), "--format", "json", "--backend", SESSION])
    assert here.exit_code == 0, here.output
    expected, got = json.loads(there.stdout), json.loads(here.stdout)
    assert [r["predicted"] for r in got["predictions"]] == [r["predicted"] for r in expected["predictions"]]
    np.testing.assert_allclose(probabilities(got), probabilities(expected), atol=2e-6)
    assert got["accuracy"] == expected["accuracy"]


def test_predict_backend_defaults_to_the_runs(smoke_run: Path) -> None:
    loaded = predict.load_run(smoke_run)
    assert backend.current_backend() == json.loads((smoke_run / "run.json").read_text())["versions"]["backend"] == SESSION
    assert loaded.model is not None


def test_inspect_shapes_names_the_backend_and_why() -> None:
    result = CliRunner().invoke(app, ["inspect-shapes", str(SMOKE_SPEC), "--json"])
    assert result.exit_code == 0, result.output
    assert f"Keras backend: {SESSION} (auto: from $KERAS_BACKEND)." in json.loads(result.stdout)["notes"]



def test_text_chooses_its_backend_before_tokenizing_and_says_why() -> None:
    """Tokenizing imports Keras, so text fixes the backend early; a fresh process must still give the rule as the reason."""
    done = seqcli("inspect-shapes", str(ROOT / "data" / "stdlib_lines" / "predict.txt"), "--json")
    assert done.returncode == 0, done.stderr
    assert "Keras backend: tensorflow (auto: length bucketing gives batches of many widths, and JAX would compile each one (about 2 s))." in json.loads(done.stdout)["notes"]


JAX_PLANS = """
import json, sys
from seqcli import batching, train
from seqcli.spec import load_spec

served = []
original = batching.Packed.batch
def spy(self, rows, width):
    served.append(sorted(rows.tolist()))
    return original(self, rows, width)
batching.Packed.batch = spy
overrides = ["backend=jax", "training.epochs=3", "training.early_stopping=null", "training.monitor=loss", "data.validation_split=0", "data.test=null", "output.dir=" + sys.argv[2]]
prepared = train.prepare(load_spec(sys.argv[1], overrides))
train.fit(prepared)
split, prep, spec = prepared.splits["train"], prepared.prep, prepared.spec
plans = [batching.train_plan(split.lengths, prep.boundaries, prep.maxlen, spec.training.batch_size, spec.seed, e, True, grid=True) for e in range(3)]
expected = [sorted(rows.tolist()) for plan in plans for rows in plan.batches]
print(json.dumps({"served": served[-len(expected):], "expected": expected}))
"""


def test_jax_epochs_train_on_their_own_batch_plans(tmp_path: Path) -> None:
    """Epoch e trains on plan(seed, e) on JAX too: Keras' PyDataset hooks run around its shape probe, so they cannot count epochs."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-c", JAX_PLANS, str(SMOKE_SPEC), str(tmp_path)], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["served"] == result["expected"]
