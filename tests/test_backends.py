"""Keras backends: how `backend: auto` chooses, and a run predicts the same whichever backend loads it.

This test process runs on one backend (see conftest.py); the other one runs in a worker process (tests/background.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import backend, predict, train
from seqcli.backend import BACKENDS, import_keras
from seqcli.cli import app
from seqcli.errors import RunError
from seqcli.spec import load_spec
from tests.background import OTHER, SESSION, FreshProcess, Pending, Training, only_run
from tests.conftest import SMOKE_SPEC, SMOKE_TEST, untimed
from tests.worker import CliResult, Worker


def probabilities(payload: dict) -> np.ndarray:
    return np.array([[row[f"p_{name}"] for name in payload["classes"]] for row in payload["predictions"]])


BUCKETED = backend.Workload(shapes=10, steps=6507, units=32, epochs=4)  # benchmark 1's data and LSTM(32): 10 shared widths, 6,507 steps per epoch


@pytest.mark.parametrize(
    ("declared", "env", "workload", "expected"),
    [
        ("auto", None, None, "jax"),
        ("auto", None, BUCKETED, "tensorflow"),  # compiling: 10 x 1.6 s = 16 s; saves 0.65 s per epoch: 2.6 s in 4 epochs
        ("auto", None, backend.Workload(10, 6507, 32, 25), "jax"),  # 25 x 0.6507 = 16.3 s >= 16 s
        ("auto", None, backend.Workload(10, 6507, 32, 24), "tensorflow"),  # 15.6 s < 16 s
        ("auto", None, backend.Workload(10, 6507, 128, 7), "jax"),  # LSTM(128) saves 4x as much: 7 x 2.6 s >= 16 s
        ("auto", "jax", BUCKETED, "jax"),
        ("auto", "torch", None, "jax"),  # not one of ours: the rule decides
        ("tensorflow", "jax", None, "tensorflow"),
        ("jax", None, BUCKETED, "jax"),
    ],
)
def test_auto_backend_follows_keras_backend_then_whether_compiling_pays(
    monkeypatch: pytest.MonkeyPatch, declared: str, env: str | None, workload: backend.Workload | None, expected: str
) -> None:
    if env is None:
        monkeypatch.delenv("KERAS_BACKEND", raising=False)
    else:
        monkeypatch.setenv("KERAS_BACKEND", env)
    assert backend.choose_backend(declared, workload)[0] == expected


def test_auto_backend_gives_its_reckoning(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert backend.choose_backend("auto", BUCKETED)[1] == (
        "auto: length bucketing gives 10 batch shapes to compile for JAX (about 16 s, less from the cache), "
        "which would not pay back within 4 epochs (JAX saves about 0.65 s per epoch)"
    )
    assert backend.choose_backend("auto", backend.Workload(10, 6507, 32, 30))[1] == (
        "auto: length bucketing gives 10 batch shapes to compile for JAX (about 16 s, less from the cache), "
        "which pays back within the 30 epochs: JAX then saves about 0.65 s per epoch"
    )


def test_compile_cache_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEQCLI_CACHE_DIR", str(tmp_path))
    assert backend.compile_cache_dir() == tmp_path / "jax"
    monkeypatch.setenv("SEQCLI_CACHE_DIR", "")
    assert backend.compile_cache_dir() is None  # set but empty: no cache
    monkeypatch.delenv("SEQCLI_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert backend.compile_cache_dir() == tmp_path / "xdg" / "seqcli" / "jax"



def test_compile_cache_is_skipped_where_it_cannot_be_written(tmp_path: Path) -> None:
    """JAX would warn at every compile; seqcli runs without the cache instead."""
    (tmp_path / "a-file").write_text("")
    assert backend._writable(tmp_path / "new" / "jax")  # created on first use
    assert not backend._writable(tmp_path / "a-file" / "jax")


@pytest.mark.slow  # a fresh JAX process (about 12 s) after the JAX worker's smoke training
def test_jax_reuses_compiled_programs_from_its_cache_and_trains_the_same(smoke_on_jax: Training, jax_cache_reuse: tuple[Path, Pending[FreshProcess]]) -> None:
    """Two trainings on JAX with one cache folder: the first (in the JAX worker) fills it, the second, in a fresh process,
    loads every program from it and gets the same history."""
    first = smoke_on_jax.result()
    assert any(name.startswith("jit_") for name in first.compiled)  # compiled programs, e.g. the training step
    folder, process = jax_cache_reuse
    second = process.result()
    assert second.returncode == 0, second.stderr
    assert sorted(second.after) == sorted(second.before)  # nothing new to compile the second time
    loads = [name for name in first.compiled if name.endswith("-atime")]  # JAX's cache notes each load of a program in its -atime file
    assert loads and all(second.after[name] > second.before[name] for name in loads)  # the second training loaded every one
    assert untimed(json.loads((only_run(folder) / "history.json").read_text())) == untimed(json.loads((first.path / "history.json").read_text()))  # but the wall times


def test_switching_backend_in_a_process_is_a_clear_error() -> None:
    backend.import_keras()
    with pytest.raises(RunError, match=rf"already loaded with the {SESSION} backend in this process and cannot switch to {OTHER}"):
        backend.use_backend(OTHER)
    backend.use_backend(SESSION)  # the same backend is fine


def test_a_run_predicts_the_same_on_either_backend(smoke_on_other: Training, smoke_predicted_there: Pending[CliResult]) -> None:
    """Trained in a fresh process on the other backend (its worker); predicted there and here, on this process's backend."""
    run = smoke_on_other.result().path
    info = json.loads((run / "run.json").read_text())
    assert info["versions"]["backend"] == OTHER and info["versions"][OTHER] == __import__(OTHER).__version__

    there = smoke_predicted_there.result()  # the run's own backend
    assert there.exit_code == 0, there.output
    here = CliRunner().invoke(app, ["predict", str(run), str(SMOKE_TEST), "--format", "json", "--backend", SESSION])
    assert here.exit_code == 0, here.output
    expected, got = json.loads(there.stdout), json.loads(here.stdout)
    assert [r["predicted"] for r in got["predictions"]] == [r["predicted"] for r in expected["predictions"]]
    np.testing.assert_allclose(probabilities(got), probabilities(expected), atol=2e-6)
    assert got["accuracy"] == expected["accuracy"]


def test_a_run_named_with_a_space_predicts_on_the_other_backend(named_on_other: Training) -> None:
    """Trained on the other backend as 'my expérience' (by default TensorFlow here, JAX there: TensorFlow refuses spaces in
    a model's name, so the saved model carries a sanitized one) and predicted here."""
    run = named_on_other.result().path
    assert run.parent.name == "my expérience"
    here = CliRunner().invoke(app, ["predict", str(run), str(SMOKE_TEST), "--format", "json", "--backend", SESSION])
    assert here.exit_code == 0, here.output
    assert len(json.loads(here.stdout)["predictions"]) == 12


def test_predict_backend_defaults_to_the_runs(smoke_run: Path) -> None:
    loaded = predict.load_run(smoke_run)
    assert loaded.pipeline.backend == import_keras().backend.backend() == json.loads((smoke_run / "run.json").read_text())["versions"]["backend"] == SESSION
    assert loaded.model is not None


def test_inspect_shapes_names_the_backend_and_why() -> None:
    result = CliRunner().invoke(app, ["inspect-shapes", str(SMOKE_SPEC), "--json"])
    assert result.exit_code == 0, result.output
    assert f"Keras backend: {SESSION} (auto: from $KERAS_BACKEND)." in json.loads(result.stdout)["notes"]



@pytest.mark.slow  # a fresh process of its own (about 10 s of importing TensorFlow) for one note
def test_text_chooses_its_backend_before_tokenizing_and_says_why(text_in_a_fresh_process: Pending[FreshProcess]) -> None:
    """Tokenizing imports Keras, so text fixes the backend early; a fresh process must still give the rule as the reason."""
    done = text_in_a_fresh_process.result()
    assert done.returncode == 0, done.stderr
    reason = "auto: text is tokenized before its lengths are known, and with length bucketing TensorFlow needs no compiling per batch shape"
    assert f"Keras backend: tensorflow ({reason})." in json.loads(done.stdout)["notes"]


@pytest.mark.slow  # a JAX training of its own in the JAX worker (about 8 s)
def test_jax_epochs_train_on_their_own_batch_plans(jax_plans: Pending[dict[str, Any]]) -> None:
    """Epoch e trains on plan(seed, e) on JAX too: Keras' PyDataset hooks run around its shape probe, so they cannot count epochs."""
    result = jax_plans.result()
    assert result["served"] == result["expected"]


TRAIN_FROM_WEIGHTS = """
import json
import numpy as np
from seqcli import train
from seqcli.spec import load_spec

spec, weights, out = argv
prepared = train.prepare(load_spec(spec, ["training.epochs=2", "data.test=null", "output.dir=" + out]))
start = np.load(weights)
prepared.model.set_weights([start[f"arr_{i}"] for i in range(len(start.files))])
result = train.fit(prepared)
np.savez(out + "/best.npz", *prepared.model.get_weights())
print(json.dumps(result.history))
"""


@pytest.mark.slow  # two trainings at once, one in each backend's worker: about 20 s
def test_both_backends_train_the_same_from_the_same_weights(worker: Callable[[str], Worker], tmp_path: Path) -> None:
    """Bucketed batches on JAX (shared widths, a NumPy PyDataset) and on TensorFlow (exact widths, tf.data) are
    the same training: from the same initial weights, the same histories and weights. Only the seeded initial weights differ."""
    np.savez(tmp_path / "start.npz", *train.prepare(load_spec(SMOKE_SPEC)).model.get_weights())
    jobs = {name: worker(name).submit(TRAIN_FROM_WEIGHTS, SMOKE_SPEC, tmp_path / "start.npz", tmp_path / name, what="training from given weights") for name in BACKENDS}
    results = {}
    for name, job in jobs.items():
        history = json.loads(job.result().strip().splitlines()[-1])
        best = np.load(tmp_path / name / "best.npz")
        results[name] = (history, [best[f"arr_{i}"] for i in range(len(best.files))])
    (jax_history, jax_weights), (tf_history, tf_weights) = results["jax"], results["tensorflow"]
    assert [row.keys() for row in jax_history] == [row.keys() for row in tf_history]
    for jax_row, tf_row in zip(jax_history, tf_history, strict=True):
        timed = [key for key in jax_row if key != "seconds"]  # every value but the epoch's wall time
        np.testing.assert_allclose([jax_row[key] for key in timed], [tf_row[key] for key in timed], atol=1e-5)
    for a, b in zip(jax_weights, tf_weights, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
