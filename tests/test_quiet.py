"""TensorFlow's start-up lines stay out of a normal run (issue #12).

TensorFlow 2.21 prints "All log messages before absl::InitializeLog() ..." and "oneDNN custom operations are on ..."
twice as its libraries load, whatever TF_CPP_MIN_LOG_LEVEL says; seqcli/backend.py holds them back. The run is a
fresh process without the variables a user might set, on each backend (on JAX, seqcli keeps TensorFlow out unless
text needs it: then backend.import_tensorflow loads it quietly too).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, SMOKE_SPEC

NOISE = ("absl::InitializeLog", "oneDNN custom operations")


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_train_prints_no_tensorflow_start_up_lines(backend: str, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    args = ["train", str(SMOKE_SPEC), "--quiet", "--backend", backend, "--set", f"output.dir={tmp_path}", "--set", "training.epochs=1"]
    done = subprocess.run([sys.executable, "-m", "seqcli", *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    for line in NOISE:
        assert line not in done.stderr, done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_keras_loads_without_the_libraries_it_only_checks_for(backend: str) -> None:
    """scikit-learn, pandas and matplotlib cost about 5 s of Keras' import and serve nothing seqcli does with Keras;
    those installed still import normally afterwards (the plots need matplotlib, a dependency, so it is always one)."""
    code = (
        "import sys, importlib, importlib.util; from seqcli import backend; backend.import_keras(); "
        "print(sorted(m for m in backend.KERAS_EXTRAS if m in sys.modules)); "
        "installed = [m for m in backend.KERAS_EXTRAS if importlib.util.find_spec(m)]; "
        "[importlib.import_module(m) for m in installed]; import matplotlib.pyplot; print(','.join(installed))"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env={**os.environ, "KERAS_BACKEND": backend})
    assert done.returncode == 0, done.stderr
    hidden, imported = done.stdout.split()
    assert hidden == "[]"
    assert "matplotlib" in imported.split(",")
