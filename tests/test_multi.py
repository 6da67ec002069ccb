"""Multi-input models (`inputs`): spec rules, matching samples by id, the branches and the merge, train -> predict -> inspect-shapes."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import multi
from seqcli.cli import app
from seqcli.data import SequenceData
from seqcli.errors import DataError, SpecError
from seqcli.sequences import Sequences
from seqcli.spec import load_spec, reference_rows
from tests.background import OTHER, SESSION, Context, Pending, Training, background
from tests.test_bad_inputs import assert_reported
from tests.worker import CliResult

runner = CliRunner()

# 8 samples: `motion` (2 features, 3-5 timesteps, labelled up/down) and `temp` (1 feature, 2 timesteps); temp lists the samples in reverse order.
IDS = [f"s{i}" for i in range(8)]
SPEC = """\
data:
  train: motion.jsonl
  test: motion.jsonl
  validation_split: 0
input_name: motion
inputs:
  temp:
    data:
      train: temp.jsonl
      test: temp.jsonl
    layers: [{units: 3}]
model:
  layers: [{units: 4}]
training:
  epochs: 2
  batch_size: 3
  monitor: loss
seed: 1
output:
  dir: runs
"""


def write_data(folder: Path, temp_order: list[int] | None = None, name: str = "temp.jsonl") -> None:
    rng = np.random.default_rng(0)
    motion = [{"id": i, "sequence": rng.normal(size=(3 + k % 3, 2)).round(2).tolist(), "label": "up" if k % 2 else "down"} for k, i in enumerate(IDS)]
    temp = [{"id": i, "sequence": [float(k), float(k) + 0.5]} for k, i in enumerate(IDS)]
    order = temp_order if temp_order is not None else list(reversed(range(len(IDS))))
    (folder / "motion.jsonl").write_text("".join(json.dumps(r) + "\n" for r in motion))
    (folder / name).write_text("".join(json.dumps(temp[k]) + "\n" for k in order))


def write_spec(folder: Path, text: str = SPEC) -> Path:
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return path


# --------------------------------------------------------------------------- the spec


def test_spec_reads_inputs_with_their_own_sections(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path))
    assert spec.input_name == "motion" and list(spec.inputs or {}) == ["temp"]
    temp = (spec.inputs or {})["temp"]
    assert temp.data.train.path == str(tmp_path / "temp.jsonl") and temp.data.validation is None  # resolved like `data`
    assert [layer.units for layer in temp.layers] == [3] and temp.preprocessing.maxlen is None
    assert list(spec.sections()) == ["motion", "temp"]


def test_default_spec_has_no_inputs(tmp_path: Path) -> None:
    spec = load_spec(write_spec(tmp_path, "data:\n  train: x.npy\n"))
    assert spec.inputs is None and spec.input_name == "main"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("inputs.temp.layers[0].units=0", r"`inputs\.temp\.layers\[0\]\.units` must be a positive integer\. Received: 0"),
        ("inputs.temp.layerz=[]", r"Unknown key `inputs\.temp\.layerz`.*Did you mean `inputs\.temp\.layers`\?"),
        ("input_name=temp", r"`inputs\.temp` has the name of the input that `data` describes"),
        ("input_name=2nd", r"Input name '2nd' must start with a letter"),
        ("inputs.temp.data.test=null", r"`data` has a `test` file, so `inputs\.temp\.data\.test` must be given too"),
        ("inputs.temp.layers[0].return_sequences=true", r"`inputs\.temp\.layers\[0\]\.return_sequences` is true for the branch's last layer, whose vector output is concatenated"),
        ("task=tag inputs.temp.layers[0].return_sequences=true", r"whose vector output is repeated at every timestep of the first input"),
        ("inputs={}", r"`inputs` is an empty mapping"),
    ],
)
def test_spec_rules(tmp_path: Path, change: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(write_spec(tmp_path), change.split())


def test_reference_documents_inputs() -> None:
    keys = [row[0] for row in reference_rows()]
    assert {"inputs", "inputs.NAME.data", "inputs.NAME.preprocessing", "inputs.NAME.layers", "input_name"} <= set(keys)


# --------------------------------------------------------------------------- matching samples


def data(ids: list[str], source: str) -> SequenceData:
    return SequenceData(Sequences.from_arrays([np.full((1, 1), float(k)) for k in range(len(ids))]), None, source, "jsonl", "", [f"line {k + 1}" for k in range(len(ids))], ids=ids)


def test_match_reorders_by_id() -> None:
    matched = multi.match(data(["a", "b", "c"], "first"), data(["c", "a", "b"], "other"), "other", "first")
    assert matched.ids == ["a", "b", "c"]
    assert [float(s[0, 0]) for s in matched.sequences] == [1.0, 2.0, 0.0]  # a was the other file's second sequence


def test_match_names_missing_and_extra_ids() -> None:
    with pytest.raises(DataError, match=r"Input 'temp' \(other\) does not match input 'motion'.*1 id\(s\) of first are missing from it \('b'\); it has 1 id\(s\) that first lacks \('z'\)"):
        multi.match(data(["a", "b"], "first"), data(["a", "z"], "other"), "temp", "motion")


def test_match_by_position_needs_equal_counts() -> None:
    with pytest.raises(DataError, match=r"it has 1 id\(s\) that first lacks \('2'\)"):
        multi.match(data(["0", "1"], "first"), data(["0", "1", "2"], "other"), "temp", "motion")


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def multi_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SPEC (2 epochs) on write_data's files, trained once through the CLI; the files are in ``multi_run.parent.parent.parent``. Tests only read it."""
    folder = tmp_path_factory.mktemp("multi")
    write_data(folder)
    result = runner.invoke(app, ["train", str(write_spec(folder)), "--quiet", "--set", f"output.dir={folder / 'runs'}"])
    assert result.exit_code == 0, result.output
    (run,) = (folder / "runs" / "spec").iterdir()
    return run


@background
def multi_on_other(ctx: Context) -> tuple[Path, Training, Pending[CliResult]]:
    """``(folder, training, predicted there)``: SPEC on write_data's files in ``folder``, trained in the other backend's worker,
    and `seqcli predict` of its run on both input files (JSON) in that worker."""
    folder = ctx.mktemp("multi-other")
    write_data(folder)
    training = Training(ctx.worker(OTHER), write_spec(folder), folder / "runs", "spec")
    there = training.cli_on_run("predict", "RUN", "--input", f"motion={folder / 'motion.jsonl'}", "--input", f"temp={folder / 'temp.jsonl'}", "--format", "json")
    return folder, training, there


def test_run_saves_one_preprocessing_per_input(multi_run: Path) -> None:
    state = json.loads((multi_run / "preprocessing.json").read_text())
    assert list(state) == ["motion", "temp"]
    assert (state["motion"]["n_features"], state["motion"]["maxlen"], state["motion"]["boundaries"]) == (2, 5, [5])  # lengths 3-5: bucketed by default
    assert state["temp"]["boundaries"] is None  # one length
    assert (state["temp"]["n_features"], state["temp"]["maxlen"], state["temp"]["classes"]) == (1, 2, [])  # the classes are the labelled input's
    layers = {row["name"]: row for row in json.loads((multi_run / "layers.json").read_text())}
    assert layers["motion"]["output_shape"] == "(batch, timesteps, features=2)"
    assert layers["temp"]["output_shape"] == "(batch, timesteps=2, features=1)"
    assert layers["motion_lstm_0"]["output_shape"] == "(batch, units=4)" and layers["temp_lstm_0"]["output_shape"] == "(batch, units=3)"
    assert (layers["merge"]["kind"], layers["merge"]["output_shape"]) == ("Concatenate", "(batch, units=7)")
    assert layers["output"]["output_shape"] == "(batch, classes=2)"


def predict_json(run: Path, folder: Path, *options: str) -> dict:
    result = runner.invoke(app, ["predict", str(run), "--input", f"motion={folder / 'motion.jsonl'}", "--input", f"temp={folder / 'temp.jsonl'}", "--format", "json", *options])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_predict_matches_inputs_by_id(multi_run: Path, tmp_path: Path) -> None:
    folder = multi_run.parent.parent.parent
    payload = predict_json(multi_run, folder)
    rows = payload["predictions"]
    assert [r["id"] for r in rows] == IDS  # the labelled input's order
    assert [r["label"] for r in rows] == ["down", "up"] * 4
    metrics = json.loads((multi_run / "metrics.json").read_text())
    assert payload["accuracy"] == pytest.approx(metrics["test"]["accuracy"])  # the test split is these files: training's evaluation agrees
    write_data(tmp_path, temp_order=[3, 1, 0, 2, 7, 6, 5, 4])
    assert predict_json(multi_run, tmp_path)["predictions"] == rows  # another order of the temp file: the same samples, the same predictions


def test_predict_rejects_wrong_input_names(multi_run: Path) -> None:
    folder = multi_run.parent.parent.parent
    args = ["predict", str(multi_run), "--input", f"motion={folder / 'motion.jsonl'}", "--input", f"tmp={folder / 'temp.jsonl'}"]
    assert_reported(runner.invoke(app, args), args, r"--input: unknown input\(s\) 'tmp'\. This model takes the inputs 'motion', 'temp'")
    args = ["predict", str(multi_run), "--input", f"motion={folder / 'motion.jsonl'}"]
    assert_reported(runner.invoke(app, args), args, r"no file for input\(s\) 'temp'")
    args = ["predict", str(multi_run), str(folder / "motion.jsonl")]
    assert_reported(runner.invoke(app, args), args, r"is a multi-input model: give every input by name, --input motion=FILE --input temp=FILE")
    args = ["predict", str(multi_run), "--input", "motion"]
    assert_reported(runner.invoke(app, args), args, r"--input 'motion' is not NAME=FILE")


def test_predict_rejects_input_for_one_input_run(smoke_run: Path, tmp_path: Path) -> None:
    args = ["predict", str(smoke_run), "--input", f"main={tmp_path / 'x.csv'}"]
    assert_reported(runner.invoke(app, args), args, r"--input NAME=FILE is for multi-input runs")


def test_inspect_shapes_shows_branches_and_merge(tmp_path: Path) -> None:
    write_data(tmp_path)
    result = runner.invoke(app, ["inspect-shapes", str(write_spec(tmp_path)), "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    steps = [s["name"] for s in trace["steps"]]
    assert steps[0] == "motion: read records" and "temp: pad/truncate" in steps and steps[-1] == "merge"
    assert trace["steps"][-1]["shape"] == "(batch, units=7)" and "motion 4 + temp 3" in trace["steps"][-1]["detail"]
    assert [layer["name"] for layer in trace["layers"]] == ["motion", "temp", "motion_masking", "temp_masking", "motion_lstm_0", "temp_lstm_0", "merge", "output"]
    assert trace["input_shape"] == "motion (batch, timesteps, features=2); temp (batch, timesteps=2, features=1)"
    assert {a["role"] for a in trace["arrays"]} == {"train (motion)", "test (motion)", "train (temp)", "test (temp)"}


def test_interrupted_multi_input_run_resumes_to_the_same_result(multi_run: Path, tmp_path: Path) -> None:
    """Stopped after epoch 1 of 2 and resumed: the same history and metrics as ``multi_run``, the same spec trained without a stop."""
    from seqcli import train
    from seqcli.errors import DataError as Changed
    from tests.conftest import StopAfter, untimed

    write_data(tmp_path)
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(write_spec(tmp_path), [f"output.dir={tmp_path / 'cut'}"])), StopAfter(1))
    (run,) = (tmp_path / "cut" / "spec").iterdir()
    write_data(tmp_path, temp_order=list(range(len(IDS))))  # the temp file's bytes change (another order)
    with pytest.raises(Changed, match=r"`inputs\.temp\.data\.train` \(.*temp\.jsonl\)"):
        train.prepare_resume(run)
    write_data(tmp_path)  # the original bytes again
    prepared, state = train.prepare_resume(run)
    assert state.epochs_completed == 1 and list(prepared.preps or {}) == ["motion", "temp"]
    resumed = train.fit(prepared, resume=state)
    assert [row["epoch"] for row in resumed.history] == [1, 2]
    assert untimed(resumed.history) == untimed(json.loads((multi_run / "history.json").read_text()))  # all but the wall times
    assert resumed.metrics == json.loads((multi_run / "metrics.json").read_text())


def test_other_backend_run_predicts_the_same_here(multi_on_other: tuple[Path, Training, Pending[CliResult]]) -> None:
    """Trained on the other backend (JAX by default) in a fresh process, its worker; predicted there and in this process, on its backend."""
    folder, training, predicted_there = multi_on_other  # write_data's files and SPEC in folder
    run = training.result().path
    assert json.loads((run / "run.json").read_text())["versions"]["backend"] == OTHER
    there = predicted_there.result()
    assert there.exit_code == 0, there.output
    here = predict_json(run, folder, "--backend", SESSION)
    expected = json.loads(there.stdout)
    assert [r["id"] for r in here["predictions"]] == IDS and here["accuracy"] == expected["accuracy"]
    np.testing.assert_allclose([[r["p_down"], r["p_up"]] for r in here["predictions"]], [[r["p_down"], r["p_up"]] for r in expected["predictions"]], atol=2e-6)


def test_model_pieces_belong_to_the_first_inputs_branch(tmp_path: Path) -> None:
    """`model.frontend`, `model.pooling` and `model.fcn` shape the branch of the input `data` describes; the merge counts their widths."""
    write_data(tmp_path)
    pieces = ["model.frontend={blocks: [{filters: 5, kernel_size: 3, stride: 2}]}", "model.pooling=[last, mean]", "model.fcn={blocks: [{filters: 6, kernel_size: 2}]}"]
    args = ["inspect-shapes", str(write_spec(tmp_path)), "--json", "--set", "inputs.temp.layers=[{units: 3, layer_norm: true}]"]
    result = runner.invoke(app, [*args, *(a for piece in pieces for a in ("--set", piece))])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert trace["steps"][-1]["shape"] == "(batch, units=17)" and "motion 14 + temp 3" in trace["steps"][-1]["detail"]  # 4 (last) + 4 (mean) + 6 (fcn)
    layers = {layer["name"]: layer for layer in trace["layers"]}
    assert {"motion_conv_0", "motion_pool_last", "motion_pool_mean", "motion_fcn_0", "motion_fcn_pool", "motion_concat", "temp_layer_norm_0"} <= set(layers)
    assert not any(name.startswith("temp_") and ("conv" in name or "pool" in name) for name in layers)
    assert layers["motion_conv_0"]["mask"] and layers["motion_lstm_0"]["mask"] and layers["merge"]["output_shape"] == "(batch, units=17)"
    assert not any("mask" in w for w in trace["warnings"])


def test_inspect_shapes_shows_no_model_for_an_empty_branch(tmp_path: Path) -> None:
    write_data(tmp_path)
    result = runner.invoke(app, ["inspect-shapes", str(write_spec(tmp_path)), "--json", "--set", "inputs.temp.layers=[]"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    assert trace["layers"] == [] and "`inputs.temp.layers` is empty" in trace["warnings"][0]


def test_a_multi_input_run_with_the_kernel_branch_trains_on_features_computed_once(tmp_path: Path) -> None:
    """The first input's kernel branch is fed from features computed once: the view takes every input by name beside
    them (one row of features per training sample), and the run trains and is evaluated on its test file. The view
    wires each input to its own branch when the first input's name sorts after another's (inputs of the same shape,
    so a swap would not fail), and a model with an input named like the view's own computes the features in every batch."""
    from seqcli import train

    write_data(tmp_path)
    spec = load_spec(write_spec(tmp_path), ["model.kernels={features: 168}", f"output.dir={tmp_path / 'runs'}"])
    prepared = train.prepare(spec)
    view, extra = prepared.trainer(prepared.model)
    assert sorted(view.input) == ["kernel_features", "motion", "temp"] and extra["train"]["kernel_features"].shape == (8, 168)
    result = train.fit(prepared)
    assert result.metrics["test"]["samples"] == 8 and len(result.history) == 2
    swapped = SPEC.replace("input_name: motion", "input_name: zeta").replace("  temp:\n", "  alpha:\n")  # the first input's name sorts last
    rows = [json.loads(line) for line in (tmp_path / "motion.jsonl").read_text().splitlines()]
    other = [{**r, "sequence": [[-2 * v + 1 for v in step] for step in r["sequence"]]} for r in rows]  # the same shapes as motion's
    (tmp_path / "other.jsonl").write_text("".join(json.dumps(r) + "\n" for r in other))
    prepared = train.prepare(load_spec(write_spec(tmp_path, swapped), ["model.kernels={features: 168}", "inputs.alpha.data={train: other.jsonl, test: other.jsonl}"]))
    view, extra = prepared.trainer(prepared.model)
    split = prepared.splits["train"]
    x = {p.name: p.batch(np.arange(8), 5) for p in prepared.packed(split, named=True)}  # the same shapes: a swap would not fail
    np.testing.assert_allclose(view.predict_on_batch(x | extra["train"]), prepared.model.predict_on_batch(x), atol=1e-5)
    named = write_spec(tmp_path, SPEC.replace("  temp:\n", "  kernel_features:\n"))  # an input with the view's input name: no view
    prepared = train.prepare(load_spec(named, ["model.kernels={features: 168}"]))
    assert prepared.trainer(prepared.model) == (prepared.model, {})
