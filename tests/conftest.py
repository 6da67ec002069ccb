"""Shared fixtures: the repository paths, and runs trained once per test session that tests only read.

Training dominates the suite's time (each training traces its model anew), so a run that several tests read is a
session fixture here, trained once; a test that changes a run works on a copy (:func:`copy_run`). What runs on the
other Keras backend, or needs a fresh process, runs beside the suite: see tests/background.py.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# The background fixtures and hooks, for every test module (tests/background.py).
from tests.background import (  # noqa: F401
    jax_cache,
    jax_cache_reuse,
    jax_plans,
    named_on_other,
    pytest_collection_modifyitems,
    smoke_on_jax,
    smoke_on_other,
    smoke_predicted_there,
    start_background_work,
    text_in_a_fresh_process,
    worker,
)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras fixes its backend at first import, so the in-process tests all run on one (`backend: auto` follows
# $KERAS_BACKEND): TensorFlow by default, `KERAS_BACKEND=jax uv run pytest` for JAX. The other backend runs in a
# worker process (tests/background.py).
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# No JAX compilation cache (seqcli/backend.py) unless a test asks for one: tests leave nothing in ~/.cache.
os.environ["SEQCLI_CACHE_DIR"] = ""

BACKEND = os.environ["KERAS_BACKEND"]  # the backend of the in-process tests
ROOT = Path(__file__).resolve().parent.parent
SMOKE_SPEC = ROOT / "experiments" / "smoke.yaml"
SMOKE_TEST = ROOT / "data" / "smoke" / "test.csv"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed run of experiments/smoke.yaml (2 epochs), trained once per test session via the CLI."""
    from typer.testing import CliRunner

    from seqcli.cli import app

    out = tmp_path_factory.mktemp("runs")
    result = CliRunner().invoke(app, ["train", str(SMOKE_SPEC), "--quiet", "--set", f"output.dir={out}", "--set", "training.epochs=2"])
    assert result.exit_code == 0, result.output
    (run,) = (out / "smoke").iterdir()
    return run


def smoke_spec(out: Path, *settings: str) -> Any:
    """experiments/smoke.yaml with ``settings`` and its runs under ``out``."""
    from seqcli.spec import load_spec

    return load_spec(SMOKE_SPEC, [*settings, f"output.dir={out}"])


@pytest.fixture(scope="session")
def smoke_fit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``(prepared, result)``: experiments/smoke.yaml (2 epochs, like ``smoke_run``) trained once per session through
    ``train.prepare`` and ``train.fit``; ``prepared.model`` holds the best weights, as fit leaves it. Tests only read it."""
    from seqcli import train

    prepared = train.prepare(smoke_spec(tmp_path_factory.mktemp("fit"), "training.epochs=2"))
    return prepared, train.fit(prepared)


ENSEMBLE = ["training.epochs=2", "training.ensemble=2", "model.layers=[{units: 8}]"]  # the ensemble the session trains once (smoke_ensemble); one LSTM: less to trace per member


@pytest.fixture(scope="session")
def smoke_ensemble(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any]:
    """``(prepared, result)``: experiments/smoke.yaml as an ensemble of 2 members (:data:`ENSEMBLE`: seeds 0 and 1, 2 epochs
    each), trained once per session through ``train.prepare`` and ``train.fit``. Tests only read it."""
    from seqcli import train

    prepared = train.prepare(smoke_spec(tmp_path_factory.mktemp("ensemble"), *ENSEMBLE))
    return prepared, train.fit(prepared)


@dataclass(frozen=True)
class Interrupted:
    run: Path  # the run directory, status interrupted after epoch 1 of 3
    prepared: Any  # train.prepare's result; its model holds the weights the interruption left: epoch 1's


@pytest.fixture(scope="session")
def interrupted_smoke(tmp_path_factory: pytest.TempPathFactory) -> Interrupted:
    """experiments/smoke.yaml with 3 epochs, stopped like Ctrl-C at the end of epoch 1; once per session.
    Tests only read it; one that changes the run works on a :func:`copy_run`."""
    from seqcli import train

    out = tmp_path_factory.mktemp("interrupted")
    prepared = train.prepare(smoke_spec(out, "training.epochs=3"))
    with pytest.raises(KeyboardInterrupt):
        train.fit(prepared, StopAfter(1))
    (run,) = (out / "smoke").iterdir()
    return Interrupted(run, prepared)


def untimed(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows without their wall time (``seconds``), which no two trainings share: what an exact resume repeats bit for bit."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def copy_run(run: Path, folder: Path) -> Path:
    """A private copy of ``run`` under ``folder``, to change."""
    return Path(shutil.copytree(run, folder / run.name))


class StopAfter:
    """A training progress hook that behaves like Ctrl-C at the end of epoch ``n`` (of an ensemble: of member ``member``)."""

    def __init__(self, n: int, *, member: int = 1) -> None:
        self.n, self.member, self.current = n, member, 1

    def on_member_begin(self, member: int, members: int, seed: int) -> None:
        self.current = member

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        if (self.current, epoch) == (self.member, self.n):
            raise KeyboardInterrupt

    def on_train_end(self) -> None:
        pass


def padded(prep: object, sequences: list, width: int | None = None) -> object:
    """``sequences`` prepared and padded by the real pipeline as one batch: ``(batch, width[, features])``."""
    import numpy as np

    from seqcli import batching
    from seqcli.sequences import Sequences

    prepared = prep.prepare(Sequences.from_arrays(sequences))  # type: ignore[attr-defined]
    plan = batching.Plan([np.arange(len(prepared))], [width or prep.maxlen])  # type: ignore[attr-defined]
    return numpy_batches(batching.dataset([batching.Packed(prep, prepared)], None, lambda _: plan, range(1), backend=BACKEND))[0]


def fitted(data: object, spec: object, task: str = "classify") -> object:
    """The input preprocessing fitted on ``data`` with ``spec`` (a PreprocessingSpec), then the task's targets, as the pipeline does."""
    from seqcli import preprocess
    from seqcli.tasks import get

    return get(task).fit(preprocess.fit(data, spec), data)  # type: ignore[arg-type]


def numpy_batches(batches: object) -> list:
    """Every batch of a :func:`seqcli.batching.dataset` as NumPy arrays: a ``tf.data`` pipeline (TensorFlow) or a PyDataset (JAX)."""
    if hasattr(batches, "as_numpy_iterator"):
        return list(batches.as_numpy_iterator())
    return [batches[i] for i in range(len(batches))]  # type: ignore[index, arg-type]


def assert_png(path: Path, *, min_width: int = 300, min_height: int = 200) -> tuple[int, int]:
    """``path`` is a PNG image at least this large that is not blank (more than one colour, a fair share of non-white
    pixels); returns its (width, height)."""
    import numpy as np
    from matplotlib.image import imread

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pixels = imread(path)[..., :3]
    height, width = pixels.shape[:2]
    assert width >= min_width and height >= min_height, (path, width, height)
    drawn = float((pixels.min(axis=-1) < 0.9).mean())
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 10 and drawn > 0.01, f"{path} looks blank ({drawn:.1%} drawn)"
    return width, height
