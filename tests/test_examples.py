"""The shipped Japanese Vowels experiment reaches its accuracy target (slow: about 2 minutes).

It runs through the CLI in fresh processes without $KERAS_BACKEND, so it measures what a user gets:
`backend: auto`, which is JAX for this data (every batch has one width).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TARGET = 0.97


@pytest.mark.slow
def test_japanese_vowels_median_test_accuracy(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    accuracies = []
    for seed in (0, 1, 2):
        out = tmp_path / str(seed)
        args = ["train", "experiments/japanese_vowels.yaml", "--quiet", "--set", f"seed={seed}", "--set", f"output.dir={out}"]
        done = subprocess.run([sys.executable, "-m", "seqcli", *args], cwd=ROOT, capture_output=True, text=True, env=env)
        assert done.returncode == 0, done.stderr
        (run,) = (out / "japanese_vowels").iterdir()
        assert json.loads((run / "run.json").read_text())["versions"]["backend"] == "jax"
        accuracies.append(json.loads((run / "metrics.json").read_text())["test"]["accuracy"])
    assert statistics.median(accuracies) >= TARGET, accuracies
