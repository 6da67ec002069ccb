"""The ragged Sequences type: cuts, gathers, truncation and padding, exactly."""

from __future__ import annotations

import numpy as np
import pytest

from seqcli.sequences import Sequences


def three() -> Sequences:
    """Lengths 2, 3, 1 of (timesteps, features=2); sequence i's cells are 10 * i + 0, 1, 2, ..."""
    return Sequences.from_arrays([np.arange(n * 2, dtype=np.float64).reshape(n, 2) + 10 * i for i, n in enumerate([2, 3, 1])])


def test_from_arrays_concatenates_once_and_indexes_views() -> None:
    s = three()
    assert (len(s), s.values.shape, s.lengths.tolist(), s.starts.tolist(), s.cell_shape) == (3, (6, 2), [2, 3, 1], [0, 2, 5], (2,))
    assert s[1].tolist() == [[10, 11], [12, 13], [14, 15]] and s[-1].tolist() == [[20, 21]]
    assert np.shares_memory(s[1], s.values)  # a view, no copy
    assert [a.shape for a in s] == [(2, 2), (3, 2), (1, 2)]
    with pytest.raises(IndexError):
        s[3]


def test_from_dense_is_a_reshape() -> None:
    x = np.arange(24.0).reshape(2, 4, 3)
    s = Sequences.from_dense(x)
    assert s.lengths.tolist() == [4, 4] and s.same_lengths() and np.shares_memory(s.values, x)
    assert s[1].tolist() == x[1].tolist()


def test_lengths_must_cut_the_values() -> None:
    with pytest.raises(ValueError, match="do not cut"):
        Sequences(np.zeros((5, 1)), np.array([2, 2]))


def test_subset_gathers_rows_in_the_given_order() -> None:
    sub = three().subset(np.array([2, 0, 0]))
    assert sub.lengths.tolist() == [1, 2, 2] and [a[:, 0].tolist() for a in sub] == [[20], [0, 2], [0, 2]]
    assert three()[1:].lengths.tolist() == [3, 1]
    assert len(three().subset(np.array([], dtype=np.int64))) == 0


@pytest.mark.parametrize(("keep", "expected"), [("first", [[0, 2], [10, 12], [20]]), ("last", [[0, 2], [12, 14], [20]])])
def test_truncated_keeps_the_first_or_last_steps(keep: str, expected: list[list[int]]) -> None:
    cut = three().truncated(2, keep=keep)
    assert cut.lengths.tolist() == [2, 2, 1] and [a[:, 0].tolist() for a in cut] == expected
    whole = three()
    assert whole.truncated(3, keep=keep) is whole  # nothing to cut: unchanged, no copy


@pytest.mark.parametrize(("post", "expected"), [(True, [[10, 12, 14, -1], [0, 2, -1, -1]]), (False, [[-1, 10, 12, 14], [-1, -1, 0, 2]])])
def test_padded_pads_either_side(post: bool, expected: list[list[int]]) -> None:
    x = three().padded(np.array([1, 0]), 4, post=post, pad_value=-1)
    assert x.shape == (2, 4, 2) and x[..., 0].tolist() == expected
    cells, real = three().cells(np.array([1, 0]), 4, post=post)
    assert real.sum(axis=1).tolist() == [3, 2] and three().values[cells[real], 0].tolist() == [10, 12, 14, 0, 2]


def test_map_keeps_the_cuts() -> None:
    doubled = three().map(lambda v: v * 2)
    assert doubled.lengths.tolist() == [2, 3, 1] and doubled[2].tolist() == [[40, 42]]


def test_empty() -> None:
    empty = Sequences.from_arrays([], cell_shape=(3,))
    assert (len(empty), empty.values.shape, empty.same_lengths(), list(empty)) == (0, (0, 3), False, [])
