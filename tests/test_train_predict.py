"""Training in-process: saved run == in-memory model, same seed == same history, clean interruption."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from seqcli import predict, train
from seqcli.model import probabilities
from seqcli.spec import Spec, load_spec
from tests.conftest import SMOKE_SPEC


def smoke_spec(tmp_path: Path, epochs: int = 2) -> Spec:
    return load_spec(SMOKE_SPEC, [f"output.dir={tmp_path}", f"training.epochs={epochs}"])


def test_saved_run_predicts_like_the_trained_model(tmp_path: Path) -> None:
    prepared = train.prepare(smoke_spec(tmp_path))
    result = train.fit(prepared)
    test = prepared.splits["test"]
    in_memory = probabilities(prepared.model, test.x, 8)  # the model holds the best weights after fit
    for checkpoint in ("best", "last"):
        loaded = predict.load_run(result.run.path, checkpoint)
        assert loaded.prep == prepared.prep
        from_disk = predict.predict(loaded, test.data)
        if checkpoint == "best":
            np.testing.assert_allclose(from_disk.probabilities, in_memory, atol=1e-6)
            assert from_disk.accuracy == pytest.approx(result.metrics["test"]["accuracy"])
        assert from_disk.ids == test.data.ids and from_disk.true == [prepared.prep.classes[i] for i in test.y]


def test_same_seed_same_history(tmp_path: Path) -> None:
    first = train.fit(train.prepare(smoke_spec(tmp_path / "a")))
    second = train.fit(train.prepare(smoke_spec(tmp_path / "b")))
    assert first.run.path != second.run.path
    assert first.history == second.history
    assert first.metrics == second.metrics


class InterruptAfterFirstEpoch:
    """A progress hook that behaves like Ctrl-C at the end of epoch 1."""

    def on_train_begin(self, epochs: int, steps: int) -> None:
        self.steps = steps

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        pass

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        raise KeyboardInterrupt

    def on_train_end(self) -> None:  # pragma: no cover - never reached
        raise AssertionError


def test_ctrl_c_marks_run_interrupted_and_keeps_epoch_one(tmp_path: Path) -> None:
    prepared = train.prepare(smoke_spec(tmp_path, epochs=5))
    with pytest.raises(KeyboardInterrupt):
        train.fit(prepared, InterruptAfterFirstEpoch())
    (run,) = (tmp_path / "smoke").iterdir()
    info: dict[str, Any] = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["epochs_completed"] == 1
    assert len(json.loads((run / "history.json").read_text())) == 1
    assert not (run / "metrics.json").exists()
    loaded = predict.load_run(run, "best")
    assert any("interrupted" in n for n in loaded.notes)
