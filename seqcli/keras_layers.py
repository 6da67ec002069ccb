"""seqcli's own Keras layers for padded variable-length batches: convolution blocks that carry the mask, and pooling over time.

Every layer here takes the mask of ``(batch, timesteps, ...)`` input (True: a real timestep) and guarantees that padded
timesteps never change a real output, whatever the padding holds and however wide the batch is:

- :class:`ConvBlock` ``(batch, timesteps, features) -> (batch, ceil(timesteps / (stride x pool)), filters)``: zero the
  padded steps, convolve (a fixed zero padding of ``kernel_size - 1`` steps around the sequence, so the stride grid
  starts at the first timestep whatever the width), normalize (per timestep, or batch statistics over real steps only),
  activate, max-pool over real steps, zero the padded steps again. The mask is downsampled with the sequence: a step is
  real iff the input step it starts at is (stride), or iff its window holds a real step (pooling); with post-padding
  that is the first ``ceil(length / stride)`` steps.
- :class:`MaskedPooling` ``(batch, timesteps, units) -> (batch, units)``: the last real step (for a bidirectional
  layer's output, the forward half at the last real step and the backward half at the first), the mean or the maximum
  over real steps.
- :class:`AttentionPooling` ``(batch, timesteps, units) -> (batch, units)``: a learned softmax weighting over the real
  steps (padded steps get weight 0).

The classes are defined on first use (:func:`classes`, which imports Keras) and registered for saving, so a saved
``.keras`` model loads in Keras' safe mode once :func:`classes` has run (:func:`seqcli.model.load_checkpoint` calls it).
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

from seqcli.backend import import_keras

NEGATIVE = -1e9  # stands in for minus infinity under the mask: exp() of it is exactly 0, and it stays finite
NORMALIZATIONS = ("layer", "batch", "none")
# Batch normalization's moving statistics, which inference uses, move this far towards each batch's: Keras' 0.99 needs hundreds
# of steps to forget the initial ones, more than the few batches per epoch of a small training set give in a short run.
BATCH_MOMENTUM = 0.9
POOLING_MODES = ("last", "mean", "max")


def conv_length(timesteps: int | None, *, stride: int, pool: int) -> int | None:
    """The timesteps after a :class:`ConvBlock`: ``ceil(ceil(timesteps / stride) / pool)``; None stays None.

    >>> conv_length(29, stride=2, pool=2), conv_length(None, stride=2, pool=1)
    (8, None)
    """
    if timesteps is None:
        return None
    return math.ceil(math.ceil(timesteps / stride) / pool)


@functools.cache
def classes() -> SimpleNamespace:
    """The layer classes ``ConvBlock``, ``MaskedPooling``, ``AttentionPooling`` (imports Keras; registered for saving)."""
    keras = import_keras()
    ops = keras.ops

    def as_weights(mask: Any, x: Any) -> Any:
        """``(batch, timesteps)`` mask -> ``(batch, timesteps, 1)`` 1.0 for real steps, 0.0 for padding, in ``x``'s dtype."""
        return ops.expand_dims(ops.cast(mask, x.dtype), -1)

    @keras.saving.register_keras_serializable(package="seqcli")
    class ConvBlock(keras.layers.Layer):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        """``(batch, timesteps, features) -> (batch, ceil(timesteps / (stride x pool)), filters)``, masked (module docstring)."""

        def __init__(self, filters: int, kernel_size: int, stride: int = 1, pool: int = 1, normalization: str = "layer", activation: str = "relu", **kwargs: Any) -> None:
            super().__init__(**kwargs)
            if normalization not in NORMALIZATIONS:
                raise ValueError(f"normalization must be one of {NORMALIZATIONS}, not {normalization!r}")
            self.filters, self.kernel_size, self.stride, self.pool = filters, kernel_size, stride, pool
            self.normalization, self.activation = normalization, activation
            self.supports_masking = True
            self.conv = keras.layers.Conv1D(filters, kernel_size, strides=stride, padding="valid", name="conv")
            self.norm = (
                keras.layers.LayerNormalization(name="norm") if normalization == "layer"
                else keras.layers.BatchNormalization(momentum=BATCH_MOMENTUM, name="norm") if normalization == "batch" else None
            )
            self.act = keras.activations.get(activation)

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            self.conv.build((None, None, input_shape[-1]))
            if self.norm is not None:
                self.norm.build((None, None, self.filters))

        def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
            x = inputs if mask is None else inputs * as_weights(mask, inputs)  # padding holds zeros, not the pad value
            left = (self.kernel_size - 1) // 2
            x = self.conv(ops.pad(x, [[0, 0], [left, self.kernel_size - 1 - left], [0, 0]]))  # (batch, ceil(timesteps / stride), filters)
            mask = self._strided(mask)
            if self.norm is not None:  # batch: its statistics count real steps only; layer: per timestep, so padding cannot change it
                x = self.norm(x, training=training, mask=mask) if self.normalization == "batch" else self.norm(x)
            x = self.act(x)
            if self.pool > 1:
                if mask is not None:
                    x = ops.where(ops.expand_dims(mask, -1), x, NEGATIVE)
                x = ops.pad(x, [[0, 0], [0, self.pool - 1], [0, 0]], constant_values=NEGATIVE)
                x = ops.max_pool(x, self.pool, self.pool, padding="valid")  # (batch, ceil(steps / pool), filters)
                mask = self._pooled(mask)
            return x if mask is None else x * as_weights(mask, x)  # bias, normalization and activation made the padding non-zero

        def _strided(self, mask: Any) -> Any:
            return mask if mask is None or self.stride == 1 else mask[:, :: self.stride]

        def _pooled(self, mask: Any) -> Any:
            if mask is None or self.pool == 1:
                return mask
            real = ops.pad(ops.expand_dims(ops.cast(mask, "float32"), -1), [[0, 0], [0, self.pool - 1], [0, 0]])
            return ops.squeeze(ops.max_pool(real, self.pool, self.pool, padding="valid"), -1) > 0.5

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return self._pooled(self._strided(mask))

        def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (shape[0], conv_length(shape[1], stride=self.stride, pool=self.pool), self.filters)

        def get_config(self) -> dict[str, Any]:
            return {
                **super().get_config(), "filters": self.filters, "kernel_size": self.kernel_size, "stride": self.stride, "pool": self.pool,
                "normalization": self.normalization, "activation": self.activation,
            }

    @keras.saving.register_keras_serializable(package="seqcli")
    class MaskedPooling(keras.layers.Layer):  # type: ignore[name-defined]  # a dynamic base class, as above
        """``(batch, timesteps, units) -> (batch, units)`` over the real steps: ``mode`` last, mean or max.

        ``last`` with ``bidirectional``: the first half of the units (the forward direction) at the last real step, the
        second half (the backward direction, which ends at the sequence's start) at the first real step, so that it
        equals the final states a ``Bidirectional`` layer returns without ``return_sequences``.
        """

        def __init__(self, mode: str, bidirectional: bool = False, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            if mode not in POOLING_MODES:
                raise ValueError(f"mode must be one of {POOLING_MODES}, not {mode!r}")
            self.mode, self.bidirectional = mode, bidirectional
            self.supports_masking = True

        def call(self, inputs: Any, mask: Any = None) -> Any:
            x = inputs
            if mask is None:
                mask = ops.ones(ops.shape(x)[:2], dtype="bool")
            if self.mode == "mean":
                weights = as_weights(mask, x)
                return ops.sum(x * weights, axis=1) / ops.maximum(ops.sum(weights, axis=1), 1.0)
            if self.mode == "max":
                return ops.max(ops.where(ops.expand_dims(mask, -1), x, NEGATIVE), axis=1)
            steps = ops.shape(x)[1]
            real = ops.cast(mask, "int32")
            last = steps - 1 - ops.cast(ops.argmax(ops.flip(real, axis=1), axis=1), "int32")  # (batch,): the index of the last real step
            forward = self._at(x, last, steps)
            if not self.bidirectional:
                return forward
            half = x.shape[-1] // 2
            backward = self._at(x, ops.argmax(real, axis=1), steps)  # the first real step
            return ops.concatenate([forward[:, :half], backward[:, half:]], axis=-1)

        @staticmethod
        def _at(x: Any, index: Any, steps: Any) -> Any:
            """``x[b, index[b]]`` for every sequence b: ``(batch, units)``."""
            pick = ops.cast(ops.expand_dims(ops.arange(steps, dtype="int32"), 0) == ops.expand_dims(ops.cast(index, "int32"), 1), x.dtype)  # (batch, timesteps) one-hot
            return ops.sum(x * ops.expand_dims(pick, -1), axis=1)

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return None

        def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (shape[0], shape[2])

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "mode": self.mode, "bidirectional": self.bidirectional}

    @keras.saving.register_keras_serializable(package="seqcli")
    class AttentionPooling(keras.layers.Layer):  # type: ignore[name-defined]  # a dynamic base class, as above
        """``(batch, timesteps, units) -> (batch, units)``: the steps weighted by a softmax over the real steps of the learned
        score ``v . tanh(W x_t + b)`` (``W`` units x units); padded steps get weight 0."""

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.supports_masking = True

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            units = input_shape[-1]
            self.kernel = self.add_weight(shape=(units, units), initializer="glorot_uniform", name="kernel")
            self.bias = self.add_weight(shape=(units,), initializer="zeros", name="bias")
            self.score = self.add_weight(shape=(units, 1), initializer="glorot_uniform", name="score")

        def call(self, inputs: Any, mask: Any = None) -> Any:
            scores = ops.squeeze(ops.matmul(ops.tanh(ops.matmul(inputs, self.kernel) + self.bias), self.score), -1)  # (batch, timesteps)
            if mask is not None:
                scores = ops.where(mask, scores, NEGATIVE)
            scores = ops.exp(scores - ops.max(scores, axis=1, keepdims=True))  # padded steps: exactly 0 (ops.softmax warns about a batch of one timestep)
            weights = scores / ops.sum(scores, axis=1, keepdims=True)
            return ops.sum(inputs * ops.expand_dims(weights, -1), axis=1)

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return None

        def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (shape[0], shape[2])

    return SimpleNamespace(ConvBlock=ConvBlock, MaskedPooling=MaskedPooling, AttentionPooling=AttentionPooling)
