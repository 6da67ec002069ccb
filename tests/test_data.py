"""Tests for seqcli.data: the .npy/.npz/.ts/CSV loaders and the checks they share."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seqcli.data import SequenceData, detect_format, load
from seqcli.errors import DataError
from seqcli.fingerprint import fingerprint
from seqcli.spec import TASK_KINDS, DataFile, spec_from_dict

BASE = spec_from_dict({"data": {"train": "unused.npy"}}).data

# An imperative telling the user what to do; messages without one leave the user stuck.


def csv_options(**changes):
    return replace(BASE, csv=replace(BASE.csv, **changes))


def npz_options(**changes):
    return replace(BASE, npz=replace(BASE.npz, **changes))


def write_text(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def save_npy(tmp_path: Path, name: str, array: np.ndarray, **kwargs) -> Path:
    path = tmp_path / name
    np.save(path, array, **kwargs)
    return path


# --------------------------------------------------------------------------- .npy


def test_npy_3d_splits_into_sequences(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.arange(24, dtype=float).reshape(2, 4, 3))
    y = save_npy(tmp_path, "y.npy", np.array([1, 0]))
    data = load(DataFile(path=str(x), labels=str(y)), BASE)

    assert len(data.sequences) == 2
    assert [s.shape for s in data.sequences] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(data.sequences[0][0], [0.0, 1.0, 2.0])
    np.testing.assert_array_equal(data.sequences[1][3], [21.0, 22.0, 23.0])
    np.testing.assert_array_equal(data.labels, [1, 0])
    assert data.format == "npy"
    assert data.raw_shape == "(samples=2, timesteps=4, features=3)"
    assert data.steps == []
    assert data.where == ["index 0", "index 1"]
    assert data.ids == ["0", "1"]
    assert data.n_features == 3
    np.testing.assert_array_equal(data.lengths, [4, 4])
    assert not data.is_integer


def test_npy_integer_data_keeps_integer_dtype(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.array([[1, 2, 0], [3, 4, 5]], dtype=np.int32))
    data = load(DataFile(path=str(x)), BASE, need_labels=False)
    assert data.is_integer
    assert data.sequences[0].dtype == np.int32


def test_npy_2d_gets_one_feature_and_reshape_step(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.arange(6, dtype=float).reshape(2, 3))
    data = load(DataFile(path=str(x)), BASE, need_labels=False)

    assert [s.shape for s in data.sequences] == [(3, 1), (3, 1)]
    np.testing.assert_array_equal(data.sequences[1][:, 0], [3.0, 4.0, 5.0])
    assert data.raw_shape == "(samples=2, timesteps=3)"
    assert [(s.name, s.shape) for s in data.steps] == [("reshape", "(samples=2, timesteps=3, features=1)")]
    assert data.labels is None


def test_npy_channels_first_is_transposed(tmp_path):
    # (samples=2, features=3, timesteps=4): x[s, f, t] = 12*s + 4*f + t
    x = save_npy(tmp_path, "x.npy", np.arange(24, dtype=float).reshape(2, 3, 4))
    data = load(DataFile(path=str(x)), replace(BASE, layout="channels_first"), need_labels=False)

    assert [s.shape for s in data.sequences] == [(4, 3), (4, 3)]
    np.testing.assert_array_equal(data.sequences[0][0], [0.0, 4.0, 8.0])
    np.testing.assert_array_equal(data.sequences[0][3], [3.0, 7.0, 11.0])
    np.testing.assert_array_equal(data.sequences[1][:, 2], [20.0, 21.0, 22.0, 23.0])
    assert data.raw_shape == "(samples=2, features=3, timesteps=4)"
    assert [(s.name, s.shape) for s in data.steps] == [("transpose", "(samples=2, timesteps=4, features=3)")]


def test_npy_label_count_mismatch(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.zeros((2, 3, 1)))
    y = save_npy(tmp_path, "y.npy", np.array([0, 1, 1]))
    with pytest.raises(DataError, match=r"x\.npy: 3 labels for 2 sequences\. There must be exactly one label per sequence\."):
        load(DataFile(path=str(x), labels=str(y)), BASE)


def test_npy_one_hot_labels_rejected(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.zeros((2, 3, 1)))
    y = save_npy(tmp_path, "y.npy", np.eye(2))
    with pytest.raises(DataError, match=r"Labels for .*x\.npy must be 1-D .*got shape \(2, 2\)\. For one-hot labels use `argmax\(axis=1\)`"):
        load(DataFile(path=str(x), labels=str(y)), BASE)


def test_npy_missing_labels_when_needed(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.zeros((2, 3, 1)))
    with pytest.raises(DataError, match=r"x\.npy has no labels\. .*set `labels:` next to `path:` to a \.npy label file"):
        load(DataFile(path=str(x)), BASE)
    assert load(DataFile(path=str(x)), BASE, need_labels=False).labels is None


def test_npy_object_array_is_refused(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.array([np.arange(2.0), np.arange(3.0)], dtype=object), allow_pickle=True)
    with pytest.raises(DataError, match=r"x\.npy holds Python objects .*never loads pickles.*Store variable-length data as an \.npz with `x` .* and `lengths`"):
        load(DataFile(path=str(x)), BASE, need_labels=False)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((5,), r"holds a 1-D array of shape \(5,\); expected 2-D \(samples, timesteps\) or 3-D .*If it is one sequence, predict it with `seqcli predict`"),
        ((1, 2, 2, 2), r"holds a 4-D array of shape \(1, 2, 2, 2\); expected 2-D \(samples, timesteps\) or 3-D \(samples, timesteps, features\)\."),
    ],
)
def test_npy_wrong_rank_is_refused(tmp_path, shape, message):
    x = save_npy(tmp_path, "x.npy", np.zeros(shape))
    with pytest.raises(DataError, match=message):
        load(DataFile(path=str(x)), BASE, need_labels=False)


def test_npy_nan_names_sequence_and_timestep(tmp_path):
    x = np.zeros((2, 4, 1))
    x[1, 2, 0] = np.nan
    path = save_npy(tmp_path, "x.npy", x)
    with pytest.raises(DataError, match=r"x\.npy, index 1: nan at timestep 2, feature 0\. Replace missing or infinite values"):
        load(DataFile(path=str(path)), BASE, need_labels=False)


def test_npy_inf_names_sequence_and_timestep(tmp_path):
    x = np.zeros((3, 2, 2))
    x[2, 1, 1] = -np.inf
    path = save_npy(tmp_path, "x.npy", x)
    with pytest.raises(DataError, match=r"x\.npy, index 2: -inf at timestep 1, feature 1\. Replace missing or infinite values"):
        load(DataFile(path=str(path)), BASE, need_labels=False)


# --------------------------------------------------------------------------- .npz


def test_npz_x_and_y(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(12, dtype=float).reshape(2, 3, 2), y=np.array(["cat", "dog"]))
    data = load(DataFile(path=str(path)), BASE)
    assert data.format == "npz"
    assert [s.shape for s in data.sequences] == [(3, 2), (3, 2)]
    np.testing.assert_array_equal(data.sequences[1][0], [6.0, 7.0])
    assert data.labels.tolist() == ["cat", "dog"]


def test_npz_custom_key_names(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, seqs=np.arange(6, dtype=float).reshape(3, 2), target=np.array([0, 1, 0]))
    data = load(DataFile(path=str(path)), npz_options(x="seqs", y="target"))
    assert [s.shape for s in data.sequences] == [(2, 1)] * 3
    np.testing.assert_array_equal(data.labels, [0, 1, 0])


def test_npz_ragged_split_by_lengths(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(5, dtype=float), lengths=np.array([2, 3]), y=np.array([1, 0]))
    data = load(DataFile(path=str(path)), BASE)
    assert [s.shape for s in data.sequences] == [(2, 1), (3, 1)]
    np.testing.assert_array_equal(data.sequences[0][:, 0], [0.0, 1.0])
    np.testing.assert_array_equal(data.sequences[1][:, 0], [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(data.lengths, [2, 3])
    np.testing.assert_array_equal(data.labels, [1, 0])
    assert data.raw_shape == "x (total_timesteps=5, features=1), lengths (2,)"
    assert [s.name for s in data.steps] == ["split by lengths"]
    assert data.where == ["index 0", "index 1"]


def test_npz_ragged_with_features(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(10, dtype=float).reshape(5, 2), lengths=np.array([1, 4]))
    data = load(DataFile(path=str(path)), BASE, need_labels=False)
    assert [s.shape for s in data.sequences] == [(1, 2), (4, 2)]
    np.testing.assert_array_equal(data.sequences[1][0], [2.0, 3.0])
    np.testing.assert_array_equal(data.sequences[1][3], [8.0, 9.0])


def test_npz_lengths_sum_mismatch(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(5, dtype=float), lengths=np.array([2, 2]))
    with pytest.raises(DataError, match=r"`lengths` in .*d\.npz adds up to 4 timesteps but `x` has 5 rows; they must match\."):
        load(DataFile(path=str(path)), BASE, need_labels=False)


def test_npz_zero_length_sequence(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.arange(5, dtype=float), lengths=np.array([2, 0, 3]))
    with pytest.raises(DataError, match=r"Sequence 1 in .*d\.npz has length 0; every sequence needs at least one timestep\. Remove empty sequences\."):
        load(DataFile(path=str(path)), BASE, need_labels=False)


def test_npz_missing_key_lists_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, a=np.zeros((2, 3)), b=np.zeros(2))
    with pytest.raises(DataError, match=r"d\.npz has no array named 'x' \(arrays in it: a, b\)\. Set `data\.npz\.x` to the name of the sequences array\."):
        load(DataFile(path=str(path)), BASE)


def test_npz_missing_labels_hint(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"d\.npz has no labels\. .*under the name in `data\.npz\.y`"):
        load(DataFile(path=str(path)), BASE)


def test_npz_object_array_is_refused(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.array([np.arange(2.0), np.arange(3.0)], dtype=object), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"d\.npz holds Python objects .*never loads pickles"):
        load(DataFile(path=str(path)), BASE)


# --------------------------------------------------------------------------- .ts

TS_HEADER = "# a tiny problem\n@problemName Tiny\n@timeStamps false\n@univariate false\n@dimensions 2\n@equalLength false\n@classLabel true a b\n@data\n"


def test_ts_parses_channels_first_sequences(tmp_path):
    # line 9 and line 10 are the two sequences: 2 channels each, 3 and 2 timesteps
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,2,3:4,5,6:a\n\n7,8:9,10:b\n")
    data = load(DataFile(path=str(path)), BASE)

    assert data.format == "ts"
    assert [s.shape for s in data.sequences] == [(3, 2), (2, 2)]
    np.testing.assert_array_equal(data.sequences[0], [[1.0, 4.0], [2.0, 5.0], [3.0, 6.0]])
    np.testing.assert_array_equal(data.sequences[1], [[7.0, 9.0], [8.0, 10.0]])
    assert data.labels.tolist() == ["a", "b"]
    assert data.where == ["line 9", "line 11"]
    assert data.raw_shape == "(2, channels=2, timesteps=2..3)"
    assert [s.name for s in data.steps] == ["transpose"]


def test_ts_without_labels(tmp_path):
    text = "@problemName U\n@classLabel false\n@data\n1,2:3,4\n"
    data = load(DataFile(path=str(write_text(tmp_path, "u.ts", text))), BASE, need_labels=False)
    assert data.labels is None
    np.testing.assert_array_equal(data.sequences[0], [[1.0, 3.0], [2.0, 4.0]])


def test_ts_ragged_channels_within_a_line(tmp_path):
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,2,3:4,5,6:a\n1,2,3:4,5:b\n")
    with pytest.raises(DataError, match=r"t\.ts, line 10: channels have different lengths \[2, 3\]; every channel of a sequence must have one value per timestep\."):
        load(DataFile(path=str(path)), BASE)


def test_ts_non_numeric_value_names_line(tmp_path):
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,x,3:4,5,6:a\n")
    with pytest.raises(DataError, match=r"t\.ts, line 9, channel 1: non-numeric value in '1,x,3'\. Each channel is a comma-separated list of numbers\."):
        load(DataFile(path=str(path)), BASE)


def test_ts_missing_value_is_reported_as_nan(tmp_path):
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,2,3:4,5,6:a\n1,?,3:4,5,6:b\n")
    with pytest.raises(DataError, match=r"t\.ts, line 10: nan at timestep 1, feature 0\. Replace missing or infinite values"):
        load(DataFile(path=str(path)), BASE)


def test_ts_missing_data_line(tmp_path):
    path = write_text(tmp_path, "t.ts", "@problemName Tiny\n@classLabel true a b\n")
    with pytest.raises(DataError, match=r"t\.ts has no '@data' line, so it is not a UEA/UCR \.ts file: .*must end with @data\. Check the export"):
        load(DataFile(path=str(path)), BASE)


def test_ts_label_not_listed_by_class_label_names_the_line(tmp_path):
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,2:3,4:a\n1,2:3,4:c\n")
    with pytest.raises(DataError, match=r"t\.ts, line 10: the label 'c' is not among the classes that @classLabel lists on line 7 \(a b\)\. Fix the label, or add it"):
        load(DataFile(path=str(path)), BASE)


def test_ts_class_labels_compare_like_aeon_and_a_list_is_optional(tmp_path):
    """aeon lower-cases the file before comparing labels with the @classLabel list; without a list nothing is compared."""
    path = write_text(tmp_path, "t.ts", TS_HEADER.replace("true a b", "true A b") + "1,2:3,4:a\n1,2:3,4:B\n")
    assert load(DataFile(path=str(path)), BASE).labels.tolist() == ["a", "B"]
    path = write_text(tmp_path, "u.ts", TS_HEADER.replace("true a b", "true") + "1,2:3,4:a\n1,2:3,4:z\n")
    assert load(DataFile(path=str(path)), BASE).labels.tolist() == ["a", "z"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("@mising false", r"t\.ts, line 2: unknown header key @mising\. Did you mean @missing\? The \.ts header keys are @problemName, .*@targetLabel, @data\. Fix the key"),
        ("@classLabels true a b", r"line 2: unknown header key @classLabels\. Did you mean @classLabel\?"),
        ("@colour blue", r"line 2: unknown header key @colour\. The \.ts header keys are .*start the line with '#' to make it a comment\."),
        ("@dimensions two", r"t\.ts, line 2: @dimensions must be followed by a positive whole number \(the number of channels\); got 'two'\. Write e\.g\. `@dimensions 2`\."),
        ("@seriesLength 0", r"line 2: @seriesLength must be followed by a positive whole number \(the length of every sequence\); got '0'"),
        ("@univariate no", r"t\.ts, line 2: @univariate must be followed by true or false; got 'no'\. Write e\.g\. `@univariate false`\."),
        ("@timestamps", r"line 2: @timeStamps must be followed by true or false; got ''"),
        ("@classLabel false a b", r"line 2: @classLabel must be followed by true and the class values \(e\.g\. `@classLabel true 1 2 3`\), or by false alone; got 'false a b'\."),
    ],
    ids=["typo", "plural", "unknown", "dimensions-word", "series-length-zero", "boolean", "boolean-missing", "class-label-false-with-classes"],
)
def test_ts_header_errors_name_the_line(tmp_path, line, message):
    path = write_text(tmp_path, "t.ts", TS_HEADER.replace("# a tiny problem\n", f"# a tiny problem\n{line}\n").replace("@dimensions 2\n", "") + "1,2:3,4:a\n")
    with pytest.raises(DataError, match=message):
        load(DataFile(path=str(path)), BASE)


def test_ts_header_accepts_the_formats_spellings(tmp_path):
    """Keys in any case, @dimension for @dimensions, and '%' comments, as aeon writes and reads them."""
    header = "% made by hand\n@problemname tiny\n@TIMESTAMPS false\n@dimension 2\n@seriesLength 2\n@classlabel true a b\n@data\n"
    data = load(DataFile(path=str(write_text(tmp_path, "t.ts", header + "1,2:3,4:a\n"))), BASE)
    assert data.labels.tolist() == ["a"] and data.n_features == 2


def test_ts_channels_first_is_rejected(tmp_path):
    path = write_text(tmp_path, "t.ts", TS_HEADER + "1,2:3,4:a\n")
    with pytest.raises(DataError, match=r"`data\.layout: channels_first` applies to 3-D NumPy arrays, but t\.ts is a \.ts file .*Remove `data\.layout`\."):
        load(DataFile(path=str(path)), replace(BASE, layout="channels_first"))


# --------------------------------------------------------------------------- long CSV

CSV_TEXT = (
    "id,time,label,f1,f2\n"
    "007,2,x,3.0,30\n"  # line 2
    "b,1,y,10,100\n"  # line 3
    "007,0,x,1.0,10\n"  # line 4
    "007,1,x,2.0,20\n"  # line 5
    "b,0,y,9,90\n"  # line 6
)
SCATTERED = csv_options(allow_scattered_ids=True)  # CSV_TEXT's ids come in separate blocks


def test_csv_groups_by_id_and_orders_by_time(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    data = load(DataFile(path=str(path)), SCATTERED)

    assert data.format == "csv"
    assert data.ids == ["007", "b"]  # raw strings, first-appearance order
    np.testing.assert_array_equal(data.sequences[0], [[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])
    np.testing.assert_array_equal(data.sequences[1], [[9.0, 90.0], [10.0, 100.0]])
    assert data.labels.tolist() == ["x", "y"]
    assert data.where == ["id '007' (lines 2-5)", "id 'b' (lines 3-6)"]
    assert data.raw_shape == "5 rows x 5 columns"


def test_csv_explicit_feature_columns_order(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    data = load(DataFile(path=str(path)), csv_options(feature_columns=["f2", "f1"], allow_scattered_ids=True))
    np.testing.assert_array_equal(data.sequences[0], [[10.0, 1.0], [20.0, 2.0], [30.0, 3.0]])


def test_csv_without_time_column_keeps_file_order(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    data = load(DataFile(path=str(path)), csv_options(time_column=None, feature_columns=["f1"], allow_scattered_ids=True))
    np.testing.assert_array_equal(data.sequences[0][:, 0], [3.0, 1.0, 2.0])
    np.testing.assert_array_equal(data.sequences[1][:, 0], [10.0, 9.0])


def test_csv_default_features_include_time_when_time_column_is_null(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    data = load(DataFile(path=str(path)), csv_options(time_column=None, allow_scattered_ids=True))
    np.testing.assert_array_equal(data.sequences[1], [[1.0, 10.0, 100.0], [0.0, 9.0, 90.0]])


def test_csv_unlabelled(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,f\na,0,1\na,1,2\n")
    data = load(DataFile(path=str(path)), csv_options(label_column=None), need_labels=False)
    assert data.labels is None
    np.testing.assert_array_equal(data.sequences[0][:, 0], [1.0, 2.0])


def test_csv_explicit_format_for_other_extension(tmp_path):
    path = write_text(tmp_path, "d.txt", CSV_TEXT)
    data = load(DataFile(path=str(path)), replace(SCATTERED, format="csv"))
    assert data.ids == ["007", "b"]


@pytest.mark.parametrize(
    ("header", "key", "column"),
    [
        ("key,time,label,f1", "data.csv.id_column", "id"),
        ("id,t,label,f1", "data.csv.time_column", "time"),
        ("id,time,class,f1", "data.csv.label_column", "label"),
    ],
)
def test_csv_missing_column(tmp_path, header, key, column):
    path = write_text(tmp_path, "d.csv", header + "\na,0,1,2\n")
    expected = rf"d\.csv has no column '{column}' \(columns: {header.replace(',', ', ')}\)\. Set `{re.escape(key)}` to the right column name"
    with pytest.raises(DataError, match=expected):
        load(DataFile(path=str(path)), BASE)


def test_csv_missing_feature_column(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,1,2\n")
    with pytest.raises(DataError, match=r"d\.csv has no column\(s\) 'f9' listed in `data\.csv\.feature_columns` \(columns: id, time, label, f1\)"):
        load(DataFile(path=str(path)), csv_options(feature_columns=["f1", "f9"]))


def test_csv_non_numeric_cell(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,1,2\na,1,1,abc\n")
    with pytest.raises(DataError, match=r"d\.csv, line 3, column 'f1': 'abc' is not a number\. Fix the cell, or leave the column out via `data\.csv\.feature_columns`\."):
        load(DataFile(path=str(path)), BASE)


def test_csv_ragged_row(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,1,2\na,1,1\n")
    with pytest.raises(DataError, match=r"d\.csv, line 3: 3 cells but the header has 4 columns\. Fix the row"):
        load(DataFile(path=str(path)), BASE)


def test_csv_label_changes_within_sequence(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,0,2\na,1,1,3\nb,0,1,5\n")
    with pytest.raises(DataError, match=r"d\.csv, id 'a' \(lines 2-3\): the label column 'label' changes within the sequence \(0, 1\)\. One label per sequence; .*`task: tag`"):
        load(DataFile(path=str(path)), BASE)


def test_csv_header_only(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\n")
    with pytest.raises(DataError, match=r"d\.csv has a header but no data rows\. Add one row per timestep below the header\."):
        load(DataFile(path=str(path)), BASE)


def test_csv_inf_names_sequence_and_timestep(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1,f2\na,0,0,1,2\nb,0,1,1,2\nb,1,1,3,inf\n")
    with pytest.raises(DataError, match=r"d\.csv, id 'b' \(lines 3-4\): inf at timestep 1, feature 1\. Replace missing or infinite values"):
        load(DataFile(path=str(path)), BASE)


def test_csv_nan_names_sequence_and_timestep(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,1,0,nan\na,0,0,1\n")
    with pytest.raises(DataError, match=r"d\.csv, id 'a' \(lines 2-3\): nan at timestep 1, feature 0\."):
        load(DataFile(path=str(path)), BASE)


def test_csv_with_byte_order_mark(tmp_path):
    path = tmp_path / "d.csv"
    path.write_bytes("\ufeffid,time,label,f1\na,0,1,2\n".encode())
    data = load(DataFile(path=str(path)), BASE)
    assert data.ids == ["a"]


def test_csv_blank_line_is_skipped(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,1,2\n\na,1,1,3\n")
    data = load(DataFile(path=str(path)), BASE)
    np.testing.assert_array_equal(data.sequences[0][:, 0], [2.0, 3.0])


def test_csv_scattered_ids_are_an_error_naming_the_blocks(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    with pytest.raises(DataError, match=r"d\.csv, id '007': its rows are in 2 separate blocks \(lines 2, 4-5\), with other ids between them\. .*give each its own id\. "
                       r".*set `data\.csv\.allow_scattered_ids: true` to join them\."):
        load(DataFile(path=str(path)), BASE)


def test_csv_scattered_ids_with_the_same_label_are_not_merged_silently(tmp_path):
    """The case that slipped through: two sequences that share an id and a label, in separate blocks."""
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,x,1\na,1,x,2\nb,0,y,5\na,0,x,7\na,1,x,8\n")
    with pytest.raises(DataError, match=r"id 'a': its rows are in 2 separate blocks \(lines 2-3, 5-6\)"):
        load(DataFile(path=str(path)), BASE)
    assert load(DataFile(path=str(path)), replace(SCATTERED, csv=replace(SCATTERED.csv, allow_duplicate_times=True))).lengths.tolist() == [4, 1]


def test_csv_duplicate_times_are_an_error_naming_the_lines(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,x,1\na,1.0,x,2\na,1,x,3\nb,0,y,5\n")
    with pytest.raises(DataError, match=r"d\.csv, id 'a' \(lines 2-4\): lines 3 and 4 have the same time 1 \(column 'time'\)\. .*remove the duplicate row, "
                       r"or set `data\.csv\.allow_duplicate_times: true`"):
        load(DataFile(path=str(path)), BASE)
    kept = load(DataFile(path=str(path)), csv_options(allow_duplicate_times=True))
    assert kept.sequences[0][:, 0].tolist() == [1.0, 2.0, 3.0]  # same time: file order


@pytest.mark.parametrize(("delimiter", "name"), [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'")])
def test_csv_delimiter_is_detected_from_the_header(tmp_path, delimiter, name):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,x,1.5\na,1,x,2\nb,0,y,5\n".replace(",", delimiter))
    data = load(DataFile(path=str(path)), BASE)
    assert data.ids == ["a", "b"] and data.sequences[0][:, 0].tolist() == [1.5, 2.0]
    assert data.steps[0].detail == f"rows grouped by 'id', ordered by 'time'; cells separated by {name} (detected from the header line)"


def test_csv_comma_is_the_default_and_not_mentioned(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,0,x,1\nb,0,y,5\n")
    assert load(DataFile(path=str(path)), BASE).steps[0].detail == "rows grouped by 'id', ordered by 'time'"


def test_csv_explicit_delimiter(tmp_path):
    path = write_text(tmp_path, "d.csv", "id;time;label;f1\na;0;x;1.5\nb;0;y;5\n")
    data = load(DataFile(path=str(path)), csv_options(delimiter=";"))
    assert data.sequences[0][:, 0].tolist() == [1.5]
    assert "cells separated by ';' (`data.csv.delimiter`)" in data.steps[0].detail
    with pytest.raises(DataError, match=r"d\.csv has no column 'id' \(columns: id;time;label;f1\)\. .*The header is read as one column because its cells are separated by ';', not ',': "
                       r"set `data\.csv\.delimiter: ';'`, or null to detect it\."):
        load(DataFile(path=str(path)), csv_options(delimiter=","))


def test_text_csv_delimiter_is_detected(tmp_path):
    path = write_text(tmp_path, "t.csv", "text;label\nhello, world;en\nhallo;de\n")
    data = load(DataFile(path=str(path)), BASE, text=True)
    assert data.texts == ["hello, world", "hallo"] and data.labels.tolist() == ["en", "de"]


def test_csv_channels_first_is_rejected(tmp_path):
    path = write_text(tmp_path, "d.csv", CSV_TEXT)
    with pytest.raises(DataError, match=r"`data\.layout: channels_first` .*d\.csv is a \.csv file \(one row per timestep\)\. Remove `data\.layout`\."):
        load(DataFile(path=str(path)), replace(BASE, layout="channels_first"))


# --------------------------------------------------------------------------- file-level errors


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"Data file .*nope\.npy does not exist\. Paths in a spec are relative to the spec file; check `data\.\*` paths\."):
        load(DataFile(path=str(tmp_path / "nope.npy")), BASE)


def test_missing_labels_file(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.zeros((2, 3)))
    with pytest.raises(DataError, match=r"Data file .*y\.npy does not exist"):
        load(DataFile(path=str(x), labels=str(tmp_path / "y.npy")), BASE)


def test_directory_instead_of_file(tmp_path):
    folder = tmp_path / "data.npy"
    folder.mkdir()
    with pytest.raises(DataError, match=r"data\.npy is a directory, not a data file\. Point the spec at a \.npy, \.npz, \.ts, \.csv or \.jsonl file inside it\."):
        load(DataFile(path=str(folder)), BASE)


def test_empty_file(tmp_path):
    path = write_text(tmp_path, "x.npy", "")
    with pytest.raises(DataError, match=r"Data file .*x\.npy is empty \(0 bytes\)\. Write or export it again, or point the spec's `data\.\*` path at the right file\."):
        load(DataFile(path=str(path)), BASE)


def test_not_a_numpy_file(tmp_path):
    path = write_text(tmp_path, "x.npy", "hello")
    with pytest.raises(DataError, match=r"x\.npy is not a NumPy file \(no \.npy/\.npz header\)\. Write it with numpy\.save/numpy\.savez"):
        load(DataFile(path=str(path)), BASE)


def test_unknown_extension_with_auto_format(tmp_path):
    path = write_text(tmp_path, "d.dat", CSV_TEXT)
    with pytest.raises(DataError, match=r"Cannot tell the format of .*d\.dat from its extension \.dat\. .*set `data\.format` to one of npy, npz, ts, csv, jsonl, txt\."):
        load(DataFile(path=str(path)), BASE)
    path = write_text(tmp_path, "d.txt", CSV_TEXT)
    with pytest.raises(DataError, match=r"d\.txt is a \.txt file: raw text, one per line, .*or set `data\.format` to the file's real format \(e\.g\. csv\)\."):
        load(DataFile(path=str(path)), BASE)
    assert load(DataFile(path=str(path)), replace(SCATTERED, format="csv")).format == "csv"


# --------------------------------------------------------------------------- JSON Lines


def jsonl_options(**changes):
    return replace(BASE, jsonl=replace(BASE.jsonl, **changes))


def write_jsonl(tmp_path: Path, lines: list[str], name: str = "d.jsonl") -> Path:
    return write_text(tmp_path, name, "\n".join(lines) + "\n")


def test_jsonl_sequences_of_feature_lists_and_flat_lists(tmp_path):
    path = write_jsonl(tmp_path, ['{"id": "a", "sequence": [[1.5, 2], [3, 4]], "label": "x"}', "", '{"id": 7, "sequence": [[5, 6]], "label": "y"}'])
    data = load(DataFile(path=str(path)), BASE)
    assert [s.tolist() for s in data.sequences] == [[[1.5, 2.0], [3.0, 4.0]], [[5.0, 6.0]]]
    assert all(s.dtype == np.float64 for s in data.sequences)  # one float makes every sequence float
    assert data.labels.tolist() == ["x", "y"]
    assert (data.ids, data.where, data.format) == (["a", "7"], ["line 1", "line 3"], "jsonl")
    assert data.raw_shape == "2 records x (timesteps=1..2, features=2)"
    flat = load(DataFile(path=str(write_jsonl(tmp_path, ['{"sequence": [1, 2, 3], "label": 0}', '{"sequence": [4], "label": 1}']))), BASE)
    assert [s.shape for s in flat.sequences] == [(3, 1), (1, 1)]  # (timesteps, features=1)
    assert flat.is_integer and flat.ids == ["1", "2"]  # integers stay integer codes; no id -> line number


def test_jsonl_custom_keys_and_unlabelled_prediction_input(tmp_path):
    path = write_jsonl(tmp_path, ['{"name": "q", "xs": [[1.0], [2.0]], "y": "u"}'])
    data = load(DataFile(path=str(path)), jsonl_options(id_key="name", sequence_key="xs", label_key="y"))
    assert (data.ids, data.labels.tolist()) == (["q"], ["u"])
    unlabelled = load(DataFile(path=str(write_jsonl(tmp_path, ['{"sequence": [1.0]}']))), BASE, need_labels=False)
    assert unlabelled.labels is None


def test_jsonl_texts(tmp_path):
    path = write_jsonl(tmp_path, ['{"id": 1, "text": "Hello there", "label": "greet"}', '{"id": 2, "text": "Bye", "label": "leave"}'])
    data = load(DataFile(path=str(path)), BASE, text=True)
    assert data.texts == ["Hello there", "Bye"] and len(data.sequences) == 0 and len(data) == 2
    assert data.labels.tolist() == ["greet", "leave"]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"sequence": [1.0], "label": 1}', '{"sequence": [1.0], "label": 1'], r"d\.jsonl, line 2 is not valid JSON \(Expecting ',' delimiter at column 31\)\. Each line must be one JSON object"),
        (["[1, 2]"], r"d\.jsonl, line 1 holds a JSON list, not an object; each line must be one object with the keys 'sequence' and 'label'"),
        (['{"seq": [1.0], "label": 1}'], r"d\.jsonl, line 1 has no key 'sequence' \(keys: 'seq', 'label'\)\. Set `data\.jsonl\.sequence_key` to the key that holds the sequence\."),
        (['{"text": "hi", "label": 1}'], r"line 1 has no key 'sequence' .* The record has 'text': for raw text set `preprocessing\.input: text`\."),
        (['{"sequence": [1.0], "label": 1}', '{"sequence": [2.0]}'], r"d\.jsonl, line 2 has no key 'label' \(keys: 'sequence'\)\. Give every record its label, or set `data\.jsonl\.label_key`"),
        (['{"sequence": [[1, 2], [3]], "label": 1}'], r"d\.jsonl, line 1, timestep 1: 1 features, but timestep 0 has 2\. Every timestep needs the same features\."),
        (['{"sequence": [[1, 2], 3], "label": 1}'], r"d\.jsonl, line 1, timestep 1: a number among lists\. Write every timestep as a list of features, or every one as a single number\."),
        (['{"sequence": [[1, "2.5"]], "label": 1}'], r'd\.jsonl, line 1, timestep 0, feature 1: "2\.5" is not a number\. Write features as JSON numbers'),
        (['{"sequence": [1, null, 3], "label": 1}'], r"d\.jsonl, line 1, timestep 1, feature 0: null is not a number\."),
        (['{"sequence": [1, true], "label": 1}'], r"d\.jsonl, line 1, timestep 1, feature 0: true is not a number\."),
        (['{"sequence": [[0.5, NaN]], "label": 1}'], r"d\.jsonl, line 1: nan at timestep 0, feature 1\. Replace missing or infinite values"),
        (['{"sequence": [], "label": 1}'], r"d\.jsonl, line 1, key 'sequence': the sequence is empty \(no timesteps\)\. Remove the record\."),
        (['{"sequence": "1 2 3", "label": 1}'], r"line 1, key 'sequence': the sequence must be a list of timesteps, e\.g\. .*; got a string\."),
        (['{"sequence": [[1, 2]], "label": 1}', '{"sequence": [[1, 2, 3]], "label": 2}'], r"d\.jsonl, line 2: 3 features per timestep, but line 1 has 2\. Every sequence needs the same features\."),
        (['{"sequence": [1], "label": [1]}'], r"d\.jsonl, line 1, key 'label': the label must be a string or a number; got a list\. For one label per timestep set `task: tag`\."),
        (['{"id": "a", "sequence": [1], "label": 1}', '{"id": "a", "sequence": [2], "label": 2}'], r"d\.jsonl, line 2: id 'a' is also used on line 1\. Ids must be unique"),
        (["", "  "], r"d\.jsonl has no records: every line is blank\. Write one JSON object per line\."),
    ],
    ids=[
        "bad-json", "not-object", "missing-key", "text-not-sequence", "missing-label", "ragged", "mixed", "string", "null", "bool", "nan", "empty", "not-list",
        "features-differ", "label-list", "duplicate-id", "blank",
    ],
)
def test_jsonl_errors_name_the_line(tmp_path, lines, message):
    with pytest.raises(DataError, match=message):
        load(DataFile(path=str(write_jsonl(tmp_path, lines))), BASE)


def test_jsonl_text_errors_name_the_line(tmp_path):
    with pytest.raises(DataError, match=r"line 2, key 'text': the text must be a JSON string; got a list\."):
        load(DataFile(path=str(write_jsonl(tmp_path, ['{"text": "a", "label": 1}', '{"text": ["a"], "label": 1}']))), BASE, text=True)
    with pytest.raises(DataError, match=r"d\.jsonl, line 1: the text is empty\. Remove it or write the text\."):
        load(DataFile(path=str(write_jsonl(tmp_path, ['{"text": "  ", "label": 1}']))), BASE, text=True)


def test_japanese_vowels_jsonl_holds_the_ts_sequences():
    """The shipped JSON Lines copy of Japanese Vowels reads as exactly the same arrays as the .ts original."""
    root = Path(__file__).resolve().parent.parent / "data" / "japanese_vowels"
    ts = load(DataFile(path=str(root / "JapaneseVowels_TEST.ts")), BASE)
    jsonl = load(DataFile(path=str(root / "JapaneseVowels_TEST.jsonl")), BASE)
    assert len(jsonl.sequences) == len(ts.sequences) == 370
    assert all(np.array_equal(a, b) for a, b in zip(jsonl.sequences, ts.sequences, strict=True))
    assert jsonl.labels.tolist() == ts.labels.tolist()


# --------------------------------------------------------------------------- text: CSV one row per text, .txt


def test_text_csv_one_row_per_text(tmp_path):
    path = write_text(tmp_path, "t.csv", 'text,label,id\n"Hello, world",en,a\n\n"Zwei\nZeilen",de,b\n')
    data = load(DataFile(path=str(path)), BASE, text=True)
    assert data.texts == ["Hello, world", "Zwei\nZeilen"]
    assert data.labels.tolist() == ["en", "de"] and data.ids == ["a", "b"]
    assert data.where == ["line 2", "line 5"]  # a text over two lines is named by its last line
    no_ids = load(DataFile(path=str(write_text(tmp_path, "n.csv", "text\nfirst\nsecond\n"))), BASE, need_labels=False, text=True)
    assert (no_ids.ids, no_ids.labels) == (["2", "3"], None)  # no id column: line numbers; no label column: unlabelled


def test_text_csv_errors(tmp_path):
    path = write_text(tmp_path, "t.csv", "body,label\nhi,a\n")
    with pytest.raises(DataError, match=r"t\.csv has no column 'text' \(columns: body, label\)\. Set `data\.csv\.text_column`"):
        load(DataFile(path=str(path)), BASE, text=True)
    assert load(DataFile(path=str(path)), csv_options(text_column="body"), text=True).texts == ["hi"]
    with pytest.raises(DataError, match=r"t\.csv has no column 'label' .*Set `data\.csv\.label_column`"):
        load(DataFile(path=str(write_text(tmp_path, "t.csv", "text\nhi\n"))), BASE, text=True)
    with pytest.raises(DataError, match=r"t\.csv, line 3: 3 cells but the header has 2 columns\. Quote texts that contain commas"):
        load(DataFile(path=str(write_text(tmp_path, "t.csv", "text,label\nok,a\nnot, ok,b\n"))), BASE, text=True)
    with pytest.raises(DataError, match=r"has no column 'time' .* If 'text' holds one raw text per row, set `preprocessing\.input: text`\."):
        load(DataFile(path=str(write_text(tmp_path, "t.csv", "id,text,label\n1,hi,a\n"))), BASE)


def test_txt_is_one_text_per_line_for_text_input_only(tmp_path):
    path = write_text(tmp_path, "p.txt", "first text\n\n  second one \n")
    data = load(DataFile(path=str(path)), BASE, need_labels=False, text=True)
    assert (data.texts, data.ids, data.labels) == (["first text", "  second one "], ["1", "3"], None)
    with pytest.raises(DataError, match=r"p\.txt has no labels\. .*a \.txt file holds raw texts without labels; give labelled texts as \.csv or \.jsonl"):
        load(DataFile(path=str(path)), BASE, text=True)
    with pytest.raises(DataError, match=r"`preprocessing\.input: text` reads raw text from \.csv, \.jsonl or \.txt files, but x\.npy is a \.npy file"):
        load(DataFile(path=str(save_npy(tmp_path, "x.npy", np.zeros((2, 3))))), BASE, text=True)


# --------------------------------------------------------------------------- helpers


@pytest.mark.parametrize(("name", "fmt"), [("a.npy", "npy"), ("a.NPZ", "npz"), ("dir.v2/a.ts", "ts"), ("a.csv", "csv"), ("a.jsonl", "jsonl"), ("a.ndjson", "jsonl"), ("a.txt", "txt")])
def test_detect_format_from_extension(name, fmt):
    assert detect_format(Path(name)) == fmt


def test_detect_format_declared_wins():
    assert detect_format(Path("a.npy"), "csv") == "csv"


def test_detect_format_no_extension():
    with pytest.raises(DataError, match=r"Cannot tell the format of data from its extension \(none\)\..*set `data\.format`"):
        detect_format(Path("data"))


def test_fingerprint_stable_and_sensitive(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    expected = "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    assert fingerprint(path) == expected
    assert fingerprint(str(path)) == expected
    path.write_bytes(b"abd")
    assert fingerprint(path) != expected
    assert fingerprint(path).startswith("sha256:")


def test_subset(tmp_path):
    x = save_npy(tmp_path, "x.npy", np.arange(6, dtype=float).reshape(3, 2))
    y = save_npy(tmp_path, "y.npy", np.array([5, 6, 7]))
    data = load(DataFile(path=str(x), labels=str(y)), BASE)
    part = data.subset(np.array([2, 0]))

    assert isinstance(part, SequenceData)
    np.testing.assert_array_equal(part.sequences[0][:, 0], [4.0, 5.0])
    np.testing.assert_array_equal(part.sequences[1][:, 0], [0.0, 1.0])
    np.testing.assert_array_equal(part.labels, [7, 5])
    assert part.where == ["index 2", "index 0"]
    assert part.ids == ["2", "0"]
    assert part.steps == data.steps and part.steps is not data.steps
    assert (part.source, part.format, part.raw_shape) == (data.source, data.format, data.raw_shape)
    assert len(data.sequences) == 3  # the original is untouched


def test_subset_of_csv_keeps_ids(tmp_path):
    data = load(DataFile(path=str(write_text(tmp_path, "d.csv", CSV_TEXT))), SCATTERED)
    part = data.subset(np.array([1]))
    assert part.ids == ["b"]
    assert part.labels.tolist() == ["y"]
    assert part.where == ["id 'b' (lines 3-6)"]


# --------------------------------------------------------------------------- per-timestep labels (task: tag)


def test_tag_csv_reads_each_rows_label_in_time_order(tmp_path):
    path = write_text(tmp_path, "d.csv", "id,time,label,f1\na,1,O,2\na,0,B,1\na,2,I,3\nb,0,B,5\n")
    data = load(DataFile(path=str(path)), BASE, targets=TASK_KINDS["tag"])
    assert data.labels is None
    assert [t.tolist() for t in data.step_targets] == [["B", "O", "I"], ["B"]]
    assert data.sequences[0][:, 0].tolist() == [1.0, 2.0, 3.0]


def test_tag_jsonl_label_lists(tmp_path):
    path = write_text(tmp_path, "d.jsonl", '{"id": "a", "sequence": [1.5, 2, 3], "label": ["x", "y", "x"]}\n{"id": "b", "sequence": [[4]], "label": [7]}\n')
    data = load(DataFile(path=str(path)), BASE, targets=TASK_KINDS["tag"])
    assert [t.tolist() for t in data.step_targets] == [["x", "y", "x"], ["7"]]  # one ragged array: mixed labels become strings, as the classes do
    assert data.ids == ["a", "b"]


def test_tag_npz_dense_and_ragged(tmp_path):
    dense = tmp_path / "dense.npz"
    np.savez(dense, x=np.zeros((2, 3, 1)), y=np.array([[0, 1, 1], [2, 2, 0]]))
    assert [t.tolist() for t in load(DataFile(path=str(dense)), BASE, targets=TASK_KINDS["tag"]).step_targets] == [[0, 1, 1], [2, 2, 0]]
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, x=np.arange(5.0), lengths=np.array([2, 3]), y=np.array([0, 1, 1, 1, 0]))
    assert [t.tolist() for t in load(DataFile(path=str(ragged)), BASE, targets=TASK_KINDS["tag"]).step_targets] == [[0, 1], [1, 1, 0]]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("d.jsonl", '{"sequence": [1, 2], "label": ["a", "b"]}\n{"sequence": [1, 2, 3], "label": ["a", "b"]}\n', r"d\.jsonl, line 2: 2 labels for a sequence of 3 timesteps\. With `task: tag` every"),
        ("d.jsonl", '{"sequence": [1, 2], "label": "a"}\n', r"d\.jsonl, line 1, key 'label': with `task: tag` the label must be a list with one label per timestep"),
        ("d.jsonl", '{"sequence": [1, 2], "label": ["a", null]}\n', r"d\.jsonl, line 1, key 'label', timestep 1: each label must be a string or a number; got null\."),
        ("d.csv", "id,label,f1\na,x,1\na,,2\n", None),
    ],
)
def test_tag_label_errors_name_the_line(tmp_path, name, content, message):
    path = write_text(tmp_path, name, content)
    if message is None:  # an empty CSV label cell is a label ('') like any other: not an error
        assert load(DataFile(path=str(path)), csv_options(time_column=None), targets=TASK_KINDS["tag"]).step_targets[0].tolist() == ["x", ""]
        return
    with pytest.raises(DataError, match=message):
        load(DataFile(path=str(path)), BASE, targets=TASK_KINDS["tag"])


def test_tag_npz_label_shape_errors(tmp_path):
    dense = tmp_path / "dense.npz"
    np.savez(dense, x=np.zeros((2, 3, 1)), y=np.array([0, 1]))
    with pytest.raises(DataError, match=r"`y` must hold one label per timestep, aligned with the sequences: shape \(samples=2, timesteps=3\); got shape \(2,\)\. For one label per sequence set `task"):
        load(DataFile(path=str(dense)), BASE, targets=TASK_KINDS["tag"])
    ragged = tmp_path / "ragged.npz"
    np.savez(ragged, x=np.arange(5.0), lengths=np.array([2, 3]), y=np.array([0, 1, 1]))
    with pytest.raises(DataError, match=r"with `task: tag` and `lengths`, `y` must hold one label per timestep, all sequences concatenated: shape \(5,\); got shape \(3,\)"):
        load(DataFile(path=str(ragged)), BASE, targets=TASK_KINDS["tag"])
    with pytest.raises(DataError, match=r"must be 1-D \(one label per sequence\); got shape \(2, 3\)\..*for one label per timestep set `task: tag`"):
        np.savez(dense, x=np.zeros((2, 3, 1)), y=np.zeros((2, 3)))
        load(DataFile(path=str(dense)), BASE)

