"""Runs written by earlier seqcli versions still predict, or fail with a message that names the version.

``tests/fixtures/run-0.1.0/`` is a completed run of experiments/smoke.yaml (2 epochs, JAX) written by seqcli 0.1.0, before
the pipeline and the tasks; ``run-0.1.0-predictions.csv`` is what that version predicted for data/smoke/test.csv.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from seqcli.cli import app
from tests.conftest import BACKEND, ROOT, SMOKE_TEST

FIXTURES = ROOT / "tests" / "fixtures"


def rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_a_0_1_0_run_predicts_what_it_predicted_then() -> None:
    result = CliRunner().invoke(app, ["predict", str(FIXTURES / "run-0.1.0"), str(SMOKE_TEST), "--format", "csv", "--backend", BACKEND])  # trained on JAX
    assert result.exit_code == 0, result.output
    got, expected = rows(result.stdout), rows((FIXTURES / "run-0.1.0-predictions.csv").read_text())
    assert [(r["id"], r["predicted"], r["label"]) for r in got] == [(r["id"], r["predicted"], r["label"]) for r in expected]
    def probabilities(table: list[dict[str, str]]) -> np.ndarray:
        return np.array([[float(row[f"p_{name}"]) for name in ("fall", "flat", "rise")] for row in table])

    np.testing.assert_allclose(probabilities(got), probabilities(expected), atol=2e-6)


def test_an_unknown_task_names_the_version_that_wrote_the_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(FIXTURES / "run-0.1.0", run)
    state = json.loads((run / "preprocessing.json").read_text())
    (run / "preprocessing.json").write_text(json.dumps({**state, "task": "forecast"}))
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "versions": {**info["versions"], "seqcli": "9.0.0"}}))
    result = CliRunner().invoke(app, ["predict", str(run), str(SMOKE_TEST), "--backend", BACKEND])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "the run was written by seqcli 9.0.0. Predict with that version, or train again." in result.output
