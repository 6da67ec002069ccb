"""The memory estimate (seqcli/memory.py): parameters as Keras counts them, activations that scale with the batch, and the refusal."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from seqcli import kernels, memory
from seqcli.errors import SpecError
from seqcli.model import build_model
from seqcli.preprocess import Preprocessor
from seqcli.spec import load_spec
from tests.conftest import SMOKE_SPEC

FLOAT = {"input": "float", "n_features": 3}
TOKENS = {"input": "tokens", "n_features": 1, "num_tokens": 10}


def preprocessor(**fields: Any) -> Preprocessor:
    base: dict[str, Any] = {"input": "float", "n_features": 2, "maxlen": 6, "padding": "post", "truncating": "post", "pad_value": 0.0, "classes": ["a", "b", "c"]}
    return Preprocessor(**(base | fields))


@pytest.mark.parametrize(
    ("settings", "prep"),
    [
        ([], FLOAT),
        (["model.layers=[{units: 5, cell: gru}, {units: 3, bidirectional: true}]", "model.dense=[{units: 4}]"], FLOAT),
        (["model.layers=[{units: 5, cell: gru, bidirectional: true}]", "model.embedding_dim=7"], TOKENS),
        (["model.layers=[{units: 5}]", "preprocessing.input=tokens", "preprocessing.encoding=one_hot"], TOKENS | {"encoding": "one_hot"}),
        (["model.output=sigmoid"], FLOAT | {"classes": ["a", "b"]}),
        (["task=regress"], FLOAT | {"task": "regress", "targets": {"names": ["x", "y"], "mean": [0.0, 0.0], "std": [1.0, 1.0]}}),
        (["task=tag", "data.test=null"], FLOAT | {"task": "tag"}),
        (["recipe=recommended"], FLOAT),  # the FCN branch beside the LSTM, batch-normalized
        (["model.frontend={blocks: [{filters: 4, stride: 2}, {filters: 6, kernel_size: 3, pool: 2}]}", "model.pooling=[mean, max]", "model.fcn={normalization: layer}"], FLOAT),
        (["model.kernels={features: 500}"], FLOAT | {"maxlen": 40}),  # 4 dilations: 84 x 5 features
        (["model.ngrams={buckets: 1000, dim: 6}", "preprocessing.input=tokens"], TOKENS),
    ],
    ids=["lstm", "gru-bidirectional-dense", "embedding", "one-hot", "sigmoid", "regress", "tag", "recipe", "frontend-pooling-fcn", "kernels", "ngrams"],
)
def test_parameters_are_those_keras_creates(settings: list[str], prep: dict[str, Any]) -> None:
    spec, fitted = load_spec(SMOKE_SPEC, settings, strict=False), {"main": preprocessor(**prep)}
    found = memory.estimate(spec, fitted)
    model = build_model(spec, fitted)
    assert found.params == model.count_params()
    assert sorted(p.params for p in found.parts if p.params) == sorted(layer.count_params() for layer in model.layers if layer.count_params())  # Keras orders the branches by depth


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_a_multi_input_model_counts_every_branch(task: str) -> None:
    """The branches' outputs are joined (for tag: the other branch's vector at every timestep of the first's) before the dense layers."""
    aux = "{aux: {data: {train: aux.jsonl" + (", test: aux.jsonl" if task == "classify" else "") + "}, layers: [{units: 3, cell: gru}]}}"
    spec = load_spec(SMOKE_SPEC, [f"task={task}", f"inputs={aux}", "model.dense=[{units: 4}]", *(["data.test=null"] if task == "tag" else [])])
    preps = {"main": preprocessor(task=task), "aux": preprocessor(n_features=5, maxlen=4, task=task)}
    assert memory.estimate(spec, preps).params == build_model(spec, preps).count_params()


def test_a_shortening_front_end_shortens_what_the_recurrent_layers_keep() -> None:
    fitted = {"main": preprocessor(maxlen=400)}
    plain = memory.estimate(load_spec(SMOKE_SPEC, ["model.frontend={blocks: [{filters: 2}]}"]), fitted)
    strided = memory.estimate(load_spec(SMOKE_SPEC, ["model.frontend={blocks: [{filters: 2, stride: 4}]}"]), fitted)
    (lstm,) = [p for p in plain.parts if p.key == "model.layers[0].units"]
    (shorter,) = [p for p in strided.parts if p.key == "model.layers[0].units"]
    assert shorter.activations * 4 == lstm.activations and shorter.params == lstm.params


def test_activations_grow_with_the_batch_and_the_timesteps_but_not_the_parameters() -> None:
    spec, prep = load_spec(SMOKE_SPEC), preprocessor()
    base = memory.estimate(spec, {"main": prep})
    doubled = memory.estimate(dataclasses.replace(spec, training=dataclasses.replace(spec.training, batch_size=2 * spec.training.batch_size)), {"main": prep})
    longer = memory.estimate(spec, {"main": dataclasses.replace(prep, maxlen=2 * prep.maxlen)})
    assert doubled.activation_bytes == 2 * base.activation_bytes
    assert longer.activation_bytes == 2 * base.activation_bytes - 8 * 3 * 4 * 2  # but the output layer's (8 x 3 floats and their gradients): once per sequence
    assert doubled.parameter_bytes == longer.parameter_bytes == base.parameter_bytes == base.params * 4 * 4  # weight, gradient, Adam's two moments
    assert memory.estimate(spec, {"main": prep}, samples=3).batch_size == 3  # fewer sequences than batch_size: one smaller batch


def test_the_kernel_features_computed_once_are_held_for_the_whole_training(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training keeps one float32 vector per training and validation sequence (84 kernels x 5 biases here), without a
    gradient; nothing when they would not fit in ``kernels.CACHE_BYTES`` (they are then computed in every batch)."""
    spec, fitted = load_spec(SMOKE_SPEC, ["model.kernels={features: 500}"]), {"main": preprocessor(**FLOAT | {"maxlen": 40})}
    every_batch = memory.estimate(spec, fitted)
    once = memory.estimate(spec, fitted, computed_once=1_000)
    assert once.total_bytes - every_batch.total_bytes == once.held_bytes == 1_000 * 420 * 4
    assert once.params == every_batch.params and once.activation_bytes == every_batch.activation_bytes
    monkeypatch.setattr(kernels, "CACHE_BYTES", 1_000 * 420 * 4 - 1)
    assert memory.estimate(spec, fitted, computed_once=1_000).total_bytes == every_batch.total_bytes


def test_the_check_holds_the_features_only_when_they_fit_in_memory() -> None:
    """The check's estimate is the decision: with the features when they fit, without them (computed in every batch)
    when only the model fits, and a refusal, about the model alone, when even that does not fit."""
    spec, fitted = load_spec(SMOKE_SPEC, ["model.kernels={features: 500}"]), {"main": preprocessor(**FLOAT | {"maxlen": 40})}
    once, every_batch = memory.estimate(spec, fitted, computed_once=1_000), memory.estimate(spec, fitted)
    assert memory.check(spec, fitted, computed_once=1_000, available=once.total_bytes).held_bytes == once.held_bytes
    assert memory.check(spec, fitted, computed_once=1_000, available=once.total_bytes - 1).held_bytes == 0
    assert memory.check(spec, fitted, computed_once=1_000, available=every_batch.total_bytes) == every_batch
    with pytest.raises(SpecError, match=r"Training this model needs about 863\.7 KB of memory, .* The largest part is the kernel branch \(420 features\)") as refused:
        memory.check(spec, fitted, computed_once=1_000, available=every_batch.total_bytes - 1)
    assert "computed once" not in str(refused.value)


def test_a_model_that_does_not_fit_is_refused_with_the_numbers() -> None:
    spec = load_spec(SMOKE_SPEC, ["model.layers[0].units=4096"])
    prep = {"main": preprocessor()}
    with pytest.raises(
        SpecError,
        match=r"Training this model needs about 1\.0 GB of memory, but this machine has 100\.0 MB available \(of 1\.0 GB\): 67,289,403 parameters take 1\.0 GB "
        r"\(weights, gradients and adam moments, float32\), and what a batch of 8 sequences x 6 timesteps keeps for the backward pass \d+\.\d MB\. "
        r"The largest part is LSTM\(4,096\) \(67,158,016 parameters, 1\.0 GB\)\. Lower `model\.layers\[0\]\.units`\.",
    ):
        memory.check(spec, prep, available=100 * 2**20, total=2**30)
    assert memory.check(spec, prep, available=2 * 2**30).total_bytes > 2**30  # it fits in 2 GB


def test_when_activations_dominate_the_fix_names_the_batch_and_maxlen() -> None:
    spec = load_spec(SMOKE_SPEC, ["training.batch_size=4096", "model.layers=[{units: 256}]"])
    with pytest.raises(SpecError, match=r"Lower `model\.layers\[0\]\.units`, `training\.batch_size` or `preprocessing\.maxlen`\.$"):
        memory.check(spec, {"main": preprocessor(maxlen=1000)}, available=2**30)


def test_this_machines_memory_is_read() -> None:
    available, total = memory.memory_bytes()
    assert available is not None and total is not None
    assert 0 < available <= total
