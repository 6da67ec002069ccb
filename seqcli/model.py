"""Spec + fitted preprocessing -> a compiled ``keras.Model``, and its training options.

Input ``(batch, timesteps, features)`` -> ``Masking(pad_value)`` (float input) or
input ``(batch, timesteps)`` -> ``Embedding(mask_zero=True)`` (tokens and text:
learned, or frozen one-hot/code-value tables) -> stacked LSTM or GRU layers, each
optionally bidirectional (every one but the last returns sequences) -> optional
dense layers -> softmax over the classes (or one sigmoid unit for two classes).
The mask reaches every recurrent layer, both directions included. For ``task: tag``
the last recurrent layer returns sequences too, the dense layers and the softmax
apply per timestep ``(batch, timesteps, classes)``, and the mask they carry keeps
padded timesteps out of the loss and the accuracy.
"""

from __future__ import annotations

import difflib
import math
from typing import Any

import numpy as np

from seqcli.backend import import_keras
from seqcli.errors import RunError, SpecError
from seqcli.preprocess import Preprocessor
from seqcli.spec import RecurrentLayer, Spec


def return_sequences(spec: Spec) -> list[bool]:
    """Per recurrent layer: the spec's explicit value, else true for all but the last (for `task: tag` for all)."""
    layers = spec.model.layers
    tag = spec.task == "tag"
    return [layer.return_sequences if layer.return_sequences is not None else tag or i < len(layers) - 1 for i, layer in enumerate(layers)]


def build_model(spec: Spec, prep: Preprocessor, preps: dict[str, Preprocessor] | None = None) -> Any:
    """Build and compile the network (imports Keras); ``preps`` (one per input, by name) builds a multi-input model."""
    keras = import_keras()
    n_classes = len(prep.classes)
    if spec.model.output == "sigmoid" and n_classes != 2:
        raise SpecError(f"`model.output: sigmoid` needs exactly two classes, but the training data has {n_classes}. Use `model.output: softmax`.")
    if preps is not None:
        inputs, x = _branches(spec, preps)
    else:
        inputs, x = _input_layers(spec, prep)
        for i, (layer, sequences) in enumerate(zip(spec.model.layers, return_sequences(spec), strict=True)):
            x = _recurrent(layer, sequences, i)(x)  # (batch, timesteps, units) or (batch, units); x2 units when bidirectional
    for i, dense in enumerate(spec.model.dense):
        x = keras.layers.Dense(dense.units, activation=dense.activation, name=f"dense_{i}")(x)
        if dense.dropout > 0:
            x = keras.layers.Dropout(dense.dropout, name=f"dropout_{i}")(x)
    units, activation = (1, "sigmoid") if spec.model.output == "sigmoid" else (n_classes, "softmax")
    outputs = keras.layers.Dense(units, activation=activation, name="output")(x)
    model = keras.Model(inputs, outputs, name=spec.output.name or "seqcli")
    model.compile(optimizer=_optimizer(spec), loss=loss(spec), metrics=_metrics(spec))
    return model


def _recurrent(layer: RecurrentLayer, sequences: bool, index: int, prefix: str = "") -> Any:
    """``lstm_0``/``gru_0``, or the same layer in a ``Bidirectional`` wrapper named ``bilstm_0``/``bigru_0`` (outputs concatenated); ``prefix`` names a branch."""
    keras = import_keras()
    cell = {"lstm": keras.layers.LSTM, "gru": keras.layers.GRU}[layer.cell]
    rnn = cell(layer.units, dropout=layer.dropout, recurrent_dropout=layer.recurrent_dropout, return_sequences=sequences, name=f"{prefix}{layer.cell}_{index}")
    return keras.layers.Bidirectional(rnn, name=f"{prefix}bi{layer.cell}_{index}") if layer.bidirectional else rnn


def _branches(spec: Spec, preps: dict[str, Preprocessor]) -> tuple[dict[str, Any], Any]:
    """One branch per input, ``{name}: Input -> {name}_masking/_embedding -> {name}_lstm_0 ...`` ending in ``(batch, units)``; concatenated as ``merge``."""
    from seqcli.multi import sections

    keras = import_keras()
    inputs, outputs = {}, []
    for name, (_, _, layers) in sections(spec).items():
        inputs[name], x = _input_layers(spec, preps[name], name)
        for i, layer in enumerate(layers):
            sequences = layer.return_sequences if layer.return_sequences is not None else i < len(layers) - 1
            x = _recurrent(layer, sequences, i, f"{name}_")(x)
        outputs.append(x)
    return inputs, keras.layers.Concatenate(name="merge")(outputs)  # (batch, sum of the branches' units)


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


def loss_name(spec: Spec) -> str:
    if spec.training.loss != "auto":
        return spec.training.loss
    return "binary_crossentropy" if spec.model.output == "sigmoid" else "sparse_categorical_crossentropy"


def one_hot_targets(spec: Spec) -> bool:
    """True when training targets are one-hot ``(batch, classes)`` rows: label smoothing with a softmax output."""
    return spec.training.label_smoothing > 0 and spec.model.output == "softmax"


def loss(spec: Spec) -> Any:
    """The loss name, or with label smoothing a loss object (categorical cross-entropy on one-hot targets for softmax)."""
    smoothing = spec.training.label_smoothing
    if not smoothing:
        return loss_name(spec)
    keras = import_keras()
    if spec.model.output == "sigmoid":
        return keras.losses.BinaryCrossentropy(label_smoothing=smoothing)
    return keras.losses.CategoricalCrossentropy(label_smoothing=smoothing)


def class_weights(spec: Spec, classes: list[str], y: np.ndarray) -> dict[str, float] | None:
    """The weight of every class in the training loss, or None without ``training.class_weight``.

    ``balanced`` gives class c the weight ``samples / (classes * count_c)`` over the training labels ``y`` (class indices,
    ``(samples,)``), as scikit-learn does: labels [a, a, a, b] give a 4/6 and b 4/2. A mapping must name training classes.
    """
    setting = spec.training.class_weight
    if setting is None:
        return None
    if setting == "balanced":
        counts = np.bincount(y, minlength=len(classes))
        return {name: len(y) / (len(classes) * int(count)) for name, count in zip(classes, counts, strict=True)}
    for name in setting:
        if name not in classes:
            close = difflib.get_close_matches(name, classes, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise SpecError(
                f"`training.class_weight` names the class {name!r}, which is not in the training data (classes: {', '.join(classes)}).{hint} "
                "Use the class names as they appear in the labels."
            )
    return {name: float(setting.get(name, 1.0)) for name in classes}


def learning_rate(spec: Spec, epoch: int) -> float:
    """The rate of epoch ``epoch`` (from 0) for the schedules that depend on the epoch alone (cosine, exponential)."""
    schedule = spec.training.lr_schedule
    initial = spec.training.learning_rate
    assert schedule is not None and schedule.type != "reduce_on_plateau"
    if schedule.type == "cosine":
        return schedule.min_lr + (initial - schedule.min_lr) * (1 + math.cos(math.pi * epoch / spec.training.epochs)) / 2
    return max(initial * schedule.factor**epoch, schedule.min_lr)


def _optimizer(spec: Spec) -> Any:
    keras = import_keras()
    classes = {"adam": keras.optimizers.Adam, "adamw": keras.optimizers.AdamW, "rmsprop": keras.optimizers.RMSprop, "sgd": keras.optimizers.SGD}
    return classes[spec.training.optimizer](learning_rate=spec.training.learning_rate)


def _metrics(spec: Spec) -> list[Any]:
    keras = import_keras()
    metrics: list[Any] = []
    for name in spec.training.metrics:
        if name == "auc":
            metrics.append(keras.metrics.AUC(name="auc"))
        elif spec.model.output == "sigmoid":
            metrics.append(keras.metrics.BinaryAccuracy(name="accuracy"))
        elif one_hot_targets(spec):
            metrics.append(keras.metrics.CategoricalAccuracy(name="accuracy"))
        else:
            metrics.append(keras.metrics.SparseCategoricalAccuracy(name="accuracy"))
    return metrics


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
    def arrays(part: str) -> list[np.ndarray]:
        return [state.get(f"{part}.{i}") for i in range(sum(name.startswith(f"{part}.") for name in state))]

    values = arrays("model") + (arrays("optimizer") if optimizer else [])
    if optimizer and len(values) > len(model.weights) and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    targets = [*model.weights, *(model.optimizer.variables if len(values) > len(model.weights) else [])]
    if len(targets) != len(values) or any(a is None or tuple(t.shape) != a.shape for t, a in zip(targets, values, strict=True)):
        raise RunError(f"Checkpoint {source} does not fit the model built from the run's spec.yaml; the run is corrupt or from another seqcli version. Train again.")
    for target, array in zip(targets, values, strict=True):
        target.assign(array)


def load_checkpoint(path: Any, *, compile: bool) -> Any:
    """Load a saved ``.keras`` model in Keras' safe mode (no code from the file runs)."""
    keras = import_keras()
    try:
        return keras.saving.load_model(path, compile=compile, safe_mode=True)
    except Exception as exc:  # Keras raises many types for a damaged archive
        raise RunError(f"Cannot load checkpoint {path}: {type(exc).__name__}: {exc}. The file is damaged; train again (or try --checkpoint last/best).") from None
