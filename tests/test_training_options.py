"""Class weights, label smoothing and learning-rate schedules: hand-computed values, and their effect in the real training loop."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pytest

from seqcli import predict, train
from seqcli.batching import Packed, predict_outputs
from seqcli.errors import SpecError
from seqcli.model import learning_rate, load_checkpoint
from seqcli.spec import Spec, load_spec, spec_from_dict
from seqcli.tasks.classify import Classify
from tests.conftest import SMOKE_SPEC


def spec_with(**training: object) -> Spec:
    return spec_from_dict({"data": {"train": "x.npy"}, "training": training})


# --------------------------------------------------------------------------- class weights


def class_weights(spec: Spec, classes: list[str], y: np.ndarray) -> dict[str, float] | None:
    return Classify().class_weights(spec, types.SimpleNamespace(classes=classes), y)  # type: ignore[arg-type]


def test_balanced_class_weights_are_samples_over_classes_times_count() -> None:
    y = np.array([0, 0, 0, 1, 2, 2])  # a: 3, b: 1, c: 2 of 6
    weights = class_weights(spec_with(class_weight="balanced"), ["a", "b", "c"], y)
    assert weights == pytest.approx({"a": 6 / (3 * 3), "b": 6 / (3 * 1), "c": 6 / (3 * 2)})
    assert class_weights(spec_with(), ["a", "b", "c"], y) is None


def test_class_weight_mapping_fills_unnamed_classes_and_rejects_unknown_ones() -> None:
    assert class_weights(spec_with(class_weight={"b": 3, "1": 0.5}), ["1", "b", "c"], np.array([0, 1, 2])) == {"1": 0.5, "b": 3.0, "c": 1.0}
    with pytest.raises(SpecError, match=r"`training\.class_weight` names the class 'rize', which is not in the training data \(classes: fall, rise\)\. Did you mean 'rise'\?"):
        class_weights(spec_with(class_weight={"rize": 2}), ["fall", "rise"], np.array([0, 1]))


# --------------------------------------------------------------------------- label smoothing


def test_label_smoothing_loss_values() -> None:
    # Softmax, 3 classes, x = 0.3: the target [1, 0, 0] becomes [0.7 + 0.1, 0.1, 0.1].
    softmax = Classify().loss(spec_from_dict({"data": {"train": "x.npy"}, "training": {"label_smoothing": 0.3}}))
    expected = -(0.8 * math.log(0.5) + 0.1 * math.log(0.3) + 0.1 * math.log(0.2))  # 0.835859
    assert float(softmax(np.array([[1.0, 0.0, 0.0]]), np.array([[0.5, 0.3, 0.2]]))) == pytest.approx(expected, rel=1e-5)
    # Sigmoid, x = 0.2: the target 1 becomes 0.8 + 0.1.
    sigmoid = Classify().loss(spec_from_dict({"data": {"train": "x.npy"}, "model": {"output": "sigmoid"}, "training": {"label_smoothing": 0.2}}))
    expected = -(0.9 * math.log(0.8) + 0.1 * math.log(0.2))  # 0.361773
    assert float(sigmoid(np.array([[1.0]]), np.array([[0.8]]))) == pytest.approx(expected, rel=1e-5)
    assert Classify().loss(spec_with()) == "sparse_categorical_crossentropy"  # unchanged without smoothing


def write_imbalanced(tmp_path: Path, classes: tuple[str, ...]) -> Path:
    """An .npz of 16 sequences (lengths 3-6, 2 features) with class counts 10, 4, 2 (or 12, 4 for two classes)."""
    rng = np.random.default_rng(3)
    counts = (10, 4, 2) if len(classes) == 3 else (12, 4)
    y = np.repeat(np.array(classes), counts)
    lengths = 3 + np.arange(len(y)) % 4
    x = rng.normal(size=(int(lengths.sum()), 2))  # all sequences concatenated: (total_timesteps, features)
    np.savez(tmp_path / "train.npz", x=x, lengths=lengths, y=y)
    return tmp_path / "train.npz"


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_weighted_and_smoothed_loss_reach_the_training_loop(tmp_path: Path, output: str) -> None:
    """With a negligible learning rate the epoch's logs are the loss and accuracy of the initial model, computable by hand."""
    classes = ("a", "b", "c") if output == "softmax" else ("a", "b")
    write_imbalanced(tmp_path, classes)
    smoothing, named = 0.3, {"b": 3.0, "c": 5.0} if output == "softmax" else {"b": 3.0}
    spec_file = tmp_path / "spec.yaml"
    spec_file.write_text(
        f"data: {{train: train.npz, validation: train.npz}}\nmodel: {{layers: [{{units: 4, cell: gru, bidirectional: true}}], output: {output}}}\n"
        f"training: {{epochs: 1, batch_size: 4, optimizer: sgd, learning_rate: 1.0e-9, early_stopping: null, label_smoothing: {smoothing}, class_weight: {named}}}\n"
    )
    prepared = train.prepare(load_spec(spec_file, [f"output.dir={tmp_path / 'runs'}"]))
    result = train.fit(prepared)
    split = prepared.splits["train"]
    outputs = predict_outputs(prepared.model, [Packed(prepared.prep, split.sequences)], 4, backend=prepared.backend, per_timestep=False)
    probs = Classify().probabilities(outputs).astype(np.float64)  # (samples, classes)
    if output == "softmax":
        targets = (1 - smoothing) * np.eye(3)[split.y] + smoothing / 3
        per_sample = -(targets * np.log(probs)).sum(axis=1)
    else:
        target = (1 - smoothing) * split.y + smoothing / 2
        per_sample = -(target * np.log(probs[:, 1]) + (1 - target) * np.log(probs[:, 0]))
    weights = np.array([named.get(c, 1.0) for c in classes])[split.y]
    correct = probs.argmax(axis=1) == split.y
    assert result.class_weights == {c: named.get(c, 1.0) for c in classes}
    row = result.history[0]
    assert row["loss"] == pytest.approx(float(np.mean(weights * per_sample)), rel=1e-4)  # Keras: sum(w * loss) / samples
    assert row["val_loss"] == pytest.approx(float(per_sample.mean()), rel=1e-4)  # validation is not weighted
    assert row["accuracy"] == row["val_accuracy"] == pytest.approx(float(correct.mean()), rel=1e-5)  # metrics are not weighted
    assert float(correct.mean()) != pytest.approx(float((weights * correct).sum() / weights.sum()))  # (and weighting would show)
    assert row["learning_rate"] == 1.0e-9 and row["seconds"] > 0  # every epoch records its rate and wall time, with or without a schedule
    # The run reloads: for predict (the same probabilities) and, compiled with the smoothed loss, for --resume.
    np.testing.assert_allclose(predict.predict(predict.load_run(result.run.path), split.data).values, probs, atol=1e-6)
    assert load_checkpoint(result.run.path / "checkpoints" / "last.keras", compile=True).loss.get_config()["label_smoothing"] == pytest.approx(smoothing)


# --------------------------------------------------------------------------- learning-rate schedules


def test_cosine_and_exponential_rates() -> None:
    cosine = spec_with(epochs=4, learning_rate=0.1, lr_schedule={"type": "cosine", "min_lr": 0.02})
    assert [learning_rate(cosine, e) for e in range(4)] == pytest.approx([0.1, 0.02 + 0.08 * (1 + math.cos(math.pi / 4)) / 2, 0.06, 0.02 + 0.08 * (1 + math.cos(3 * math.pi / 4)) / 2])
    exponential = spec_with(epochs=4, learning_rate=0.1, lr_schedule={"type": "exponential", "factor": 0.5, "min_lr": 0.02})
    assert [learning_rate(exponential, e) for e in range(4)] == pytest.approx([0.1, 0.05, 0.025, 0.02])


def test_reduce_on_plateau_rule() -> None:
    """Keras' rule, replayed from a history: after `patience` epochs without improvement the rate is multiplied by `factor`, down to `min_lr`."""
    spec = spec_with(learning_rate=1.0, lr_schedule={"factor": 0.5, "patience": 2, "min_lr": 0.3})
    val_loss = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89]
    # wait after: 0   0    1     2: x0.5  1    0    1     2: 0.25 -> min_lr 0.3   1   2 (at min_lr: no change)  3
    expected = [1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.3, 0.3, 0.3]  # the rate of each epoch
    recorder_class = train._recorder_class()
    rates = []
    for epochs in range(1, len(val_loss) + 1):
        rows = [{"epoch": e + 1, "loss": 1.0, "val_loss": v} for e, v in enumerate(val_loss[:epochs])]
        rates.append(recorder_class(None, spec, None, rows, None).learning_rate)  # the rate of the next epoch
    assert [1.0, *rates[:-1]] == pytest.approx(expected)
    assert rates[-1] == pytest.approx(0.3)


def test_schedule_sets_the_optimizer_rate_and_is_logged(tmp_path: Path) -> None:
    settings = ["training.epochs=3", "training.learning_rate=0.04", "training.lr_schedule={type: exponential, factor: 0.25}", "model.layers=[{units: 8}]", "data.test=null"]  # one LSTM is enough
    spec = load_spec(SMOKE_SPEC, [f"output.dir={tmp_path}", *settings])
    prepared = train.prepare(spec)
    result = train.fit(prepared)
    assert [row["learning_rate"] for row in result.history] == pytest.approx([0.04, 0.01, 0.0025])
    last = load_checkpoint(result.run.path / "checkpoints" / "last.keras", compile=True)
    assert float(last.optimizer.learning_rate.numpy()) == pytest.approx(0.0025)  # the optimizer trained with it
