"""The random convolutional kernel branch (``model.kernels``): MiniRocket's features as a masked Keras layer.

MiniRocket (Dempster, Schmidt and Webb, 2021) convolves each series with 84 fixed kernels of 9 weights (-1 everywhere
but 2 at three places) at dilations spread exponentially over the series' length, and counts, for a few thresholds
("biases") per kernel and dilation, the proportion of timesteps whose output exceeds it (PPV). The biases are
quantiles of the outputs on training sequences. A linear model on those features leads the UCR bake-offs at a tiny
fraction of a network's training time; a network's head reading them beside the recurrent and convolutional vectors
starts from what MiniRocket sees.

:class:`KernelFeatures` ``(batch, timesteps, channels) -> (batch, features)`` does that under the mask:

- padded timesteps are zeroed before the convolutions (``padding="same"``, so a real step near either end sees zeros
  beyond it whether they are padding or the edge), and the proportions count real timesteps only, so appending
  padding changes no feature;
- each kernel of a multivariate input reads the sum of a random subset of the channels (MiniRocket's multivariate form);
- the features are standardized with the training split's mean and standard deviation and multiplied by
  :data:`SCALE`. With Adam, whose steps do not depend on the gradient's size, that makes the head's weights on these
  10,000 features move as if at a thirtieth of the learning rate. At a tenth (scale 0.1), the head fitted one of
  ACSF1's training splits within two epochs, before the recurrent and convolutional branches had learned much, and
  early stopping kept that model (``docs/recipe.md`` has the measurements).

The kernel weights follow from ``seed`` and the layer's configuration; the biases and the standardization are fitted
by :func:`adapt` on the training split, once, before training, and saved with the model like any weight (none is
trainable). Unlike aeon's MiniRocket, every feature counts all real timesteps (aeon alternates between all of them and
those away from the edges).

Nothing in the branch is trained, so a sequence's features are the same at every epoch unless augmentation changes the
sequence. Training then computes them once per sequence (:func:`features`) and fits :func:`cached_view`, the model with
the branch's output taken as an input: on ACSF1 (512 timesteps) the branch was two thirds of every epoch.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np

from seqcli.backend import import_keras
from seqcli.sequences import Sequences

KERNEL_LENGTH = 9
PATTERNS = np.array(list(itertools.combinations(range(KERNEL_LENGTH), 3)), dtype=np.int64)  # (84, 3): where a kernel's weight is 2
MAX_DILATIONS = 32  # per kernel, as in MiniRocket
SCALE = 0.03  # the standardized features' scale (module docstring)
FIT_SEQUENCES = 1024  # at most this many training sequences estimate the standardization
GOLDEN = (math.sqrt(5) + 1) / 2  # MiniRocket's low-discrepancy quantiles: (k x golden ratio) mod 1
FEATURES_INPUT = "kernel_features"  # the input of :func:`cached_view` that takes the branch's output
CACHE_BYTES = 1 << 30  # the most memory the features of the training (and validation) sequences may take to be computed once


def cacheable(*, sequences: int, features: int) -> bool:
    """Whether the ``features`` (float32) of ``sequences`` sequences fit in :data:`CACHE_BYTES`, so that training may
    compute them once."""
    return sequences * features * 4 <= CACHE_BYTES


def dilations(length: int, features: int) -> tuple[list[int], list[int]]:
    """MiniRocket's dilations for series of ``length`` timesteps and the biases (features per kernel) of each.

    >>> dilations(251, 10_000)
    ([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14, 16, 17, 20, 22, 25, 27, 31], [27, 12, 12, 8, 8, 4, 4, 4, 4, 4, 4, 4, 3, 3, 3, 3, 3, 3, 3, 3])
    >>> dilations(8, 840)
    ([1], [10])
    """
    per_kernel = max(1, features // len(PATTERNS))
    most = min(per_kernel, MAX_DILATIONS)
    exponent = max(0.0, math.log2(max(length - 1, 1) / (KERNEL_LENGTH - 1)))
    values, counts = np.unique(np.floor(np.logspace(0, exponent, most, base=2)).astype(np.int64), return_counts=True)
    biases = (counts * per_kernel / most).astype(np.int64)
    for i in itertools.islice(itertools.cycle(range(len(biases))), per_kernel - int(biases.sum())):
        biases[i] += 1
    return [int(v) for v in values], [int(b) for b in biases]


def feature_count(length: int, features: int) -> int:
    """How many features the branch gives for series of ``length`` timesteps when asked for about ``features``: one
    per (kernel, dilation, bias).

    >>> feature_count(251, 10_000)
    9996
    """
    return len(PATTERNS) * sum(dilations(length, features)[1])


def kernel_weights(channels: int, dilation_count: int, seed: int) -> np.ndarray:
    """The fixed convolution weights ``(dilations, 9, channels, 84)``: each kernel's pattern (-1, and 2 at its three places)
    over a random subset of the channels (1 to min(channels, 9) of them, drawn afresh per dilation)."""
    rng = np.random.default_rng(seed)
    pattern = -np.ones((KERNEL_LENGTH, len(PATTERNS)), dtype=np.float32)
    pattern[PATTERNS.T, np.arange(len(PATTERNS))] = 2.0
    weights = np.zeros((dilation_count, KERNEL_LENGTH, channels, len(PATTERNS)), dtype=np.float32)
    most = min(channels, KERNEL_LENGTH)
    for d in range(dilation_count):
        for j in range(len(PATTERNS)):
            count = int(2 ** rng.uniform(0, math.log2(most + 1)))
            chosen = rng.choice(channels, size=min(max(count, 1), channels), replace=False)
            weights[d, :, chosen, j] = pattern[:, j]
    return weights


@functools.cache
def layer_class() -> Any:
    """The Keras layer class ``KernelFeatures`` (imports Keras; registered for saving, so safe-mode loading finds it)."""
    keras = import_keras()
    ops = keras.ops

    @keras.saving.register_keras_serializable(package="seqcli")
    class KernelFeatures(keras.layers.Layer):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        """``(batch, timesteps, channels) -> (batch, features)``: MiniRocket's PPV features under the mask (module docstring).

        ``length``: the timesteps the dilations are spread over (the input's ``maxlen``); ``features``: about this many
        (a multiple of 84); ``seed``: draws the channel subsets and, in :func:`adapt`, the sequences the biases come from.
        """

        def __init__(self, length: int, features: int = 10_000, seed: int = 0, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.length, self.features, self.seed = length, features, seed
            self.dilations, self.biases_per = dilations(length, features)
            self.supports_masking = True

        @property
        def output_features(self) -> int:
            return feature_count(self.length, self.features)

        def build(self, input_shape: tuple[int | None, ...]) -> None:
            channels = int(input_shape[-1])  # type: ignore[arg-type]  # Keras gives the feature axis a size
            weights = kernel_weights(channels, len(self.dilations), self.seed)
            self.kernels = [self.add_weight(shape=weights[d].shape, initializer="zeros", trainable=False, name=f"kernel_{d}") for d in range(len(self.dilations))]
            for variable, value in zip(self.kernels, weights, strict=True):
                variable.assign(value)
            self.biases = [self.add_weight(shape=(len(PATTERNS), n), initializer="zeros", trainable=False, name=f"bias_{d}") for d, n in enumerate(self.biases_per)]
            self.mean = self.add_weight(shape=(self.output_features,), initializer="zeros", trainable=False, name="mean")
            self.std = self.add_weight(shape=(self.output_features,), initializer="ones", trainable=False, name="std")

        def convolved(self, inputs: Any, mask: Any, index: int) -> Any:
            """Dilation ``index``'s kernel outputs ``(batch, timesteps, 84)``, padded steps zeroed first."""
            x = inputs if mask is None else inputs * ops.expand_dims(ops.cast(mask, inputs.dtype), -1)
            return ops.conv(x, self.kernels[index], strides=1, padding="same", dilation_rate=self.dilations[index])

        def proportions(self, inputs: Any, mask: Any = None) -> Any:
            """The raw PPV features ``(batch, features)``: per dilation, kernel and bias, the share of real steps above the bias."""
            weights = ops.ones(ops.shape(inputs)[:2], dtype=inputs.dtype) if mask is None else ops.cast(mask, inputs.dtype)  # (batch, timesteps)
            real = ops.maximum(ops.sum(weights, axis=1), 1.0)[:, None, None]
            weights = weights[:, :, None, None]
            parts = []
            for d, bias in enumerate(self.biases):  # one dilation's outputs at a time
                out = self.convolved(inputs, mask, d)
                # (batch, timesteps, 84, biases): each output against each of its kernel's biases, summed over the real steps
                share = ops.sum(ops.cast(ops.expand_dims(out, -1) > bias, inputs.dtype) * weights, axis=1) / real
                parts.append(ops.reshape(share, (-1, share.shape[1] * share.shape[2])))
            return ops.concatenate(parts, axis=-1)

        def call(self, inputs: Any, mask: Any = None) -> Any:
            return (self.proportions(inputs, mask) - self.mean) / self.std * SCALE

        def compute_mask(self, inputs: Any, mask: Any = None) -> Any:
            return None

        def compute_output_shape(self, shape: tuple[int | None, ...]) -> tuple[int | None, ...]:
            return (shape[0], self.output_features)

        def get_config(self) -> dict[str, Any]:
            return {**super().get_config(), "length": self.length, "features": self.features, "seed": self.seed}

    return KernelFeatures


def adapt(layer: Any, sequences: Sequences, *, seed: int, pad_value: float) -> None:
    """Fit ``layer``'s biases and standardization on the prepared training ``sequences`` (ragged ``(timesteps_i, channels)``,
    as the model receives them): each (dilation, kernel) takes its biases from the outputs on one randomly drawn sequence
    at MiniRocket's quantiles; then the mean and standard deviation of every feature over (at most
    :data:`FIT_SEQUENCES` of) the sequences. Real timesteps whose every value is ``pad_value`` are masked, as in the model."""
    keras = import_keras()
    ops = keras.ops
    rng = np.random.default_rng(seed)
    quantiles = (np.arange(1, layer.output_features + 1) * GOLDEN) % 1
    start = 0
    for d, (bias, count) in enumerate(zip(layer.biases, layer.biases_per, strict=True)):
        picked = rng.integers(len(sequences), size=len(PATTERNS))
        batch, mask = _padded(sequences, picked, pad_value)
        out = ops.convert_to_numpy(layer.convolved(batch, mask, d))  # (84, timesteps, 84): sequence j feeds kernel j
        values = np.empty((len(PATTERNS), count), dtype=np.float32)
        for j, length in enumerate(sequences.lengths[picked]):
            values[j] = np.quantile(out[j, :length, j], quantiles[start + j * count : start + (j + 1) * count])
        bias.assign(values)
        start += len(PATTERNS) * count
    chosen = rng.permutation(len(sequences))[:FIT_SEQUENCES]
    features = np.concatenate([ops.convert_to_numpy(layer.proportions(*_padded(sequences, chosen[first : first + 64], pad_value))) for first in range(0, len(chosen), 64)])
    layer.mean.assign(features.mean(axis=0))
    layer.std.assign(np.maximum(features.std(axis=0), 1e-3))


def _padded(sequences: Sequences, rows: np.ndarray, pad_value: float) -> tuple[np.ndarray, np.ndarray]:
    """Sequences ``rows`` zero post-padded to the longest of them, ``(batch, timesteps, channels)`` float32, and the
    ``(batch, timesteps)`` mask the model's ``Masking(pad_value)`` gives them: their real steps, less any whose every
    value is ``pad_value``."""
    width = int(sequences.lengths[rows].max())
    batch = sequences.padded(rows, width, post=True, pad_value=0.0).astype(np.float32)
    return batch, (np.arange(width)[None, :] < sequences.lengths[rows][:, None]) & (batch != pad_value).any(axis=-1)


def layer_of(model: Any) -> Any:
    """``model``'s kernel branch (its :class:`KernelFeatures` layer, the first input's), or None when it has none."""
    return next((layer for layer in model.layers if type(layer).__name__ == "KernelFeatures"), None)


def features(layer: Any, sequences: Sequences, *, pad_value: float, batch_size: int = 64) -> np.ndarray:
    """``layer``'s output ``(samples, features)`` on the prepared ``sequences`` (ragged ``(timesteps_i, channels)``), in
    the sequences' order: what the model's branch computes for each of them, in batches of similar lengths. Like the
    model's ``Masking(pad_value)``, the mask leaves out a real timestep whose every value is ``pad_value``."""
    keras = import_keras()
    order = np.argsort(sequences.lengths, kind="stable")
    out = np.empty((len(sequences), layer.output_features), dtype=np.float32)
    for first in range(0, len(order), batch_size):
        rows = order[first : first + batch_size]
        out[rows] = keras.ops.convert_to_numpy(layer(*_padded(sequences, rows, pad_value)))
    return out


def cached_view(model: Any, *, name: str) -> Any | None:
    """``model`` with its kernel branch's output ``(batch, features)`` taken as the input :data:`FEATURES_INPUT`
    instead of computed from the sequence, and its inputs as a mapping by name: a multi-input model's by their own
    names, a one-input model's as ``name``. None when the view's trainable variables would not be ``model``'s in
    ``model``'s order, which the optimizer's state follows.

    Every other layer of ``model`` is called again on the new inputs, so the view shares all of ``model``'s weights:
    training the view trains ``model``. Given :func:`features` of a batch, it outputs what ``model`` outputs.
    """
    keras = import_keras()
    layer = layer_of(model)
    named = model.input if isinstance(model.input, dict) else {name: model.input}
    by_tensor = {id(t): key for key, t in named.items()}
    inputs = {by_tensor[id(t)]: keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=by_tensor[id(t)]) for t in model.inputs}  # model.inputs' order
    given = keras.Input(shape=(layer.output_features,), name=FEATURES_INPUT)

    def operation(op: Any) -> Any:
        return (lambda *args, **kwargs: given) if op is layer else op

    outputs = model._run_through_graph(list(inputs.values()), operation_fn=operation)  # how keras.models.clone_model rebuilds a graph
    view = keras.Model({**inputs, FEATURES_INPUT: given}, outputs, name=model.name)
    return view if [id(v) for v in view.trainable_variables] == [id(v) for v in model.trainable_variables] else None
