"""Training in-process: saved run == in-memory model, same seed == same history, clean interruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seqcli import predict, train
from seqcli.batching import Packed, predict_outputs
from seqcli.pipeline import Pipeline
from seqcli.spec import load_spec
from tests.conftest import Interrupted, untimed


def test_saved_run_predicts_like_the_trained_model(smoke_fit: tuple[Pipeline, train.TrainResult]) -> None:
    prepared, result = smoke_fit
    test = prepared.splits["test"]
    in_memory = predict_outputs(prepared.model, [Packed(prepared.prep, test.sequences)], 8, backend=prepared.backend, per_timestep=False)  # the model holds the best weights after fit
    for checkpoint in ("best", "last"):
        loaded = predict.load_run(result.run.path, checkpoint)
        assert loaded.prep == prepared.prep
        from_disk = predict.predict(loaded, test.data)
        if checkpoint == "best":
            np.testing.assert_allclose(from_disk.values, in_memory, atol=1e-6)
            assert from_disk.accuracy == pytest.approx(result.metrics["test"]["accuracy"])
        assert from_disk.ids == test.data.ids and [row["label"] for row in from_disk.rows] == [prepared.prep.classes[i] for i in test.y]


def test_same_seed_same_history(smoke_fit: tuple[Pipeline, train.TrainResult], smoke_run: Path) -> None:
    """One spec and seed trained twice in this process, through train.fit and through the CLI (``smoke_run``): the same history and metrics."""
    _, first = smoke_fit
    assert untimed(first.history) == untimed(json.loads((smoke_run / "history.json").read_text()))  # wall times differ
    assert first.metrics == json.loads((smoke_run / "metrics.json").read_text())


def test_ctrl_c_marks_run_interrupted_and_keeps_epoch_one(interrupted_smoke: Interrupted) -> None:
    run, prepared = interrupted_smoke.run, interrupted_smoke.prepared  # 3 epochs, stopped at the end of epoch 1
    info: dict[str, Any] = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs_completed"] == 1
    assert len(json.loads((run / "history.json").read_text())) == 1
    assert not (run / "metrics.json").exists()
    loaded = predict.load_run(run, "best")
    assert any("interrupted" in n for n in loaded.notes)
    assert not list((run / "checkpoints").glob("*.keras"))  # the .keras models come with completion; predict rebuilds the model
    test = prepared.splits["test"]
    epoch_one = predict_outputs(prepared.model, [Packed(prepared.prep, test.sequences)], 8, backend=prepared.backend, per_timestep=False)  # the model as the interruption left it
    np.testing.assert_array_equal(predict.predict(loaded, test.data).values, epoch_one)


def write_npz(path: Path, x: np.ndarray, y: np.ndarray, **extra: np.ndarray) -> Path:
    np.savez(path, x=x, y=y, **extra)
    return path


def test_two_classes_with_sigmoid_and_auc(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(24, 5, 3))  # (samples, timesteps, features)
    y = np.array(["no", "yes"] * 12)
    x[y == "yes"] += 1.0
    spec_file = tmp_path / "binary.yaml"
    write_npz(tmp_path / "train.npz", x, y)
    spec_file.write_text(
        "data: {train: train.npz, test: train.npz, validation_split: 0.25}\n"
        "model: {layers: [{units: 4}], output: sigmoid}\n"
        "training: {epochs: 2, batch_size: 8, metrics: [accuracy, auc]}\n"
    )
    spec = load_spec(spec_file, [f"output.dir={tmp_path / 'runs'}"])
    prepared = train.prepare(spec)
    assert prepared.model.output_shape == (None, 1)
    result = train.fit(prepared)
    assert {"loss", "accuracy", "auc", "val_auc"} <= set(result.history[-1])
    loaded = predict.load_run(result.run.path)
    prediction = predict.predict(loaded, prepared.splits["test"].data)
    assert prediction.columns == ["no", "yes"] and prediction.values.shape == (24, 2)
    np.testing.assert_allclose(prediction.values.sum(axis=1), 1.0, atol=1e-6)
    assert prediction.accuracy == pytest.approx(result.metrics["test"]["accuracy"])


def test_token_sequences_train_and_predict_one_raw_sequence(tmp_path: Path) -> None:
    # Integer codes (samples=12, timesteps=6), 0-padded at the end: class "a" uses codes 1-2, "b" codes 3-4.
    rng = np.random.default_rng(1)
    x = np.zeros((12, 6), dtype=np.int64)
    y = np.array(["a", "b"] * 6)
    for i, label in enumerate(y):
        length = 3 + i % 4
        x[i, :length] = rng.integers(1, 3, size=length) + (2 if label == "b" else 0)
    write_npz(tmp_path / "tokens.npz", x, y)
    spec_file = tmp_path / "tokens.yaml"
    spec_file.write_text("data: {train: tokens.npz, validation_split: 0.25}\nmodel: {layers: [{units: 4}], embedding_dim: 3}\ntraining: {epochs: 1}\n")
    result = train.fit(train.prepare(load_spec(spec_file, [f"output.dir={tmp_path / 'runs'}"])))
    loaded = predict.load_run(result.run.path)
    assert (loaded.prep.input, loaded.prep.num_tokens, loaded.prep.maxlen) == ("tokens", 5, 6)
    np.save(tmp_path / "one.npy", np.array([3, 4, 9]))  # one raw 1-D sequence; 9 was never seen in training
    prediction = predict.predict_file(loaded, tmp_path / "one.npy")
    assert prediction.values.shape == (1, 2)
    assert any("batch of one: (1, 3)" in n for n in prediction.notes)  # bucketing: padded only to its own length


def test_a_spec_named_with_spaces_and_accents_trains_and_predicts(tmp_path: Path) -> None:
    """`my expérience.yaml` names its run folder as written; Keras gets a sanitized model name (TensorFlow refuses spaces)."""
    from typer.testing import CliRunner

    from seqcli.cli import app

    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(12, 4, 2)), np.array(["a", "b"] * 6)
    write_npz(tmp_path / "train.npz", x + (y == "b")[:, None, None], y)
    spec_file = tmp_path / "my expérience.yaml"
    spec_file.write_text("data: {train: train.npz, validation_split: 0.25}\nmodel: {layers: [{units: 3}]}\ntraining: {epochs: 1, batch_size: 4}\n")
    trained = CliRunner().invoke(app, ["train", str(spec_file), "--quiet", "--set", f"output.dir={tmp_path / 'runs'}"])
    assert trained.exit_code == 0, trained.output
    (run,) = (tmp_path / "runs" / "my expérience").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "completed"
    assert 'Model: "my_experience"' in (run / "model_summary.txt").read_text()
    predicted = CliRunner().invoke(app, ["predict", str(run), str(tmp_path / "train.npz"), "--format", "json"])
    assert predicted.exit_code == 0, predicted.output
    assert len(json.loads(predicted.stdout)["predictions"]) == 12
