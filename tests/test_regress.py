"""The regression tasks end to end: reading targets from every format, bad targets, padding invariance, the masked loss,
train -> metrics.json -> predict, and the per-timestep model of the README (LSTM(32, return_sequences=True) -> Dense(16))."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import batching, train
from seqcli.cli import app
from seqcli.data import load
from seqcli.errors import DataError
from seqcli.spec import TASK_KINDS, DataFile, load_spec, spec_from_dict
from tests.conftest import assert_png, numpy_batches

REGRESS, PER_STEP = TASK_KINDS["regress"], TASK_KINDS["regress_timesteps"]
OPTIONS = spec_from_dict({"data": {"train": "x"}}).data


def ts_file(path: Path, targets: list[str], header: str = "@targetLabel true") -> Path:
    lines = [f"{','.join(str(v) for v in np.linspace(0, i, 6))}:{target}" for i, target in enumerate(targets)]
    path.write_text(f"@problemName t\n@univariate true\n{header}\n@data\n" + "\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- reading targets


def test_targets_from_every_format(tmp_path: Path) -> None:
    """.ts @targetLabel, CSV target column(s), JSON Lines numbers or lists, .npy/.npz float y: (samples, targets) float64."""
    assert load(DataFile(path=str(ts_file(tmp_path / "a.ts", ["0.5", "1.5"]))), OPTIONS, targets=REGRESS).labels.tolist() == [[0.5], [1.5]]
    (tmp_path / "a.csv").write_text("id,time,x,rate,size\na,0,1.0,0.5,7\na,1,2.0,0.5,7\nb,0,3.0,1.5,8\n")
    csv = load(DataFile(path=str(tmp_path / "a.csv")), spec_from_dict({"data": {"train": "x", "csv": {"target_columns": ["rate", "size"]}}, "task": "regress"}).data, targets=REGRESS)
    assert csv.labels.tolist() == [[0.5, 7.0], [1.5, 8.0]] and csv.target_names == ["rate", "size"] and csv.n_features == 1  # targets are not features
    (tmp_path / "a.jsonl").write_text('{"sequence": [1, 2], "label": 0.5}\n{"sequence": [3], "label": [1.5]}\n')
    assert load(DataFile(path=str(tmp_path / "a.jsonl")), OPTIONS, targets=REGRESS).labels.tolist() == [[0.5], [1.5]]
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 3, 1)), y=np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert load(DataFile(path=str(tmp_path / "a.npz")), OPTIONS, targets=REGRESS).labels.shape == (2, 2)


def test_per_timestep_targets_from_csv_jsonl_and_npz(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("id,time,x,label\na,1,1.0,0.25\na,0,2.0,0.5\nb,0,3.0,1.5\n")
    csv = load(DataFile(path=str(tmp_path / "a.csv")), OPTIONS, targets=PER_STEP)
    assert [t.tolist() for t in csv.step_targets] == [[[0.5], [0.25]], [[1.5]]]  # ordered by time, like the features
    (tmp_path / "a.jsonl").write_text('{"sequence": [1, 2], "label": [0.5, 0.25]}\n{"sequence": [[3]], "label": [[1.5]]}\n')
    assert [t.tolist() for t in load(DataFile(path=str(tmp_path / "a.jsonl")), OPTIONS, targets=PER_STEP).step_targets] == [[[0.5], [0.25]], [[1.5]]]
    np.savez(tmp_path / "flat.npz", x=np.zeros((3, 2)), lengths=np.array([2, 1]), y=np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    assert [t.shape for t in load(DataFile(path=str(tmp_path / "flat.npz")), OPTIONS, targets=PER_STEP).step_targets] == [(2, 2), (1, 2)]


@pytest.mark.parametrize(
    ("name", "content", "targets", "message"),
    [
        ("nan.ts", None, REGRESS, r"nan.ts, line 6: the target is nan\. Regression targets must be finite numbers"),
        ("labels.ts", "classes", REGRESS, r"holds class labels \(@classLabel true\), but `task: regress` predicts real values"),
        ("values.ts", None, TASK_KINDS["classify"], r"holds regression targets \(@targetLabel true.*Set `task: regress`"),
        ("word.csv", "id,time,x,label\na,0,1,0.5\nb,0,2,high\n", REGRESS, r"word.csv, line 3, column 'label': the target 'high' is not a number.*set `task: classify`"),
        ("varies.csv", "id,time,x,label\na,0,1,0.5\na,1,2,0.7\n", REGRESS, r"change within the sequence.*set `task: regress_timesteps`"),
        ("word.jsonl", '{"sequence": [1], "label": "cat"}\n', REGRESS, r"word.jsonl, line 1, key 'label': `task: regress` needs numeric targets"),
        ("short.jsonl", '{"sequence": [1, 2, 3], "label": [0.5, 0.1]}\n', PER_STEP, r"short.jsonl, line 1: 2 targets for a sequence of 3 timesteps"),
        ("inf.jsonl", '{"sequence": [1, 2], "label": [0.5, Infinity]}\n', PER_STEP, r"inf.jsonl, line 1, timestep 1: the target is inf"),
    ],
)
def test_bad_targets_name_the_place_and_the_fix(tmp_path: Path, name: str, content: str | None, targets: object, message: str) -> None:
    path = tmp_path / name
    if name.endswith(".ts"):
        ts_file(path, ["0.5", "?"] if name == "nan.ts" else ["a", "b"] if content == "classes" else ["0.5", "1.5"], "@classLabel true a b" if content == "classes" else "@targetLabel true")
    else:
        path.write_text(content or "")
    with pytest.raises(DataError, match=message):
        load(DataFile(path=str(path)), OPTIONS, targets=targets)  # type: ignore[arg-type]


def test_npz_targets_of_the_wrong_shape_or_type(tmp_path: Path) -> None:
    np.savez(tmp_path / "short.npz", x=np.zeros((2, 4, 1)), y=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"aligned with the sequences: shape \(samples=2, timesteps=4\) \(one more axis for several targets\); got shape \(2, 3\)"):
        load(DataFile(path=str(tmp_path / "short.npz")), OPTIONS, targets=PER_STEP)
    np.savez(tmp_path / "words.npz", x=np.zeros((2, 4, 1)), y=np.array(["a", "b"]))
    with pytest.raises(DataError, match=r"`task: regress` needs numeric targets, but `y` holds <U1 values such as 'a'"):
        load(DataFile(path=str(tmp_path / "words.npz")), OPTIONS, targets=REGRESS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("model.output=sigmoid", r"`model.output: sigmoid` is a two-class output, but `task: regress`"),
        ("training.loss=binary_crossentropy", r"is a classification loss, but `task: regress` predicts real values"),
        ("training.metrics=[accuracy]", r"'accuracy', a classification metric"),
        ("training.class_weight=balanced", r"`training.class_weight` weighs classes, but `task: regress` has none"),
        ("training.monitor=val_accuracy", r"`training.monitor` is 'val_accuracy', but 'accuracy' is a classification metric.*Monitor `val_loss` or one of mae"),
        ("training.monitor=rmse", r"'rmse' is not logged \(`task: regress` logs mae by default\)\. Add it to `training.metrics`"),
        ("task=classify", r"`data.csv.target_columns` names regression targets, but `task: classify`"),
    ],
)
def test_regression_spec_rules(tmp_path: Path, change: str, message: str) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("task: regress\ndata: {train: t.csv, csv: {target_columns: [y]}}\n")
    with pytest.raises(Exception, match=message):
        load_spec(spec, [change])


def test_bad_targets_write_no_run(tmp_path: Path) -> None:
    ts_file(tmp_path / "train.ts", ["0.5", "x"])
    (tmp_path / "spec.yaml").write_text("task: regress\ndata: {train: train.ts, validation_split: 0}\ntraining: {monitor: loss}\n")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "spec.yaml"), "--quiet", "--set", f"output.dir={tmp_path / 'runs'}"])
    assert result.exit_code == 1 and "line 6: the target 'x' is not a number" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "runs").exists()


# --------------------------------------------------------------------------- models: padding invariance and the masked loss


def per_step_spec(tmp_path: Path, lengths: list[int], features: int = 2, targets: int = 2, extra: str = "") -> Path:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(sum(lengths), features)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=np.cumsum(x[:, :1], axis=0).repeat(targets, axis=1), lengths=np.array(lengths))
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"task: regress_timesteps\ndata: {{train: train.npz, validation_split: 0}}\nmodel: {{layers: [{{units: 6}}]}}\ntraining: {{monitor: loss, batch_size: 2}}\n{extra}")
    return spec


@pytest.mark.parametrize("task", ["regress_timesteps", "regress"])
def test_appending_padding_changes_no_prediction(tmp_path: Path, task: str) -> None:
    """The per-timestep and the per-sequence heads: a batch padded to 9 timesteps instead of its longest (4) predicts the same on real timesteps."""
    spec = per_step_spec(tmp_path, [4, 2])
    if task == "regress":  # one target per sequence
        with np.load(tmp_path / "train.npz") as f:
            np.savez(tmp_path / "train.npz", x=f["x"], lengths=f["lengths"], y=np.array([1.0, 2.0]))
    pipe = train.prepare(load_spec(spec, [f"task={task}", f"output.dir={tmp_path}"]))
    packed, rows = batching.Packed(pipe.prep, pipe.splits["train"].sequences), np.array([0, 1])
    short, long = (np.asarray(pipe.model.predict_on_batch(packed.batch(rows, width))) for width in (4, 9))
    if task == "regress_timesteps":  # (batch, width, targets): compare the real timesteps
        _, real = packed.cells(rows, 4)
        short, long = short[real], long[:, :4][real]
    np.testing.assert_allclose(long, short, atol=1e-6)


def test_masked_loss_counts_real_timesteps_only(tmp_path: Path) -> None:
    """Keras' mse on one batch padded to 4 and to 9 timesteps is the same, and equals the mean squared error over the 6 real timesteps by hand."""
    pipe = train.prepare(load_spec(per_step_spec(tmp_path, [4, 2], targets=1), [f"output.dir={tmp_path}"]))
    split = pipe.splits["train"]
    losses = []
    for width in (4, 9):
        plan = batching.Plan([np.array([0, 1])], [width])
        batches = batching.dataset([batching.Packed(pipe.prep, split.sequences)], split.y, lambda _, plan=plan: plan, range(1), backend=pipe.backend)
        (x, y), = numpy_batches(batches)
        assert y.shape == (2, width, 1)
        losses.append(pipe.model.evaluate(batches, verbose=0, return_dict=True)["loss"])
        if width == 4:
            out = np.asarray(pipe.model.predict_on_batch(x))
            real = np.concatenate([(out[0] - y[0])[:4], (out[1] - y[1])[:2]])
            by_hand = float(np.mean(real**2))
    assert losses[0] == pytest.approx(losses[1], rel=1e-5) and losses[0] == pytest.approx(by_hand, rel=1e-5)
    assert pipe.evaluate(pipe.model, split)["loss"] == pytest.approx(by_hand, rel=1e-4)


# --------------------------------------------------------------------------- train -> predict


def test_lstm_into_dense_16_per_timestep_and_one_raw_sample(tmp_path: Path) -> None:
    """LSTM(32, return_sequences=True) -> Dense(16) with mse: model.predict on (1, 480, 16) gives (1, 480, 16); `seqcli predict` on one raw
    (480, 16) sample writes 480 rows of 16 values, in the targets' units; metrics.json reports RMSE, MAE and R² per target next to the mean."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, 480, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "train.npz", x=x, y=100.0 + np.cumsum(x, axis=1))
    (tmp_path / "spec.yaml").write_text(
        "task: regress_timesteps\ndata: {train: train.npz, validation_split: 0}\nmodel: {layers: [{units: 32}]}\ntraining: {epochs: 1, batch_size: 4, monitor: loss}\n"
    )
    result = CliRunner().invoke(app, ["train", str(tmp_path / "spec.yaml"), "--quiet", "--set", f"output.dir={tmp_path / 'runs'}", "--set", "data.test=train.npz"])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs" / "spec").iterdir()
    layers = {row["name"]: row for row in json.loads((run / "layers.json").read_text())}
    assert layers["lstm_0"]["output_shape"] == "(batch, timesteps=480, units=32)" and layers["output"]["output_shape"] == "(batch, timesteps=480, targets=16)"
    from seqcli.model import load_checkpoint

    assert load_checkpoint(run / "checkpoints" / "best.keras", compile=False).predict(x[:1], verbose=0).shape == (1, 480, 16)
    test = json.loads((run / "metrics.json").read_text())["test"]
    assert test["samples"] == 4 * 480 and test["sequences"] == 4 and len(test["per_target"]) == 16
    assert {"rmse", "mae", "r2", "mean_predictor_rmse"} <= set(test["per_target"]["0"])
    np.save(tmp_path / "one.npy", x[0])
    out = CliRunner().invoke(app, ["predict", str(run), str(tmp_path / "one.npy"), "--format", "csv"])
    assert out.exit_code == 0, out.output
    header, *rows = out.stdout.strip().splitlines()
    assert len(rows) == 480 and header.split(",")[:3] == ["id", "timestep", "predicted_0"] and len(header.split(",")) == 2 + 16
    assert 50 < float(rows[0].split(",")[2]) < 150  # the targets' units (about 100), not standardized ones
    with np.load(run / "test_values.npz") as values:  # what predictions.png plots: every test timestep, 16 targets
        assert values["true"].shape == values["predicted"].shape == (4 * 480, 16) and list(values["names"][:2]) == ["0", "1"]
    assert_png(run / "predictions.png", min_width=800)


def test_regress_run_predicts_values_and_scores_them(tmp_path: Path) -> None:
    ts_file(tmp_path / "train.ts", [f"{0.1 * i:.1f}" for i in range(12)])
    (tmp_path / "spec.yaml").write_text("task: regress\ndata: {train: train.ts, test: train.ts, validation_split: 0.25}\nmodel: {layers: [{units: 4}]}\ntraining: {epochs: 2}\n")
    result = CliRunner().invoke(app, ["train", str(tmp_path / "spec.yaml"), "--set", f"output.dir={tmp_path / 'runs'}"])
    assert result.exit_code == 0, result.output
    assert "RMSE of the mean" in result.output and "R²" in result.output
    (run,) = (tmp_path / "runs" / "spec").iterdir()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["task"] == "regress" and metrics["test"]["samples"] == 12
    out = CliRunner().invoke(app, ["predict", str(run), str(tmp_path / "train.ts"), "--format", "json"])
    assert out.exit_code == 0, out.output
    payload = json.loads(out.stdout)
    assert payload["task"] == "regress" and payload["targets"] == ["target"] and payload["rmse"] == pytest.approx(metrics["test"]["rmse"], rel=1e-5)
    assert set(payload["predictions"][0]) == {"id", "predicted", "target"} and payload["predictions"][3]["target"] == pytest.approx(0.3)
    with np.load(run / "test_values.npz") as values:  # the test split's values in the targets' units, as predict scores them
        assert values["true"][:, 0] == pytest.approx([0.1 * i for i in range(12)], abs=1e-6)
        assert float(np.sqrt(np.mean((values["predicted"] - values["true"]) ** 2))) == pytest.approx(metrics["test"]["rmse"], rel=1e-5)
    assert_png(run / "predictions.png") and assert_png(run / "history.png")
    assert not (run / "confusion_matrix.png").exists()


def test_text_regression_reads_numeric_targets(tmp_path: Path) -> None:
    """Raw text with a number per text (`preprocessing.input: text`, `task: regress`), from CSV and JSON Lines."""
    (tmp_path / "t.csv").write_text("text,label\nsome words,0.5\nmore words here,1.5\n")
    assert load(DataFile(path=str(tmp_path / "t.csv")), OPTIONS, text=True, targets=REGRESS).labels.tolist() == [[0.5], [1.5]]
    (tmp_path / "t.jsonl").write_text('{"text": "some words", "label": 0.5}\n{"text": "more", "label": 1.5}\n')
    assert load(DataFile(path=str(tmp_path / "t.jsonl")), OPTIONS, text=True, targets=REGRESS).labels.tolist() == [[0.5], [1.5]]
    (tmp_path / "bad.csv").write_text("text,label\nsome words,high\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2, column 'label': the target 'high' is not a number"):
        load(DataFile(path=str(tmp_path / "bad.csv")), OPTIONS, text=True, targets=REGRESS)


def test_target_names_name_unnamed_targets(tmp_path: Path) -> None:
    np.savez(tmp_path / "a.npz", x=np.zeros((2, 3, 1)), y=np.array([[1.0, 2.0], [3.0, 4.0]]))
    options = spec_from_dict({"data": {"train": "x", "target_names": ["rate", "size"]}, "task": "regress"}).data
    assert load(DataFile(path=str(tmp_path / "a.npz")), options, targets=REGRESS).target_names == ["rate", "size"]
    three = spec_from_dict({"data": {"train": "x", "target_names": ["a", "b", "c"]}, "task": "regress"}).data
    with pytest.raises(DataError, match=r"`data.target_names` names 3 target\(s\), but .*a.npz has 2\. Give one name per target"):
        load(DataFile(path=str(tmp_path / "a.npz")), three, targets=REGRESS)


def test_inspect_shapes_suggests_regress_for_a_target_label_file(tmp_path: Path) -> None:
    ts_file(tmp_path / "values.ts", ["0.5", "1.5", "2.5"])
    result = CliRunner().invoke(app, ["inspect-shapes", str(tmp_path / "values.ts"), "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert trace["suggested_spec"].startswith("task: regress\n")
    assert trace["arrays"][0]["targets"] == "1 x 0.5..2.5" and trace["layers"][-1]["output_shape"] == "(batch, targets=1)"
    assert any(note.startswith("Task: regress (real values per sequence). Targets (samples, targets=1)") for note in trace["notes"])
