"""The n-gram bag branch (``model.ngrams``): a sequence of token codes as the (normalized) sum of its n-grams' embeddings.

A linear model on a text's character n-gram counts (TF-IDF and logistic regression) is the reference any character
model is held to, and a recurrent layer reading one character at a time learns those local patterns slowly. This
branch gives the head them directly, the way fastText (Joulin et al., 2017) does: every n-gram of 1 to ``longest``
tokens is hashed into one of ``buckets`` rows of a learned embedding table, and the branch's vector is the sum of
the rows of the sequence's n-grams divided by the square root of their number. The sum of k rows of about equal length
pointing in different directions is about sqrt(k) times as long as one, so short and long sequences get vectors of about
the same length, as the l2-normalized counts of the reference do. (The mean would shrink a long line's vector and slow
the learning of its n-grams: with logistic regression on these counts, l1 normalization needed ten times weaker
regularization than dividing by the square root to reach the same accuracy on the text example.)

:class:`NgramBag` ``(batch, timesteps) -> (batch, dim)`` reads the token codes themselves (0 is padding, as everywhere
in seqcli):

- an n-gram's row is a polynomial hash of its codes, ``(...((c1 x M + c2) x M + c3)...) mod buckets``, with a
  multiplier ``M`` that shares no factor with ``buckets`` (so that no code's contribution vanishes modulo ``buckets``,
  as it would with an even base and a power-of-two table), plus an offset per n-gram length. Every step stays below
  2**31, so the rows are exact integer arithmetic on both backends and in exported models; two single tokens below
  ``buckets`` never share a row;
- an n-gram that includes a padding step is left out of both the sum and the number, so padding (before or after)
  changes nothing.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from seqcli.backend import import_keras

INT32_LIMIT = 2**31 - 1


def multiplier(buckets: int) -> int:
    """The hash's multiplier for a table of ``buckets`` rows: the largest that keeps every step below 2**31 and shares no
    factor with ``buckets``.

    >>> multiplier(2**17), multiplier(1000)
    (16381, 2147481)
    """
    largest = INT32_LIMIT // buckets - 1  # (buckets - 1) x M + (buckets - 1) < 2**31
    return next(m for m in range(largest, 0, -1) if math.gcd(m, buckets) == 1)


@functools.cache
def layer_class() -> Any:
    """The Keras layer class ``NgramBag`` (imports Keras; registered for saving, so safe-mode loading finds it)."""
    keras = import_keras()
    ops = keras.ops
    multiplier_for = multiplier

    @keras.saving.register_keras_serializable(package="seqcli")
    class NgramBag(keras.layers.Layer):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        """``(batch, timesteps) -> (batch, dim)``: the sum of the embeddings of the sequence's 1- to ``longest``-grams over the
        square root of their number (module docstring).

        Token codes are 1 and up (0 is padding); ``buckets``: rows of the embedding table, ``dim`` wide; ``multiplier``:
        the hash's (:func:`multiplier` by default; saved with the layer, so a loaded model keeps its rows).
        """

        def __init__(self, *, longest: int, buckets: int, dim: int, multiplier: int | None = None, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.longest, self.buckets, self.dim = longest, buckets, dim
            self.multiplier = multiplier_for(buckets) if multiplier is None else multiplier

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            self.table = self.add_weight(shape=(self.buckets, self.dim), initializer=keras.initializers.RandomUniform(-1 / self.dim, 1 / self.dim), name="table")

        def codes(self, tokens: Any) -> tuple[list[Any], list[Any]]:
            """Per n-gram length 1..longest: the bucket of the n-gram starting at each step and whether it counts,
            both ``(batch, timesteps + longest - 1)`` (the tokens are zero-padded by ``longest - 1`` to keep every start)."""
            tokens = ops.pad(ops.cast(tokens, "int32"), [[0, 0], [0, self.longest - 1]])
            shifted = [ops.pad(tokens[:, i:], [[0, 0], [0, i]]) for i in range(self.longest)]  # shifted[i][:, t] = tokens[:, t + i]
            buckets, counts = [], []
            number, real = ops.zeros_like(tokens), ops.ones_like(tokens)
            for n, step in enumerate(shifted, 1):
                number = (number * self.multiplier + step % self.buckets) % self.buckets  # the hash of the first n codes
                real = real * ops.cast(step > 0, "int32")
                buckets.append((number + n * (self.buckets // (self.longest + 1))) % self.buckets)
                counts.append(real)
            return buckets, counts

        def call(self, tokens: Any) -> Any:
            buckets, counts = self.codes(tokens)
            total, count = 0.0, 0.0
            for bucket, real in zip(buckets, counts, strict=True):
                weight = ops.cast(real, self.table.dtype)
                total = total + ops.sum(ops.take(self.table, bucket, axis=0) * weight[:, :, None], axis=1)
                count = count + ops.sum(weight, axis=1)
            return total / ops.sqrt(ops.maximum(count, 1.0))[:, None]

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return None

        def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (shape[0], self.dim)

        def get_config(self) -> dict[str, Any]:
            config = {"longest": self.longest, "buckets": self.buckets, "dim": self.dim, "multiplier": self.multiplier}
            return {**super().get_config(), **config}

    return NgramBag
