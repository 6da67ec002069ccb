"""The shipped examples reach their accuracy targets: Japanese Vowels, segments (tagging), memory signals and Covid3Month (regression), stories (text + question); slow.

They run through the CLI in fresh processes without $KERAS_BACKEND, so they measure what a user gets:
`backend: auto`, which is JAX for Japanese Vowels (every batch has one width) and TensorFlow for segments (bucketed, and its 8 batch shapes would not pay back the compiling),
and JAX's compile cache (in the session's temporary ``jax_cache``, not ~/.cache), which the second and third seed load from.
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

TARGET = 0.99


@pytest.mark.slow
def test_japanese_vowels_median_test_accuracy(jax_cache: Path, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"} | {"SEQCLI_CACHE_DIR": str(jax_cache)}
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


@pytest.mark.slow
def test_segments_tagging_test_accuracy(tmp_path: Path) -> None:
    """The per-timestep tagging example (`task: tag`) tags at least 88% of the test frames right (0.918 for seed 0; one frame alone: 0.62)."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    args = ["train", "experiments/segments.yaml", "--quiet", "--set", f"output.dir={tmp_path}"]
    done = subprocess.run([sys.executable, "-m", "seqcli", *args], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "segments").iterdir()
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["samples"] == 3307 and test["sequences"] == 80
    assert test["accuracy"] >= 0.88 and test["macro_f1"] >= 0.88, test


def train_example(spec: str, out: Path) -> dict:
    """``seqcli train SPEC`` in a fresh process without $KERAS_BACKEND (what a user gets); the test metrics of its run."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "seqcli", "train", spec, "--quiet", "--set", f"output.dir={out}"], cwd=ROOT, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    (run,) = next(out.iterdir()).iterdir()
    return json.loads((run / "metrics.json").read_text())["test"]


@pytest.mark.slow
def test_memory_signals_per_timestep_regression(tmp_path: Path) -> None:
    """`task: regress_timesteps` recovers both memory-dependent targets (R² 0.998 and 0.992 for seeds 0-2; a memoryless model: 0.37 and 0.00)."""
    test = train_example("experiments/memory_signals.yaml", tmp_path)
    assert test["per_target"]["average"]["r2"] >= 0.95 and test["per_target"]["echo"]["r2"] >= 0.95, test["per_target"]
    assert test["sequences"] == 100 and test["samples"] == 8197


@pytest.mark.slow
def test_covid_regression_beats_the_mean_predictor(tmp_path: Path) -> None:
    """`task: regress` on Covid3Month: test RMSE below predicting the training mean (0.0429 vs 0.0447 for seed 0)."""
    test = train_example("experiments/covid_regression.yaml", tmp_path)
    assert test["samples"] == 61 and test["rmse"] < test["mean_predictor_rmse"], test


@pytest.mark.slow
def test_stories_text_and_question(tmp_path: Path) -> None:
    """The text + question model answers from both texts: 0.842 for seed 0, where the story alone reaches 0.518."""
    test = train_example("experiments/stories.yaml", tmp_path)
    assert test["accuracy"] >= 0.75, test["accuracy"]
