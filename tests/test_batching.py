"""Length bucketing: batch plans, padding shares, and predictions in input order."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seqcli import batching, preprocess
from seqcli.data import SequenceData
from seqcli.model import build_model
from seqcli.spec import PreprocessingSpec, spec_from_dict

LENGTHS = np.array([3, 9, 4, 10, 2, 8, 5, 1, 7, 6])


def test_train_plan_covers_every_sequence_once_within_its_bucket() -> None:
    plan = batching.train_plan(LENGTHS, [5, 10], batch_size=3, seed=1, epoch=0, shuffle=True)
    rows = np.concatenate(plan.batches)
    assert sorted(rows.tolist()) == list(range(10))
    for batch, width in zip(plan.batches, plan.widths, strict=True):
        assert len(batch) <= 3
        low = 0 if width == 5 else 5
        assert all(low < LENGTHS[i] <= width for i in batch)  # never mixes buckets, never truncates
    assert sorted(plan.widths) == [5, 5, 10, 10]  # 5 short sequences -> 2 batches, 5 long -> 2 batches


def test_train_plan_depends_on_seed_and_epoch_only() -> None:
    def plan(seed: int, epoch: int) -> list[list[int]]:
        return [b.tolist() for b in batching.train_plan(LENGTHS, [5, 10], 3, seed, epoch, shuffle=True).batches]

    assert plan(1, 4) == plan(1, 4)
    assert plan(1, 4) != plan(1, 5) and plan(1, 4) != plan(2, 4)


def test_eval_plan_keeps_input_order_within_buckets() -> None:
    plan = batching.eval_plan(LENGTHS, [5, 10], batch_size=3)
    # Input order within each bucket; batches 1 and 2 swapped so the first two widths differ (see below).
    assert [b.tolist() for b in plan.batches] == [[0, 2, 4], [1, 3, 5], [6, 7], [8, 9]]
    assert plan.widths == [5, 10, 5, 10]


@pytest.mark.parametrize("epoch", range(20))
def test_first_two_batches_differ_in_width(epoch: int) -> None:
    """Keras infers the batch signature from the first two batches: they must show that timesteps vary."""
    plan = batching.train_plan(LENGTHS, [5, 10], batch_size=2, seed=3, epoch=epoch, shuffle=True)
    assert plan.widths[0] != plan.widths[1]
    assert sorted(np.concatenate(plan.batches).tolist()) == list(range(10))


def test_padded_share_by_hand() -> None:
    plan = batching.eval_plan(np.array([1, 4, 2, 8]), [4, 8], batch_size=4)
    # bucket 4: lengths 1, 4, 2 padded to 4 -> 5 padding of 12 cells; bucket 8: 8 -> none of 8.
    assert batching.padded_share(np.array([1, 4, 2, 8]), plan) == pytest.approx(5 / 20)


def test_auto_boundaries_follow_the_length_distribution() -> None:
    lengths = np.concatenate([np.full(64, 10), np.full(64, 100), np.full(64, 1000)])
    assert batching.auto_boundaries(lengths, 1000, batch_size=16) == [10, 100, 1000]
    assert batching.auto_boundaries(lengths, 500, batch_size=16) == [10, 100, 500]  # maxlen caps the last bucket
    assert batching.auto_boundaries(lengths[:20], 1000, batch_size=16) == [1000]  # too few sequences for buckets


def test_bucketing_is_on_for_variable_lengths_only() -> None:
    def data(lengths: list[int]) -> SequenceData:
        seqs = [np.arange(n * 2, dtype=float).reshape(n, 2) + i for i, n in enumerate(lengths)]
        return SequenceData(seqs, np.array(["a", "b"] * (len(seqs) // 2)), "mem", "npy", "-", [str(i) for i in range(len(seqs))])

    varied = preprocess.fit(data([2, 30] * 64), PreprocessingSpec(), batch_size=8)
    assert varied.boundaries == [2, 30] and varied.input_shape == (None, 2)
    fixed = preprocess.fit(data([5] * 128), PreprocessingSpec(), batch_size=8)
    assert fixed.boundaries is None and fixed.input_shape == (5, 2)
    off = preprocess.fit(data([2, 30] * 64), PreprocessingSpec(bucketing=False), batch_size=8)
    assert off.boundaries is None
    given = preprocess.fit(data([2, 30] * 64), PreprocessingSpec(bucket_boundaries=[4, 16, 64]), batch_size=8)
    assert given.boundaries == [4, 16, 30]  # boundaries past maxlen fold into maxlen
    assert (given.width_for(3), given.width_for(5), given.width_for(30), given.width_for(99)) == (4, 16, 30, 30)


def test_bucketed_predictions_equal_fully_padded_ones_in_input_order() -> None:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)) for n in [7, 2, 12, 3, 9, 1, 12, 4]]
    data = SequenceData(seqs, np.array(["a", "b"] * 4), "mem", "npy", "-", [str(i) for i in range(8)])
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"layers": [{"units": 5}, {"units": 4}]}})
    padded = preprocess.fit(data, PreprocessingSpec(bucketing=False))
    bucketed = dataclasses.replace(padded, boundaries=[3, 7, 12])
    model_padded, model_bucketed = build_model(spec, padded), build_model(spec, bucketed)
    model_bucketed.set_weights(model_padded.get_weights())
    expected = model_padded.predict(padded.transform(seqs), verbose=0)  # (batch=8, classes=2), one padded array
    got = batching.predict_proba(model_bucketed, bucketed, bucketed.prepare(seqs), bucketed.buckets, batch_size=2)
    np.testing.assert_allclose(got, expected, atol=1e-6)
