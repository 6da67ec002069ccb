"""Model building, masking and the shape trace (builds tiny Keras models; no training)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from seqcli import shapes
from seqcli.data import SequenceData
from seqcli.diagnostics import channels_first_warning
from seqcli.errors import SpecError
from seqcli.layers import layer_rows
from seqcli.model import build_model, return_sequences
from seqcli.sequences import Sequences
from seqcli.spec import PreprocessingSpec, load_spec, spec_from_dict
from seqcli.steps import real_lengths
from tests.conftest import fitted, padded

GOLDEN = Path(__file__).parent / "golden"


def make_spec(**model: object) -> object:
    return spec_from_dict({"data": {"train": "unused.npy"}, "model": {"layers": [{"units": 4}, {"units": 3}], **model}, "seed": 0})


def float_data() -> SequenceData:
    # 3 sequences of (timesteps, features=2), lengths 3, 2, 4; labels a, b, a.
    seqs = [np.arange(6.0).reshape(3, 2) / 5, np.arange(4.0).reshape(2, 2) / 3 - 1, np.cos(np.arange(8.0)).reshape(4, 2)]
    return SequenceData(Sequences.from_arrays(seqs), np.array(["a", "b", "a"]), "mem", "npy", "-", ["index 0", "index 1", "index 2"])


def outputs(model: object, x: np.ndarray) -> np.ndarray:
    """The model's outputs for one batch: a direct call, without tracing a predict function for each model as ``predict`` does."""
    return np.asarray(model(x, training=False))  # type: ignore[operator]


def test_return_sequences_auto_for_all_but_last() -> None:
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"layers": [{}, {}, {"return_sequences": None}]}})
    assert return_sequences(spec.model.layers, per_timestep=False) == [True, True, False]


def test_layer_shapes_and_masks_float() -> None:
    spec = make_spec(dense=[{"units": 5, "dropout": 0.5}])
    prep = fitted(float_data(), PreprocessingSpec(bucketing=False))
    rows = layer_rows(build_model(spec, {"main": prep}))
    table = [(r.name, r.kind, r.output_shape, r.params, r.mask) for r in rows]
    assert table == [
        ("sequence", "InputLayer", "(batch, timesteps=4, features=2)", 0, False),
        ("masking", "Masking", "(batch, timesteps=4, features=2)", 0, True),
        ("lstm_0", "LSTM", "(batch, timesteps=4, units=4)", 4 * (4 * (2 + 4 + 1)), True),
        ("lstm_1", "LSTM", "(batch, units=3)", 4 * (3 * (4 + 3 + 1)), False),
        ("dense_0", "Dense", "(batch, units=5)", 3 * 5 + 5, False),
        ("dropout_0", "Dropout", "(batch, units=5)", 0, False),
        ("output", "Dense", "(batch, classes=2)", 5 * 2 + 2, False),
    ]


def test_gru_bidirectional_and_head_shapes() -> None:
    spec = make_spec(layers=[{"units": 4, "cell": "gru", "bidirectional": True}, {"units": 3, "cell": "gru"}, {"units": 2, "bidirectional": True}], dense=[{"units": 5}])
    prep = fitted(float_data(), PreprocessingSpec(bucketing=False))
    rows = layer_rows(build_model(spec, {"main": prep}))
    table = [(r.name, r.kind, r.output_shape, r.params, r.mask) for r in rows]
    gru = lambda units, inputs: 3 * units * (inputs + units + 2)  # noqa: E731 - 3 gates, reset_after: two biases per gate
    lstm = lambda units, inputs: 4 * units * (inputs + units + 1)  # noqa: E731
    assert table == [
        ("sequence", "InputLayer", "(batch, timesteps=4, features=2)", 0, False),
        ("masking", "Masking", "(batch, timesteps=4, features=2)", 0, True),
        ("bigru_0", "Bidirectional(GRU)", "(batch, timesteps=4, units=8)", 2 * gru(4, 2), True),  # both directions, concatenated
        ("gru_1", "GRU", "(batch, timesteps=4, units=3)", gru(3, 8), True),
        ("bilstm_2", "Bidirectional(LSTM)", "(batch, units=4)", 2 * lstm(2, 3), False),
        ("dense_0", "Dense", "(batch, units=5)", 4 * 5 + 5, False),
        ("output", "Dense", "(batch, classes=2)", 5 * 2 + 2, False),
    ]


def test_layer_shapes_tokens_golden() -> None:
    codes = [np.array([[1], [2], [3]]), np.array([[4], [1]]), np.array([[2], [2], [2], [5]])]
    data = SequenceData(Sequences.from_arrays(codes), np.array([0, 1, 2]), "mem", "npy", "-", ["0", "1", "2"])
    prep = fitted(data, PreprocessingSpec(bucketing=False))
    rows = [dataclasses.asdict(r) for r in layer_rows(build_model(make_spec(embedding_dim=6), {"main": prep}))]
    assert rows == json.loads((GOLDEN / "token_model_layers.json").read_text())


def test_sigmoid_needs_two_classes() -> None:
    prep = fitted(dataclasses.replace(float_data(), labels=np.array(["a", "b", "c"])), PreprocessingSpec())
    with pytest.raises(SpecError, match="`model.output: sigmoid` needs exactly two classes, but the training data has 3"):
        build_model(make_spec(output="sigmoid"), {"main": prep})


BIDIRECTIONAL_GRU = [{"units": 4, "cell": "gru", "bidirectional": True}, {"units": 3, "bidirectional": True}]


@pytest.mark.parametrize(("padding", "layers"), [("post", None), ("pre", None), ("post", BIDIRECTIONAL_GRU), ("pre", BIDIRECTIONAL_GRU)])
def test_extra_padding_does_not_change_predictions(padding: str, layers: list | None) -> None:
    """The mask must hide padding completely, in both directions of a bidirectional layer: maxlen 4 and maxlen 9 give the same outputs."""
    data = float_data()
    spec = make_spec(layers=layers) if layers else make_spec()
    short = fitted(data, PreprocessingSpec(padding=padding, bucketing=False))
    long = dataclasses.replace(short, maxlen=9)
    model_short = build_model(spec, {"main": short})
    model_long = build_model(spec, {"main": long})
    model_long.set_weights(model_short.get_weights())
    x_short, x_long = padded(short, data.sequences), padded(long, data.sequences)
    assert x_short.shape == (3, 4, 2) and x_long.shape == (3, 9, 2)
    p_short = outputs(model_short, x_short)
    np.testing.assert_allclose(outputs(model_long, x_long), p_short, atol=1e-6)
    # Control: the same extra timesteps with a non-pad value do change the output.
    x_noise = x_long.copy()
    x_noise[x_noise == 0.0] = 0.5
    assert not np.allclose(outputs(model_long, x_noise), p_short, atol=1e-4)


def test_trace_warns_about_classic_mistakes() -> None:
    spec = spec_from_dict(
        {
            "data": {"train": "x.npy"},
            "preprocessing": {"maxlen": 2, "padding": "pre", "bucketing": False},
            "model": {"layers": [{"units": 4, "recurrent_dropout": 0.1}, {"units": 3, "return_sequences": True}]},
        }
    )
    result = shapes.trace(spec, train=float_data())
    text = "\n".join(result.warnings)
    assert "`model.layers[1].return_sequences` is true for the last LSTM" in text
    assert "recurrent_dropout` > 0 disables the fast cuDNN kernel of LSTM and GRU layers on a GPU" in text
    assert "maxlen=2 truncates 2 of 3 sequences" in text
    assert "left-padded masks" in text
    # The model is still traced as written, so the user sees the per-timestep output.
    assert result.layers[-1].output_shape == "(batch, timesteps=2, classes=2)"
    assert [s.name for s in result.steps] == ["standardize", "pad/truncate", "mask"]
    assert "0 of 3" not in result.steps[1].detail and "2 of 3 sequences truncated" in result.steps[1].detail


def test_trace_shows_class_weights_and_schedule_patience() -> None:
    spec = spec_from_dict({"data": {"train": "x.npy"}, "training": {"class_weight": "balanced", "lr_schedule": {"patience": 10}}})
    result = shapes.trace(spec, train=float_data(), build=False)  # labels a, b, a
    assert "Class weights in the training loss (balanced over the training split): a 0.75, b 1.5." in result.notes
    assert any("`training.lr_schedule.patience` (10) is not below `training.early_stopping.patience` (10)" in w for w in result.warnings)
    unknown = spec_from_dict({"data": {"train": "x.npy"}, "training": {"class_weight": {"c": 2}}})
    assert any("`training.class_weight` names the class 'c', which is not in the training data (classes: a, b)" in w for w in shapes.trace(unknown, train=float_data(), build=False).warnings)


def test_trace_warns_when_pad_value_occurs_in_data() -> None:
    data = dataclasses.replace(float_data(), sequences=Sequences.from_arrays([np.zeros((2, 2)), np.ones((3, 2)), np.arange(4.0).reshape(2, 2)]))
    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"standardize": False}})
    warnings = shapes.trace(spec, train=data, build=False).warnings
    assert any("2 real timesteps hold the pad value 0.0 in every feature" in w and "pad_value" in w for w in warnings)


def test_channels_first_heuristic() -> None:
    t = np.linspace(0, 3, 40)
    smooth = np.stack([np.stack([np.sin(t * (k + 1) + i) * (k + 1) for k in range(5)]) for i in range(6)])  # (samples, features=5, timesteps=40)
    swapped = SequenceData(Sequences.from_arrays(list(smooth)), None, "x.npy", "npy", "-", ["-"] * 6)  # read as (timesteps=5, features=40)
    right = SequenceData(Sequences.from_arrays(list(smooth.transpose(0, 2, 1))), None, "x.npy", "npy", "-", ["-"] * 6)
    assert "looks channels-first" in (channels_first_warning(swapped, "channels_last") or "")
    assert channels_first_warning(right, "channels_last") is None
    assert channels_first_warning(swapped, "channels_first") is None


def test_trace_warns_when_fractional_data_would_become_tokens() -> None:
    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"input": "tokens"}})
    data = dataclasses.replace(float_data(), sequences=Sequences.from_arrays([np.array([[0.5], [1.0]]), np.array([[2.0]]), np.array([[3.25]])]))
    result = shapes.trace(spec, train=data, build=False)
    assert any("pad_sequences(dtype='int32')" in w and "input: float" in w for w in result.warnings)
    assert result.steps[0].name == "standardize"  # traced as float, the way it should be read


@pytest.mark.parametrize(
    ("labels", "reason"),
    [
        ([1.0, 2.0, 3.5], "numbers with a fractional part, such as 3.5"),
        (["0.13", "2.71", "1.41"], "numbers with a fractional part, such as 0.13, 1.41, 2.71"),
        ([10, 20, 30], "3 distinct numbers, 3 of them on a single sequence"),
    ],
)
def test_trace_warns_when_labels_look_like_regression_targets(labels: list, reason: str) -> None:
    spec = spec_from_dict({"data": {"train": "x.npy", "validation_split": 0}, "training": {"monitor": "loss"}})
    data = dataclasses.replace(float_data(), labels=np.array(labels))
    warnings = shapes.trace(spec, train=data, build=False).warnings
    assert f"The labels of mem look like real values, not classes: {reason}. With `task: classify` every distinct value becomes a class (3 classes). " \
        "For real-valued targets set `task: regress`; if these are class labels, ignore this warning." in warnings


@pytest.mark.parametrize("labels", [[1.0, 2.0, 1.0], [3, 7, 3], ["a", "b", "c"]])
def test_no_regression_warning_for_class_labels(labels: list) -> None:
    spec = spec_from_dict({"data": {"train": "x.npy", "validation_split": 0}, "training": {"monitor": "loss"}})
    warnings = shapes.trace(spec, train=dataclasses.replace(float_data(), labels=np.array(labels)), build=False).warnings
    assert not any("look like real values" in w for w in warnings)


def test_trace_warns_about_a_test_file_with_other_features(tmp_path: Path) -> None:
    """`train` refuses it; inspect-shapes says so and traces the rest."""
    (tmp_path / "train.csv").write_text("id,time,a,b,label\n" + "".join(f"s{k},0,{k},1,{'xy'[k % 2]}\ns{k},1,{k},2,{'xy'[k % 2]}\n" for k in range(4)))
    (tmp_path / "test.csv").write_text("id,time,a,b,c,label\nt0,0,1,2,3,x\n")
    (tmp_path / "spec.yaml").write_text("data:\n  train: train.csv\n  test: test.csv\n  validation_split: 0\ntraining:\n  monitor: loss\n")
    result = shapes.trace(load_spec(tmp_path / "spec.yaml", strict=False), build=False)
    assert [a.role for a in result.arrays] == ["train"]
    assert f"The test data {tmp_path / 'test.csv'} has 3 features per timestep, but the training data {tmp_path / 'train.csv'} has 2; `train` refuses this. " \
        "Give the test data the same 2 features, in the same order as in training. It is left out of this trace." in result.warnings


def token_data() -> SequenceData:
    # Codes 1..4 (0 is padding), lengths 3, 2, 4: num_tokens 5 (unseen codes), 6 codes with padding.
    codes = [np.array([[1], [2], [3]]), np.array([[4], [1]]), np.array([[2], [2], [2], [1]])]
    return SequenceData(Sequences.from_arrays(codes), np.array(["a", "b", "a"]), "mem", "npy", "-", ["index 0", "index 1", "index 2"])


@pytest.mark.parametrize(
    ("encoding", "name", "shape", "params"),
    [
        ("embedding", "embedding", "(batch, timesteps=4, embedding=3)", 6 * 3),
        ("one_hot", "one_hot", "(batch, timesteps=4, features=5)", 6 * 5),
        ("float", "code_value", "(batch, timesteps=4, features=1)", 6),
    ],
)
def test_encoding_choice_shapes(encoding: str, name: str, shape: str, params: int) -> None:
    prep = fitted(token_data(), PreprocessingSpec(encoding=encoding, bucketing=False))
    model = build_model(make_spec(embedding_dim=3), {"main": prep})
    rows = layer_rows(model)
    assert [(r.name, r.output_shape, r.params, r.mask) for r in rows[:2]] == [("tokens", "(batch, timesteps=4)", 0, False), (name, shape, params, True)]
    layer = model.get_layer(name)
    table = layer.get_weights()[0]
    if encoding == "one_hot":
        assert not layer.trainable and table.tolist() == np.vstack([np.zeros(5), np.eye(5)]).tolist()  # padding row all zeros
    if encoding == "float":
        assert not layer.trainable and table[:, 0].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 0.8, 1.0])  # code / num_tokens
    assert rows[2].output_shape == "(batch, timesteps=4, units=4)"


@pytest.mark.parametrize("encoding", ["embedding", "one_hot", "float"])
def test_token_padding_is_masked_for_every_encoding(encoding: str) -> None:
    """Padding the codes further (maxlen 4 -> 9) must not change any output."""
    short = fitted(token_data(), PreprocessingSpec(encoding=encoding, bucketing=False))
    long = dataclasses.replace(short, maxlen=9)
    model_short, model_long = build_model(make_spec(), {"main": short}), build_model(make_spec(), {"main": long})
    model_long.set_weights(model_short.get_weights())
    x_short, x_long = padded(short, token_data().sequences), padded(long, token_data().sequences)
    assert x_short.shape == (3, 4) and x_long.shape == (3, 9)
    np.testing.assert_allclose(outputs(model_long, x_long), outputs(model_short, x_short), atol=1e-6)


def test_trace_explains_the_encoding_choice() -> None:
    spec = spec_from_dict({"data": {"train": "x.npy"}, "preprocessing": {"encoding": "one_hot", "bucketing": False}, "model": {"layers": [{"units": 4}]}})
    result = shapes.trace(spec, train=token_data())
    step = result.steps[-1]
    assert (step.name, step.shape) == ("encode (one_hot) + mask", "(samples=3, timesteps=4, features=5)")
    assert "code c -> unit vector c of 5, padding -> zeros; computed per batch inside the model" in step.detail
    note = next(n for n in result.notes if n.startswith("Token codes"))
    assert "embedding: (batch, timesteps=4, 32) learned vectors" in note and "* one_hot: (batch, timesteps=4, 5)" in note and "float: (batch, timesteps=4, 1)" in note
    assert result.input_shape == "(batch, timesteps=4)"


def test_inspect_shapes_counts_the_lengths_training_sees() -> None:
    """Token codes 0-padded to one width in the file: the real lengths (what bucketing and `backend: auto` weigh) are 1, 3 and 2."""
    codes = [np.array([[4], [0], [0]]), np.array([[1], [2], [3]]), np.array([[5], [5], [0]])]
    data = SequenceData(Sequences.from_arrays(codes), np.array(["a", "b", "a"]), "mem", "npy", "-", ["0", "1", "2"])
    prep = fitted(data, PreprocessingSpec(input="tokens"))
    assert real_lengths(data, prep).tolist() == [len(s) for s in prep.prepare(data.sequences, data.where)] == [1, 3, 2]
