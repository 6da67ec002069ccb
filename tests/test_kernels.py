"""The random convolutional kernel branch (``model.kernels``, :mod:`seqcli.kernels`): MiniRocket's dilations, the fixed
weights, the features computed by hand, and what ``adapt`` fits. Padding invariance and saving are tested with the other
model pieces (tests/test_model_pieces.py), the spec's rules with the others (tests/test_spec.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from seqcli import kernels
from seqcli.backend import import_keras
from seqcli.sequences import Sequences


def test_dilations_follow_minirocket() -> None:
    """aeon's ``_fit_dilations(1460, 10000, 32)``: 26 dilations up to 182, 119 biases per kernel in all."""
    values, biases = kernels.dilations(1460, 10_000)
    assert values == [1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 14, 17, 20, 24, 28, 34, 40, 47, 56, 66, 78, 93, 110, 130, 154, 182]
    assert biases == [19, 8, 8] + [4] * 15 + [3] * 8 and sum(biases) == 10_000 // 84
    assert kernels.dilations(5, 10_000)[0] == [1]  # shorter than a kernel: no dilation above 1


def test_kernel_weights_are_minirockets_patterns_over_channel_subsets() -> None:
    weights = kernels.kernel_weights(channels=12, dilation_count=3, seed=0)
    assert weights.shape == (3, 9, 12, 84)
    for d in range(3):
        for j, places in enumerate(kernels.PATTERNS):
            used = np.flatnonzero(weights[d, :, :, j].any(axis=0))
            assert 1 <= len(used) <= 9
            for c in used:
                column = weights[d, :, c, j]
                assert sorted(np.flatnonzero(column == 2.0)) == sorted(places) and (np.delete(column, places) == -1.0).all() and column.sum() == 0
    np.testing.assert_array_equal(kernels.kernel_weights(channels=12, dilation_count=3, seed=0), weights)  # the seed decides
    assert (kernels.kernel_weights(channels=1, dilation_count=1, seed=5)[0, :, 0, :] != 0).all()  # one channel: every kernel reads it


def _layer(length: int, features: int, channels: int = 1) -> object:
    layer = kernels.layer_class()(length, features, seed=0)
    layer.build((None, None, channels))
    return layer


def _by_hand(x: np.ndarray, dilation: int, pattern: int, bias: float) -> float:
    """The share of ``x``'s timesteps (one channel) whose kernel output exceeds ``bias``; zeros beyond both ends."""
    weights = -np.ones(9)
    weights[kernels.PATTERNS[pattern]] = 2.0
    padded = np.pad(x, 4 * dilation)
    out = np.array([sum(weights[k] * padded[t + k * dilation] for k in range(9)) for t in range(len(x))])
    return float(np.mean(out > bias))


def test_features_are_the_share_of_real_steps_above_each_bias() -> None:
    """One dilation (length 12), one bias per kernel: each feature computed by hand, on a sequence of 7 real steps in a
    batch of width 12 whose padding holds junk; the standardization is applied after (mean 0, std 1 here: then x SCALE)."""
    layer = _layer(length=12, features=84)
    assert (layer.dilations, layer.biases_per, layer.output_features) == ([1], [1], 84)
    biases = np.linspace(-3, 3, 84, dtype=np.float32)[:, None]
    layer.biases[0].assign(biases)
    x = np.arange(7, dtype=np.float32) - 3.0
    batch = np.full((1, 12, 1), 99.0, dtype=np.float32)
    batch[0, :7, 0] = x
    mask = np.arange(12)[None, :] < 7
    keras = import_keras()
    got = keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(batch), mask=keras.ops.convert_to_tensor(mask)))
    expected = np.array([_by_hand(x, 1, j, float(biases[j, 0])) for j in range(84)])
    np.testing.assert_allclose(got[0], expected * kernels.SCALE, atol=1e-6)


def test_adapt_takes_biases_from_training_outputs_and_standardizes() -> None:
    """After ``adapt``, each bias is a quantile of its kernel's outputs on a training sequence (so it lies within them),
    and the features of the training sequences have mean 0 and standard deviation SCALE (where they vary)."""
    rng = np.random.default_rng(0)
    sequences = Sequences.from_arrays([rng.normal(size=(n, 1)).astype(np.float32) for n in (40, 25, 33, 40, 18, 29)])
    layer = _layer(length=40, features=420)
    assert layer.dilations == [1, 2, 3, 4] and layer.biases_per == [2, 1, 1, 1]
    kernels.adapt(layer, sequences, seed=0, pad_value=-7.0)
    keras = import_keras()
    for d, bias in enumerate(layer.biases):
        outputs = np.concatenate([np.asarray(keras.ops.convert_to_numpy(layer.convolved(s[None], None, d)))[0] for s in sequences])  # (all steps, 84)
        values = keras.ops.convert_to_numpy(bias)
        assert ((values >= outputs.min(axis=0)[:, None] - 1e-5) & (values <= outputs.max(axis=0)[:, None] + 1e-5)).all()
        if values.shape[1] > 1:
            assert (values[:, 0] != values[:, 1]).all()  # a kernel's biases: quantiles at different levels
    batch, mask = kernels._padded(sequences, np.arange(len(sequences)), -7.0)
    features = keras.ops.convert_to_numpy(layer(keras.ops.convert_to_tensor(batch), mask=keras.ops.convert_to_tensor(mask)))
    varying = keras.ops.convert_to_numpy(layer.std) > 1e-3
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(features[:, varying].std(axis=0), kernels.SCALE, rtol=1e-3)


def test_layer_table_shows_the_kernel_branch() -> None:
    """inspect-shapes' row: the dilations and the features, the fixed weights counted, no mask after it (one vector per sequence)."""
    from seqcli.layers import layer_rows
    from seqcli.model import build_model
    from seqcli.spec import PreprocessingSpec, spec_from_dict
    from tests.conftest import fitted
    from tests.test_model_pieces import float_data

    prep = fitted(float_data(), PreprocessingSpec(maxlen=40, bucketing=False))
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"kernels": {"features": 500}, "layers": [{"units": 3}]}})
    rows = {r.name: (r.kind, r.output_shape, r.params, r.mask) for r in layer_rows(build_model(spec, {"main": prep}))}
    assert rows["kernels"] == ("KernelFeatures(84 kernels, dilations 1-4, fixed)", "(batch, features=420)", 4 * 9 * 2 * 84 + 3 * 420, False)
    assert rows["concat"][1] == "(batch, units=423)"


def test_training_fits_the_branch_before_its_first_epoch(tmp_path: Path) -> None:
    """`seqcli train` fits the thresholds and standardization (neither is trained after): the saved model's biases lie
    within the range of kernel outputs, not at their zero initial values, and its standard deviations are not all 1."""
    from typer.testing import CliRunner

    from seqcli.cli import app
    from seqcli.model import load_checkpoint
    from tests.conftest import SMOKE_SPEC

    sets = ["training.epochs=1", "model.kernels={features: 168}", f"output.dir={tmp_path}"]
    result = CliRunner().invoke(app, ["train", str(SMOKE_SPEC), "--quiet", *[a for s in sets for a in ("--set", s)]])
    assert result.exit_code == 0, result.output
    (run,) = tmp_path.glob("*/*")
    layer = load_checkpoint(run / "checkpoints" / "best.keras", compile=False).get_layer("kernels")
    keras = import_keras()
    biases = np.concatenate([keras.ops.convert_to_numpy(b).ravel() for b in layer.biases])
    assert (biases != 0).mean() > 0.9 and not np.allclose(keras.ops.convert_to_numpy(layer.std), 1.0)


@pytest.mark.parametrize("member", [1, 2], ids=["model", "ensemble-member-2"])
def test_an_interrupted_run_with_the_branch_resumes_to_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, member: int) -> None:
    """The branch is fitted before the first epoch and saved with every checkpoint, and training reads its features
    computed once through a view of the model: a run stopped after epoch 1 (of an ensemble: of its second member, whose
    branch and view are its own) and resumed reproduces the uninterrupted run exactly."""
    from seqcli import train
    from seqcli.pipeline import Pipeline
    from seqcli.spec import load_spec
    from tests.conftest import SMOKE_SPEC, StopAfter, untimed

    settings = ["training.epochs=3", "training.early_stopping=null", "model.layers=[{units: 4}]", "model.kernels={features: 168}", f"training.ensemble={member}"]
    whole = train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'whole'}"])))
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'cut'}"])), StopAfter(1, member=member))
    (run,) = (tmp_path / "cut" / "smoke").iterdir()
    prepared, state = train.prepare_resume(run)
    assert (state.member, state.epochs_completed) == (member, 1)
    views: list[bool] = []
    trainer = Pipeline.trainer
    monkeypatch.setattr(Pipeline, "trainer", lambda self, model: (found := trainer(self, model), views.append(found[0] is not model))[0])
    resumed = train.fit(prepared, resume=state)
    assert views == [True]  # only the interrupted member trains again, on features computed once
    assert untimed(resumed.history) == untimed(whole.history) and resumed.metrics == whole.metrics
    assert [untimed(m.history) for m in resumed.members] == [untimed(m.history) for m in whole.members]


def test_the_view_fed_the_features_outputs_what_the_model_outputs() -> None:
    """``cached_view`` shares every trainable weight with the model, in the model's order (the optimizer's and the
    checkpoints'), and given ``features`` of a padded batch of sequences of lengths 1 to 10 outputs what the model
    outputs on that batch."""
    from seqcli.model import adapt_kernels, build_model
    from seqcli.spec import PreprocessingSpec, spec_from_dict
    from tests.conftest import fitted, padded
    from tests.test_model_pieces import float_data

    data = float_data()
    prep = fitted(data, PreprocessingSpec(maxlen=12, bucketing=False))
    spec = spec_from_dict({"data": {"train": "x.npy"}, "model": {"kernels": {"features": 168}, "fcn": {}, "layers": [{"units": 3}]}})
    model = build_model(spec, {"main": prep})
    sequences = prep.prepare(data.sequences)
    adapt_kernels(model, sequences, seed=0, pad_value=prep.pad_value)
    view = kernels.cached_view(model, name="main")
    assert [id(v) for v in view.trainable_variables] == [id(v) for v in model.trainable_variables]
    assert kernels.layer_of(view) is None and kernels.layer_of(model) is not None
    x = padded(prep, [data.sequences[i] for i in range(len(data))])
    given = kernels.features(kernels.layer_of(model), sequences, pad_value=prep.pad_value, batch_size=2)
    assert given.shape == (len(data), 168) and np.ptp(given, axis=0).max() > 0
    expected = np.asarray(model.predict_on_batch(x))
    np.testing.assert_allclose(np.asarray(view.predict_on_batch({"main": x, kernels.FEATURES_INPUT: given})), expected, atol=1e-5)
    shuffled = given[::-1]  # control: the view reads the features it is given
    assert not np.allclose(np.asarray(view.predict_on_batch({"main": x, kernels.FEATURES_INPUT: shuffled})), expected, atol=1e-3)


def test_training_on_features_computed_once_equals_training_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run whose kernel features are computed once (the view trains) has the history and test metrics of the same run
    computed in the model at every batch (no room for the features: ``CACHE_BYTES`` 0), within float rounding; with
    augmentation the model itself trains."""
    from seqcli import train
    from seqcli.spec import load_spec
    from tests.conftest import SMOKE_SPEC, untimed

    settings = ["training.epochs=3", "training.early_stopping=null", "model.layers=[{units: 4}]", "model.kernels={features: 168}"]
    prepared = train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'once'}"]))
    assert prepared.trainer(prepared.model)[0] is not prepared.model
    once = train.fit(prepared)
    monkeypatch.setattr(kernels, "CACHE_BYTES", 0)
    prepared = train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'each'}"]))
    assert prepared.trainer(prepared.model) == (prepared.model, {})
    each = train.fit(prepared)
    for a, b in zip(untimed(once.history), untimed(each.history), strict=True):
        assert a.keys() == b.keys() and all(a[k] == pytest.approx(b[k], rel=1e-3, abs=1e-4) for k in a)
    assert once.metrics["test"]["accuracy"] == each.metrics["test"]["accuracy"]
    monkeypatch.undo()
    augmented = train.prepare(load_spec(SMOKE_SPEC, [*settings, "training.augment.jitter=0.1", f"output.dir={tmp_path / 'aug'}"]))
    assert augmented.trainer(augmented.model) == (augmented.model, {})


def test_the_memory_check_decides_whether_the_features_are_computed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Building the model checks memory with the training and validation sequences whose features training would hold,
    none for an augmented run (which computes them in every batch), and training holds them only when the check's
    estimate does: with memory for the model but not for them, the model itself trains."""
    from seqcli import memory, train
    from seqcli.spec import load_spec
    from tests.conftest import SMOKE_SPEC

    counted: list[int] = []
    check = memory.check
    monkeypatch.setattr(memory, "check", lambda *args, **kwargs: counted.append(kwargs["computed_once"]) or check(*args, **kwargs))
    settings = ["model.layers=[{units: 4}]", "model.kernels={features: 168}"]
    plain = train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'plain'}"]))
    train.prepare(load_spec(SMOKE_SPEC, [*settings, "training.augment.jitter=0.1", f"output.dir={tmp_path / 'aug'}"]))
    assert counted == [len(plain.splits["train"].lengths) + len(plain.splits["validation"].lengths), 0]
    assert plain.features_once and plain.trainer(plain.model)[0] is not plain.model
    room = memory.estimate(plain.spec, plain.preps, samples=len(plain.splits["train"].lengths)).total_bytes  # the model's, without the features
    monkeypatch.setattr(memory, "memory_bytes", lambda: (room, room))
    tight = train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'tight'}"]))
    assert not tight.features_once and tight.trainer(tight.model) == (tight.model, {})


def test_features_leave_out_real_steps_that_the_masking_layer_hides() -> None:
    """A real timestep whose every value is the pad value is masked by the model's ``Masking`` layer; the features
    computed once leave it out too (the control: counting it changes them)."""
    keras = import_keras()
    layer = _layer(length=12, features=168, channels=2)
    rng = np.random.default_rng(0)
    rows = [rng.normal(size=(n, 2)).astype(np.float32) for n in (9, 12, 5)]
    rows[0][3] = rows[1][0] = -7.0  # real steps that hold the pad value -7 in every feature
    sequences = Sequences.from_arrays(rows)
    batch = sequences.padded(np.arange(3), 12, post=True, pad_value=-7.0).astype(np.float32)
    masked = keras.layers.Masking(mask_value=-7.0).compute_mask(batch)
    expected = keras.ops.convert_to_numpy(layer(batch, mask=masked))
    np.testing.assert_allclose(kernels.features(layer, sequences, pad_value=-7.0, batch_size=2), expected, atol=1e-6)
    assert not np.allclose(kernels.features(layer, sequences, pad_value=0.5), expected, atol=1e-3)
