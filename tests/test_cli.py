"""The commands through Typer's CliRunner: exit codes, stdout results, stderr messages."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import __version__
from seqcli.cli import app
from seqcli.fingerprint import fingerprint
from seqcli.model import load_checkpoint
from tests.conftest import ROOT, SMOKE_SPEC, SMOKE_TEST

runner = CliRunner()


def run(*args: str) -> object:
    return runner.invoke(app, [str(a) for a in args])


def test_help_lists_commands_and_version() -> None:
    result = run("--help")
    assert result.exit_code == 0
    for command in ("train", "predict", "inspect-shapes", "validate", "runs", "compare", "plot", "export"):
        assert command in result.stdout
    assert run("--version").stdout.strip() == f"seqcli {__version__}"


def test_help_explains_every_task() -> None:
    """The help names every task the spec accepts, side by side (the text is written out in cli.py, which must not import the spec module)."""
    from seqcli.spec import TASK_KINDS

    text = " ".join(run("--help").stdout.split())
    for name, kind in TASK_KINDS.items():
        assert f"{name} (one {'real value or vector' if kind.numeric else 'label'} per {'timestep' if kind.per_timestep else 'sequence'})" in text


def test_help_and_validate_do_not_import_tensorflow() -> None:
    code = (
        "import sys\n"
        "from typer.testing import CliRunner\n"
        "from seqcli.cli import app\n"
        f"assert CliRunner().invoke(app, ['--help']).exit_code == 0\n"
        f"assert CliRunner().invoke(app, ['validate', {str(SMOKE_SPEC)!r}]).exit_code == 0\n"
        "print(sorted(m for m in ('tensorflow', 'keras', 'numpy', 'matplotlib') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


def test_validate_ok_with_fingerprints_and_print_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = run("validate", "experiments/smoke.yaml")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "experiments/smoke.yaml: valid.",
        f"  data.train: data/smoke/train.csv  {fingerprint(ROOT / 'data' / 'smoke' / 'train.csv')}",
        f"  data.test: data/smoke/test.csv  {fingerprint(ROOT / 'data' / 'smoke' / 'test.csv')}",
    ]
    printed = run("validate", SMOKE_SPEC, "--print", "--set", "training.epochs=5")
    assert printed.exit_code == 0
    assert "  epochs: 5\n" in printed.stdout and "  padding: post\n" in printed.stdout
    assert str(ROOT / "data" / "smoke" / "train.csv") in printed.stdout  # paths resolved relative to the spec


def test_validate_error_is_one_paragraph_without_traceback(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("data:\n  train: x.npz\ntraining:\n  epocs: 3\n")
    result = run("validate", spec)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "Unknown key `training.epocs`" in result.stderr and "line 4" in result.stderr and "Did you mean `training.epochs`?" in result.stderr
    assert "Traceback" not in result.output


def test_smoke_run_directory_describes_itself(smoke_run: Path) -> None:
    names = {p.name for p in smoke_run.iterdir()}
    assert {"run.json", "spec.yaml", "preprocessing.json", "model_summary.txt", "layers.json", "history.csv", "history.json", "metrics.json", "checkpoints"} <= names
    info = json.loads((smoke_run / "run.json").read_text())
    assert info["status"] == "completed" and info["epochs_completed"] == 2 and info["seed"] == 0
    checkpoints = smoke_run / "checkpoints"
    best, last = checkpoints / f"epoch-{info['best_epoch']:04d}.npz", checkpoints / "epoch-0002.npz"
    assert {p.name for p in checkpoints.iterdir()} == {"best.keras", "last.keras", best.name, last.name}
    for model, state in (("best.keras", best), ("last.keras", last)):  # each .keras model holds its epoch's committed weights and optimizer state
        keras_model = load_checkpoint(checkpoints / model, compile=True)
        arrays = np.load(state)
        assert len(arrays.files) == len(keras_model.weights) + len(keras_model.optimizer.variables)
        assert all(np.array_equal(arrays[f"model.{i}"], w) for i, w in enumerate(keras_model.get_weights()))
        assert all(np.array_equal(arrays[f"optimizer.{i}"], v) for i, v in enumerate(keras_model.optimizer.variables))
    assert {"keras", "numpy", "python", "seqcli", "tensorflow"} <= set(info["versions"])
    assert info["data_fingerprints"]["train"].startswith("sha256:")
    with open(smoke_run / "history.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["epoch"] for r in rows] == ["1", "2"] and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])
    metrics = json.loads((smoke_run / "metrics.json").read_text())
    assert metrics["test"]["samples"] == 12 and len(metrics["test"]["confusion_matrix"]["rows_true_columns_predicted"]) == 3
    assert set(metrics["test"]["per_class"]) == {"fall", "flat", "rise"}
    prep = json.loads((smoke_run / "preprocessing.json").read_text())
    assert (prep["maxlen"], prep["padding"], prep["pad_value"], prep["classes"]) == (9, "post", 0.0, ["fall", "flat", "rise"])


def test_train_bad_data_fails_before_creating_a_run(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("data:\n  train: missing.csv\n")
    result = run("train", spec, "--quiet", "--set", f"output.dir={tmp_path / 'runs'}")
    assert result.exit_code == 1
    assert "missing.csv does not exist" in result.stderr and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


def test_predict_csv_file(smoke_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "pred.csv"
    result = run("predict", smoke_run, SMOKE_TEST, "--output", out)
    assert result.exit_code == 0, result.output
    assert "wrote 12 predictions" in result.stdout and "accuracy" in result.stdout
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 12 and list(rows[0]) == ["id", "predicted", "label", "p_fall", "p_flat", "p_rise"]
    assert rows[0]["id"] == "s000"
    for row in rows:
        probs = [float(row[k]) for k in ("p_fall", "p_flat", "p_rise")]
        assert sum(probs) == pytest.approx(1.0, abs=1e-4)
        assert row["predicted"] == ("fall", "flat", "rise")[int(np.argmax(probs))]
    again = run("predict", smoke_run, SMOKE_TEST, "--output", out)
    assert again.exit_code == 1 and "already exists" in again.stderr and "--force" in again.stderr
    assert run("predict", smoke_run, SMOKE_TEST, "--output", out, "--force").exit_code == 0


def test_predict_json_to_stdout(smoke_run: Path) -> None:
    result = run("predict", smoke_run, SMOKE_TEST, "--format", "json", "--checkpoint", "last")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["classes"] == ["fall", "flat", "rise"] and len(payload["predictions"]) == 12
    assert payload["accuracy"] == pytest.approx(np.mean([p["predicted"] == p["label"] for p in payload["predictions"]]))


def test_predict_output_format_follows_the_extension(smoke_run: Path, tmp_path: Path) -> None:
    """.json without --format writes JSON; --format csv into a .json name is refused before anything is written; an
    extension that names no format takes --format."""
    assert run("predict", smoke_run, SMOKE_TEST, "-o", tmp_path / "p.json").exit_code == 0
    assert len(json.loads((tmp_path / "p.json").read_text())["predictions"]) == 12
    refused = run("predict", smoke_run, SMOKE_TEST, "-o", tmp_path / "c.json", "--format", "csv")
    assert refused.exit_code == 1 and "--format csv does not match --output" in refused.stderr and not (tmp_path / "c.json").exists()
    assert run("predict", smoke_run, SMOKE_TEST, "-o", tmp_path / "p.txt", "--format", "csv").exit_code == 0
    assert (tmp_path / "p.txt").read_text().startswith("id,predicted,label,")


def test_predict_one_unbatched_sample(smoke_run: Path, tmp_path: Path) -> None:
    sample = tmp_path / "one.npy"
    np.save(sample, np.array([[0.0, 0.5], [0.25, 0.45], [0.5, 0.27], [0.75, 0.03]]))  # (timesteps=4, features=2)
    result = run("predict", smoke_run, sample, "--format", "csv")
    assert result.exit_code == 0, result.output
    assert "predicting it as a batch of one: (1, 4, 2)" in result.stderr
    assert len(result.stdout.strip().splitlines()) == 2  # header + one row


def test_predict_wrong_feature_count(smoke_run: Path, tmp_path: Path) -> None:
    sample = tmp_path / "three.npy"
    np.save(sample, np.zeros((4, 3)))
    result = run("predict", smoke_run, sample)
    assert result.exit_code == 1
    assert "3 features per timestep, but the model was trained on 2" in result.stderr and "Traceback" not in result.output


def test_predict_says_a_killed_run_crashed_and_how_to_resume_it(smoke_run: Path, tmp_path: Path) -> None:
    """After `kill -9`, run.json still says running, with the pid of a process that is gone."""
    run_dir = Path(shutil.copytree(smoke_run, tmp_path / "run"))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    info = json.loads((run_dir / "run.json").read_text())
    (run_dir / "run.json").write_text(json.dumps({**info, "status": "running", "pid": int(gone.stdout)}))
    result = run("predict", run_dir, SMOKE_TEST, "--format", "json")
    assert result.exit_code == 0, result.output
    note = f"Run {run_dir} crashed after epoch 2 (its process {int(gone.stdout)} is gone); resume it with `seqcli train --resume {run_dir}`."
    assert note in " ".join(result.stderr.split()) and "is running" not in result.stderr
    assert json.loads(result.stdout)["notes"][0] == f"{note} Predicting with its best checkpoint (epoch {info['best_epoch']})."


def test_predict_without_best_keras_uses_the_same_weights_from_the_epoch_state(smoke_run: Path, tmp_path: Path) -> None:
    run_dir = Path(shutil.copytree(smoke_run, tmp_path / "run"))
    (run_dir / "checkpoints" / "best.keras").unlink()
    result = run("predict", run_dir, SMOKE_TEST, "--format", "json")
    assert result.exit_code == 0, result.output
    assert "checkpoints/best.keras is missing; predicting with the same weights from epoch" in " ".join(result.stderr.split())
    original = json.loads(run("predict", smoke_run, SMOKE_TEST, "--format", "json").stdout)
    assert json.loads(result.stdout)["predictions"] == original["predictions"]


def test_predict_missing_run(tmp_path: Path) -> None:
    result = run("predict", tmp_path / "nope", SMOKE_TEST)
    assert result.exit_code == 1 and "does not exist" in result.stderr


def test_inspect_shapes_spec_json(smoke_run: Path) -> None:
    result = run("inspect-shapes", SMOKE_SPEC, "--json")
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert [a["role"] for a in trace["arrays"]] == ["train", "validation", "test"]
    assert [s["name"] for s in trace["steps"]] == ["group rows", "standardize", "truncate", "bucket + pad", "mask"]
    assert trace["input_shape"] == "(batch, timesteps, features=2)"  # variable lengths: bucketing
    assert [(layer["name"], layer["output_shape"]) for layer in trace["layers"]] == [
        (layer["name"], layer["output_shape"]) for layer in json.loads((smoke_run / "layers.json").read_text())
    ]


def test_inspect_shapes_table_and_bare_data_file(tmp_path: Path) -> None:
    table = run("inspect-shapes", SMOKE_SPEC)
    assert table.exit_code == 0 and "bucket + pad" in table.stdout and "lstm_1" in table.stdout
    data = tmp_path / "d.npz"
    lengths = np.array([3, 5, 4, 6, 5, 4, 3, 5, 6, 4] * 3)
    lengths[7] = 40  # one long outlier: maxlen p95 beats padding everything to 40
    np.savez(data, x=np.random.default_rng(0).normal(size=(int(lengths.sum()), 4)), lengths=lengths, y=np.arange(30) % 3)
    result = run("inspect-shapes", data, "--json")
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert "maxlen: p95" in trace["suggested_spec"] and "input: float" in trace["suggested_spec"]
    assert trace["arrays"][0]["length_max"] == 40 and trace["arrays"][0]["sequences"] == 30
    assert trace["layers"][0]["output_shape"] == "(batch, timesteps, features=4)"  # variable lengths: bucketing


def test_inspect_shapes_with_unlabelled_data_file(tmp_path: Path) -> None:
    data = tmp_path / "new.npy"
    np.save(data, np.arange(10, dtype=float).reshape(1, 5, 2))  # one sequence, (samples, timesteps, features)
    result = run("inspect-shapes", SMOKE_SPEC, "--data", data, "--json")
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert trace["arrays"][0]["sequences"] == 1 and trace["arrays"][0]["class_counts"] is None
    assert any("no labels" in n for n in trace["notes"])
    assert trace["layers"][-1]["output_shape"] == "(batch, classes=2)"


def test_inspect_shapes_yaml_prints_only_the_suggested_spec_which_trains_from_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`inspect-shapes DATA --yaml > spec.yaml`: plain YAML, no box or notes, whose data path works from the folder it is saved in."""
    monkeypatch.chdir(ROOT)
    result = runner.invoke(app, ["inspect-shapes", "data/smoke/test.csv", "--yaml"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("data:\n  train: data/smoke/test.csv\n") and "─" not in result.stdout and "note:" not in result.stdout
    shown = runner.invoke(app, ["inspect-shapes", "data/smoke/test.csv"])
    assert result.stdout.strip() in shown.stdout  # the normal output holds the same lines, unboxed, so they copy cleanly
    spec = ROOT / "suggested-for-test.yaml"
    try:
        spec.write_text(result.stdout)
        assert runner.invoke(app, ["validate", str(spec)]).exit_code == 0
    finally:
        spec.unlink()
    refused = runner.invoke(app, ["inspect-shapes", str(SMOKE_SPEC), "--yaml"])
    assert refused.exit_code == 1 and "--yaml prints the spec suggested for a bare data file" in refused.stderr


def test_a_run_without_held_out_data_says_so_instead_of_an_empty_table(tmp_path: Path) -> None:
    args = ["train", str(SMOKE_SPEC), "--quiet", "--set", f"output.dir={tmp_path}", "--set", "data.validation_split=0", "--set", "data.test=null"]
    result = runner.invoke(app, [*args, "--set", "training.monitor=loss", "--set", "training.epochs=1"])
    assert result.exit_code == 0, result.output
    assert "No validation or test split, so nothing was evaluated on held-out data" in result.stdout and "Metrics (best" not in result.stdout
