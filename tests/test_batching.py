"""Length bucketing: batch plans, padding shares, the tf.data stream, predictions in input order."""

from __future__ import annotations

import dataclasses
import math
import types

import numpy as np
import pytest

from seqcli import backend, batching, preprocess
from seqcli.data import SequenceData
from seqcli.model import build_model
from seqcli.sequences import Sequences
from seqcli.spec import PreprocessingSpec, spec_from_dict
from tests.conftest import BACKEND, fitted, numpy_batches
from tests.conftest import padded as pad_all

LENGTHS = np.array([3, 9, 4, 10, 2, 8, 5, 1, 7, 6])


def test_bucketed_plan_sorts_by_length_and_pads_each_batch_to_its_longest() -> None:
    plan = batching.train_plan(LENGTHS, [10], 10, batch_size=3, seed=1, epoch=0, shuffle=True)
    assert sorted(np.concatenate(plan.batches).tolist()) == list(range(10))
    # Consecutive lengths per batch: 1-3 | 4-6 | 7-9 | 10 (the batch order itself is shuffled).
    assert sorted(sorted(LENGTHS[b].tolist()) for b in plan.batches) == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    for rows, width in zip(plan.batches, plan.widths, strict=True):
        assert width == LENGTHS[rows].max()
    assert sorted(plan.widths) == [3, 6, 9, 10]  # lengths 1-3 | 4-6 | 7-9 | 10


def test_boundaries_keep_groups_apart() -> None:
    plan = batching.train_plan(LENGTHS, [5, 10], 10, batch_size=4, seed=0, epoch=0, shuffle=True)
    for rows in plan.batches:
        assert (LENGTHS[rows] <= 5).all() or (LENGTHS[rows] > 5).all()


def test_unbucketed_plan_is_random_and_padded_to_maxlen() -> None:
    plan = batching.train_plan(LENGTHS, None, 12, batch_size=4, seed=0, epoch=0, shuffle=True)
    assert [len(b) for b in plan.batches] == [4, 4, 2] and plan.widths == [12, 12, 12]
    assert sorted(np.concatenate(plan.batches).tolist()) == list(range(10))


def test_train_plan_depends_on_seed_and_epoch_only() -> None:
    lengths = np.repeat([3, 5, 8], 6)  # many ties, so the random tie-breaking shows

    def plan(seed: int, epoch: int) -> list[list[int]]:
        return [b.tolist() for b in batching.train_plan(lengths, [8], 8, 3, seed, epoch, shuffle=True).batches]

    assert plan(1, 4) == plan(1, 4)
    assert plan(1, 4) != plan(1, 5) and plan(1, 4) != plan(2, 4)


def test_eval_plan_is_deterministic_and_ordered() -> None:
    plan = batching.eval_plan(LENGTHS, [10], 10, batch_size=3)
    assert [b.tolist() for b in plan.batches] == [[7, 4, 0], [2, 6, 9], [8, 5, 1], [3]]
    assert plan.widths == [3, 6, 9, 10]
    assert [b.tolist() for b in batching.eval_plan(LENGTHS, None, 10, batch_size=4).batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_padded_share_by_hand() -> None:
    lengths = np.array([1, 4, 2, 8])
    plan = batching.eval_plan(lengths, [8], 8, batch_size=2)  # [1, 2] padded to 2, [4, 8] padded to 8
    assert batching.padded_share(lengths, plan) == pytest.approx((1 + 4) / (4 + 16))


def data_of(lengths: list[int], features: int = 2) -> SequenceData:
    seqs = [np.arange(n * features, dtype=float).reshape(n, features) + 10 * i for i, n in enumerate(lengths)]
    return SequenceData(Sequences.from_arrays(seqs), np.array(["a", "b"] * (len(seqs) // 2)), "mem", "npy", "-", [str(i) for i in range(len(seqs))])


def test_bucketing_is_on_for_variable_lengths_only() -> None:
    varied = preprocess.fit(data_of([2, 30] * 4), PreprocessingSpec())
    assert varied.boundaries == [30] and varied.input_shape == (None, 2)
    assert (varied.width_for(3), varied.width_for(99)) == (3, 30)
    fixed = preprocess.fit(data_of([5] * 8), PreprocessingSpec())
    assert fixed.boundaries is None and fixed.input_shape == (5, 2) and fixed.width_for(3) == 5
    assert preprocess.fit(data_of([2, 30] * 4), PreprocessingSpec(bucketing=False)).boundaries is None
    given = preprocess.fit(data_of([2, 30] * 4), PreprocessingSpec(bucket_boundaries=[4, 16, 64]))
    assert given.boundaries == [4, 16, 30]  # boundaries past maxlen fold into maxlen


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_dataset_pads_each_batch_to_its_width(padding: str) -> None:
    data = data_of([3, 1, 4, 2])
    prep = preprocess.fit(data, PreprocessingSpec(standardize=False, padding=padding))
    plan = batching.eval_plan(np.array([3, 1, 4, 2]), prep.boundaries, prep.maxlen, batch_size=2)  # [1, 3] width 2, [0, 2] width 4
    (x0, y0), (x1, y1) = numpy_batches(batching.dataset([batching.Packed(prep, data.sequences)], np.arange(4), lambda _: plan, range(1), backend=BACKEND))
    assert x0.shape == (2, 2, 2) and x1.shape == (2, 4, 2) and y0.tolist() == [1, 3] and y1.tolist() == [0, 2]
    def by_hand(rows: list[int], width: int) -> np.ndarray:
        out = np.zeros((len(rows), width, 2), dtype=np.float32)
        for i, r in enumerate(rows):
            seq = data.sequences[r]
            out[i, : len(seq)] = seq if padding == "post" else 0
            if padding == "pre":
                out[i, width - len(seq) :] = seq
        return out

    np.testing.assert_array_equal(x0, by_hand([1, 3], 2))
    np.testing.assert_array_equal(x1, by_hand([0, 2], 4))
    packed = batching.Packed(prep, data.sequences)  # the JAX path pads in NumPy, the same way
    np.testing.assert_array_equal(packed.batch(np.array([1, 3]), 2), by_hand([1, 3], 2))
    np.testing.assert_array_equal(packed.batch(np.array([0, 2]), 4), by_hand([0, 2], 4))


@pytest.mark.parametrize("path", ["tensorflow", "jax"])  # the tf.data pipeline and the PyDataset
def test_extra_inputs_join_each_batch_with_its_rows(path: str) -> None:
    """An extra input (one row per sequence, e.g. the kernel branch's features) is gathered with the batch's rows and
    added to the named inputs, on both paths, in every epoch's order."""
    data = data_of([3, 1, 4, 2])
    prep = preprocess.fit(data, PreprocessingSpec(standardize=False))
    extra = np.arange(8, dtype=np.float32).reshape(4, 2) * 10  # row r: [20r, 20r + 10]

    def plan(epoch: int) -> batching.Plan:
        return batching.Plan([np.array([3, 0]), np.array([1, 2])] if epoch == 0 else [np.array([2, 1]), np.array([0, 3])], [4, 4])

    packed = batching.Packed(prep, data.sequences, name="main")
    batches = batching.dataset([packed], np.arange(4), plan, range(2), backend=path, extra={"kernel_features": extra})
    if path == "jax":  # the fit loop starts each epoch of a PyDataset
        got = []
        for epoch in range(2):
            batches.start_epoch(epoch)
            got += numpy_batches(batches)
    else:
        got = numpy_batches(batches)
    for (x, y), rows in zip(got, [[3, 0], [1, 2], [2, 1], [0, 3]], strict=True):
        assert sorted(x) == ["kernel_features", "main"] and y.tolist() == rows
        np.testing.assert_array_equal(x["kernel_features"], extra[rows])
        np.testing.assert_array_equal(x["main"], packed.batch(np.array(rows), 4))


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_token_batches_pad_with_code_0_on_both_paths(padding: str) -> None:
    seqs = [np.array([[5], [6], [7]]), np.array([[8]])]
    data = SequenceData(Sequences.from_arrays(seqs), np.array(["a", "b"]), "mem", "npy", "-", ["0", "1"])
    prep = preprocess.fit(data, PreprocessingSpec(input="tokens", padding=padding))
    plan = batching.Plan([np.array([1, 0])], [4])
    expected = [[8, 0, 0, 0], [5, 6, 7, 0]] if padding == "post" else [[0, 0, 0, 8], [0, 5, 6, 7]]
    (x,) = numpy_batches(batching.dataset([batching.Packed(prep, prep.prepare(Sequences.from_arrays(seqs)))], None, lambda _: plan, range(1), backend=BACKEND))
    assert x.tolist() == expected and x.dtype == np.int32
    assert batching.Packed(prep, prep.prepare(Sequences.from_arrays(seqs))).batch(plan.batches[0], 4).tolist() == expected


def test_shared_widths_are_the_fewest_within_the_padding_budget_and_stay_in_their_group() -> None:
    """Batches of 2 of lengths 9 10 | 11 12 | 12 13 | 29 30 | 30 31 | 99 100: longest 10, 12, 13, 30, 31, 100 (196 steps).

    One group: 10 and 12 padded to 13, 30 to 31 (201 steps, within 3%; two widths would take 255). Groups up to 13 and
    up to 100: the first pads 12 to 13 (36 steps for 35; padding 10 too would take 39), the second 30 to 31 (162 for 161).
    """
    lengths = np.array([9, 10, 11, 12, 12, 13, 29, 30, 30, 31, 99, 100])
    for boundaries, expected in [([100], [13, 13, 13, 31, 31, 100]), ([13, 100], [10, 13, 13, 31, 31, 100])]:
        for epoch in range(3):  # the same widths in every epoch, whatever the batch order
            plan = batching.train_plan(lengths, boundaries, 100, batch_size=2, seed=0, epoch=epoch, shuffle=True, few_widths=True)
            assert [width for _, width in sorted(zip([lengths[rows].max() for rows in plan.batches], plan.widths, strict=True))] == expected
    assert batching.train_plan(lengths, None, 100, 2, 0, 0, True, few_widths=True).widths == [100] * 6  # no bucketing: maxlen


def test_shared_widths_are_no_more_than_a_25_percent_grid_needs() -> None:
    """Widths 8..15 span 3 steps of 25% (8 -> 10 -> 13 -> 17), so 4 widths at most even with no padding allowed; the
    fewest steps with 4: pairs (96 steps; e.g. 8 | 9 10 11 | 12 13 | 14 15 takes 97)."""
    assert batching.shared_widths(tuple(range(8, 16)), budget=0.0) == {8: 9, 9: 9, 10: 11, 11: 11, 12: 13, 13: 13, 14: 15, 15: 15}
    assert batching.shared_widths((5, 7, 7), budget=0.0) == {5: 5, 7: 7}


def test_shared_widths_of_many_distinct_widths_stay_within_the_budget_after_rounding() -> None:
    """3,000 distinct widths (above ``CANDIDATES``): rounded up by at most 0.2% first, so the padded steps stay within
    1.03 x 1.002 of exact; every batch is padded to at least its own width, and the widest is kept."""
    widths = np.arange(1, 3001)
    target = batching.shared_widths(tuple(widths.tolist()))
    padded = np.array([target[w] for w in widths])
    assert (padded >= widths).all() and padded.max() == 3000
    assert widths.sum() < padded.sum() <= 1.03 * 1.002 * widths.sum()
    assert len(set(target.values())) <= 1 + math.ceil(math.log(3000) / math.log(1.25))


def test_dataset_streams_every_epoch_in_order() -> None:
    data = data_of([1, 2, 3, 4])
    prep = preprocess.fit(data, PreprocessingSpec(standardize=False, bucketing=False))
    plans = [batching.train_plan(np.array([1, 2, 3, 4]), None, 4, 2, seed=0, epoch=e, shuffle=True) for e in range(3)]
    stream = [y.tolist() for _, y in numpy_batches(batching.dataset([batching.Packed(prep, data.sequences)], np.arange(4), lambda e: plans[e], range(1, 3), backend=BACKEND))]
    assert stream == [b.tolist() for e in (1, 2) for b in plans[e].batches]


@pytest.mark.parametrize("jax_plans", [False, True])
def test_bucketed_predictions_equal_fully_padded_ones_in_input_order(jax_plans: bool) -> None:
    """Also with JAX's one-pass plan (shared widths, merged, every batch of full rows), whichever backend runs the test."""
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)) for n in [7, 2, 12, 3, 9, 1, 12, 4]]
    data = SequenceData(Sequences.from_arrays(seqs), np.array(["a", "b"] * 4), "mem", "npy", "-", [str(i) for i in range(8)])
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"layers": [{"units": 5}, {"units": 4}]}})
    padded = fitted(data, PreprocessingSpec(bucketing=False))
    bucketed = dataclasses.replace(padded, boundaries=[12])
    model_padded, model_bucketed = build_model(spec, {"main": padded}), build_model(spec, {"main": bucketed})
    model_bucketed.set_weights(model_padded.get_weights())
    expected = model_padded.predict(pad_all(padded, seqs), verbose=0)  # (batch=8, classes=2), one padded array
    inputs = [batching.Packed(bucketed, bucketed.prepare(Sequences.from_arrays(seqs)))]
    got = batching.predict_outputs(model_bucketed, inputs, batch_size=3, backend="jax" if jax_plans else "tensorflow", per_timestep=False)
    np.testing.assert_allclose(got, expected, atol=1e-6)


def test_workload_counts_jax_batch_shapes_and_steps_by_hand() -> None:
    """Training lengths 3 3 5 9 9 12 in batches of 2 -> (3 3) (5 9) (9 12): widths 3, 9 and 12 (sharing one would pad
    more than 3%); validation 4 11 2 -> (2 4) (11): widths 4 and 11, the second batch of one row. Units: LSTM(8) +
    bidirectional GRU(4)."""
    prep = types.SimpleNamespace(boundaries=[12], maxlen=12)  # what the plans read of a Preprocessor
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"layers": [{"units": 8}, {"units": 4, "cell": "gru", "bidirectional": True}]}, "training": {"batch_size": 2, "epochs": 7}})
    work = batching.workload(prep, np.array([9, 3, 12, 5, 3, 9]), np.array([4, 11, 2]), spec)
    assert work == backend.Workload(shapes=3 + 2, steps=3 + 9 + 12, units=8 + 2 * 4, epochs=7)
    assert batching.workload(prep, np.array([9, 3, 12, 5, 3, 9]), None, spec).shapes == 3
    assert batching.workload(types.SimpleNamespace(boundaries=None, maxlen=12), np.array([3, 12]), None, spec) is None  # one width


def test_one_pass_plan_on_jax_has_few_shapes_and_full_batches() -> None:
    """Lengths 1..10 in batches of 4 -> (1-4) (5-8) (9 10): widths 4, 8, 10; merged (8 padded steps < 100,000) to 10;
    the last batch's 2 rows filled up with its last row."""
    prep = types.SimpleNamespace(boundaries=[10], maxlen=10)
    plan = batching.one_pass_plan(np.arange(1, 11), prep, batch_size=4, few_widths=True)
    assert [rows.tolist() for rows in plan.batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 9, 9]]
    assert plan.widths == [10, 10, 10]
    plan = batching.one_pass_plan(np.arange(1, 11), prep, batch_size=4, few_widths=False)  # TensorFlow: each batch as long as its longest
    assert ([rows.tolist() for rows in plan.batches], plan.widths) == ([[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]], [4, 8, 10])
