"""Augmentation of training batches, per-sequence z-normalization and resampling: exact, seeded, training-only, resumable."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from seqcli import train
from seqcli.augment import Augmenter, time_warped, window_slices
from seqcli.diagnostics import truncation_warning
from seqcli.errors import SpecError
from seqcli.preprocess import resampled, shortened, znormed
from seqcli.sequences import Sequences
from seqcli.spec import AugmentSpec, load_spec
from tests.conftest import SMOKE_SPEC, StopAfter, numpy_batches, untimed

ALL = AugmentSpec(jitter=0.05, scaling=0.1, magnitude_warp=0.2, time_warp=0.2, window=0.75)


def ramps() -> Sequences:
    """Lengths 8, 5, 12 of (timesteps, features=2): feature 0 counts the timesteps, feature 1 is constant 3."""
    return Sequences.from_arrays([np.stack([np.arange(n, dtype=np.float32), np.full(n, 3.0, np.float32)], axis=1) for n in (8, 5, 12)])


def test_each_batch_draws_from_its_own_seeded_generator() -> None:
    augment = Augmenter(ALL, seed=7)
    first = augment(ramps(), epoch=2, batch=1)
    again = augment(ramps(), epoch=2, batch=1)
    assert first.lengths.tolist() == again.lengths.tolist() and np.array_equal(first.values, again.values)
    for other in (augment(ramps(), epoch=2, batch=0), augment(ramps(), epoch=3, batch=1), Augmenter(ALL, seed=8)(ramps(), epoch=2, batch=1)):
        assert not np.array_equal(first.values, other.values)


def test_window_slicing_keeps_a_contiguous_share_and_the_other_changes_keep_lengths() -> None:
    rng = np.random.default_rng(0)
    cut = window_slices(ramps(), 0.75, rng)
    assert cut.lengths.tolist() == [6, 4, 9]
    for seq in cut:
        assert np.all(np.diff(seq[:, 0]) == 1) and np.all(seq[:, 1] == 3)  # one window of consecutive timesteps
    warped = time_warped(ramps()[2], 0.3, rng)
    assert warped.shape == (12, 2) and (warped[0, 0], warped[-1, 0]) == (0.0, 11.0) and np.all(np.diff(warped[:, 0]) > 0)  # same ends, time runs forward
    assert not np.allclose(warped[:, 0], np.arange(12))
    only_values = Augmenter(AugmentSpec(jitter=0.1, scaling=0.1, magnitude_warp=0.1), seed=0)(ramps(), epoch=0, batch=0)
    assert only_values.lengths.tolist() == [8, 5, 12] and not np.allclose(only_values.values, ramps().values)


def test_off_by_default() -> None:
    assert not Augmenter(AugmentSpec(), seed=0).active and Augmenter(AugmentSpec(window=0.9), seed=0).active


def test_only_training_batches_are_augmented(tmp_path: Path) -> None:
    pipe = train.prepare(load_spec(SMOKE_SPEC, ["training.augment.jitter=0.5", f"output.dir={tmp_path}"]))
    split = pipe.splits["train"]
    batches, _ = pipe.train_batches(0)  # a PyDataset on either backend
    rows, width = batches.plan.batches[0], batches.plan.widths[0]
    x, _ = batches[0]
    clean = pipe.packed(split)[0].batch(rows, width)
    padding = np.all(clean == pipe.prep.pad_value, axis=-1)
    assert padding.any() and np.array_equal(np.all(x == pipe.prep.pad_value, axis=-1), padding)  # the same timesteps are padding: the mask is unchanged
    assert np.abs(x[~padding] - clean[~padding]).mean() > 0.2  # every real timestep has noise of sigma 0.5
    plain = np.concatenate([b.reshape(-1, b.shape[-1]) for b, _ in numpy_batches(pipe.eval_batches(split))])
    values = np.sort(plain[~np.all(plain == pipe.prep.pad_value, axis=-1)].ravel())
    np.testing.assert_allclose(values, np.sort(split.inputs["main"].values.ravel()).astype(np.float32), rtol=1e-6)  # evaluation: the data as prepared


@pytest.mark.slow  # three trainings
def test_an_augmented_run_resumes_to_the_same_result(tmp_path: Path) -> None:
    settings = ["training.epochs=2", "training.early_stopping=null", "model.layers=[{units: 8}]", "training.augment={jitter: 0.1, window: 0.8, time_warp: 0.2}"]
    whole = train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={tmp_path / 'whole'}"])))
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        train.fit(train.prepare(load_spec(SMOKE_SPEC, [*settings, f"output.dir={out}"])), StopAfter(1))
    (run,) = (out / "smoke").iterdir()
    prepared, state = train.prepare_resume(run)
    resumed = train.fit(prepared, resume=state)
    assert untimed(resumed.history) == untimed(whole.history) and resumed.metrics == whole.metrics  # the same augmented batches after the resume
    assert json.loads((run / "run.json").read_text())["status"] == "completed"


def test_znorm_and_resample() -> None:
    z = znormed(ramps())
    for seq in z:
        np.testing.assert_allclose(seq.mean(axis=0), [0, 0], atol=1e-9)
        np.testing.assert_allclose(seq[:, 0].std(), 1.0)
        assert np.all(seq[:, 1] == 0)  # a constant feature becomes 0
    fixed = resampled(ramps(), 4)
    assert fixed.lengths.tolist() == [4, 4, 4] and fixed[1][:, 0].tolist() == pytest.approx([0, 4 / 3, 8 / 3, 4])


def test_resample_gives_fixed_length_input_and_predict_resamples_too(tmp_path: Path) -> None:
    pipe = train.prepare(load_spec(SMOKE_SPEC, ["preprocessing.resample=10", "preprocessing.znorm=true", f"output.dir={tmp_path}"]))
    assert pipe.prep.maxlen == 10 and pipe.prep.boundaries is None and pipe.prep.resample == 10 and pipe.prep.znorm
    assert set(pipe.splits["test"].lengths.tolist()) == {10}
    assert tuple(pipe.model.input.shape) == (None, 10, pipe.prep.n_features)
    one = pipe.prepare(pipe.splits["test"].data.subset(np.array([0])))
    assert one.lengths.tolist() == [10]


def test_shorten_resamples_only_the_longer_sequences() -> None:
    short = shortened(ramps(), 6)  # lengths 8, 5, 12
    assert short.lengths.tolist() == [6, 5, 6]
    assert short[0][:, 0].tolist() == pytest.approx(resampled(ramps().subset(np.array([0])), 6)[0][:, 0]) and short[0][-1, 0] == 7  # the whole series
    np.testing.assert_array_equal(short[1], ramps()[1])  # kept as it was
    assert short[2][:, 0].tolist() == pytest.approx([0, 2.2, 4.4, 6.6, 8.8, 11]) and np.all(short[2][:, 1] == 3)
    assert shortened(ramps(), 12).lengths.tolist() == [8, 5, 12]


def test_shorten_bounds_training_and_prediction_lengths(tmp_path: Path) -> None:
    pipe = train.prepare(load_spec(SMOKE_SPEC, ["preprocessing.shorten=6", f"output.dir={tmp_path}"]))
    raw = pipe.splits["test"].data.sequences.lengths
    assert raw.max() > 6 and pipe.prep.shorten == 6 and pipe.prep.maxlen == 6
    assert pipe.splits["test"].lengths.tolist() == np.minimum(raw, 6).tolist()
    longest = int(np.argmax(raw))
    one = pipe.prepare(pipe.splits["test"].data.subset(np.array([longest])))
    assert one.lengths.tolist() == [6]
    assert pipe.prep.to_dict()["shorten"] == 6  # saved with the run, so predict shortens the same way
    after = train.prepare(load_spec(SMOKE_SPEC, ["preprocessing.resample=10", "preprocessing.shorten=6", f"output.dir={tmp_path}"]))
    assert set(after.splits["test"].lengths.tolist()) == {6} and next(s for s in after.steps if s.name == "shorten").detail.startswith(f"{len(after.splits['train'].lengths)} of ")
    step = next(s for s in pipe.steps if s.name == "shorten")  # what inspect-shapes shows
    n = len(pipe.splits["train"].lengths)
    assert step.shape == f"{n} x (timesteps <= 6, {pipe.prep.n_features})" and re.fullmatch(rf"[1-9]\d* of {n} sequences longer than 6 timesteps linearly interpolated to 6", step.detail)


def test_truncation_warning_counts_the_lengths_after_shorten(tmp_path: Path) -> None:
    """A sequence that shorten brings to its limit is whole, not truncated; one still longer than maxlen is."""
    pipe = train.prepare(load_spec(SMOKE_SPEC, ["preprocessing.shorten=6", f"output.dir={tmp_path}"]))
    test = pipe.splits["test"].data
    assert test.lengths.max() > 6 and truncation_warning(test, pipe.prep, "test") is None
    cut = train.prepare(load_spec(SMOKE_SPEC, ["preprocessing.shorten=6", "preprocessing.maxlen=4", f"output.dir={tmp_path}"]))
    longer = int((np.minimum(test.lengths, 6) > 4).sum())
    assert truncation_warning(test, cut.prep, "test") == (
        f"{longer} of {len(test.lengths)} test sequences are longer than maxlen=4 (longest 6) and are truncated (post). Set `preprocessing.maxlen: 6` to keep them whole."
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (["task=tag", "training.augment.window=0.5"], r"`training\.augment\.window` changes the timesteps.*`task: tag`"),
        (["preprocessing.input=tokens", "training.augment.jitter=0.1"], r"`training\.augment\.jitter` transforms real-valued features"),
        (["preprocessing.resample=10", "preprocessing.maxlen=5"], r"`preprocessing\.resample` makes every sequence the same length"),
        (["task=tag", "preprocessing.shorten=4"], r"`preprocessing\.shorten` changes the timesteps.*`task: tag`"),
        (["training.augment.window=0"], r"`training\.augment\.window` must be a fraction in \(0, 1\]"),
    ],
)
def test_spec_rules(change: list[str], message: str) -> None:
    with pytest.raises(SpecError, match=message):
        load_spec(SMOKE_SPEC, change)
