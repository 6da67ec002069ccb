"""The shipped Japanese Vowels experiment reaches its accuracy target (slow: about 2 minutes)."""

from __future__ import annotations

import statistics
from pathlib import Path

import pytest

from seqcli import train
from seqcli.spec import load_spec
from tests.conftest import ROOT

TARGET = 0.97


@pytest.mark.slow
def test_japanese_vowels_median_test_accuracy(tmp_path: Path) -> None:
    accuracies = []
    for seed in (0, 1, 2):
        spec = load_spec(ROOT / "experiments" / "japanese_vowels.yaml", [f"seed={seed}", f"output.dir={tmp_path}"])
        result = train.fit(train.prepare(spec))
        accuracies.append(result.metrics["test"]["accuracy"])
    assert statistics.median(accuracies) >= TARGET, accuracies
