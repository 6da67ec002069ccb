"""The ragged type every module passes sequences as, from loading on: :class:`Sequences`.

Variable-length sequences are stored once, concatenated: ``values`` is ``(total_timesteps, features)`` (or
``(total_timesteps[, targets])`` for per-timestep targets and outputs) and ``lengths`` is ``(samples,)``. Sequence ``i``
is the view ``values[starts[i] : starts[i] + lengths[i]]``. Nothing is re-measured or re-split along the way: scaling
maps ``values`` once, a split or batch gathers rows by index, and a batch is padded by one vectorized gather
(:meth:`Sequences.padded`). No padded copy of a data set exists. Pure NumPy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import overload

import numpy as np


class Sequences(Sequence[np.ndarray]):
    """``len(self)`` ragged sequences: ``self[i]`` is ``(lengths[i], *cell_shape)``, a view into ``values``.

    >>> s = Sequences.from_arrays([np.ones((2, 1)), np.full((3, 1), 2.0)])
    >>> s.lengths.tolist(), s.values.shape, s[1][:, 0].tolist()
    ([2, 3], (5, 1), [2.0, 2.0, 2.0])
    """

    __slots__ = ("lengths", "starts", "values")

    def __init__(self, values: np.ndarray, lengths: np.ndarray) -> None:
        lengths = np.asarray(lengths, dtype=np.int64)
        if lengths.ndim != 1 or int(lengths.sum()) != len(values):
            raise ValueError(f"lengths {lengths.shape} summing to {int(lengths.sum())} do not cut values of shape {values.shape}")
        self.values = values
        self.lengths = lengths
        self.starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64) if len(lengths) else np.zeros(0, np.int64)

    @classmethod
    def from_arrays(cls, arrays: Sequence[np.ndarray], *, cell_shape: tuple[int, ...] = (), dtype: np.dtype | type | None = None) -> Sequences:
        """Concatenate ``arrays`` (each ``(timesteps_i, *cell)``); ``cell_shape``/``dtype`` shape the values of an empty list."""
        if isinstance(arrays, Sequences):
            return arrays
        lengths = np.fromiter((len(a) for a in arrays), np.int64, len(arrays))
        values = np.concatenate(arrays) if len(arrays) else np.zeros((0, *cell_shape), dtype or np.float64)
        return cls(values, lengths)

    @classmethod
    def from_dense(cls, x: np.ndarray) -> Sequences:
        """Equal-length sequences ``(samples, timesteps, *cell)`` (a reshape: no copy when ``x`` is contiguous)."""
        return cls(x.reshape(x.shape[0] * x.shape[1], *x.shape[2:]), np.full(x.shape[0], x.shape[1], np.int64))

    def __len__(self) -> int:
        return len(self.lengths)

    @overload
    def __getitem__(self, index: int) -> np.ndarray: ...

    @overload
    def __getitem__(self, index: slice) -> Sequences: ...

    def __getitem__(self, index: int | slice) -> np.ndarray | Sequences:
        if isinstance(index, slice):
            return self.subset(np.arange(len(self))[index])
        i = range(len(self))[index]  # negative indexes; IndexError past the end
        start = int(self.starts[i])
        return self.values[start : start + int(self.lengths[i])]

    def __iter__(self) -> Iterator[np.ndarray]:
        for start, length in zip(self.starts.tolist(), self.lengths.tolist(), strict=True):
            yield self.values[start : start + length]

    def __repr__(self) -> str:
        return f"Sequences({len(self)} sequences, values {self.values.shape} {self.values.dtype})"

    @property
    def cell_shape(self) -> tuple[int, ...]:
        """The shape of one timestep: ``(features,)``, or ``()`` for scalars."""
        return tuple(self.values.shape[1:])

    @property
    def dtype(self) -> np.dtype:
        return self.values.dtype

    def same_lengths(self) -> bool:
        return len(self) > 0 and bool((self.lengths == self.lengths[0]).all())

    def subset(self, index: np.ndarray) -> Sequences:
        """The sequences at ``index``, in that order (one gather)."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        ends = np.cumsum(lengths)
        offsets = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - lengths, lengths)
        return Sequences(self.values[np.repeat(self.starts[index], lengths) + offsets], lengths)

    def with_values(self, values: np.ndarray) -> Sequences:
        """The same cuts over new ``values`` of the same length (scaled, encoded, predicted)."""
        return Sequences(values, self.lengths)

    def map(self, function: Callable[[np.ndarray], np.ndarray]) -> Sequences:
        """``function`` applied to all values at once (it must keep their number), e.g. scaling."""
        return self.with_values(function(self.values))

    def truncated(self, maxlen: int, *, keep: str) -> Sequences:
        """At most ``maxlen`` timesteps per sequence: the first (``keep="first"``) or the last (``"last"``) ones."""
        if not len(self) or int(self.lengths.max()) <= maxlen:
            return self
        lengths = np.minimum(self.lengths, maxlen)
        skip = np.zeros_like(lengths) if keep == "first" else self.lengths - lengths
        ends = np.cumsum(lengths)
        offsets = np.arange(int(ends[-1])) - np.repeat(ends - lengths, lengths)
        return Sequences(self.values[np.repeat(self.starts + skip, lengths) + offsets], lengths)

    def cells(self, rows: np.ndarray, width: int, *, post: bool) -> tuple[np.ndarray, np.ndarray]:
        """Where each cell of the padded ``(batch, width)`` batch of ``rows`` reads in ``values``, and which cells are real.

        ``post``: sequences start at step 0 and padding follows; else padding comes first. A sequence longer than
        ``width`` is cut to its first (``post``) or last ``width`` steps (already truncated data never is).
        """
        steps = np.arange(width)[None, :]
        count = self.lengths[rows][:, None]
        offset = steps if post else steps - (width - count)  # where each cell reads within its sequence
        real = (offset >= 0) & (offset < count)
        return np.where(real, self.starts[rows][:, None] + offset, 0), real

    def padded(self, rows: np.ndarray, width: int, *, post: bool, pad_value: float | int) -> np.ndarray:
        """Rows ``rows`` padded with ``pad_value`` to ``(batch, width, *cell_shape)``, by one vectorized gather.

        >>> Sequences.from_arrays([np.ones(2), np.full(3, 2.0)]).padded(np.array([1, 0]), 4, post=True, pad_value=0.0)
        array([[2., 2., 2., 0.],
               [1., 1., 0., 0.]])
        """
        cells, real = self.cells(rows, width, post=post)
        x = self.values[cells]
        if not real.all():
            x[~real] = pad_value
        return x
