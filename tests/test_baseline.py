"""`seqcli train --baseline`: MiniRocket (aeon, an optional dependency group) beside the model.

The refusals run everywhere. The fits need aeon: they are slow (numba compiles MiniRocket on first use) and CI runs them
with the group installed (`uv run --group baseline pytest -m slow tests/test_baseline.py`); without aeon they skip.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqcli.cli import app
from tests.conftest import ROOT, SMOKE_SPEC
from tests.test_bad_inputs import assert_no_complete_run, assert_reported

runner = CliRunner()


def train_args(spec: Path, out: Path, *sets: str) -> list[str]:
    args = ["train", str(spec), "--quiet", "--baseline", "--set", f"output.dir={out}", "--set", "training.epochs=2"]
    for override in sets:
        args += ["--set", override]
    return args


def test_without_aeon_the_error_says_how_to_install_it_before_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "aeon" else real(name, *a))
    args = train_args(SMOKE_SPEC, tmp_path / "runs")
    message = assert_reported(runner.invoke(app, args), args, r"--baseline needs aeon, an optional dependency: install it with `uv sync --group baseline`")
    assert "pip install aeon" in message
    assert not (tmp_path / "runs").exists()  # refused before the run directory exists


def test_codes_are_refused_before_training(tmp_path: Path) -> None:
    args = train_args(ROOT / "experiments" / "motifs.yaml", tmp_path / "runs")
    assert_reported(runner.invoke(app, args), args, r"--baseline fits MiniRocket \(aeon\), but it needs real-valued features.*Train without --baseline")
    assert_no_complete_run(tmp_path / "runs")


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "keys"), [(SMOKE_SPEC, ("accuracy", "macro_f1")), (ROOT / "experiments" / "covid_regression.yaml", ("rmse", "mae", "r2"))])
def test_baseline_scores_the_same_splits(tmp_path: Path, spec: Path, keys: tuple[str, ...]) -> None:
    pytest.importorskip("aeon")
    result = runner.invoke(app, train_args(spec, tmp_path / "runs"))
    assert result.exit_code == 0, result.output
    (metrics_file,) = (tmp_path / "runs").glob("*/*/metrics.json")
    metrics = json.loads(metrics_file.read_text())
    reference = metrics["baseline"]
    assert reference["name"] == "MiniRocket (aeon)" and reference["fit_seconds"] > 0
    for role in ("validation", "test"):
        assert set(keys) <= set(reference[role]) and reference[role]["samples"] == metrics[role]["samples"]
    if "accuracy" in keys:
        assert 0.0 <= reference["test"]["accuracy"] <= 1.0
    else:
        assert reference["test"]["rmse"] > 0 and reference["test"]["mean_predictor_rmse"] == pytest.approx(metrics["test"]["mean_predictor_rmse"])
    assert "MiniRocket (aeon)" in result.stdout  # its rows in the result table
