"""Spec + fitted preprocessing -> a compiled ``keras.Model``, and its training options.

Input ``(batch, timesteps, features)`` -> ``Masking(pad_value)`` (float input) or
input ``(batch, timesteps)`` -> ``Embedding(mask_zero=True)`` (tokens and text:
learned, or frozen one-hot/code-value tables) -> optionally a convolutional front-end
(``model.frontend``: masked Conv1D blocks that may shorten the sequence and its mask) ->
stacked LSTM or GRU layers, each optionally bidirectional and layer-normalized (every one
but the last returns sequences) -> the pooling heads over time (``model.pooling``: the last
real state by default; mean, max or attention under the mask, concatenated) and beside the
recurrent layers optionally a fully convolutional branch (``model.fcn``, averaged over the
real timesteps), a random convolutional kernel branch (``model.kernels``, MiniRocket's features:
:mod:`seqcli.kernels`) and an n-gram bag branch on token codes (``model.ngrams``, :mod:`seqcli.ngrams`) -> optional dense layers -> the task's head
(:meth:`seqcli.tasks.base.Task.head`): a softmax over the classes, one sigmoid unit for two
classes, or a linear layer for regression. The mask reaches every recurrent layer, both
directions included, and every pooling; seqcli's own masked layers are in
:mod:`seqcli.keras_layers`. For a per-timestep task (``tag``, ``regress_timesteps``) the last
recurrent layer returns sequences too, the dense layers and the head apply per timestep
``(batch, timesteps, units)``, and the mask they carry keeps padded timesteps out of the loss
and the metrics.

A multi-input model has one such branch (input, masking or embedding, recurrent layers) per input, joined before the
dense layers: the branches' last outputs concatenated, or for a per-timestep task the other inputs' vectors repeated
at every timestep of the first input's branch. The front-end, the pooling heads and the FCN, kernel and n-gram branches belong to the first
input's branch (the one ``data`` and ``model.layers`` describe). The kernel branch's biases and standardization are
fitted on the training split before a model's first epoch (:func:`adapt_kernels`, called by :mod:`seqcli.train`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from seqcli import keras_layers
from seqcli import kernels as kernels_mod
from seqcli import ngrams as ngrams_mod
from seqcli.backend import import_keras
from seqcli.errors import RunError
from seqcli.preprocess import Preprocessor
from seqcli.spec import TASK_KINDS, FcnSpec, FrontendSpec, KernelsSpec, NgramsSpec, RecurrentLayer, Spec, input_piece, keras_name
from seqcli.tasks import get as get_task


def return_sequences(layers: list[RecurrentLayer], *, per_timestep: bool, pooled: bool = False) -> list[bool]:
    """Per recurrent layer of a branch: the spec's explicit value, else true for all but the last (for the first branch of
    a per-timestep task, or one whose ``pooled`` outputs a pooling head reduces over time, for all)."""
    return [layer.return_sequences if layer.return_sequences is not None else per_timestep or pooled or i < len(layers) - 1 for i, layer in enumerate(layers)]


@dataclass(frozen=True)
class Branch:
    """What one input's branch is made of besides its recurrent layers: the first input's has the model's front-end,
    pooling heads, FCN branch, kernel branch and n-gram branch; every other input's is recurrent layers alone.
    ``length``: the input's ``maxlen``, over which the kernel branch spreads its dilations."""

    layers: list[RecurrentLayer]
    frontend: FrontendSpec | None = None
    pooling: tuple[str, ...] = ("last",)
    fcn: FcnSpec | None = None
    kernels: KernelsSpec | None = None
    ngrams: NgramsSpec | None = None
    length: int = 0

    @classmethod
    def of(cls, spec: Spec, name: str, prep: Preprocessor) -> Branch:
        """``name``'s branch; the kernel branch only on real-valued input and the n-gram branch only on token codes
        (data that ``input: auto`` read otherwise gets none: :func:`seqcli.spec.skipped_piece_notes` says so)."""
        layers = spec.sections()[name][2]
        if name != spec.input_name:
            return cls(layers)
        model = spec.model
        kernels, ngrams = input_piece(model, "kernels", prep.input), input_piece(model, "ngrams", prep.input)
        return cls(layers, frontend=model.frontend, pooling=tuple(model.pooling), fcn=model.fcn, kernels=kernels, ngrams=ngrams, length=prep.maxlen)

    @property
    def pooled(self) -> bool:
        """Whether a pooling head reduces the last recurrent layer's sequence (anything but ``last`` alone)."""
        return self.pooling != ("last",)

    def units(self) -> int:
        """The width of the branch's output vector: each pooling head's (the last layer's width), plus the FCN's last
        filters, the kernel features and the n-gram vector."""
        last = self.layers[-1].units * (2 if self.layers[-1].bidirectional else 1) if self.layers else 0
        fcn = self.fcn.blocks[-1].filters if self.fcn is not None and self.fcn.blocks else 0
        return last * len(self.pooling) + fcn + self.kernel_features() + (0 if self.ngrams is None else self.ngrams.dim)

    def kernel_features(self) -> int:
        """The kernel branch's features (0 without one)."""
        return 0 if self.kernels is None else kernels_mod.feature_count(self.length, self.kernels.features)


def _pooling_head(kind: str, *, bidirectional: bool, name: str) -> Any:
    """One pooling head over time (``model.pooling``): ``(batch, timesteps, units) -> (batch, units)`` under the mask."""
    layers = keras_layers.classes()
    if kind == "attention":
        return layers.AttentionPooling(name=name)
    return layers.MaskedPooling(kind, bidirectional=bidirectional and kind == "last", name=name)


POOLING_HEADS: dict[str, Callable[..., Any]] = {kind: functools.partial(_pooling_head, kind) for kind in ("last", "mean", "max", "attention")}
"""The pooling heads by their ``model.pooling`` name; each takes ``bidirectional`` (of the last recurrent layer) and ``name``."""


def build_model(spec: Spec, preps: dict[str, Preprocessor], *, unroll: bool = False) -> Any:
    """Build and compile the network (imports Keras): one branch per input (``preps``, the first input's first), joined
    when there are several (:func:`_join`), then the dense layers and the task's head.

    A one-input model is the case of one branch, with the names it always had: input ``sequence`` (or ``tokens``),
    layers ``masking``/``embedding``, ``lstm_0``, ... A multi-input model names each branch's input and layers after
    the input: ``{name}``, ``{name}_masking``, ``{name}_lstm_0``, ...

    ``unroll``: unrolled recurrent layers (inputs of a fixed width only; for a LiteRT export, whose builtin operators have no
    loop over timesteps); the same weights and outputs.
    """
    keras = import_keras()
    task = get_task(spec.task)
    named, per_timestep = spec.inputs is not None, TASK_KINDS[spec.task].per_timestep
    inputs, branches = {}, []
    for k, name in enumerate(spec.sections()):
        inputs[name], x = _input_layers(spec, preps[name], name if named else None)
        branch = Branch.of(spec, name, preps[name])
        branches.append(_branch(inputs[name], x, branch, per_timestep=per_timestep and k == 0, prefix=f"{name}_" if named else "", seed=spec.seed, unroll=unroll))
    x = _join(branches, per_timestep=per_timestep) if named else branches[0]
    for i, dense in enumerate(spec.model.dense):
        x = keras.layers.Dense(dense.units, activation=dense.activation, name=f"dense_{i}")(x)
        if dense.dropout > 0:
            x = keras.layers.Dropout(dense.dropout, name=f"dropout_{i}")(x)
    outputs = task.head(x, spec=spec, prep=next(iter(preps.values())))
    model = keras.Model(inputs if named else next(iter(inputs.values())), outputs, name=keras_name(spec.output.name))  # the run folder keeps output.name as it is
    compile_model(model, spec, _optimizer(spec))
    return model


def compile_model(model: Any, spec: Spec, optimizer: Any) -> None:
    """Compile ``model`` with ``optimizer`` and the loss and metrics of ``spec``'s task (a built model, or its view that
    trains on the kernel features computed once, :meth:`seqcli.pipeline.Pipeline.trainer`, with the model's optimizer)."""
    task = get_task(spec.task)
    model.compile(optimizer=optimizer, loss=task.loss(spec), metrics=task.metrics(spec))


def _branch(raw: Any, encoded: Any, branch: Branch, *, per_timestep: bool, prefix: str, seed: int = 0, unroll: bool = False) -> Any:
    """One input's branch on its masked encoding ``(batch, timesteps, features)``: the front-end ``conv_0``, ... (the
    sequence and its mask maybe shortened), the recurrent layers (each maybe followed by ``layer_norm_<i>``), the pooling
    heads ``pool_<kind>``, the FCN branch ``fcn_0``, ... ``fcn_pool``, the kernel branch ``kernels`` (its kernels drawn
    with ``seed``) and the n-gram branch ``ngrams`` (on the ``raw`` token codes ``(batch, timesteps)``), their vectors
    concatenated as ``concat``. Output ``(batch, units)``, or for a per-timestep task ``(batch, timesteps, units)``."""
    keras = import_keras()
    x = encoded
    if branch.frontend is not None:
        x = _conv_stack(x, branch.frontend, f"{prefix}conv")
    layers = branch.layers
    for i, (layer, sequences) in enumerate(zip(layers, return_sequences(layers, per_timestep=per_timestep, pooled=branch.pooled), strict=True)):
        x = _recurrent(layer, sequences, i, prefix, unroll=unroll)(x)  # (batch, timesteps, units) or (batch, units); x2 units when bidirectional
        if layer.layer_norm:
            x = keras.layers.LayerNormalization(name=f"{prefix}layer_norm_{i}")(x)
    vectors = [x]
    if branch.pooled and layers:
        bidirectional = layers[-1].bidirectional
        vectors = [POOLING_HEADS[kind](bidirectional=bidirectional, name=f"{prefix}pool_{kind}")(x) for kind in branch.pooling]
    if branch.fcn is not None:
        features = _conv_stack(encoded, branch.fcn, f"{prefix}fcn")
        vectors.append(keras_layers.classes().MaskedPooling("mean", name=f"{prefix}fcn_pool")(features))
    if branch.kernels is not None:
        vectors.append(kernels_mod.layer_class()(branch.length, branch.kernels.features, seed, name=f"{prefix}kernels")(encoded))
    if branch.ngrams is not None:
        ngrams = branch.ngrams
        vectors.append(ngrams_mod.layer_class()(longest=ngrams.longest, buckets=ngrams.buckets, dim=ngrams.dim, name=f"{prefix}ngrams")(raw))
    return vectors[0] if len(vectors) == 1 else keras.layers.Concatenate(name=f"{prefix}concat")(vectors)


def adapt_kernels(model: Any, sequences: Any, *, seed: int, pad_value: float) -> None:
    """Fit the kernel branch of ``model`` (:class:`seqcli.kernels.KernelFeatures`, the first input's), if it has one, on
    the prepared training ``sequences`` (:class:`~seqcli.sequences.Sequences`, ``(timesteps_i, features)``): its biases
    and standardization (``pad_value``: the model's ``Masking`` value). For a model about to train from its first epoch; a
    resumed or loaded model has them in its weights."""
    layer = kernels_mod.layer_of(model)
    if layer is not None:
        kernels_mod.adapt(layer, sequences, seed=seed, pad_value=pad_value)


def _conv_stack(x: Any, stack: FrontendSpec | FcnSpec, name: str) -> Any:
    """``model.frontend`` or ``model.fcn``: masked :class:`~seqcli.keras_layers` ``ConvBlock`` layers ``{name}_0``, ...
    ``(batch, timesteps, features) -> (batch, timesteps', filters)``, the mask shortened with the sequence."""
    block_class = keras_layers.classes().ConvBlock
    for i, block in enumerate(stack.blocks):
        x = block_class(block.filters, block.kernel_size, block.stride, block.pool, stack.normalization, stack.activation, name=f"{name}_{i}")(x)
    return x


def _join(branches: list[Any], *, per_timestep: bool) -> Any:
    """The branches of a multi-input model joined as ``merge``: their vectors concatenated ``(batch, sum of units)``, or for a
    per-timestep task the other branches' vectors repeated at every timestep of the first branch's ``(batch, timesteps, units)``
    output and concatenated with it, masked like the first input (:func:`along_time`)."""
    keras = import_keras()
    if per_timestep:
        return along_time()(name="merge")(branches)
    return keras.layers.Concatenate(name="merge")(branches)


@functools.cache
def along_time() -> Any:
    """The Keras layer class ``AlongTime`` (registered for saving, so safe-mode loading finds it):
    ``[(batch, timesteps, u0), (batch, u1), ...] -> (batch, timesteps, u0 + u1 + ...)``.

    Each vector is broadcast to every timestep of the sequence (by adding it to zeros shaped like the sequence, which
    works for any number of timesteps on both backends); the output keeps the sequence's mask, so padded timesteps stay
    out of the loss and metrics.
    """
    keras = import_keras()

    @keras.saving.register_keras_serializable(package="seqcli")
    class AlongTime(keras.layers.Layer):  # type: ignore[name-defined]  # keras is import_keras()'s untyped (Any) module: a dynamic base class
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.supports_masking = True

        def call(self, inputs: list[Any], mask: Any = None) -> Any:
            sequence, *vectors = inputs
            zeros = keras.ops.zeros_like(sequence[:, :, :1])  # (batch, timesteps, 1)
            return keras.ops.concatenate([sequence, *(zeros + keras.ops.expand_dims(v, 1) for v in vectors)], axis=-1)

        def compute_mask(self, inputs: list[Any], mask: Any = None) -> Any:
            return None if mask is None else mask[0]

        def compute_output_shape(self, shapes: list[tuple[int | None, ...]]) -> tuple[int | None, ...]:
            units = [shape[-1] for shape in shapes]
            return (*shapes[0][:2], None if None in units else sum(u for u in units if u is not None))

    return AlongTime


def _recurrent(layer: RecurrentLayer, sequences: bool, index: int, prefix: str = "", *, unroll: bool = False) -> Any:
    """``lstm_0``/``gru_0``, or the same layer in a ``Bidirectional`` wrapper named ``bilstm_0``/``bigru_0`` (outputs concatenated); ``prefix`` names a branch."""
    keras = import_keras()
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[layer.cell]
    rnn = cell(layer.units, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout, return_sequences=sequences, unroll=unroll, name=f"{prefix}{layer.cell}_{index}")
    return keras.layers.Bidirectional(rnn, name=f"{prefix}bi{layer.cell}_{index}") if layer.bidirectional else rnn


ENCODING_LAYERS = {"embedding": "embedding", "one_hot": "one_hot", "float": "code_value"}


def _input_layers(spec: Spec, prep: Preprocessor, name: str | None = None) -> tuple[Any, Any]:
    """The model input and its masked encoding: ``(batch, timesteps, features)`` -> Masking, or codes ``(batch, timesteps)`` -> an Embedding.

    Token codes (0 padding, 1..num_tokens) are looked up per batch inside the model, so no one-hot or float copy of
    the data set exists. ``one_hot`` and ``float`` are frozen Embedding tables (plain Keras layers, saved with the
    weights): one-hot rows ``(num_tokens + 1, num_tokens)`` with an all-zero padding row, or one column holding
    ``code / num_tokens``. ``mask_zero=True`` masks the padding in all three.
    """
    keras = import_keras()
    prefix = f"{name}_" if name else ""
    if prep.input != "tokens":
        inputs = keras.Input(shape=prep.input_shape, name=name or "sequence")
        return inputs, keras.layers.Masking(mask_value=prep.pad_value, name=f"{prefix}masking")(inputs)
    inputs = keras.Input(shape=prep.input_shape, dtype="int32", name=name or "tokens")
    assert prep.num_tokens is not None
    codes = prep.num_tokens + 1
    layer_name = prefix + ENCODING_LAYERS[prep.encoding]
    if prep.encoding == "embedding":
        return inputs, keras.layers.Embedding(codes, spec.model.embedding_dim, mask_zero=True, name=layer_name)(inputs)
    table = np.eye(codes, dtype=np.float32)[:, 1:] if prep.encoding == "one_hot" else (np.arange(codes, dtype=np.float32) / prep.num_tokens)[:, np.newaxis]
    layer = keras.layers.Embedding(codes, table.shape[1], mask_zero=True, trainable=False, embeddings_initializer="zeros", name=layer_name)
    x = layer(inputs)
    layer.set_weights([table])
    return inputs, x


def learning_rate(spec: Spec, epoch: int) -> float:
    """The rate of epoch ``epoch`` (from 0) for the schedules that depend on the epoch alone (cosine, exponential)."""
    schedule = spec.training.lr_schedule
    initial = spec.training.learning_rate
    assert schedule is not None and schedule.type != "reduce_on_plateau"
    if schedule.type == "cosine":
        return schedule.min_lr + (initial - schedule.min_lr) * (1 + math.cos(math.pi * epoch / spec.training.epochs)) / 2
    return max(initial * schedule.factor**epoch, schedule.min_lr)


def optimizer_options(spec: Spec) -> dict[str, float]:
    """The Keras optimizer's arguments besides the learning rate: ``global_clipnorm`` (``training.clip_norm``) and
    ``weight_decay`` (``training.weight_decay``), each only when set, so that the optimizer's own defaults hold otherwise."""
    training, options = spec.training, {}
    if training.clip_norm is not None:
        options["global_clipnorm"] = training.clip_norm
    if training.weight_decay is not None:
        options["weight_decay"] = training.weight_decay
    return options


def _optimizer(spec: Spec) -> Any:
    keras = import_keras()
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    return classes[spec.training.optimizer](learning_rate=spec.training.learning_rate, **optimizer_options(spec))


def training_state(model: Any) -> dict[str, np.ndarray]:
    """What training continues from, as NumPy arrays: ``model.<i>`` the model's weights, ``optimizer.<i>`` the optimizer's
    variables (step count, learning rate, moments) once it has taken a step."""
    keras = import_keras()
    state = {f"model.{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(model.weights)}
    if model.optimizer is not None and model.optimizer.built:
        state.update({f"optimizer.{i}": keras.ops.convert_to_numpy(v.value) for i, v in enumerate(model.optimizer.variables)})
    return state


def restore_training_state(model: Any, state: dict[str, np.ndarray], source: Any, *, optimizer: bool = True) -> None:
    """Load :func:`training_state` ``state`` (read from ``source``) into ``model``, a model built from the same spec; with ``optimizer``,
    its optimizer's variables too. Raises :class:`RunError` when the arrays do not fit the model."""
    def arrays(part: str) -> list[np.ndarray | None]:
        return [state.get(f"{part}.{i}") for i in range(sum(name.startswith(f"{part}.") for name in state))]

    values = arrays("model") + (arrays("optimizer") if optimizer else [])
    if optimizer and len(values) > len(model.weights) and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    targets = [*model.weights, *(model.optimizer.variables if len(values) > len(model.weights) else [])]
    if len(targets) != len(values) or any(a is None or tuple(t.shape) != a.shape for t, a in zip(targets, values, strict=True)):
        raise RunError(f"Checkpoint {source} does not fit the model built from the run's spec.yaml; the run is corrupt or from another seqcli version. Train again.")
    for target, array in zip(targets, values, strict=True):
        target.assign(array)


def ensemble_model(members: list[Any], *, name: str) -> Any:
    """One Keras model that feeds its inputs to every member (models of one spec, differently seeded) and outputs the
    mean of their outputs (``keras.layers.Average``): ``(batch, units)``, or ``(batch, timesteps, units)`` per timestep.
    What ``predict`` and ``export`` run for an ensemble; one member is returned as it is. Renames the members ``member_<k>``."""
    if len(members) == 1:
        return members[0]
    keras = import_keras()
    first = members[0]
    inputs = [keras.Input(shape=tuple(t.shape[1:]), dtype=t.dtype, name=t.name) for t in first.inputs]
    named = isinstance(first.input, dict)
    x = {t.name: tensor for t, tensor in zip(first.inputs, inputs, strict=True)} if named else inputs[0]
    for k, member in enumerate(members, 1):
        member.name = f"member_{k}"
    mean = keras.layers.Average(name="ensemble_mean")([member(x) for member in members])
    return keras.Model(x, mean, name=name)


def load_checkpoint(path: Any, *, compile: bool) -> Any:
    """Load a saved ``.keras`` model in Keras' safe mode (no code from the file runs)."""
    keras = import_keras()
    along_time()  # registers seqcli's own layers before Keras reads the file
    keras_layers.classes()
    kernels_mod.layer_class()
    ngrams_mod.layer_class()
    try:
        model = keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise RunError(f"Cannot load checkpoint {path}: {type(exc).__name__}: {str(exc).rstrip('.')}. The file is damaged.") from None
    model.name = keras_name(model.name)  # runs saved before names were sanitized (e.g. 'my experiment' on JAX) predict on TensorFlow too
    return model
