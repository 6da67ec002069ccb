"""Preprocessing: truncation and padding (through the real batch pipeline), scaling fitted on real timesteps, tokens, labels, splits."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from seqcli import preprocess
from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.sequences import Sequences
from seqcli.spec import PreprocessingSpec
from tests.conftest import padded


def sequences_of(lengths: list[int], features: int = 2, dtype: type = np.float64) -> list[np.ndarray]:
    """Sequence i is arange over its (timesteps, features) cells plus 100 * i."""
    return [(np.arange(n * features, dtype=dtype).reshape(n, features) + 100 * i) for i, n in enumerate(lengths)]


def data_of(sequences: list[np.ndarray], labels: list[object] | None) -> SequenceData:
    return SequenceData(Sequences.from_arrays(sequences), None if labels is None else np.array(labels), "mem", "npy", "-", [f"index {i}" for i in range(len(sequences))])


@pytest.mark.parametrize(
    ("padding", "truncating", "expected"),
    [
        ("post", "post", [[1, 2, 3], [4, 0, 0]]),
        ("pre", "post", [[1, 2, 3], [0, 0, 4]]),
        ("post", "pre", [[2, 3, 9], [4, 0, 0]]),
        ("pre", "pre", [[2, 3, 9], [0, 0, 4]]),
    ],
)
def test_padding_and_truncation_sides(padding: str, truncating: str, expected: list[list[int]]) -> None:
    prep = preprocess.Preprocessor("tokens", 1, 3, padding, truncating, 0.0, ["a", "b"], num_tokens=10)
    out = padded(prep, [np.array([[1], [2], [3], [9]]), np.array([[4]])])  # (batch=2, maxlen=3) token codes
    assert out.dtype == np.int32 and out.tolist() == expected


def test_padding_keeps_feature_axis_and_value() -> None:
    prep = preprocess.Preprocessor("float", 2, 3, "post", "post", -1.0, ["a", "b"])
    x = padded(prep, sequences_of([2, 1]))
    assert x.shape == (2, 3, 2)  # (batch, timesteps, features)
    assert x[0, :2].tolist() == [[0, 1], [2, 3]]
    assert x[0, 2].tolist() == [-1, -1]
    assert x[1].tolist() == [[100, 101], [-1, -1], [-1, -1]]


def test_standardization_uses_real_timesteps_only() -> None:
    seqs = [np.array([[0.0], [2.0]]), np.array([[4.0]])]
    prep = preprocess.fit(data_of(seqs, ["a", "b"]), PreprocessingSpec())
    assert prep.mean == [2.0]  # mean of 0, 2, 4: padding is not counted
    assert prep.std == pytest.approx([np.std([0.0, 2.0, 4.0])])
    x = padded(prep, seqs)
    assert x.shape == (2, 2, 1)
    np.testing.assert_allclose(x[:, :, 0], [[-1.2247449, 0.0], [1.2247449, 0.0]], rtol=1e-6)
    # The real timestep at the mean became exactly the pad value: it would be masked, and seqcli says so.
    assert prep.masked_collisions(Sequences.from_arrays(seqs)) == 1


def test_constant_feature_does_not_divide_by_zero() -> None:
    seqs = [np.array([[1.0, 5.0], [3.0, 5.0]]), np.array([[2.0, 5.0]])]
    prep = preprocess.fit(data_of(seqs, [0, 1]), PreprocessingSpec())
    assert prep.std[1] == 1.0
    assert np.isfinite(prep.prepare(Sequences.from_arrays(seqs)).values).all()


@pytest.mark.parametrize(("maxlen", "expected"), [(None, 9), (4, 4), ("p50", 5), ("p100", 9)])
def test_maxlen_resolution(maxlen: int | str | None, expected: int) -> None:
    assert preprocess.resolve_maxlen(maxlen, np.array([1, 3, 5, 7, 9])) == expected


def test_fit_records_state_and_round_trips() -> None:
    data = data_of(sequences_of([3, 5, 2]), ["b", "a", "b"])
    prep = preprocess.fit(data, PreprocessingSpec(maxlen=4, padding="pre"))
    assert (prep.input, prep.n_features, prep.maxlen, prep.padding, prep.classes, prep.boundaries) == ("float", 2, 4, "pre", [], [4])  # classes: the task's to fit
    assert prep.input_shape == (None, 2)  # lengths vary: bucketing, variable timesteps
    again = preprocess.Preprocessor.from_dict(prep.to_dict())
    assert all(np.array_equal(a, b) for a, b in zip(again.prepare(data.sequences), prep.prepare(data.sequences), strict=True))


def test_wrong_feature_count_names_expected_and_received() -> None:
    prep = preprocess.fit(data_of(sequences_of([2, 2], features=12), ["a", "b"]), PreprocessingSpec())
    with pytest.raises(DataError, match="13 features per timestep, but the model was trained on 12"):
        prep.prepare(Sequences.from_arrays(sequences_of([2], features=13)))


def test_integer_single_feature_data_becomes_tokens() -> None:
    # (samples=3, timesteps=4) integer codes, pre-padded with 0; 7 is unseen in training.
    codes = np.array([[0, 0, 1, 2], [0, 3, 1, 1], [4, 4, 4, 4]])[:, :, None]
    data = data_of(list(codes), ["x", "y", "x"])
    prep = preprocess.fit(data, PreprocessingSpec())
    assert (prep.input, prep.num_tokens, prep.maxlen) == ("tokens", 5, 4)  # maxlen after stripping the 0-padding
    x = padded(prep, [np.array([[1], [7], [2]]), *list(codes[:1])])
    assert x.dtype == np.int32
    assert x.tolist() == [[1, 5, 2, 0], [1, 2, 0, 0]]  # unseen 7 -> 5, existing padding re-applied post


def test_tokens_refuse_fractional_values() -> None:
    data = data_of([np.array([[1.0], [2.5]]), np.array([[3.0]])], ["a", "b"])
    with pytest.raises(DataError, match=r"non-integer values such as 2\.5.*pad_sequences\(dtype='int32'\).*input: float"):
        preprocess.fit(data, PreprocessingSpec(input="tokens"))


def test_tokens_need_one_feature() -> None:
    with pytest.raises(DataError, match="2 features per timestep"):
        preprocess.fit(data_of(sequences_of([2, 2], dtype=np.int64), ["a", "b"]), PreprocessingSpec(input="tokens"))


def test_masked_collisions_counts_real_steps_equal_to_pad_value() -> None:
    seqs = [np.array([[1.0, 2.0], [0.0, 0.0], [0.0, 3.0]]), np.array([[4.0, 5.0]])]
    prep = preprocess.fit(data_of(seqs, ["a", "b"]), PreprocessingSpec(standardize=False))
    assert prep.masked_collisions(Sequences.from_arrays(seqs)) == 1  # only the all-zero timestep, not the half-zero one
    assert dataclasses.replace(prep, pad_value=-999.0).masked_collisions(Sequences.from_arrays(seqs)) == 0


def test_pad_code_between_real_codes_is_an_error_with_the_fixes() -> None:
    codes = [np.array([[1], [0], [2], [0]]), np.array([[3]])]  # 0 is padding at the end, but also inside sequence 0
    with pytest.raises(DataError, match=r"index 0: code 0 at timestep 1 lies between real codes, but 0 is the padding code .*set `preprocessing\.pad_code: null`.*codes \+ 1"):
        preprocess.fit(data_of(codes, ["a", "b"]), PreprocessingSpec())


def test_pad_code_null_keeps_every_code_and_shifts_by_one() -> None:
    codes = [np.array([[0], [1], [0]]), np.array([[2], [2]])]  # no padding: 0 is a symbol
    prep = preprocess.fit(data_of(codes, ["a", "b"]), PreprocessingSpec(pad_code=None))
    assert (prep.num_tokens, prep.maxlen, prep.pad_code) == (4, 3, None)  # codes 0..2 -> 1..3; 4 stands for unseen codes
    assert padded(prep, [*codes, np.array([[9]])]).tolist() == [[1, 2, 1], [3, 3, 0], [4, 0, 0]]


def test_other_pad_code_is_stripped_and_codes_shift() -> None:
    codes = [np.array([[-1], [0], [4]]), np.array([[2], [-1], [-1]])]  # padded with -1 on either side
    prep = preprocess.fit(data_of(codes, ["a", "b"]), PreprocessingSpec(pad_code=-1))
    assert (prep.num_tokens, prep.maxlen) == (6, 2)
    assert padded(prep, codes).tolist() == [[1, 5], [3, 0]]


def test_encoding_needs_integer_codes() -> None:
    with pytest.raises(DataError, match=r"`preprocessing\.encoding: one_hot` applies to integer token codes and text, but mem is read as float features .*Remove `encoding`, or set `input: tokens`"):
        preprocess.fit(data_of(sequences_of([2, 3]), ["a", "b"]), PreprocessingSpec(encoding="one_hot"))


def test_token_codes_of_many_fixed_width_sequences() -> None:
    # (samples=200_000, timesteps=31) codes, 0-padded at the end after 20 (or, every 7th row, 5) codes: stripped in one pass.
    x = np.tile(np.arange(1, 32, dtype=np.int8), (200_000, 1))
    x[:, 20:] = 0
    x[::7, 5:] = 0
    codes = preprocess.token_codes(Sequences.from_dense(x[:, :, None]), pad_code=0)
    values, lengths = codes.values[:, 0], codes.lengths
    assert lengths[:8].tolist() == [5, 20, 20, 20, 20, 20, 20, 5] and values.shape == (int(lengths.sum()),)
    assert values[:7].tolist() == [1, 2, 3, 4, 5, 1, 2]
