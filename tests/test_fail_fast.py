"""Fail fast: every error that needs no model comes before Keras is imported, and each backend loads only itself.

Importing Keras takes seconds (`import tensorflow` 3-5 s, JAX 1-2 s), so what can be checked without it (the output
file, INPUT, the run directory and its status, the features INPUT has, `output.dir`, `--resume`'s options) is checked
first. These tests look at what a fresh process has imported, not at the time (benchmarks/startup.py measures that).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.background import OTHER, SESSION, Training
from tests.conftest import ROOT, SMOKE_SPEC, SMOKE_TEST

HEAVY = ("keras", "tensorflow", "jax")

# Runs each command line of argv[0] (a JSON list) through the CLI in this fresh process; prints, per command, its exit
# status, its stderr and the heavy modules loaded by then.
COMMANDS = """
import json, sys
from typer.testing import CliRunner
from seqcli.cli import app
done = []
for args in json.loads(sys.argv[1]):
    result = CliRunner().invoke(app, args)
    done.append({"args": args, "exit_code": result.exit_code, "stderr": result.stderr, "loaded": [m for m in HEAVY if m in sys.modules]})
print(json.dumps(done))
""".replace("HEAVY", repr(HEAVY))


def run_fresh(commands: list[list[str]], **env: str) -> list[dict[str, object]]:
    environment = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | env
    done = subprocess.run([sys.executable, "-c", COMMANDS, json.dumps(commands)], cwd=ROOT, capture_output=True, text=True, env=environment, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_errors_that_need_no_model_come_before_keras_is_imported(smoke_run: Path, tmp_path: Path) -> None:
    run = str(smoke_run)
    (tmp_path / "exists.csv").write_text("keep me\n")
    (tmp_path / "blocker").write_text("a file\n")
    np.save(tmp_path / "three.npy", np.ones((4, 3)))
    np.save(tmp_path / "batch.npy", np.ones((5, 4, 3)))
    crashed = Path(shutil.copytree(smoke_run, tmp_path / "crashed"))
    info = json.loads((crashed / "run.json").read_text())
    (crashed / "run.json").write_text(json.dumps({**info, "status": "running", "pid": 0, "epochs_completed": 0, "best_epoch": 0}))  # no such process
    commands = {
        "already exists": ["predict", run, str(SMOKE_TEST), "--output", str(tmp_path / "exists.csv")],
        "does not exist. Create it first": ["predict", run, str(SMOKE_TEST), "--output", str(tmp_path / "no" / "p.csv")],
        "INPUT .*missing.csv does not exist": ["predict", run, str(tmp_path / "missing.csv")],
        "3 features per timestep, but the model was trained on 2": ["predict", run, str(tmp_path / "three.npy")],
        "index 0 has 3 features per timestep": ["predict", run, str(tmp_path / "batch.npy")],
        "--text needs a run trained on text": ["predict", run, "--text", "hello"],
        "crashed before its first epoch ended": ["predict", str(crashed), str(SMOKE_TEST)],
        "blocker is a file \\(Not a directory\\)": ["train", str(SMOKE_SPEC), "--quiet", "--set", f"output.dir={tmp_path / 'blocker'}"],
        "already completed": ["train", "--resume", run, "--quiet"],
        "takes only `--set training.epochs=N`": ["train", "--resume", run, "--quiet", "--set", "seed=3"],
        "must exceed the 2 epochs": ["train", "--resume", run, "--quiet", "--set", "training.epochs=2"],
    }
    for (pattern, _), done in zip(commands.items(), run_fresh(list(commands.values())), strict=True):
        assert done["exit_code"] == 1 and re.search(pattern, str(done["stderr"])), done
        assert done["loaded"] == [], f"{' '.join(map(str, done['args']))} imported {done['loaded']} before failing"


@pytest.mark.slow  # two fresh processes that load Keras (about 13 s on 2 cores)
def test_predict_and_inspect_shapes_load_only_their_backend(smoke_run: Path, smoke_on_other: Training, tmp_path: Path) -> None:
    """On JAX no TensorFlow (2-4 s), on TensorFlow no JAX (which TensorFlow's tf.lite would import)."""
    runs = {SESSION: smoke_run, OTHER: smoke_on_other.result().path}
    sample = tmp_path / "one.npy"
    np.save(sample, np.ones((5, 2)))
    for backend, unwanted in (("jax", "tensorflow"), ("tensorflow", "jax")):
        predicted, inspected = run_fresh([["predict", str(runs[backend]), str(sample), "--quiet"], ["inspect-shapes", str(SMOKE_SPEC), "--set", f"backend={backend}"]])
        assert predicted["exit_code"] == inspected["exit_code"] == 0, (predicted, inspected)
        assert unwanted not in predicted["loaded"] and unwanted not in inspected["loaded"], (backend, predicted["loaded"], inspected["loaded"])
