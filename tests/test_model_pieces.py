"""The model pieces beside the recurrent layers: the convolutional front-end, the FCN branch, the kernel branch, the
n-gram branch (token input), the pooling heads, layer normalization, gradient clipping and weight decay (builds tiny Keras models; one optimizer step at most).

Every piece must be exact on padded variable-length batches: a batch padded wider than its longest sequence, on
either padding side the piece supports, predicts the same for every real sequence, in inference and in training mode
(batch normalization's statistics). The tests run on the session's backend (tests/conftest.py); CI runs this file on
JAX too (.ci/run).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, get_args

import numpy as np
import pytest

from seqcli import diagnostics, shapes
from seqcli.backend import import_keras
from seqcli.data import SequenceData
from seqcli.layers import dropped_masks, layer_rows
from seqcli.model import POOLING_HEADS, adapt_kernels, build_model, load_checkpoint, optimizer_options
from seqcli.sequences import Sequences
from seqcli.spec import Pooling, PreprocessingSpec, Spec, spec_from_dict
from tests.conftest import BACKEND, fitted, padded

LENGTHS = [10, 3, 10, 1, 6]  # two of the longest (their batch of their own has no padding), and a single-step sequence
LONGEST = [0, 2, 0, 2, 0]  # a batch of the longest sequences only: no padding at all, the shape of the padded batch of width 10
WIDTHS = [11, 16]  # wider than the longest, odd and even against strides and pools of 2 and 3
PAD_VALUE = -3.0  # not zero: padding must be zeroed inside the model, not merely masked


def float_data() -> SequenceData:
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 2)) for n in LENGTHS]
    return SequenceData(Sequences.from_arrays(seqs), np.array(["a", "b", "a", "b", "a"]), "mem", "npy", "-", [f"index {i}" for i in range(len(seqs))])


def token_data() -> SequenceData:
    rng = np.random.default_rng(1)
    codes = [rng.integers(1, 6, size=(n, 1)) for n in LENGTHS]
    return SequenceData(Sequences.from_arrays(codes), np.array(["a", "b", "a", "b", "a"]), "mem", "npy", "-", [f"index {i}" for i in range(len(codes))])


def make_spec(task: str = "classify", **model: Any) -> Spec:
    return spec_from_dict({"data": {"train": "unused.npy"}, "model": {"layers": [{"units": 4}, {"units": 3}], **model}, "task": task, "seed": 0})


BIDIRECTIONAL = [{"units": 4, "cell": "gru", "bidirectional": True}, {"units": 3, "bidirectional": True}]
FRONTEND = {"blocks": [{"filters": 5, "kernel_size": 3}, {"filters": 4, "kernel_size": 2}]}  # an even kernel: one more zero on the right
SHORTENING = {"blocks": [{"filters": 5, "kernel_size": 3, "stride": 2}, {"filters": 4, "kernel_size": 4, "pool": 3}]}  # 6x shorter
FCN = {"blocks": [{"filters": 6, "kernel_size": 3}, {"filters": 4, "kernel_size": 2, "stride": 2}]}
POOLED_FCN = {"blocks": [{"filters": 6, "kernel_size": 4, "pool": 4}, {"filters": 5, "kernel_size": 3}, {"filters": 4, "kernel_size": 2}]}
NGRAMS = {"longest": 3, "buckets": 64, "dim": 4}
TOKEN_ONLY = ("ngrams",)

# Each piece (model keys), and whether it supports pre-padding (no stride or pool above 1).
PIECES: dict[str, tuple[dict[str, Any], bool]] = {
    "frontend-layer-norm": ({"frontend": FRONTEND}, True),
    "frontend-batch-norm": ({"frontend": {**FRONTEND, "normalization": "batch"}}, True),
    "frontend-stride-and-pool": ({"frontend": SHORTENING}, False),
    "fcn": ({"fcn": FCN}, False),
    "fcn-pooled": ({"fcn": POOLED_FCN}, False),  # the recipe's shape: the first block pooled over 4 steps, a partial window at the end
    "fcn-no-norm-tanh": ({"fcn": {"blocks": [{"filters": 6, "kernel_size": 3}], "normalization": "none", "activation": "tanh"}}, True),
    "kernels": ({"kernels": {"features": 168}}, True),
    "ngrams": ({"ngrams": NGRAMS}, True),  # token input only: test_token_padding_changes_no_prediction
    "pool-mean": ({"pooling": ["mean"]}, True),
    "pool-max": ({"pooling": ["max"]}, True),
    "pool-attention": ({"pooling": ["attention"]}, True),
    "pool-all-bidirectional": ({"pooling": ["last", "mean", "max", "attention"], "layers": BIDIRECTIONAL}, True),
    "layer-norm": ({"layers": [{"units": 4, "layer_norm": True}, {"units": 3, "layer_norm": True}]}, True),
    "everything": (
        {
            "frontend": {**SHORTENING, "normalization": "batch"}, "fcn": FCN, "kernels": {"features": 168}, "ngrams": NGRAMS, "pooling": ["mean", "last", "attention"],
            "layers": [{"units": 4, "layer_norm": True, "bidirectional": True}, {"units": 3, "cell": "gru", "layer_norm": True}], "dense": [{"units": 5}],
        },
        False,
    ),
}
# Pre-padding cases are slow-marked: the fast suite checks every piece post-padded; CI runs them all on both backends.
CASES = [
    pytest.param(piece, padding, id=f"{piece}-{padding}", marks=pytest.mark.slow if padding == "pre" else ())
    for piece, (_, pre) in PIECES.items() if piece not in TOKEN_ONLY for padding in ("post", "pre") if padding == "post" or pre
]


def outputs(model: Any, x: np.ndarray, *, training: bool = False) -> np.ndarray:
    """The model's outputs for one batch (training=True: batch normalization uses the batch's statistics). A direct call on
    TensorFlow; on JAX a jitted stateless call (one compilation per shape instead of per operation and call, and the
    moving statistics stay as they are)."""
    if BACKEND != "jax":
        return np.asarray(model(x, training=training))
    import jax

    jitted = model.__dict__.setdefault("_test_jitted", {})
    if training not in jitted:
        jitted[training] = jax.jit(lambda trainable, other, x: model.stateless_call(trainable, other, x, training=training)[0])
    return np.asarray(jitted[training]([v.value for v in model.trainable_variables], [v.value for v in model.non_trainable_variables], x))


def model_and_prep(piece: str, padding: str, data: SequenceData | None = None, task: str = "classify") -> tuple[Any, Any]:
    """The piece's model on variable-width batches (length bucketing: input (batch, timesteps, features)); a kernel branch
    fitted on ``data`` as training fits it."""
    data = data or float_data()
    prep = fitted(data, PreprocessingSpec(padding=padding, pad_value=PAD_VALUE, bucketing=True))
    assert prep.boundaries and prep.input_shape[0] is None
    model = build_model(make_spec(task, **PIECES[piece][0]), {"main": prep})
    adapt_kernels(model, prep.prepare(data.sequences), seed=0, pad_value=prep.pad_value)
    return model, prep


def check_padding_invariance(model: Any, prep: Any, data: SequenceData) -> None:
    """The batch padded to its longest sequence (10) and to 11 and 16 timesteps gives the same outputs, and the longest
    sequences' equal their outputs without any padding; with batch normalization, in training mode (the batch's
    statistics) too. (Without it, and without dropout, training mode computes what inference does.)"""
    batches = {width: padded(prep, data.sequences, width) for width in [max(LENGTHS), *WIDTHS]}
    unpadded = outputs(model, padded(prep, [data.sequences[i] for i in LONGEST], max(LENGTHS)))
    reference = outputs(model, batches[max(LENGTHS)])
    for i in (0, 2):
        np.testing.assert_allclose(reference[i], unpadded[LONGEST.index(i)], atol=1e-5)
    for width in WIDTHS:
        np.testing.assert_allclose(outputs(model, batches[width]), reference, atol=1e-5, err_msg=f"width {width}")
    if not any("batch" in row.kind for row in layer_rows(model)):
        return
    trained = outputs(model, batches[max(LENGTHS)], training=True)
    for width in WIDTHS:
        np.testing.assert_allclose(outputs(model, batches[width], training=True), trained, atol=1e-5, err_msg=f"width {width}, training")


@pytest.mark.parametrize(("piece", "padding"), CASES)
def test_padding_changes_no_prediction(piece: str, padding: str) -> None:
    """Appending padding (wider batches, either padding side where the piece supports it) changes no prediction."""
    data = float_data()
    model, prep = model_and_prep(piece, padding, data)
    assert dropped_masks(model) == []
    wide = padded(prep, data.sequences, 16)
    assert wide.shape == (5, 16, 2) and (wide[3, 1:] == PAD_VALUE).all() == (padding == "post")
    check_padding_invariance(model, prep, data)
    # Control: the same extra timesteps holding real values (not the pad value) do change the outputs.
    noisy = wide.copy()
    noisy[noisy == PAD_VALUE] = 0.5
    assert not np.allclose(outputs(model, noisy), outputs(model, wide), atol=1e-4)


@pytest.mark.parametrize(("piece", "padding"), [("frontend-stride-and-pool", "post"), ("fcn", "post"), ("everything", "post"), ("ngrams", "post"), ("ngrams", "pre")])
def test_token_padding_changes_no_prediction(piece: str, padding: str) -> None:
    """Token input: the padding code 0 embeds to a learned, non-zero vector, which the convolutions must not see, and
    the n-gram branch counts no n-gram that includes it."""
    data = token_data()
    model, prep = model_and_prep(piece, padding, data)
    assert model.get_layer("embedding").get_weights()[0][0].any()
    check_padding_invariance(model, prep, data)
    if "ngrams" in PIECES[piece][0]:
        assert "ngrams" in [layer.name for layer in model.layers]


@pytest.mark.parametrize("padding", ["post", "pre"])
def test_per_timestep_model_with_frontend_and_layer_norm(padding: str) -> None:
    """A per-timestep task with a front-end (stride 1) and layer normalization: the real timesteps' outputs do not change with the width."""
    data = float_data()
    prep = fitted(data, PreprocessingSpec(padding=padding, pad_value=PAD_VALUE, bucketing=True))
    prep = dataclasses.replace(prep, task="regress_timesteps", classes=[], targets={"names": ["y"], "mean": [0.0], "std": [1.0]})
    spec = make_spec("regress_timesteps", frontend={**FRONTEND, "normalization": "batch"}, layers=[{"units": 4, "layer_norm": True, "bidirectional": True}])
    model = build_model(spec, {"main": prep})
    assert [r.mask for r in layer_rows(model, output_axis="targets")][1:] == [True] * (len(model.layers) - 1)  # every layer after the input carries the mask
    widths = [max(LENGTHS), *WIDTHS]
    unpadded = outputs(model, padded(prep, [data.sequences[i] for i in LONGEST], max(LENGTHS)))
    wide = {width: outputs(model, padded(prep, data.sequences, width)) for width in widths}  # before training mode moves the moving statistics
    trained = {width: outputs(model, padded(prep, data.sequences, width), training=True) for width in widths}
    np.testing.assert_allclose(wide[max(LENGTHS)][[0, 2]], unpadded[:2], atol=1e-5)
    for width in widths:
        for i, n in enumerate(LENGTHS):
            steps, reference = (slice(0, n), slice(0, n)) if padding == "post" else (slice(width - n, width), slice(max(LENGTHS) - n, max(LENGTHS)))
            np.testing.assert_allclose(wide[width][i, steps], wide[max(LENGTHS)][i, reference], atol=1e-5)
            np.testing.assert_allclose(trained[width][i, steps], trained[max(LENGTHS)][i, reference], atol=1e-5)


def test_last_pooled_from_sequences_equals_the_final_state() -> None:
    """`last` among other heads (the layer returns sequences) is the final state the default model reads, both directions of a bidirectional layer."""
    data = float_data()
    for padding in ("post", "pre"):
        prep = fitted(data, PreprocessingSpec(padding=padding, bucketing=True))
        default = build_model(make_spec(layers=BIDIRECTIONAL), {"main": prep})
        pooled = build_model(make_spec(layers=BIDIRECTIONAL, pooling=["last", "mean"]), {"main": prep})
        pooled.get_layer("bigru_0").set_weights(default.get_layer("bigru_0").get_weights())
        pooled.get_layer("bilstm_1").set_weights(default.get_layer("bilstm_1").get_weights())
        keras = import_keras()
        final = keras.Model(default.input, default.get_layer("bilstm_1").output)
        last = keras.Model(pooled.input, pooled.get_layer("pool_last").output)
        x = padded(prep, data.sequences, 13)
        np.testing.assert_allclose(outputs(last, x), outputs(final, x), atol=1e-6)


@pytest.mark.parametrize("piece", ["frontend-batch-norm", "frontend-stride-and-pool", "fcn", "kernels", "pool-all-bidirectional", "layer-norm", "everything"])
def test_saved_model_loads_in_safe_mode_and_predicts_the_same(piece: str, tmp_path: Path) -> None:
    data = float_data()
    model, prep = model_and_prep(piece, "post", data)
    x = padded(prep, data.sequences, 12)
    outputs(model, x, training=True)  # batch normalization's moving statistics move off their initial values
    model.save(tmp_path / "model.keras")
    loaded = load_checkpoint(tmp_path / "model.keras", compile=False)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_allclose(outputs(loaded, x), outputs(model, x), atol=1e-6)


def test_layer_table_shows_every_new_layer_with_its_mask() -> None:
    prep = fitted(float_data(), PreprocessingSpec(bucketing=False))  # maxlen 10
    spec = make_spec(
        frontend={"blocks": [{"filters": 5, "kernel_size": 3, "stride": 2}, {"filters": 4, "kernel_size": 3, "pool": 2}]},
        layers=[{"units": 4, "layer_norm": True}, {"units": 3, "bidirectional": True}], pooling=["last", "attention"], fcn={"blocks": [{"filters": 6, "kernel_size": 3}]},
    )
    rows = [(r.name, r.kind, r.output_shape, r.params, r.mask) for r in layer_rows(build_model(spec, {"main": prep}))]
    assert rows == [
        ("sequence", "InputLayer", "(batch, timesteps=10, features=2)", 0, False),
        ("masking", "Masking", "(batch, timesteps=10, features=2)", 0, True),
        ("conv_0", "ConvBlock(kernel 3, stride 2, layer norm)", "(batch, timesteps=5, filters=5)", 2 * 3 * 5 + 5 + 2 * 5, True),
        ("conv_1", "ConvBlock(kernel 3, pool 2, layer norm)", "(batch, timesteps=3, filters=4)", 5 * 3 * 4 + 4 + 2 * 4, True),
        ("lstm_0", "LSTM", "(batch, timesteps=3, units=4)", 4 * 4 * (4 + 4 + 1), True),
        ("layer_norm_0", "LayerNormalization", "(batch, timesteps=3, units=4)", 2 * 4, True),
        ("bilstm_1", "Bidirectional(LSTM)", "(batch, timesteps=3, units=6)", 2 * 4 * 3 * (4 + 3 + 1), True),
        ("fcn_0", "ConvBlock(kernel 3, batch norm)", "(batch, timesteps=10, filters=6)", 2 * 3 * 6 + 6 + 4 * 6, True),
        ("pool_last", "MaskedPooling(last)", "(batch, units=6)", 0, False),
        ("pool_attention", "AttentionPooling", "(batch, units=6)", 6 * 6 + 6 + 6, False),
        ("fcn_pool", "MaskedPooling(mean)", "(batch, units=6)", 0, False),
        ("concat", "Concatenate", "(batch, units=18)", 0, False),
        ("output", "Dense", "(batch, classes=2)", 18 * 2 + 2, False),
    ]


def test_trace_notes_the_shortened_sequence() -> None:
    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"bucketing": False}, "model": {"frontend": SHORTENING, "layers": [{"units": 3}]}})
    result = shapes.trace(spec, train=float_data())
    assert "The convolutional front-end shortens the sequences 6x (strides x pools) before the recurrent layers: maxlen 10 -> 2 steps" in " ".join(result.notes)
    assert not any("mask" in w for w in result.warnings)
    assert [(r.name, r.output_shape) for r in result.layers if r.name.startswith("conv")] == [("conv_0", "(batch, timesteps=5, filters=5)"), ("conv_1", "(batch, timesteps=2, filters=4)")]


def test_conv_block_output_is_zero_on_padding() -> None:
    """After each block the padded steps are zeros again (bias, normalization and activation made them non-zero), on the shortened mask too."""
    data = float_data()
    model, prep = model_and_prep("frontend-stride-and-pool", "post", data)
    keras = import_keras()
    for name, factor in (("conv_0", 2), ("conv_1", 6)):
        block = keras.Model(model.input, model.get_layer(name).output)
        out = outputs(block, padded(prep, data.sequences, 16))  # (batch, ceil(16 / factor), filters)
        assert out.shape[1] == -(-16 // factor)
        for i, n in enumerate(LENGTHS):
            real = -(-n // factor)
            assert (out[i, real:] == 0).all() and out[i, :real].any()


@pytest.mark.filterwarnings("ignore:Layer 'plain_conv'")
def test_a_layer_that_drops_the_mask_is_found_and_warned_about() -> None:
    """A plain Keras Conv1D after the masking drops the mask (Keras only warns in a log); seqcli names the layer."""
    keras = import_keras()
    inputs = keras.Input((None, 2))
    x = keras.layers.Conv1D(3, 3, padding="same", name="plain_conv")(keras.layers.Masking()(inputs))
    model = keras.Model(inputs, keras.layers.LSTM(2)(x))
    assert dropped_masks(model) == ["plain_conv"]
    warning = diagnostics.dropped_mask_warning(dropped_masks(model))
    assert warning is not None and warning.startswith("Layer(s) plain_conv receive a masked sequence but return one without a mask: after them padded timesteps count as real")
    assert diagnostics.dropped_mask_warning([]) is None


@pytest.mark.parametrize(("piece", "data", "said"), [
    ("kernels", token_data, "the data was read as integer token codes, and the branch convolves real-valued series. Read the data as `input: float` to keep it."),
    ("ngrams", float_data, "the data was read as real values, and the branch hashes token codes. Read the data as `input: tokens` or `text` to keep it."),
])
def test_a_piece_for_the_other_input_kind_is_left_out_with_a_note(piece: str, data: Any, said: str) -> None:
    """`input: auto` knows the input kind only once the data is loaded: the model is built without the piece, and says so."""
    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"bucketing": False}, "model": {piece: {}, "layers": [{"units": 3}]}})
    result = shapes.trace(spec, train=data())
    assert f"`model.{piece}` is left out: {said}" in result.notes
    assert piece not in [row.name for row in result.layers]


def test_every_pooling_name_has_a_head() -> None:
    assert set(POOLING_HEADS) == set(get_args(Pooling))


def test_clipping_and_weight_decay_reach_the_optimizer() -> None:
    prep = fitted(float_data(), PreprocessingSpec(bucketing=True))
    assert optimizer_options(make_spec()) == {}
    default = build_model(make_spec(), {"main": prep}).optimizer
    assert default.global_clipnorm is None and default.weight_decay is None  # the optimizer's own defaults, as before these keys
    spec = dataclasses.replace(make_spec(), training=dataclasses.replace(make_spec().training, optimizer="sgd", learning_rate=1.0, clip_norm=1e-3, weight_decay=0.01))
    model = build_model(spec, {"main": prep})
    assert optimizer_options(spec) == {"global_clipnorm": 1e-3, "weight_decay": 0.01}
    assert model.optimizer.global_clipnorm == pytest.approx(1e-3) and model.optimizer.weight_decay == pytest.approx(0.01)
    # One SGD step with rate 1: the gradients were clipped to norm 1e-3, so the weights move by about that (weight decay adds 1 x 0.01 x |w|).
    data = float_data()
    x = padded(prep, data.sequences, 10)
    before = [np.array(w) for w in model.get_weights()]
    model.train_on_batch(x, np.array([0, 1, 0, 1, 0]))
    moved = np.sqrt(sum(float(((np.array(w) - b) ** 2).sum()) for w, b in zip(model.get_weights(), before, strict=True)))
    decay = 0.01 * np.sqrt(sum(float((b**2).sum()) for b in before))
    assert moved <= 1e-3 + decay + 1e-6
