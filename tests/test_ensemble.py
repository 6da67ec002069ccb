"""Ensembles over seeds (`training.ensemble: N`): N members in one run directory, each resumable; the ensemble's
metrics are those of the mean of the members' outputs, and predict and export run the whole ensemble.

Most tests read the session's one ensemble (conftest.smoke_ensemble: 2 members, 2 epochs each); the expected values are
computed here from each member's own saved model, independently of the code under test.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from rich.console import Console
from typer.testing import CliRunner

from seqcli import predict, render, train
from seqcli.cli import app
from seqcli.errors import RunError, SpecError
from seqcli.model import build_model, load_checkpoint
from seqcli.rundir import RunDir, describe_status
from seqcli.spec import load_spec
from tests.conftest import BACKEND, ENSEMBLE, ROOT, SMOKE_SPEC, SMOKE_TEST, StopAfter, copy_run, padded, untimed

GOLDEN = ROOT / "tests" / "golden"
UPDATE = os.environ.get("SEQCLI_UPDATE_GOLDEN") == "1"  # rewrite the golden files instead of comparing
MEMBER_1_FILES = ("checkpoints", "history.csv", "history.json")  # what member 1 of an ensemble owns in the run directory


def invoke(*args: object) -> Any:
    return CliRunner().invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})


def member_model(run: Path, member: int, which: str = "best") -> Any:
    """Member ``member``'s own saved model, loaded with Keras alone."""
    folder = run if member == 1 else run / "members" / str(member)
    return load_checkpoint(folder / "checkpoints" / f"{which}.keras", compile=False)


def member_files(run: Path) -> dict[str, bytes]:
    """Every file member 1 owns, by path: its checkpoints and history."""
    files = [p for name in MEMBER_1_FILES for p in ([run / name] if (run / name).is_file() else sorted((run / name).rglob("*")))]
    return {str(p.relative_to(run)): p.read_bytes() for p in files if p.is_file()}


# --------------------------------------------------------------------------- the run


def test_members_train_with_their_own_seeds_in_one_run_directory(smoke_ensemble: tuple[Any, Any]) -> None:
    _, result = smoke_ensemble
    run = result.run.path
    assert [(m.member, m.seed, len(m.history)) for m in result.members] == [(1, 0, 2), (2, 1, 2)]
    assert {"best.keras", "last.keras"} <= {p.name for p in (run / "checkpoints").iterdir()}  # member 1: a run of one model's layout
    assert {"best.keras", "last.keras"} <= {p.name for p in (run / "members" / "2" / "checkpoints").iterdir()}
    assert untimed(json.loads((run / "members" / "2" / "history.json").read_text())) == untimed(result.members[1].history)
    assert untimed(result.members[0].history) != untimed(result.members[1].history)  # another seed: other weights, batches, curves
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and [(m["member"], m["seed"], m["status"], m["epochs_completed"]) for m in info["members"]] == [(1, 0, "completed", 2), (2, 1, "completed", 2)]
    assert not (run / "members" / "1").exists()


def test_a_run_of_one_model_keeps_its_layout(smoke_run: Path) -> None:
    """`ensemble: 1` (the default) writes what a run always held: no members/, no member records, the same metrics.json keys."""
    assert not (smoke_run / "members").exists()
    info = json.loads((smoke_run / "run.json").read_text())
    assert "members" not in info and "member" not in info
    assert list(json.loads((smoke_run / "metrics.json").read_text())) == ["task", "checkpoint", "best_epoch", "monitor", "validation", "test"]
    assert "  ensemble: 1\n" in (smoke_run / "spec.yaml").read_text()


def test_a_completed_ensemble_missing_a_member_model_is_refused_with_the_fix(smoke_ensemble: tuple[Any, Any], tmp_path: Path) -> None:
    run = copy_run(smoke_ensemble[1].run.path, tmp_path)
    for file in (run / "members" / "2" / "checkpoints").iterdir():
        file.unlink()
    with pytest.raises(RunError, match=r"is a completed ensemble of 2 members, but member\(s\) 2 have no best model in members/2/checkpoints/ \(deleted or moved\)\. Train again\."):
        predict.load_run(run)


def test_ensemble_metrics_are_those_of_the_mean_of_the_members_probabilities(smoke_ensemble: tuple[Any, Any]) -> None:
    prepared, result = smoke_ensemble
    run = result.run.path
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["ensemble"] == 2 and "best_epoch" not in metrics  # each member has its own best epoch
    models = [member_model(run, 1), member_model(run, 2)]
    for role in ("validation", "test"):
        split = prepared.splits[role]
        own = [np.asarray(prepared.outputs(m, split)) for m in models]  # each member's own probabilities
        mean = (own[0] + own[1]) / 2  # (samples, classes)
        y = np.asarray(split.y)
        assert metrics[role]["accuracy"] == pytest.approx(float((mean.argmax(axis=1) == y).mean()))
        assert metrics[role]["loss"] == pytest.approx(float(-np.log(np.clip(mean[np.arange(len(y)), y], 1e-7, 1)).mean()), abs=1e-5)
        for k, entry in enumerate(metrics["members"]):
            assert entry[role]["accuracy"] == pytest.approx(float((own[k].argmax(axis=1) == y).mean()))
        accuracies = np.array([entry[role]["accuracy"] for entry in metrics["members"]])
        spread = metrics["spread"][role]["accuracy"]
        assert spread == pytest.approx({"min": accuracies.min(), "median": float(np.median(accuracies)), "max": accuracies.max(), "std": float(accuracies.std())})
    assert [(m["member"], m["seed"], m["best_epoch"], m["epochs"]) for m in metrics["members"]] == [(1, 0, result.members[0].best_epoch, 2), (2, 1, result.members[1].best_epoch, 2)]
    assert result.best_value == metrics["validation"]["loss"]  # what a tune trial of it scores (monitor val_loss)


# --------------------------------------------------------------------------- predict, padding, export


def check_predict(run: Path, checkpoint: str, *, members: tuple[int, ...] = (1, 2), epochs: dict[int, int] | None = None) -> predict.Prediction:
    """``predict RUN --checkpoint CHECKPOINT`` on the smoke test file gives the mean of the members' own probabilities:
    the ``.keras`` models of ``members``, and the committed state of the member -> epoch of ``epochs``."""
    loaded = predict.load_run(run, checkpoint)
    got = predict.predict_file(loaded, SMOKE_TEST)
    split = loaded.pipeline.prepare(predict.read_input(loaded, SMOKE_TEST)[0])
    models = [member_model(run, k, checkpoint) for k in members]
    for k, epoch in (epochs or {}).items():
        model = build_model(loaded.spec, loaded.pipeline.preps)
        model.set_weights([state for name, state in sorted(RunDir(run).read_state(epoch, member=k).items(), key=lambda item: int(item[0].split(".")[1])) if name.startswith("model.")])
        models.append(model)
    own = [loaded.pipeline.outputs(m, split) for m in models]  # (samples, classes) each
    np.testing.assert_allclose(got.values, (own[0] + own[1]) / 2, atol=1e-6)
    assert not np.allclose(own[0], own[1], atol=1e-3)  # the members differ: the mean is not one of them
    return got


def test_predict_averages_the_members_probabilities(smoke_ensemble: tuple[Any, Any]) -> None:
    _, result = smoke_ensemble
    run = result.run.path
    got = check_predict(run, "best")
    payload = json.loads(predict.to_json(got))
    assert payload["ensemble"] == {"members": [1, 2], "seeds": [0, 1], "of": 2}
    assert "An ensemble of 2 members (seeds 0-1): the predictions are the mean of their class probabilities." in payload["notes"]
    assert got.accuracy == json.loads((run / "metrics.json").read_text())["test"]["accuracy"]  # predict on the test file scores what training evaluated


@pytest.mark.slow  # loads every member's other model
def test_checkpoint_last_applies_to_every_member(smoke_ensemble: tuple[Any, Any]) -> None:
    check_predict(smoke_ensemble[1].run.path, "last")


def test_predict_of_a_single_run_is_unchanged(smoke_run: Path) -> None:
    loaded = predict.load_run(smoke_run)
    got = predict.predict_file(loaded, SMOKE_TEST)
    split = loaded.pipeline.prepare(predict.read_input(loaded, SMOKE_TEST)[0])
    np.testing.assert_array_equal(got.values, loaded.pipeline.outputs(load_checkpoint(smoke_run / "checkpoints" / "best.keras", compile=False), split))
    assert got.ensemble is None and "ensemble" not in json.loads(predict.to_json(got)) and loaded.members == []


def test_padding_changes_no_prediction_of_the_ensemble(smoke_ensemble: tuple[Any, Any]) -> None:
    """Appending padding (wider batches) does not change the ensemble's outputs; each sequence alone, unpadded, gives the same."""
    prepared, result = smoke_ensemble
    model = predict.load_run(result.run.path).model
    prep, sequences = prepared.prep, list(prepared.splits["test"].sequences)
    longest = max(len(s) for s in sequences)
    reference = np.asarray(model(padded(prep, sequences, longest)))  # (batch, classes)
    for width in (longest + 1, longest + 9):
        np.testing.assert_allclose(np.asarray(model(padded(prep, sequences, width))), reference, atol=1e-5, err_msg=f"width {width}")
    for i in (0, len(sequences) - 1):
        np.testing.assert_allclose(np.asarray(model(padded(prep, [sequences[i]], len(sequences[i]))))[0], reference[i], atol=1e-5)


@pytest.mark.slow  # an ONNX export and its check (tests/test_export.py exports a single run in the fast suite)
@pytest.mark.skipif(BACKEND != "tensorflow", reason="export runs on the TensorFlow backend; the in-process tests run on another")
def test_an_exported_ensemble_predicts_what_predict_does(smoke_ensemble: tuple[Any, Any], tmp_path: Path) -> None:
    from tests.test_export import parity, smoke_sequences

    _, result = smoke_ensemble
    differences = parity(result.run.path, "onnx", tmp_path, smoke_sequences(), SMOKE_TEST)
    assert max(differences) <= 1e-5
    description = json.loads((tmp_path / "model.onnx.json").read_text())
    assert description["outputs"]["ensemble"] == "the mean of 2 members' outputs (seeds 0, 1), computed inside the model"


# --------------------------------------------------------------------------- resume


def test_an_ensemble_interrupted_in_its_second_member_resumes_it_alone_to_the_same_result(smoke_ensemble: tuple[Any, Any], tmp_path: Path) -> None:
    _, whole = smoke_ensemble
    out = tmp_path / "runs"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*ENSEMBLE, f"output.dir={out}"])), StopAfter(1, member=2))
    (run,) = (out / "smoke").iterdir()
    info = json.loads((run / "run.json").read_text())
    assert (info["status"], info["member"], info["epochs_completed"]) == ("interrupted", 2, 1)
    assert [m["status"] for m in info["members"]] == ["completed", "training"]
    assert describe_status(run, info) == f"Run {run} was interrupted in member 2 of 2 after epoch 1; resume it with `seqcli train --resume {run}`."
    before = member_files(run)
    partial = check_predict(run, "best", members=(1,), epochs={2: 1})  # member 1's best.keras and member 2's epoch-1 state
    assert "Predicting with every member's best checkpoint committed so far." in partial.notes[-1]

    prepared, state = train.prepare_resume(run)
    assert (state.member, state.members, state.epochs_completed) == (2, 2, 1)
    resumed = train.fit(prepared, resume=state)

    assert member_files(run) == before  # member 1 is not trained again: its files are untouched, byte for byte
    assert [untimed(m.history) for m in resumed.members] == [untimed(m.history) for m in whole.members]  # bit-identical
    assert resumed.metrics == whole.metrics
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_resuming_says_which_member_goes_on(tmp_path: Path) -> None:
    from seqcli.cli import _resuming

    state = train.Resume(RunDir(tmp_path), 1, [], "crashed", member=2, members=3)
    assert _resuming(state, 2) == f"resuming {tmp_path}, which crashed, in member 2 of 3 after epoch 1"
    state = train.Resume(RunDir(tmp_path), 0, [], "crashed", member=3, members=3)  # killed between two members
    assert _resuming(state, 2) == f"resuming {tmp_path}, which crashed, with member 3 of 3"
    info = {"status": "interrupted", "member": 2, "epochs_completed": 2, "members": [{"status": "completed"}, {"status": "completed"}, {"status": "pending"}]}
    assert describe_status(tmp_path, info) == f"Run {tmp_path} was interrupted after member 2 of 3 completed; resume it with `seqcli train --resume {tmp_path}`."


# --------------------------------------------------------------------------- runs, compare, console


def test_runs_and_compare_show_the_member_count_and_the_ensemble_metrics(smoke_ensemble: tuple[Any, Any], smoke_run: Path) -> None:
    _, result = smoke_ensemble
    run = result.run.path
    metrics = json.loads((run / "metrics.json").read_text())
    (listed,) = json.loads(invoke("runs", run, "--json").stdout)
    assert (listed["members"], listed["best_epoch"], listed["scores"]["accuracy"]) == (2, None, metrics["test"]["accuracy"])
    assert listed["monitored"] == metrics["validation"]["loss"]
    table = invoke("runs", run).stdout
    assert table.splitlines()[1].split()[:3] == ["experiment/run", "status", "members"]
    compared = json.loads(invoke("compare", run, smoke_run, "--json").stdout)
    assert compared["metrics"]["ensemble members"] == [2, 1]
    assert compared["metrics"]["test accuracy"][0] == metrics["test"]["accuracy"]
    assert compared["spec_differences"]["training.ensemble"] == [2, 1]


def test_the_summary_lists_each_member_the_ensemble_and_the_spread() -> None:
    """Golden console output (tests/golden/ensemble_summary.txt) of an ensemble's training summary, from fixed figures."""
    def report(loss: float, accuracy: float, f1: float) -> dict[str, Any]:
        return {"loss": loss, "accuracy": accuracy, "macro_f1": f1, "samples": 12}

    members = [train.MemberResult(k, k - 1, [{"epoch": e, "val_loss": 1.0} for e in range(1, 4)], 3 if k != 2 else 2, k == 2) for k in (1, 2, 3)]
    scores = [(report(0.5, 0.85, 0.84), report(0.45, 0.8333, 0.82)), (report(0.6, 0.75, 0.7), report(0.52, 0.9167, 0.91)), (report(0.55, 0.8, 0.8), report(0.5, 0.9, 0.89))]
    entries = [{"member": m.member, "seed": m.seed, "validation": v, "test": t} for m, (v, t) in zip(members, scores, strict=True)]
    metrics = {"task": "classify", "ensemble": 3, "monitor": "val_loss", "validation": report(0.48, 0.85, 0.85), "test": report(0.44, 0.9167, 0.91), "members": entries}
    metrics["spread"] = {role: train.spread([e[role] for e in entries]) for role in ("validation", "test")}
    result = train.TrainResult(RunDir(Path("runs/smoke/20260102-100000-aaaaaa")), members[0].history, metrics, 3, 12.34, members=members)
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(render.train_result(result))
    text = "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()).strip() + "\n"  # type: ignore[attr-defined]
    if UPDATE:
        (GOLDEN / "ensemble_summary.txt").write_text(text)
    assert text == (GOLDEN / "ensemble_summary.txt").read_text()
    assert "test accuracy 0.9167 (members 0.8333-0.9167, median 0.9000, std 0.0360)" in text


def test_inspect_shapes_names_the_members_and_their_seeds() -> None:
    result = invoke("inspect-shapes", SMOKE_SPEC, "--set", "training.ensemble=3", "--set", "seed=5", "--json")
    assert result.exit_code == 0, result.output
    (note,) = [n for n in json.loads(result.stdout)["notes"] if n.startswith("Ensemble")]
    assert "3 models like the one above, member k trained with seed 5 + k - 1 (seeds 5-7)" in note and "costs 3 times" in note


# --------------------------------------------------------------------------- the spec


@pytest.mark.parametrize(("value", "message"), [
    (0, r"`training\.ensemble` must be a positive integer\. Received: 0"),
    (51, r"`training\.ensemble` is too large: at most 50 \(each member is a full training\)"),
    ("three", r"`training\.ensemble` must be an integer"),
])
def test_a_bad_ensemble_size_is_one_paragraph_naming_the_field(value: object, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(SMOKE_SPEC, [f"training.ensemble={value}"])


def test_member_seeds_past_the_largest_seed_are_refused() -> None:
    with pytest.raises(SpecError, match=r"`training\.ensemble: 3` trains members with seeds 4294967294\.\.4294967296, but seeds are at most 4,294,967,295 .* Lower `seed` to 4,294,967,293 or less"):
        load_spec(SMOKE_SPEC, ["training.ensemble=3", "seed=4294967294"])
    result = invoke("validate", SMOKE_SPEC, "--set", "training.ensemble=3", "--set", "seed=4294967294")
    assert result.exit_code == 1 and "Traceback" not in result.output and "error: " in result.output


# --------------------------------------------------------------------------- slow: more trainings


@pytest.mark.slow  # two more ensemble trainings
def test_a_completed_ensemble_trained_further_extends_every_member_to_a_longer_ensemble(tmp_path: Path) -> None:
    """`--resume RUN --set training.epochs=3` on a completed 2-epoch ensemble trains each member on from its epoch 2, and
    gives the uninterrupted 3-epoch ensemble exactly."""
    settings = [*ENSEMBLE, "training.early_stopping=null"]
    longer = train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, "training.epochs=3", f"output.dir={tmp_path / 'longer'}"])))
    first = train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'runs'}"])))
    run = first.run.path
    prepared, state = train.prepare_resume(run, None, ["training.epochs=3"])
    assert (state.status, state.member, state.epochs_completed, state.extended_from) == ("completed", 1, 2, 2)
    extended = train.fit(prepared, resume=state)
    assert [untimed(m.history) for m in extended.members] == [untimed(m.history) for m in longer.members]  # bit-identical
    assert extended.metrics == longer.metrics
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "completed" and [(m["status"], m["epochs_completed"]) for m in info["members"]] == [("completed", 3), ("completed", 3)]
    assert {"best.keras", "last.keras"} <= {p.name for p in (run / "members" / "2" / "checkpoints").iterdir()}


@pytest.mark.slow  # trains a tagger ensemble
def test_a_per_timestep_ensemble_averages_every_timestep(tmp_path: Path) -> None:
    """task: tag (experiments/segments.yaml): the ensemble's metrics and predictions are those of the members' probabilities
    averaged at every real timestep."""
    from seqcli.tasks.base import flat

    sets = ["training.epochs=1", "training.ensemble=2", "model.layers[0].units=4", "preprocessing.maxlen=20", f"output.dir={tmp_path}"]
    prepared = train.prepare(load_spec(ROOT / "experiments" / "segments.yaml", sets))
    result = train.fit(prepared)
    run = result.run.path
    split = prepared.splits["test"]
    own = [flat(prepared.outputs(member_model(run, k), split)) for k in (1, 2)]  # (real timesteps, classes)
    mean = (own[0] + own[1]) / 2
    y = flat(split.y).reshape(-1)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == pytest.approx(float((mean.argmax(axis=1) == y).mean()))
    assert [m["test"]["accuracy"] for m in metrics["members"]] == pytest.approx([float((o.argmax(axis=1) == y).mean()) for o in own])
    loaded = predict.load_run(run)
    got = predict.predict(loaded, prepared.splits["test"].data)
    np.testing.assert_allclose(got.values, mean, atol=1e-6)


@pytest.mark.slow  # trains a regression ensemble
def test_a_regression_ensemble_averages_the_predictions(tmp_path: Path) -> None:
    from tests.test_regress import ts_file

    data = ts_file(tmp_path / "train.ts", [f"{0.1 * i:.1f}" for i in range(24)])
    spec = tmp_path / "spec.yaml"
    spec.write_text(f"task: regress\ndata: {{train: {data}, test: {data}, validation_split: 0.25}}\nmodel: {{layers: [{{units: 4}}]}}\ntraining: {{epochs: 2, ensemble: 2}}\n")
    prepared = train.prepare(load_spec(spec, [f"output.dir={tmp_path / 'runs'}"]))
    result = train.fit(prepared)
    run = result.run.path
    split = prepared.splits["test"]
    own = [prepared.task.predictions(prepared.outputs(member_model(run, k), split), prepared.prep) for k in (1, 2)]  # (samples, targets), the targets' units
    mean = (own[0] + own[1]) / 2
    true = prepared.task.predictions(np.asarray(split.y), prepared.prep)
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["rmse"] == pytest.approx(float(np.sqrt(np.mean((mean - true) ** 2))), rel=1e-5)
    np.testing.assert_allclose(RunDir(run).read_arrays("test_values.npz")["predicted"], mean, rtol=1e-5)
    np.testing.assert_allclose(predict.predict_file(predict.load_run(run), data).values, mean, rtol=1e-5)
    rmses = [m["test"]["rmse"] for m in metrics["members"]]
    assert metrics["spread"]["test"]["rmse"]["min"] == min(rmses) and metrics["spread"]["test"]["rmse"]["max"] == max(rmses)


@pytest.mark.slow  # a tuning of two ensemble trials
def test_a_tune_trial_of_an_ensemble_scores_the_ensemble(tmp_path: Path) -> None:
    from tests.test_tune import run_tune

    found = run_tune(tmp_path / "runs", 2, "--set", "training.ensemble=2", "--no-prune")
    for row in found["trials"]:
        metrics = json.loads((Path(row["run"]) / "metrics.json").read_text())
        assert metrics["ensemble"] == 2 and row["value"] == metrics["validation"]["loss"]
