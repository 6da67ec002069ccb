"""Shared fixtures: the repository paths and one smoke run trained through the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Keras fixes its backend at first import, so the in-process tests all run on one (`backend: auto` follows
# $KERAS_BACKEND): TensorFlow by default, `KERAS_BACKEND=jax uv run pytest` for JAX. tests/test_backends.py
# covers the other backend in subprocesses.
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


class StopAfter:
    """A training progress hook that behaves like Ctrl-C at the end of epoch ``n``."""

    def __init__(self, n: int) -> None:
        self.n = n

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        if epoch == self.n:
            raise KeyboardInterrupt

    def on_train_end(self) -> None:
        pass


def padded(prep: object, sequences: list, width: int | None = None) -> object:
    """``sequences`` prepared and padded by the real pipeline as one batch: ``(batch, width[, features])``."""
    import numpy as np

    from seqcli import batching

    prepared = prep.prepare(sequences)  # type: ignore[attr-defined]
    plan = batching.Plan([np.arange(len(prepared))], [width or prep.maxlen])  # type: ignore[attr-defined]
    return numpy_batches(batching.dataset(prep, prepared, None, lambda _: plan, range(1), backend=BACKEND))[0]


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
