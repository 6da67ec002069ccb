"""The tasks (seqcli/tasks/): reading, fitting and encoding targets, splits, heads, evaluation and prediction rows, on tiny exact data."""

from __future__ import annotations

import typing

import numpy as np
import pytest

from seqcli import preprocess
from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.metrics import regression_report
from seqcli.sequences import Sequences
from seqcli.spec import TASK_KINDS, PreprocessingSpec, Spec, spec_from_dict
from seqcli.tasks import TASKS
from seqcli.tasks.base import random_split
from seqcli.tasks.classify import Classify, stratified_split
from seqcli.tasks.regress import Regress
from seqcli.tasks.regress_timesteps import RegressTimesteps
from seqcli.tasks.tag import Tag


def data_of(lengths: list[int], labels: object = None, step_targets: list[np.ndarray] | None = None, names: list[str] | None = None) -> SequenceData:
    sequences = [np.arange(n * 2, dtype=np.float64).reshape(n, 2) for n in lengths]
    steps = None if step_targets is None else Sequences.from_arrays(step_targets)
    where = [f"index {i}" for i in range(len(lengths))]
    return SequenceData(Sequences.from_arrays(sequences), None if labels is None else np.asarray(labels), "mem", "npy", "-", where, step_targets=steps, target_names=names)


def fitted(task: object, data: SequenceData, **pp: object) -> preprocess.Preprocessor:
    prep = preprocess.fit(data, PreprocessingSpec(**pp))  # type: ignore[arg-type]
    return task.fit(prep, data)  # type: ignore[attr-defined]


def test_registry_matches_the_spec_schema() -> None:
    """Every task the spec accepts has an implementation, and each implementation reads targets as its kind says."""
    assert set(TASKS) == set(TASK_KINDS) == set(typing.get_args(typing.get_type_hints(Spec)["task"]))
    assert all(task.kind is TASK_KINDS[name] for name, task in TASKS.items())


# --------------------------------------------------------------------------- classify and tag


def test_numeric_class_names_sort_numerically_and_encode() -> None:
    data = data_of([1, 1, 1], [10, 9, 2.0])
    prep = fitted(Classify(), data)
    assert prep.classes == ["2", "9", "10"] and prep.task == "classify"
    assert Classify().encode(prep, data).tolist() == [2, 1, 0]


def test_unseen_label_names_sequence_and_classes() -> None:
    prep = fitted(Classify(), data_of([1, 1], ["a", "b"]))
    with pytest.raises(DataError, match=r"index 1: label 'c' was not among the training classes \(a, b\)"):
        Classify().encode(prep, data_of([1, 1], ["a", "c"]))


def test_single_class_is_rejected() -> None:
    with pytest.raises(DataError, match="single class \\('a'\\).*at least two"):
        fitted(Classify(), data_of([1, 2], ["a", "a"]))


def test_stratified_split_is_per_class_seeded_and_disjoint() -> None:
    labels = np.array(["a"] * 10 + ["b"] * 5)
    train, val = stratified_split(labels, 0.2, seed=3)
    assert sorted(labels[val].tolist()) == ["a", "a", "b"]
    assert set(train).isdisjoint(val) and len(train) + len(val) == 15
    assert np.array_equal(val, stratified_split(labels, 0.2, seed=3)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.2, seed=4)[1])


def test_stratified_split_of_many_small_classes_holds_out_one_from_the_largest() -> None:
    labels = np.repeat(np.array(list("abcdefghij")), 5)  # 50 sequences, 10 classes: 0.5 of one each at 0.1
    train, val = stratified_split(labels, 0.1, seed=0)
    assert len(val) == 5 and len(set(labels[val])) == 5 and len(train) == 45
    assert np.array_equal(val, stratified_split(labels, 0.1, seed=0)[1])
    assert not np.array_equal(val, stratified_split(labels, 0.1, seed=1)[1])
    _, val = stratified_split(np.array(["c"] * 3 + ["a"] * 4 + ["b"] * 3), 0.1, seed=0)
    assert val.tolist() in ([3], [4], [5], [6])  # one of the four "a"


def test_empty_validation_split_is_an_error() -> None:
    with pytest.raises(DataError, match="leaves an empty validation set"):
        stratified_split(np.array(["a", "a", "b", "b"]), 0.1, seed=0)
    with pytest.raises(DataError, match="leaves an empty validation set"):
        random_split(3, 0.1, seed=0)


def test_classify_rows_and_accuracy_from_a_sigmoid_output() -> None:
    prep = fitted(Classify(), data_of([1, 1], ["no", "yes"]))
    rows, scores = Classify().rows(np.array([[0.25], [0.9]]), prep, np.array([1, 1]))  # one sigmoid unit: p(yes)
    assert rows == [{"predicted": "no", "label": "yes", "p_no": 0.75, "p_yes": 0.25}, {"predicted": "yes", "label": "yes", "p_no": 0.1, "p_yes": 0.9}]
    assert scores == {"accuracy": 0.5}


def test_tag_classes_span_all_timesteps_and_targets_truncate() -> None:
    data = data_of([3, 2], step_targets=[np.array(["b", "a", "b"]), np.array(["c", "a"])])
    prep = fitted(Tag(), data, maxlen=2)
    assert prep.classes == ["a", "b", "c"]
    assert [t.tolist() for t in Tag().encode(prep, data)] == [[1, 0], [2, 0]]
    outputs, y = Sequences.from_arrays([np.eye(3)[[1, 0]], np.eye(3)[[0, 0]]]), Sequences.from_arrays([np.array([1, 0]), np.array([2, 0])])
    evaluated = Tag().evaluate(outputs, y, prep, spec=spec_from_dict({"data": {"train": "x"}, "task": "tag"}))
    assert (evaluated["accuracy"], evaluated["samples"], evaluated["sequences"]) == (0.75, 4, 2)


# --------------------------------------------------------------------------- regress


def regress_spec(**training: object) -> Spec:
    return spec_from_dict({"data": {"train": "x.ts"}, "task": "regress", "training": training})


def test_regress_standardizes_on_the_training_split_and_names_targets() -> None:
    data = data_of([2, 2, 2], np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]]), names=["rate", "flat"])
    prep = fitted(Regress(), data)
    assert prep.targets == {"names": ["rate", "flat"], "mean": [3.0, 10.0], "std": [pytest.approx(np.sqrt(8 / 3)), 1.0]}  # a constant target keeps std 1
    encoded = Regress().encode(prep, data)
    assert encoded.dtype == np.float32
    np.testing.assert_allclose(encoded[:, 0], [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], rtol=1e-6)
    np.testing.assert_array_equal(encoded[:, 1], [0.0, 0.0, 0.0])
    back = Regress().predictions(encoded, prep)
    np.testing.assert_allclose(back, [[1.0, 10.0], [3.0, 10.0], [5.0, 10.0]], rtol=1e-6)


def test_regress_refuses_another_number_of_targets() -> None:
    prep = fitted(Regress(), data_of([1, 1], np.array([[1.0], [2.0]])))
    with pytest.raises(DataError, match=r"mem has 2 target\(s\) per sequence, but the model was trained on 1 \(target\)"):
        Regress().encode(prep, data_of([1], np.array([[1.0, 2.0]])))


def test_regress_evaluation_is_in_original_units_next_to_the_mean_predictor() -> None:
    """Targets 1 and 3 (train mean 2), predicted 1.5 and 2.5: RMSE 0.5, MAE 0.5, R² 1 - 0.5/2 = 0.75; the mean predictor's RMSE 1."""
    prep = fitted(Regress(), data_of([1, 1], np.array([[1.0], [3.0]])))
    y = Regress().encode(prep, data_of([1, 1], np.array([[1.0], [3.0]])))
    outputs = Regress().standardize(prep, np.array([[1.5], [2.5]]))
    report = Regress().evaluate(outputs, y, prep, spec=regress_spec(loss="mae"))
    assert report["rmse"] == pytest.approx(0.5) and report["mae"] == pytest.approx(0.5) and report["r2"] == pytest.approx(0.75)
    assert report["mean_predictor_rmse"] == pytest.approx(1.0) and report["samples"] == 2
    assert report["loss"] == pytest.approx(0.5)  # mae on standardized targets: std is 1 here
    rows, scores = Regress().rows(outputs, prep, y)
    assert rows == [{"predicted": 1.5, "target": 1.0}, {"predicted": 2.5, "target": 3.0}] and scores == {"rmse": pytest.approx(0.5), "mae": pytest.approx(0.5)}


def test_regression_report_per_target() -> None:
    report = regression_report(np.array([[0.0, 1.0], [2.0, 1.0]]), np.array([[0.0, 2.0], [2.0, 0.0]]), np.array([1.0, 1.0]), ["a", "b"])
    assert report["per_target"]["a"] == {"rmse": 0.0, "mae": 0.0, "r2": 1.0, "mean_predictor_rmse": 1.0, "mean_predictor_mae": 1.0}
    assert report["per_target"]["b"]["rmse"] == 1.0 and report["per_target"]["b"]["r2"] == 0.0  # a constant target: R² 0
    assert report["rmse"] == 0.5 and report["r2"] == 0.5


def test_regress_timesteps_fits_over_real_timesteps_and_truncates() -> None:
    data = data_of([3, 1], step_targets=[np.array([[0.0], [2.0], [4.0]]), np.array([[6.0]])])
    prep = fitted(RegressTimesteps(), data, maxlen=2)
    assert prep.targets is not None and prep.targets["mean"] == [3.0]  # over the 4 real timesteps, before truncation
    encoded = RegressTimesteps().encode(prep, data)
    assert [len(t) for t in encoded] == [2, 1] and encoded[0].shape == (2, 1)
    np.testing.assert_allclose(RegressTimesteps().predictions(encoded, prep)[:, 0], [0.0, 2.0, 6.0], atol=1e-6)
    rows, _ = RegressTimesteps().rows(encoded, prep)
    assert [r["predicted"] for r in rows] == pytest.approx([0.0, 2.0, 6.0])
