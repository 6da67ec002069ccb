"""Per-timestep tagging (`task: tag`): padding never counts, predictions per real timestep, through the real pipeline and CLI."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import batching, train
from seqcli.cli import app
from seqcli.spec import load_spec
from tests.background import OTHER, SESSION, Context, Training, background
from tests.conftest import assert_png, numpy_batches, untimed

# Two tiny labelled sequences of 3 and 1 timesteps (one feature), tags a/b; two unlabelled ones to predict.
TRAIN = [
    {"id": "u", "sequence": [0.5, 1.0, -1.0], "label": ["a", "b", "a"]},
    {"id": "v", "sequence": [2.0], "label": ["b"]},
]
SPEC = """\
task: tag
data:
  train: train.jsonl
  test: train.jsonl
  validation_split: 0
preprocessing:
  padding: {padding}
model:
  layers: [{{units: 4}}]
training:
  epochs: 2
  batch_size: 4
  monitor: loss
  learning_rate: 0.05
seed: 3
output:
  dir: runs
"""


def write_tagging(tmp_path: Path, padding: str = "post", extra: str = "") -> Path:
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in TRAIN))
    (tmp_path / "predict.jsonl").write_text('{"id": "p", "sequence": [1.0, 0.0, 2.0, 1.0]}\n{"id": "q", "sequence": [3.0]}\n')
    spec = tmp_path / "tag.yaml"
    spec.write_text(SPEC.format(padding=padding) + extra)
    return spec


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_padding_changes_neither_loss_nor_accuracy(tmp_path: Path, padding: str) -> None:
    """The same batch padded to 3 (its longest sequence) and to 9 timesteps: Keras' loss and accuracy are the same,
    and the loss is the mean cross-entropy over the 4 real timesteps computed by hand."""
    prepared = train.prepare(load_spec(write_tagging(tmp_path, padding), [f"output.dir={tmp_path}"]))
    model, prep, split = prepared.model, prepared.prep, prepared.splits["train"]
    assert [y.tolist() for y in split.y] == [[0, 1, 0], [1]]
    results = []
    for width in (3, 9):
        plan = batching.Plan([np.array([0, 1])], [width])
        x, y = numpy_batches(batching.dataset([batching.Packed(prep, split.sequences)], split.y, lambda _, plan=plan: plan, range(1), backend=prepared.backend))[0]
        assert tuple(y.shape) == (2, width)
        if width == 3:  # padded target cells are 0 and sit where the padded input cells are
            assert np.asarray(y).tolist() == ([[0, 1, 0], [1, 0, 0]] if padding == "post" else [[0, 1, 0], [0, 0, 1]])
        results.append(model.evaluate(batching.dataset([batching.Packed(prep, split.sequences)], split.y, lambda _, plan=plan: plan, range(1), backend=prepared.backend), verbose=0, return_dict=True))
        if width == 3:
            probs = np.asarray(model.predict_on_batch(np.asarray(x)))  # (batch=2, timesteps=3, classes=2)
            real = [probs[0, 0, 0], probs[0, 1, 1], probs[0, 2, 0], probs[1, 0 if padding == "post" else 2, 1]]  # true class of each real timestep
            by_hand = float(-np.mean(np.log(real)))
            accuracy = np.mean([probs[0, 0].argmax() == 0, probs[0, 1].argmax() == 1, probs[0, 2].argmax() == 0, probs[1, 0 if padding == "post" else 2].argmax() == 1])
    assert results[0]["loss"] == pytest.approx(results[1]["loss"], rel=1e-5)
    assert results[0]["accuracy"] == pytest.approx(results[1]["accuracy"])
    assert results[0]["loss"] == pytest.approx(by_hand, rel=1e-5)
    assert results[0]["accuracy"] == pytest.approx(accuracy)
    evaluated = prepared.evaluate(model, split)  # seqcli's own report: over the 4 real timesteps
    assert evaluated["loss"] == pytest.approx(by_hand, rel=1e-4)
    assert evaluated["samples"] == 4 and evaluated["sequences"] == 2


def test_tag_targets_truncate_like_the_sequences(tmp_path: Path) -> None:
    spec = load_spec(write_tagging(tmp_path), [f"output.dir={tmp_path}", "preprocessing.maxlen=2", "preprocessing.truncating=pre"])
    split = train.prepare(spec).splits["train"]
    assert [s[:, 0].tolist() for s in split.sequences] == [pytest.approx([1.0, -1.0], abs=5), pytest.approx([2.0], abs=5)]
    assert [y.tolist() for y in split.y] == [[1, 0], [1]]  # the last two timesteps' tags b, a


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tagging spec (2 epochs) trained once through the CLI; tests only read the run."""
    folder = tmp_path_factory.mktemp("tag")
    result = CliRunner().invoke(app, ["train", str(write_tagging(folder)), "--quiet", "--set", f"output.dir={folder / 'runs'}"])
    assert result.exit_code == 0, result.output
    (run,) = (folder / "runs" / "tag").iterdir()
    return run


@background
def tag_on_other(ctx: Context) -> tuple[Path, Training]:
    """``(folder, training)``: the tagging spec and its data in ``folder``, trained in the other backend's worker."""
    folder = ctx.mktemp("tag-other")
    return folder, Training(ctx.worker(OTHER), write_tagging(folder), folder / "runs", "tag")


def test_train_then_predict_one_row_per_real_timestep(tag_run: Path, tmp_path: Path) -> None:
    run, runner = tag_run, CliRunner()
    write_tagging(tmp_path)  # train.jsonl and predict.jsonl
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    assert metrics["samples"] == 4 and metrics["sequences"] == 2
    assert sum(map(sum, metrics["confusion_matrix"]["rows_true_columns_predicted"])) == 4  # per timestep: confusion_matrix.png plots this
    assert_png(run / "confusion_matrix.png", min_width=600) and assert_png(run / "history.png")

    out = runner.invoke(app, ["predict", str(run), str(tmp_path / "predict.jsonl"), "--format", "csv", "--quiet"])
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.output)))
    # p has 4 timesteps but maxlen is 3 (the longest training sequence): its 4th is truncated (post) and not predicted.
    assert [(r["id"], r["timestep"]) for r in rows] == [("p", "0"), ("p", "1"), ("p", "2"), ("q", "0")]
    assert list(rows[0]) == ["id", "timestep", "predicted", "p_a", "p_b"]
    for r in rows:
        assert float(r["p_a"]) + float(r["p_b"]) == pytest.approx(1.0, abs=1e-5)
        assert r["predicted"] == ("a" if float(r["p_a"]) > float(r["p_b"]) else "b")

    labelled = runner.invoke(app, ["predict", str(run), str(tmp_path / "train.jsonl"), "--format", "json"])
    payload = json.loads(labelled.output)
    assert [p["label"] for p in payload["predictions"]] == ["a", "b", "a", "b"]
    hits = [p["label"] == p["predicted"] for p in payload["predictions"]]
    assert payload["accuracy"] == pytest.approx(np.mean(hits))
    assert payload["accuracy"] == pytest.approx(metrics["accuracy"])

    written = runner.invoke(app, ["predict", str(run), str(tmp_path / "train.jsonl"), "--output", str(tmp_path / "tags.csv")])
    assert " ".join(written.stdout.split()) == f"wrote 4 per-timestep predictions to {tmp_path / 'tags.csv'}; accuracy {metrics['accuracy']:.4f}"  # Rich wraps long lines
    assert len((tmp_path / "tags.csv").read_text().splitlines()) == 1 + 4

    table = runner.invoke(app, ["predict", str(run), str(tmp_path / "train.jsonl")])
    assert table.exit_code == 0, table.output
    assert "one label per timestep" in table.output
    assert f"accuracy: {metrics['accuracy']:.4f} on 4 labelled timesteps of 2 sequences" in table.output


def test_inspect_shapes_shows_the_per_timestep_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["inspect-shapes", str(write_tagging(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.output)
    output = next(layer for layer in trace["layers"] if layer["name"] == "output")
    assert output["output_shape"] == "(batch, timesteps, classes=2)"  # bucketed: each batch has its own width
    assert output["mask"] is True
    assert any(note.startswith("Task: tag (one label per timestep)") for note in trace["notes"])
    assert not any("return_sequences" in w for w in trace["warnings"])
    assert trace["arrays"][0]["class_counts"] == {"a": 2, "b": 2}  # over timesteps


def test_tagging_trains_on_the_other_backend_and_predicts_the_same_here(tag_on_other: tuple[Path, Training]) -> None:
    """Trained in a fresh process on the other backend, its worker (JAX: a PyDataset that pads the targets); its test metrics match a prediction here."""
    folder, training = tag_on_other  # write_tagging's files in folder
    run = training.result().path
    assert json.loads((run / "run.json").read_text())["versions"]["backend"] == OTHER
    metrics = json.loads((run / "metrics.json").read_text())["test"]
    here = CliRunner().invoke(app, ["predict", str(run), str(folder / "train.jsonl"), "--format", "json", "--backend", SESSION])
    assert here.exit_code == 0, here.output
    rows = json.loads(here.stdout)["predictions"]
    assert json.loads(here.stdout)["accuracy"] == pytest.approx(metrics["accuracy"])
    true = [0, 1, 0, 1]
    by_hand = -np.mean([np.log(row[f"p_{'ab'[t]}"]) for row, t in zip(rows, true, strict=True)])
    assert metrics["loss"] == pytest.approx(by_hand, abs=1e-5)


def test_interrupted_tagging_run_resumes_to_the_same_result(tag_run: Path, tmp_path: Path) -> None:
    """Stopped after epoch 1 of 2 and resumed: the same history and metrics as ``tag_run``, the same spec trained without a stop."""
    from tests.conftest import StopAfter

    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(write_tagging(tmp_path), [f"output.dir={tmp_path / 'cut'}"])), StopAfter(1))
    (run,) = (tmp_path / "cut" / "tag").iterdir()
    prepared, state = train.prepare_resume(run)
    assert prepared.prep.task == "tag" and state.epochs_completed == 1
    resumed = train.fit(prepared, resume=state)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert untimed(resumed.history) == untimed(json.loads((tag_run / "history.json").read_text()))  # all but the wall times
    assert resumed.metrics == json.loads((tag_run / "metrics.json").read_text())
