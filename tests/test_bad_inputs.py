"""A catalogue of bad inputs, each run through the real CLI.

Every case must end the same way (see :func:`assert_reported`): exit status 1,
exactly one one-paragraph ``error: `` message on stderr that says where the
problem is (dotted spec path, or file plus line/row/sequence/column) and how to
fix it, no traceback, and no run directory that looks complete.

The table :data:`CASES` holds the cases that need only files; the cases that need
monkeypatching (an unreadable file, a full disk) are separate tests below it.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner, Result

import seqcli.memory
import seqcli.rundir
from seqcli.cli import app
from tests.conftest import SMOKE_SPEC, SMOKE_TEST

runner = CliRunner()


# --------------------------------------------------------------------------- the shared check


def invoke(args: list[str]) -> Result:
    return runner.invoke(app, [str(a) for a in args])


def output_dir(args: list[str]) -> Path:
    """The ``--set output.dir=...`` of a command, else the default ``runs`` (the tests run in tmp_path)."""
    given = [a.split("=", 1)[1] for a in args if a.startswith("output.dir=")]
    return Path(given[-1]) if given else Path("runs")


def assert_no_complete_run(out_dir: Path) -> None:
    """Nothing under ``out_dir``, or only run directories that are not completed and have no metrics."""
    if not out_dir.exists():
        return
    for run in (p for p in out_dir.glob("*/*") if p.is_dir()):
        assert not (run / "metrics.json").exists(), f"{run} has metrics.json"
        info = run / "run.json"
        if info.exists():
            assert json.loads(info.read_text())["status"] != "completed", f"{run} is marked completed"


def assert_reported(result: Result, args: list[str], pattern: str) -> str:
    """The one contract for every bad input; returns the message (without ``error: ``)."""
    # 5. No traceback: the CLI caught a SeqcliError (an uncaught exception also exits 1 under CliRunner).
    assert isinstance(result.exception, SystemExit), f"uncaught {type(result.exception).__name__}: {result.exception}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stdout and "Traceback" not in result.stderr
    # 1. Exit status 1.
    assert result.exit_code == 1, (result.exit_code, result.stderr)
    # 2. Exactly one message, one paragraph, and no partial results.
    assert result.stdout == "", result.stdout
    stderr = result.stderr
    assert stderr.startswith("error: "), stderr
    body = stderr.removesuffix("\n")
    assert "\n" not in body, f"not one paragraph:\n{stderr}"
    assert body.count("error: ") == 1, stderr
    # 3. and 4. Where the problem is and how to fix it.
    message = body.removeprefix("error: ")
    assert re.search(pattern, message), f"{pattern!r} not found in:\n{message}"
    # 6. No run directory looks complete.
    assert_no_complete_run(output_dir(args))
    return message


# --------------------------------------------------------------------------- building bad inputs


@dataclass
class Env:
    """What a case's builder gets: its tmp_path, and the session's smoke run on demand."""

    tmp: Path
    request: pytest.FixtureRequest | None = None

    def smoke_run(self) -> Path:
        assert self.request is not None
        return self.request.getfixturevalue("smoke_run")

    def run_copy(self) -> Path:
        """A private copy of the smoke run, to damage."""
        return Path(shutil.copytree(self.smoke_run(), self.tmp / "run"))


@dataclass(frozen=True)
class Case:
    id: str
    build: Callable[[Env], list[str]]  # writes the files under env.tmp, returns the CLI args
    message: str  # regex the message must match: the location and (part of) the fix
    marks: tuple[Any, ...] = ()


HEADER = "id,time,a,b,label"


def csv_lines(classes: tuple[str, ...] = ("down", "up"), per_class: int = 3, steps: int = 3, prefix: str = "s") -> list[str]:
    """A tiny long-format CSV as lines (header first): ``line n`` of the file is ``lines[n - 1]``."""
    lines = [HEADER]
    k = 0
    for label in classes:
        for _ in range(per_class):
            sign = 1 if label != "down" else -1
            lines += [f"{prefix}{k:02d},{t},{sign * (0.3 * t + 0.05 * k):.3f},{0.1 * k - 0.2 * t:.3f},{label}" for t in range(steps)]
            k += 1
    return lines


def write_csv(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def write_spec(env: Env, body: str, name: str = "spec.yaml") -> Path:
    path = env.tmp / name
    path.write_text(textwrap.dedent(body).lstrip("\n"))
    return path


def train(env: Env, spec: Path, *sets: str) -> list[str]:
    args = ["train", str(spec), "--quiet", "--set", f"output.dir={env.tmp / 'runs'}", "--set", "training.epochs=1"]
    for override in sets:
        args += ["--set", override]
    return args


def csv_spec(env: Env, lines: list[str] | None = None, extra: str = "") -> Path:
    """A spec on a tiny CSV (given as lines, or the default one) in env.tmp/train.csv."""
    write_csv(env.tmp / "train.csv", lines if lines is not None else csv_lines())
    return write_spec(env, "data:\n  train: train.csv\n" + extra)


def npy_pair(env: Env, x: np.ndarray, y: np.ndarray) -> Path:
    """x.npy + y.npy and a spec that reads them."""
    np.save(env.tmp / "x.npy", x)
    np.save(env.tmp / "y.npy", y)
    return write_spec(env, "data:\n  train: {path: x.npy, labels: y.npy}\n")


def features(samples: int = 6, steps: int = 4, n: int = 2) -> np.ndarray:
    return np.arange(samples * steps * n, dtype=np.float64).reshape(samples, steps, n) / 10.0


def two_classes(samples: int = 6) -> np.ndarray:
    return np.array([i % 2 for i in range(samples)])


# ----------------------------------------------------------------- spec cases


def yaml_malformed(env: Env) -> list[str]:
    spec = write_spec(env, "data:\n  train: train.csv\ntraining:\n  batch_size: 4\n   epochs: 3\n", "bad.yaml")
    return ["validate", str(spec)]


def unknown_key(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  batch_size: 4\n  epocs: 3\n"))


def unknown_key_set(env: Env) -> list[str]:
    return train(env, csv_spec(env), "trainig.batch_size=3")


def wrong_type(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  batch_size: '16'\n"))


def bool_for_int(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="model:\n  layers:\n    - units: true\n"))


def units_zero(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="model:\n  layers:\n    - units: 8\n    - units: 0\n"))


def learning_rate_negative(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  learning_rate: -0.01\n"))


def maxlen_zero(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="preprocessing:\n  maxlen: 0\n"))


def maxlen_p0(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="preprocessing:\n  maxlen: p0\n"))


def optimizer_typo(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  optimizer: adm\n"))


def duplicate_key(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  batch_size: 4\n  batch_size: 8\n"))


def spec_missing(env: Env) -> list[str]:
    return train(env, env.tmp / "nope.yaml")


def spec_is_directory(env: Env) -> list[str]:
    (env.tmp / "specs.yaml").mkdir()
    return ["validate", str(env.tmp / "specs.yaml")]


def spec_not_utf8(env: Env) -> list[str]:
    (env.tmp / "latin1.yaml").write_bytes("data:\n  train: donn\u00e9es.csv\n".encode("latin-1"))
    return ["validate", str(env.tmp / "latin1.yaml")]


def set_not_path_value(env: Env) -> list[str]:
    return train(env, csv_spec(env), "training.epochs")


def sigmoid_three_classes(env: Env) -> list[str]:
    return train(env, SMOKE_SPEC, "model.output=sigmoid")


def monitor_without_validation(env: Env) -> list[str]:
    return train(env, csv_spec(env), "data.validation_split=0")


def cell_typo(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="model:\n  layers:\n    - units: 8\n      cell: gur\n"))


def class_weight_unknown_class(env: Env) -> list[str]:
    return train(env, SMOKE_SPEC, "training.class_weight={rize: 2}")


def class_weight_yaml_boolean(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="training:\n  class_weight:\n    up: 2\n    no: 1\n"))


def schedule_factor_above_one(env: Env) -> list[str]:
    return train(env, csv_spec(env), "training.lr_schedule.factor=2")


def units_huge(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="model:\n  layers:\n    - units: 100000000000000000000000000000\n"))


def units_beyond_bound(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env)), "--set", "model.layers[0].units=200000"]


def seed_beyond_32_bits(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra=f"seed: {2**32}\n"))


def dropout_one(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="model:\n  layers:\n    - units: 8\n      dropout: 1.0\n"))


def output_name_with_slash(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env, extra="output:\n  name: exp/one\n"))]


def output_name_dot_dot(env: Env) -> list[str]:
    return train(env, csv_spec(env), "output.name=..")


def data_symlink_loop(env: Env) -> list[str]:
    (env.tmp / "train.csv").symlink_to(env.tmp / "train.csv")
    return ["validate", str(write_spec(env, "data:\n  train: train.csv\n"))]


def labels_symlink_loop_train(env: Env) -> list[str]:
    np.save(env.tmp / "x.npy", features())
    (env.tmp / "a.npy").symlink_to(env.tmp / "b.npy")
    (env.tmp / "b.npy").symlink_to(env.tmp / "a.npy")
    return train(env, write_spec(env, "data:\n  train: {path: x.npy, labels: a.npy}\n"))


BILLION_LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n" for a, b in zip("abcdefgh", "bcdefghi", strict=True)
)  # 9 ** 9 values from 9 lines


def yaml_alias_bomb(env: Env) -> list[str]:
    return ["validate", str(write_spec(env, BILLION_LAUGHS, "laughs.yaml"))]


def yaml_alias_recursive(env: Env) -> list[str]:
    return train(env, write_spec(env, "data: &d\n  train: [*d]\n", "loop.yaml"))


def run_spec_alias_bomb(env: Env) -> list[str]:
    run = env.run_copy()
    (run / "spec.yaml").write_text(BILLION_LAUGHS)
    return ["predict", str(run), str(SMOKE_TEST)]


def seed_exponent(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env, extra="seed: 1e23\n"))]


def epochs_exponent_overflow(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env, extra="training:\n  epochs: 1e400\n"))]  # train() would --set the epochs


def epochs_with_decimal_point(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env)), "--set", "training.epochs=30.0"]


def learning_rate_exponent(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env, extra="training:\n  learning_rate: 1e-3\n"))]


def set_negative_index(env: Env) -> list[str]:
    return train(env, SMOKE_SPEC, "model.layers[-1].units=4")


def data_train_list(env: Env) -> list[str]:
    write_csv(env.tmp / "a.csv", csv_lines())
    return ["validate", str(write_spec(env, "data:\n  train: [a.csv, b.csv]\n"))]


def frontend_stride_pre_padding(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="preprocessing:\n  padding: pre\nmodel:\n  frontend:\n    blocks:\n      - filters: 8\n        stride: 2\n"))


def pooling_per_timestep(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="task: tag\n"), "model.pooling=[last, mean]")


# ----------------------------------------------------------------- data file cases


def data_missing(env: Env) -> list[str]:
    return train(env, write_spec(env, "data:\n  train: nope.csv\n"))


def validate_data_missing(env: Env) -> list[str]:
    return ["validate", str(write_spec(env, "data:\n  train: nope.csv\n"))]


def validate_several_data_files_missing(env: Env) -> list[str]:
    write_csv(env.tmp / "train.csv", csv_lines())
    (env.tmp / "test.npy").mkdir()
    return ["validate", str(write_spec(env, "data:\n  train: train.csv\n  validation: {path: val.npy, labels: val_y.npy}\n  test: test.npy\n"))]


def validate_input_data_missing(env: Env) -> list[str]:
    spec = multi_input_spec(env, ["s0", "s1", "s2", "s3"])
    (env.tmp / "aux.jsonl").unlink()
    return ["validate", str(spec)]


def data_empty(env: Env) -> list[str]:
    (env.tmp / "train.csv").write_bytes(b"")
    return train(env, write_spec(env, "data:\n  train: train.csv\n"))


def data_is_directory(env: Env) -> list[str]:
    (env.tmp / "train.csv").mkdir()
    return train(env, write_spec(env, "data:\n  train: train.csv\n"))


def data_unknown_extension(env: Env) -> list[str]:
    write_csv(env.tmp / "train.dat", csv_lines())
    return train(env, write_spec(env, "data:\n  train: train.dat\n"))


def npy_nan(env: Env) -> list[str]:
    x = features()
    x[2, 1, 0] = np.nan
    return train(env, npy_pair(env, x, two_classes()))


def csv_inf(env: Env) -> list[str]:
    lines = csv_lines()
    cells = lines[11].split(",")  # line 12: id s03 (lines 11-13), timestep 1
    cells[2] = "inf"  # column a: feature 0
    lines[11] = ",".join(cells)
    return train(env, csv_spec(env, lines))


def csv_no_label_column(env: Env) -> list[str]:
    lines = [line.rsplit(",", 1)[0] for line in csv_lines()]
    return train(env, csv_spec(env, lines))


def csv_non_numeric(env: Env) -> list[str]:
    lines = csv_lines()
    cells = lines[4].split(",")
    cells[2] = "1.2.3"  # line 5, column 'a'
    lines[4] = ",".join(cells)
    return train(env, csv_spec(env, lines))


def csv_time_not_numeric(env: Env) -> list[str]:
    lines = csv_lines()
    cells = lines[2].split(",")
    cells[1] = "t1"  # line 3, the time column
    lines[2] = ",".join(cells)
    return train(env, csv_spec(env, lines))


def csv_ragged(env: Env) -> list[str]:
    lines = csv_lines()
    lines[6] = lines[6].replace(",", ",,", 1)  # line 7 has an extra cell
    return train(env, csv_spec(env, lines))


def csv_scattered_id(env: Env) -> list[str]:
    lines = csv_lines()
    lines[7:10] = [line.replace("s02,", "s00,", 1) for line in lines[7:10]]  # lines 8-10: s00 again, after s01, with s00's label
    return train(env, csv_spec(env, lines))


def csv_duplicate_time(env: Env) -> list[str]:
    lines = csv_lines()
    lines[2] = lines[2].replace("s00,1,", "s00,0,", 1)  # line 3 repeats line 2's time
    return train(env, csv_spec(env, lines))


def csv_wrong_delimiter(env: Env) -> list[str]:
    return train(env, csv_spec(env, [line.replace(",", ";") for line in csv_lines()], "  csv: {delimiter: ','}\n"))


def csv_delimiter_two_characters(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env)), "--set", "data.csv.delimiter=;;"]


def csv_duplicate_times_without_time_column(env: Env) -> list[str]:
    return ["validate", str(csv_spec(env, extra="  csv: {time_column: null, allow_duplicate_times: true}\n"))]


TS_HEADER = ["@problemName Tiny", "@missing false", "@univariate false", "@dimensions 2", "@classLabel true a b", "@data"]  # lines 1-6


def ts_spec(env: Env, header: list[str], labels: str = "ababab") -> list[str]:
    """A .ts training file with ``header`` and one 2-channel sequence per label (the first on line len(header) + 1)."""
    rows = [f"{0.1 * k},{0.2 * k},0.3:{k},1,2:{label}" for k, label in enumerate(labels)]
    (env.tmp / "train.ts").write_text("\n".join([*header, *rows]) + "\n")
    return train(env, write_spec(env, "data:\n  train: train.ts\n"))


def ts_label_not_declared(env: Env) -> list[str]:
    return ts_spec(env, TS_HEADER, "ababcb")  # line 11: 'c'


def ts_header_typo(env: Env) -> list[str]:
    return ts_spec(env, [line.replace("@missing", "@mising") for line in TS_HEADER])


def ts_header_value_malformed(env: Env) -> list[str]:
    return ts_spec(env, [line.replace("@dimensions 2", "@dimensions two") for line in TS_HEADER])


def npz_zero_length(env: Env) -> list[str]:
    lengths = np.array([3, 0, 3, 3])
    np.savez(env.tmp / "train.npz", x=np.ones((9, 2)), lengths=lengths, y=np.array([0, 0, 1, 1]))
    return train(env, write_spec(env, "data:\n  train: train.npz\n"))


def npy_no_timesteps(env: Env) -> list[str]:
    return train(env, npy_pair(env, np.zeros((6, 0, 2)), two_classes()))


def npy_strings(env: Env) -> list[str]:
    return train(env, npy_pair(env, np.array([["1.5", "2.0", "x"]] * 6), two_classes()))


def npz_corrupt_member(env: Env) -> list[str]:
    np.savez_compressed(env.tmp / "train.npz", x=features(), y=two_classes())
    data = bytearray((env.tmp / "train.npz").read_bytes())
    for i in range(60, 200):  # inside the compressed x.npy member; the zip directory at the end stays intact
        data[i] ^= 0x55
    (env.tmp / "train.npz").write_bytes(bytes(data))
    return ["inspect-shapes", str(env.tmp / "train.npz")]


def tokens_all_padding(env: Env) -> list[str]:
    codes = np.arange(1, 25).reshape(6, 4)
    codes[3] = 0
    return train(env, npy_pair(env, codes, two_classes()))


def tokens_negative(env: Env) -> list[str]:
    codes = np.arange(1, 25).reshape(6, 4)
    codes[4, 2] = -3
    return train(env, npy_pair(env, codes, two_classes()))


def jsonl_spec(env: Env, lines: list[str], extra: str = "") -> Path:
    (env.tmp / "train.jsonl").write_text("\n".join(lines) + "\n")
    return write_spec(env, "data:\n  train: train.jsonl\n" + extra)


def jsonl_records(n: int = 6) -> list[str]:
    return [json.dumps({"id": f"r{i}", "sequence": [[0.1 * i, 1.0], [0.2, 0.3 * i]], "label": "ab"[i % 2]}) for i in range(n)]


def jsonl_bad_json(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[3] = lines[3][:-1]  # the closing brace is missing
    return train(env, jsonl_spec(env, lines))


def jsonl_missing_key(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[2] = lines[2].replace('"sequence"', '"seq"')
    return train(env, jsonl_spec(env, lines))


def jsonl_ragged(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[4] = json.dumps({"id": "r4", "sequence": [[1.0, 2.0], [3.0]], "label": "a"})
    return train(env, jsonl_spec(env, lines))


def jsonl_non_numeric(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[1] = json.dumps({"id": "r1", "sequence": [[1.0, 2.0], [3.0, "n/a"]], "label": "b"})
    return train(env, jsonl_spec(env, lines))


def jsonl_nan(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[5] = '{"id": "r5", "sequence": [[NaN, 2.0]], "label": "b"}'
    return train(env, jsonl_spec(env, lines))


def jsonl_empty_sequence(env: Env) -> list[str]:
    lines = jsonl_records()
    lines[0] = json.dumps({"id": "r0", "sequence": [], "label": "a"})
    return train(env, jsonl_spec(env, lines))


def jsonl_text_not_string(env: Env) -> list[str]:
    lines = [json.dumps({"text": f"text {i}", "label": "ab"[i % 2]}) for i in range(6)]
    lines[2] = json.dumps({"text": 42, "label": "a"})
    return train(env, jsonl_spec(env, lines, "preprocessing:\n  input: text\n"))


def text_csv_without_text_column(env: Env) -> list[str]:
    (env.tmp / "train.csv").write_text("body,label\nhello there,a\nbye now,b\n")
    return train(env, write_spec(env, "data:\n  train: train.csv\npreprocessing:\n  input: text\n"))


def tokens_pad_code_inside(env: Env) -> list[str]:
    codes = np.arange(1, 25).reshape(6, 4)
    codes[2, 1] = 0  # 0 pads the data, so a 0 between real codes is a symbol that would be masked
    return train(env, npy_pair(env, codes, two_classes()))


def one_hot_float_data(env: Env) -> list[str]:
    return train(env, csv_spec(env, csv_lines()), "preprocessing.encoding=one_hot")


def tag_records(n: int = 6) -> list[str]:
    """JSON Lines for `task: tag`: two timesteps per sequence, one label each."""
    return [json.dumps({"id": f"r{i}", "sequence": [[0.1 * i, 1.0], [0.2, 0.3 * i]], "label": ["a", "ab"[i % 2]]}) for i in range(n)]


TAG = "task: tag\n"


def tag_label_count(env: Env) -> list[str]:
    lines = tag_records()
    lines[2] = json.dumps({"id": "r2", "sequence": [[0.1, 1.0], [0.2, 0.3]], "label": ["a"]})
    jsonl_spec(env, lines)
    return train(env, write_spec(env, "data:\n  train: train.jsonl\n" + TAG))


def tag_scalar_label(env: Env) -> list[str]:
    jsonl_spec(env, jsonl_records())
    return train(env, write_spec(env, "data:\n  train: train.jsonl\n" + TAG))


def tag_label_list_when_classifying(env: Env) -> list[str]:
    return train(env, jsonl_spec(env, tag_records()))


def tag_npz_label_shape(env: Env) -> list[str]:
    np.savez(env.tmp / "train.npz", x=features(), y=two_classes())
    return train(env, write_spec(env, "data:\n  train: train.npz\n" + TAG))


def tag_unseen_test_label(env: Env) -> list[str]:
    jsonl_spec(env, tag_records())
    (env.tmp / "test.jsonl").write_text('{"sequence": [[1, 0], [2, 0]], "label": ["a", "b"]}\n{"sequence": [[1, 0], [2, 0]], "label": ["a", "z"]}\n')
    return train(env, write_spec(env, "data:\n  train: train.jsonl\n  test: test.jsonl\n" + TAG))


def tag_with_sigmoid(env: Env) -> list[str]:
    jsonl_spec(env, tag_records())
    return train(env, write_spec(env, "data:\n  train: train.jsonl\n" + TAG + "model:\n  output: sigmoid\n"))


def tag_padded_tokens(env: Env) -> list[str]:
    np.savez(env.tmp / "train.npz", x=np.array([[3, 1, 2, 0]] * 3 + [[1, 2, 3, 4]] * 3), y=np.array([[0, 1, 0, 1]] * 6))
    return train(env, write_spec(env, "data:\n  train: train.npz\n" + TAG))


def predict_text_with_numeric_run(env: Env) -> list[str]:
    return ["predict", str(env.smoke_run()), "--text", "some words"]


def predict_text_file_with_numeric_run(env: Env) -> list[str]:
    (env.tmp / "raw.txt").write_text("some words\n")
    return ["predict", str(env.smoke_run()), str(env.tmp / "raw.txt")]


def label_count_mismatch(env: Env) -> list[str]:
    return train(env, npy_pair(env, features(samples=6), two_classes(5)))


def single_class(env: Env) -> list[str]:
    return train(env, csv_spec(env, csv_lines(classes=("up",), per_class=6)))


def unseen_test_labels(env: Env) -> list[str]:
    write_csv(env.tmp / "test.csv", csv_lines(classes=("up", "sideways"), per_class=1, prefix="t"))
    return train(env, csv_spec(env, extra="  test: test.csv\n"))


def empty_validation_split(env: Env) -> list[str]:
    return train(env, csv_spec(env, extra="  validation_split: 0.05\n"))


def other_features_in_test_file(env: Env) -> list[str]:
    write_csv(env.tmp / "test.csv", [line.replace(",label", ",c,label") if i == 0 else line.rsplit(",", 1)[0] + ",1.0," + line.rsplit(",", 1)[1] for i, line in enumerate(csv_lines(prefix="t"))])
    return train(env, csv_spec(env, extra="  test: test.csv\n"))


def one_sequence_per_class(env: Env) -> list[str]:
    return train(env, csv_spec(env, csv_lines(classes=tuple(f"{0.37 * k + 0.11:.2f}" for k in range(12)), per_class=1)))


def pickled_npy(env: Env) -> list[str]:
    ragged = np.empty(2, dtype=object)
    ragged[0], ragged[1] = np.zeros((3, 2)), np.zeros((5, 2))
    np.save(env.tmp / "x.npy", ragged, allow_pickle=True)
    np.save(env.tmp / "y.npy", np.array([0, 1]))
    return train(env, write_spec(env, "data:\n  train: {path: x.npy, labels: y.npy}\n"))


def output_dir_under_file(env: Env) -> list[str]:
    (env.tmp / "blocker").write_text("a regular file\n")
    return train(env, SMOKE_SPEC, f"output.dir={env.tmp / 'blocker' / 'runs'}")  # the last --set output.dir wins


def inspect_bare_nan(env: Env) -> list[str]:
    x = features()
    x[4, 3, 1] = np.inf
    np.save(env.tmp / "x.npy", x)
    return ["inspect-shapes", str(env.tmp / "x.npy")]


def inspect_data_without_spec(env: Env) -> list[str]:
    np.save(env.tmp / "x.npy", features())
    return ["inspect-shapes", str(env.tmp / "x.npy"), "--data", str(env.tmp / "x.npy")]


# ----------------------------------------------------------------- predict cases


def predict_wrong_features(env: Env) -> list[str]:
    np.save(env.tmp / "one.npy", np.ones((4, 3)))
    return ["predict", str(env.smoke_run()), str(env.tmp / "one.npy")]


def predict_batch_wrong_features(env: Env) -> list[str]:
    np.save(env.tmp / "batch.npy", np.ones((5, 4, 3)))
    return ["predict", str(env.smoke_run()), str(env.tmp / "batch.npy")]


def predict_run_missing(env: Env) -> list[str]:
    return ["predict", str(env.tmp / "no-run"), str(SMOKE_TEST)]


def predict_run_incomplete(env: Env) -> list[str]:
    run = env.run_copy()
    (run / "preprocessing.json").unlink()
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_run_json_corrupt(env: Env) -> list[str]:
    run = env.run_copy()
    text = (run / "run.json").read_text()
    (run / "run.json").write_text(text[: len(text) // 2])
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_checkpoint_corrupt(env: Env) -> list[str]:
    run = env.run_copy()
    (run / "checkpoints" / "best.keras").write_bytes(b"\x00garbage, not a zip archive\xff" * 10)
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_interrupted_state_corrupt(env: Env) -> list[str]:
    run = env.run_copy()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    (run / "checkpoints" / f"epoch-{info['best_epoch']:04d}.npz").write_bytes(b"PK\x03\x04 truncated")
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_input_missing(env: Env) -> list[str]:
    return ["predict", str(env.smoke_run()), str(env.tmp / "new.csv")]


def predict_output_exists(env: Env) -> list[str]:
    (env.tmp / "preds.csv").write_text("keep me\n")
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "--output", str(env.tmp / "preds.csv")]


def predict_output_under_file(env: Env) -> list[str]:
    (env.tmp / "blocker").write_text("a regular file\n")
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "--output", str(env.tmp / "blocker" / "preds.csv")]


def predict_output_is_directory(env: Env) -> list[str]:
    (env.tmp / "preds.csv").mkdir()
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "--output", str(env.tmp / "preds.csv")]


def predict_output_dir_missing(env: Env) -> list[str]:
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "--output", str(env.tmp / "out" / "preds.csv")]


def predict_format_not_the_extension(env: Env) -> list[str]:
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "-o", str(env.tmp / "c.json"), "--format", "csv"]


def predict_json_format_for_csv_name(env: Env) -> list[str]:
    return ["predict", str(env.smoke_run()), str(SMOKE_TEST), "--output", str(env.tmp / "preds.csv"), "--format", "json"]


def dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True)
    return int(done.stdout)


def edit_run_json(run: Path, **fields: Any) -> Path:
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, **fields}))
    return run


def predict_crashed_before_an_epoch(env: Env) -> list[str]:
    run = edit_run_json(env.run_copy(), status="running", pid=dead_pid(), epochs_completed=0, best_epoch=0)
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_models_deleted(env: Env) -> list[str]:
    run = env.run_copy()
    best = json.loads((run / "run.json").read_text())["best_epoch"]
    (run / "checkpoints" / "best.keras").unlink()
    (run / "checkpoints" / f"epoch-{best:04d}.npz").unlink()
    return ["predict", str(run), str(SMOKE_TEST)]


def predict_checkpoints_emptied(env: Env) -> list[str]:
    run = env.run_copy()
    for file in (run / "checkpoints").iterdir():
        file.unlink()
    return ["predict", str(run), str(SMOKE_TEST)]


def output_dir_is_a_file(env: Env) -> list[str]:
    (env.tmp / "blocker").write_text("a regular file\n")
    return train(env, SMOKE_SPEC, f"output.dir={env.tmp / 'blocker'}")


# ----------------------------------------------------------------- resume cases


def resume(run: Path, *args: str) -> list[str]:
    return ["train", "--resume", str(run), "--quiet", *args]


def resume_run_missing(env: Env) -> list[str]:
    return resume(env.tmp / "no-run")


def resume_completed(env: Env) -> list[str]:
    return resume(env.run_copy())


def resume_live_run(env: Env) -> list[str]:
    return resume(edit_run_json(env.run_copy(), status="running", **seqcli.rundir.process_identity(os.getppid())))  # a live process, not this one


def resume_with_other_set(env: Env) -> list[str]:
    return resume(env.run_copy(), "--set", "model.layers[0].units=16")


def resume_too_few_epochs(env: Env) -> list[str]:
    return resume(env.run_copy(), "--set", "training.epochs=2")


def resume_other_backend(env: Env) -> list[str]:
    run = env.run_copy()
    other = {"jax": "tensorflow", "tensorflow": "jax"}[json.loads((run / "run.json").read_text())["versions"]["backend"]]
    return resume(run, "--backend", other, "--set", "training.epochs=3")


def resume_stopped_early(env: Env) -> list[str]:
    """A completed run whose history ran out of patience: 2 epochs of 8, patience 1, the second epoch no better."""
    run = env.run_copy()
    spec = (run / "spec.yaml").read_text().replace("  epochs: 2\n", "  epochs: 8\n").replace("    patience: 10\n", "    patience: 1\n")
    (run / "spec.yaml").write_text(spec)
    history = json.loads((run / "history.json").read_text())
    history[1]["val_loss"] = history[0]["val_loss"] + 0.1
    (run / "history.json").write_text(json.dumps(history))
    return resume(run, "--set", "training.epochs=12")


# ----------------------------------------------------------------- multi-input cases


def multi_input_spec(env: Env, second_ids: list[str], extra: str = "") -> Path:
    """Two inputs in JSON Lines: `main` (labelled, ids s0..s3) and `aux` with ``second_ids``."""
    main = [{"id": f"s{k}", "sequence": [0.1 * k, 0.2, 0.3], "label": "ab"[k % 2]} for k in range(4)]
    (env.tmp / "main.jsonl").write_text("".join(json.dumps(r) + "\n" for r in main))
    (env.tmp / "aux.jsonl").write_text("".join(json.dumps({"id": i, "sequence": [1.0, 2.0]}) + "\n" for i in second_ids))
    return write_spec(env, "data:\n  train: main.jsonl\n  validation_split: 0\ninputs:\n  aux:\n    data:\n      train: aux.jsonl\n" + extra + "training:\n  monitor: loss\n")


def multi_input_missing_id(env: Env) -> list[str]:
    return train(env, multi_input_spec(env, ["s3", "s1", "s0", "s9"]))


def multi_input_unknown_key(env: Env) -> list[str]:
    return train(env, multi_input_spec(env, ["s0", "s1", "s2", "s3"], "    layer: [{units: 4}]\n"))


def multi_input_split_mismatch(env: Env) -> list[str]:
    return train(env, multi_input_spec(env, ["s0", "s1", "s2", "s3"]), "data.test=main.jsonl")


# --------------------------------------------------------------------------- the table

REMOVE_FOR_NULL = r"Use one of those, or remove the key for the default \(null\)\."

# ----------------------------------------------------------------- tune: the search space, the storage, the study

TUNE_SMOKE = SMOKE_SPEC.parent / "tune_smoke.yaml"


def tune_args(env: Env, spec: Path, *extra: str) -> list[str]:
    return ["tune", str(spec), "--trials", "2", "--quiet", "--set", f"output.dir={env.tmp / 'runs'}", "--set", "training.epochs=1", *extra]


def tune_spec(env: Env, entries: str) -> Path:
    base = TUNE_SMOKE.read_text().split("tune:")[0].replace("../data", str(SMOKE_SPEC.parent.parent / "data"))
    return write_spec(env, base + entries)


def tune_malformed(env: Env) -> list[str]:
    return tune_args(env, tune_spec(env, "tune:\n  - model.layers[0].units\n"))


def tune_unknown_path(env: Env) -> list[str]:
    return tune_args(env, tune_spec(env, "tune:\n  training.learnig_rate: {low: 1e-3, high: 1e-1, log: true}\n"))


def tune_low_above_high(env: Env) -> list[str]:
    return ["validate", str(tune_spec(env, "tune:\n  training.batch_size: {low: 32, high: 8}\n"))]


def tune_choice_out_of_range(env: Env) -> list[str]:
    return tune_args(env, tune_spec(env, "tune:\n  model.layers[0].dropout: [0.0, 0.5, 1.0]\n"))


def tune_without_section(env: Env) -> list[str]:
    return tune_args(env, SMOKE_SPEC)


def tune_trials_zero(env: Env) -> list[str]:
    return [*tune_args(env, TUNE_SMOKE), "--trials", "0"]  # the last --trials wins


def tune_storage_unreachable(env: Env) -> list[str]:
    return tune_args(env, TUNE_SMOKE, "--storage", "postgresql://tuner:s3cret-pw@127.0.0.1:9/studies")


def tune_storage_not_a_url(env: Env) -> list[str]:
    return tune_args(env, TUNE_SMOKE, "--storage", "tuner:s3cret-pw@db.example")


def tune_study_from_another_spec(env: Env) -> list[str]:
    """A study made from tune_smoke.yaml with 1 epoch (no trials needed), then asked to go on with 2."""
    from seqcli import tune
    from seqcli.spec import load_search

    search = load_search(TUNE_SMOKE, [f"output.dir={env.tmp / 'runs'}", "training.epochs=1"])
    url = tune.storage_url(search.spec, None)
    tune._study(tune.open_storage(url), url, search, name=None, new_study=False, sampler=None, pruner=None)
    return [*tune_args(env, TUNE_SMOKE), "--set", "training.epochs=2"]


def tune_output_under_a_file(env: Env) -> list[str]:
    (env.tmp / "blocker").write_text("a file, not a folder\n")
    return [*tune_args(env, TUNE_SMOKE), "--set", f"output.dir={env.tmp / 'blocker' / 'runs'}"]
# ----------------------------------------------------------------- export cases


def export_args(env: Env, run: Path, output: Path, fmt: str = "onnx") -> list[str]:
    return ["export", str(run), "--format", fmt, "--output", str(output)]


def export_with_status(status: str, **fields: Any) -> Callable[[Env], list[str]]:
    def build(env: Env) -> list[str]:
        run = env.run_copy()
        info = json.loads((run / "run.json").read_text())
        (run / "run.json").write_text(json.dumps({**info, "status": status, **fields}))
        return export_args(env, run, env.tmp / "model.onnx")

    return build


def export_unknown_format(env: Env) -> list[str]:
    return export_args(env, env.smoke_run(), env.tmp / "model.onnx", fmt="onnnx")


def export_output_exists(env: Env) -> list[str]:
    (env.tmp / "model.onnx").write_text("keep me\n")
    return export_args(env, env.smoke_run(), env.tmp / "model.onnx")


def export_description_exists(env: Env) -> list[str]:
    (env.tmp / "model.onnx.json").write_text("{}\n")
    return export_args(env, env.smoke_run(), env.tmp / "model.onnx")


def export_output_dir_missing(env: Env) -> list[str]:
    return export_args(env, env.smoke_run(), env.tmp / "out" / "model.onnx")


def export_output_under_file(env: Env) -> list[str]:
    (env.tmp / "blocker").write_text("a regular file\n")
    return export_args(env, env.smoke_run(), env.tmp / "blocker" / "model.onnx")


def export_litert_extension(env: Env) -> list[str]:
    return export_args(env, env.smoke_run(), env.tmp / "model.lite", fmt="litert")


def export_run_missing(env: Env) -> list[str]:
    return export_args(env, env.tmp / "no-run", env.tmp / "model.onnx")


CASES = [
    # The spec: the dotted field, where it came from (line or --set) and the fix.
    Case("yaml-malformed", yaml_malformed, r"bad\.yaml is not valid YAML at line 5, column 10: .*Check the indentation"),
    Case("unknown-key", unknown_key, r"Unknown key `training\.epocs` \(.*spec\.yaml, line 5\)\. .*Did you mean `training\.epochs`\?"),
    Case("unknown-key-from-set", unknown_key_set, r"Unknown key `trainig` \(from `--set trainig\.batch_size=3`\)\. .*Did you mean `training`\?"),
    Case("wrong-type-string-for-int", wrong_type, r"`training\.batch_size` must be an integer\. Received: '16' \(.*spec\.yaml, line 4\)\. Write an integer without quotes"),
    Case("bool-for-int", bool_for_int, r"`model\.layers\[0\]\.units` must be an integer\. Received: true \(.*spec\.yaml, line 5\)\. Write an integer"),
    Case("units-zero", units_zero, r"`model\.layers\[1\]\.units` must be a positive integer\. Received: 0 \(.*spec\.yaml, line 6\)\. Use e\.g\. 64"),
    Case("learning-rate-negative", learning_rate_negative, r"`training\.learning_rate` must be a positive number\. Received: -0\.01 \(.*spec\.yaml, line 4\)\. Use e\.g\. 0\.001"),
    Case("maxlen-zero", maxlen_zero, r"`preprocessing\.maxlen` must be null .*a positive integer, or a percentile .*Received: 0 \(.*spec\.yaml, line 4\)\. " + REMOVE_FOR_NULL),
    Case("maxlen-p0", maxlen_p0, r"`preprocessing\.maxlen` must be null .*a percentile such as 'p95'\. Received: 'p0' \(.*spec\.yaml, line 4\)\. " + REMOVE_FOR_NULL),
    Case("optimizer-typo", optimizer_typo, r"`training\.optimizer` must be one of 'adam', .*Received: 'adm' \(.*spec\.yaml, line 4\)\. .*Did you mean 'adam'\?"),
    Case("duplicate-key", duplicate_key, r"`training\.batch_size` appears twice in .*spec\.yaml \(lines 4 and 5\).*Delete one of them"),
    Case("spec-missing", spec_missing, r"Spec file .*nope\.yaml does not exist\. Check the path"),
    Case("spec-is-directory", spec_is_directory, r"specs\.yaml is a directory; give the path of a YAML spec file inside it"),
    Case("spec-not-utf8", spec_not_utf8, r"Spec file .*latin1\.yaml is not UTF-8 text \(byte 19 is b'\\xe9'\)\. Save it as UTF-8"),
    Case("set-not-path-value", set_not_path_value, r"`--set training\.epochs` is not PATH=VALUE\. Write it like `--set training\.epochs=3`"),
    Case("sigmoid-three-classes", sigmoid_three_classes, r"`model\.output: sigmoid` needs exactly two classes, but the training data has 3\. Use `model\.output: softmax`"),
    Case("monitor-val-loss-without-validation", monitor_without_validation, r"`training\.monitor` is 'val_loss' but there is no validation data .*Set `training\.monitor: loss`"),
    Case("cell-typo", cell_typo, r"`model\.layers\[0\]\.cell` must be one of 'lstm', 'gru'\. Received: 'gur' \(.*spec\.yaml, line 6\)\. .*Did you mean 'gru'\?"),
    Case(
        "class-weight-unknown-class",
        class_weight_unknown_class,
        r"`training\.class_weight` names the class 'rize', which is not in the training data \(classes: fall, flat, rise\)\. Did you mean 'rise'\? Use the class names",
    ),
    Case(
        "class-weight-yaml-boolean",
        class_weight_yaml_boolean,
        r"`training\.class_weight` must be a mapping with names as keys\. .*\(.*spec\.yaml, line 4\)\. The key false is not a name: .*Quote it",
    ),
    Case(
        "lr-schedule-factor-above-one",
        schedule_factor_above_one,
        r"`training\.lr_schedule\.factor` must be a fraction in \(0, 1\)\. Received: 2\.0 \(from `--set training\.lr_schedule\.factor=2`\)\. Use e\.g\. 0\.5",
    ),
    # Names, paths and YAML that once crashed, and numbers that validate passed but train died on.
    Case("units-huge", units_huge, r"`model\.layers\[0\]\.units` is too large: at most 16,384\. Received: 100000000000000000000000000000 \(.*spec\.yaml, line 5\)\. Use e\.g\. 64"),
    Case("units-beyond-bound", units_beyond_bound, r"`model\.layers\[0\]\.units` is too large: at most 16,384\. Received: 200000 \(from `--set model\.layers\[0\]\.units=200000`\)"),
    Case("seed-beyond-32-bits", seed_beyond_32_bits, r"`seed` is too large: at most 4,294,967,295 \(NumPy and Keras seeds are 32-bit\)\. Received: 4294967296 \(.*spec\.yaml, line 3\)\. Use e\.g\. 0"),
    Case("dropout-one", dropout_one, r"`model\.layers\[0\]\.dropout` must be a fraction in \[0, 1\)\. Received: 1\.0 \(.*line 6\)"),
    Case(
        "output-name-slash",
        output_name_with_slash,
        r"`output\.name` must be a folder name: .*Received: 'exp/one' \(.*spec\.yaml, line 4\)\. It contains '/', a path separator\. Spaces and non-ASCII",
    ),
    Case("output-name-dot-dot", output_name_dot_dot, r"`output\.name` must be a folder name: .*Received: '\.\.' \(from `--set output\.name=\.\.`\)\. '\.\.' stands for the folder above"),
    Case("data-symlink-loop", data_symlink_loop, r"`data\.train` is .*/train\.csv, which cannot be followed: .*loop.*\. Point the link at a real file"),
    Case("labels-symlink-loop", labels_symlink_loop_train, r"`data\.train\.labels` is .*/a\.npy, which cannot be followed: .*Point the link at a real file"),
    Case(
        "yaml-alias-bomb",
        yaml_alias_bomb,
        r"laughs\.yaml uses YAML aliases \(`\*name`, the first at line 2\) that would expand it by 4\d\d,\d{3},\d{3} values; seqcli reads at most 10,000 .*Write the repeated values out",
    ),
    Case(
        "yaml-alias-recursive",
        yaml_alias_recursive,
        r"loop\.yaml has a YAML alias inside the value it refers to \(the first alias is at line 2\), so it would expand without end\. Remove the alias",
    ),
    Case("run-spec-alias-bomb", run_spec_alias_bomb, r"run/spec\.yaml uses YAML aliases .* seqcli reads at most 10,000"),
    Case(
        "seed-exponent",
        seed_exponent,
        r"`seed` must be an integer\. Received: '1e23' \(.*line 3\)\. YAML reads 1e23 as text, not as a number, "
        r"and as a number it would be too large: at most 4,294,967,295 \(NumPy and Keras seeds are 32-bit\)\.",
    ),
    Case(
        "epochs-exponent-overflow",
        epochs_exponent_overflow,
        r"`training\.epochs` must be an integer\. Received: '1e400' \(.*line 4\)\. YAML reads 1e400 as text, not as a number, and as a number it would be too large: at most 100,000\.",
    ),
    Case(
        "epochs-with-decimal-point",
        epochs_with_decimal_point,
        r"`training\.epochs` must be an integer\. Received: 30\.0 \(from `--set training\.epochs=30\.0`\)\. Write it without the decimal point: 30\.",
    ),
    Case(
        "learning-rate-exponent",
        learning_rate_exponent,
        r"`training\.learning_rate` must be a number\. Received: '1e-3' \(.*line 4\)\. YAML reads 1e-3 as text, not as a number: .*1\.0e-03, or in full, 0\.001\.",
    ),
    Case(
        "set-negative-index",
        set_negative_index,
        r"`--set model\.layers\[-1\]\.units=4`: negative indexes such as \[-1\] are not supported; .*`model\.layers` has 2 item\(s\), so write `--set model\.layers\[1\]\.units=4`",
    ),
    Case(
        "data-train-list",
        data_train_list,
        r"`data\.train` must be a data file path or a mapping \{path, labels\}\. Received: a list .*line 2\)\. Give one file's path, e\.g\. `train: data/train\.csv`.*combine them into one first",
    ),
    Case(
        "frontend-stride-with-pre-padding",
        frontend_stride_pre_padding,
        r"`model\.frontend\.blocks\[0\]\.stride` is 2, which shortens the sequence, but `preprocessing\.padding` is 'pre': .*Set `preprocessing\.padding: post` \(the default\)",
    ),
    Case("pooling-for-a-per-timestep-task", pooling_per_timestep, r"`model\.pooling` is \[last, mean\], but `task: tag` predicts one label per timestep.*Remove `model\.pooling`"),
    # Data files: the file, and the line, row, sequence or column.
    Case("data-missing", data_missing, r"Data file .*nope\.csv does not exist\. Paths in a spec are relative to the spec file"),
    Case(
        "validate-data-missing",
        validate_data_missing,
        r"^`data\.train` is .*/nope\.csv, which does not exist\. Paths in a spec are relative to the spec file's folder; correct the path, or put the file there\.$",
    ),
    Case(
        "validate-several-data-files-missing",
        validate_several_data_files_missing,
        r"^`data\.validation` is .*/val\.npy, which does not exist; `data\.validation\.labels` is .*/val_y\.npy, which does not exist; "
        r"`data\.test` is .*/test\.npy, a directory, not a data file\. .*correct the paths, or put the files there\.$",
    ),
    Case("validate-input-data-missing", validate_input_data_missing, r"^`inputs\.aux\.data\.train` is .*/aux\.jsonl, which does not exist\."),
    Case("data-empty", data_empty, r"Data file .*train\.csv is empty \(0 bytes\)\. Write or export it again"),
    Case("data-is-directory", data_is_directory, r"train\.csv is a directory, not a data file\. Point the spec at a \.npy, \.npz, \.ts, \.csv or \.jsonl file"),
    Case("data-unknown-extension", data_unknown_extension, r"Cannot tell the format of .*train\.dat from its extension \.dat\. .*set `data\.format`"),
    Case("npy-nan", npy_nan, r"x\.npy, index 2: nan at timestep 1, feature 0\. Replace missing or infinite values"),
    Case("csv-inf", csv_inf, r"train\.csv, id 's03' \(lines 11-13\): inf at timestep 1, feature 0\. Replace missing or infinite values"),
    Case("csv-no-label-column", csv_no_label_column, r"train\.csv has no column 'label' \(columns: id, time, a, b\)\. Set `data\.csv\.label_column`"),
    Case("csv-non-numeric", csv_non_numeric, r"train\.csv, line 5, column 'a': '1\.2\.3' is not a number\. Fix the cell"),
    Case("csv-time-not-numeric", csv_time_not_numeric, r"train\.csv, line 3, column 'time' \(the time column\): 't1' is not a number\. Fix the cell, or set `data\.csv\.time_column: null`"),
    Case("csv-ragged-row", csv_ragged, r"train\.csv, line 7: 6 cells but the header has 5 columns\. Fix the row"),
    Case(
        "csv-id-in-two-blocks",
        csv_scattered_id,
        r"train\.csv, id 's00': its rows are in 2 separate blocks \(lines 2-4, 8-10\), with other ids between them\. .*give each its own id\. "
        r".*set `data\.csv\.allow_scattered_ids: true` to join them\.",
    ),
    Case(
        "csv-duplicate-time",
        csv_duplicate_time,
        r"train\.csv, id 's00' \(lines 2-4\): lines 2 and 3 have the same time 0 \(column 'time'\)\. .*or set `data\.csv\.allow_duplicate_times: true`",
    ),
    Case(
        "csv-semicolons-read-with-commas",
        csv_wrong_delimiter,
        r"train\.csv has no column 'id' \(columns: id;time;a;b;label\)\. .*its cells are separated by ';', not ',': set `data\.csv\.delimiter: ';'`, or null to detect it\.",
    ),
    Case(
        "csv-delimiter-two-characters",
        csv_delimiter_two_characters,
        r"`data\.csv\.delimiter` must be a single character such as .*Received: ';;' \(from `--set data\.csv\.delimiter=;;`\)",
    ),
    Case(
        "csv-duplicate-times-without-time-column",
        csv_duplicate_times_without_time_column,
        r"`data\.csv\.allow_duplicate_times` is true, but `data\.csv\.time_column` is null: .*Remove one of the two\.",
    ),
    Case(
        "ts-label-not-in-class-label",
        ts_label_not_declared,
        r"train\.ts, line 11: the label 'c' is not among the classes that @classLabel lists on line 5 \(a b\)\. Fix the label, or add it to the @classLabel line\.",
    ),
    Case("ts-header-key-typo", ts_header_typo, r"train\.ts, line 2: unknown header key @mising\. Did you mean @missing\? The \.ts header keys are @problemName, "),
    Case("ts-header-value-malformed", ts_header_value_malformed, r"train\.ts, line 4: @dimensions must be followed by a positive whole number \(the number of channels\); got 'two'\. Write e\.g\."),
    Case("npz-zero-length-sequence", npz_zero_length, r"Sequence 1 in .*train\.npz has length 0; .*Remove empty sequences"),
    Case("npy-no-timesteps", npy_no_timesteps, r"x\.npy holds no data: shape \(samples=6, timesteps=0, features=2\)\. Save at least one sequence"),
    Case("npy-strings", npy_strings, r"x\.npy holds values of dtype <U3; seqcli needs numbers .*Convert the array to numbers"),
    Case("npz-corrupt-member", npz_corrupt_member, r"train\.npz is not a readable NumPy file \(.*\)\. Write it again with numpy\.save/numpy\.savez"),
    Case("tokens-all-padding", tokens_all_padding, r"x\.npy, index 3: every token code is 0 \(padding\), so the sequence is empty\. Remove it, set `preprocessing\.pad_code` .*input: float`"),
    Case("tokens-negative", tokens_negative, r"x\.npy, index 4: token code -3 is negative; .*Fix the codes, set `preprocessing\.pad_code` if this is the padding code, or .*input: float`"),
    Case("jsonl-bad-json", jsonl_bad_json, r"train\.jsonl, line 4 is not valid JSON \(Expecting ',' delimiter at column \d+\)\. Each line must be one JSON object"),
    Case("jsonl-missing-key", jsonl_missing_key, r"train\.jsonl, line 3 has no key 'sequence' \(keys: 'id', 'seq', 'label'\)\. Set `data\.jsonl\.sequence_key`"),
    Case("jsonl-ragged-features", jsonl_ragged, r"train\.jsonl, line 5, timestep 1: 1 features, but timestep 0 has 2\. Every timestep needs the same features"),
    Case("jsonl-non-numeric", jsonl_non_numeric, r'train\.jsonl, line 2, timestep 1, feature 1: "n/a" is not a number\. Write features as JSON numbers'),
    Case("jsonl-nan", jsonl_nan, r"train\.jsonl, line 6: nan at timestep 0, feature 0\. Replace missing or infinite values"),
    Case("jsonl-empty-sequence", jsonl_empty_sequence, r"train\.jsonl, line 1, key 'sequence': the sequence is empty \(no timesteps\)\. Remove the record"),
    Case("jsonl-text-not-string", jsonl_text_not_string, r"train\.jsonl, line 3, key 'text': the text must be a JSON string; got a number\. Quote it"),
    Case("text-csv-no-text-column", text_csv_without_text_column, r"train\.csv has no column 'text' \(columns: body, label\)\. Set `data\.csv\.text_column`"),
    Case("tokens-pad-code-inside", tokens_pad_code_inside, r"x\.npy, index 2: code 0 at timestep 1 lies between real codes, but 0 is the padding code .*set `preprocessing\.pad_code: null`"),
    Case("encoding-on-float-data", one_hot_float_data, r"`preprocessing\.encoding: one_hot` applies to integer token codes and text, but .*train\.csv is read as float features"),
    Case("label-count-mismatch", label_count_mismatch, r"x\.npy: 5 labels for 6 sequences\. .*exactly one label per sequence"),
    Case("single-class", single_class, r"train\.csv has a single class \('up'\); a classifier needs at least two\. Check the label column"),
    Case("test-label-unseen", unseen_test_labels, r"test\.csv, id 't01' \(lines 5-7\): label 'sideways' was not among the training classes \(down, up\)\. Remove those sequences or add the class"),
    Case("empty-validation-split", empty_validation_split, r"`data\.validation_split: 0\.05` of 6 training sequences leaves an empty validation set\. Raise the fraction"),
    Case(
        "test-file-other-features",
        other_features_in_test_file,
        r"test\.csv, id 't00' \(lines 2-4\) has 3 features per timestep, but the model was trained on 2\. Give data with the same 2 features",
    ),
    Case(
        "one-sequence-per-class",
        one_sequence_per_class,
        r"train\.csv: each of the 12 classes of the training labels has a single sequence, so the stratified `data\.validation_split: 0\.2` can hold none of them out "
        r".*They are numbers: if they are real values rather than classes, set `task: regress`\. For classes, give each class more sequences",
    ),
    Case("pickled-object-npy", pickled_npy, r"x\.npy holds Python objects .*seqcli never loads pickles.*Store variable-length data as an \.npz"),
    Case("output-dir-under-a-file", output_dir_under_file, r"Cannot create the run directory under .*blocker/runs/smoke: .*blocker is a file \(Not a directory\)\. Set `output\.dir` to a writable"),
    Case("inspect-bare-inf", inspect_bare_nan, r"x\.npy, index 4: inf at timestep 3, feature 1\. Replace missing or infinite values"),
    Case("inspect-data-option-without-spec", inspect_data_without_spec, r"--data and --set need a spec; for a bare data file run `seqcli inspect-shapes FILE`"),
    # predict: the run directory, INPUT and --output.
    Case("predict-wrong-features", predict_wrong_features, r"INPUT .*one\.npy has shape \(4, 3\): 3 features per timestep, but the model was trained on 2\. Give one sequence as \(timesteps, 2\)"),
    Case("predict-batch-wrong-features", predict_batch_wrong_features, r"batch\.npy, index 0 has 3 features per timestep, but the model was trained on 2\. Give data with the same 2 features"),
    Case("predict-text-numeric-run", predict_text_with_numeric_run, r"--text needs a run trained on text \(`preprocessing\.input: text`\), but .* was trained on float input\. Give an INPUT file"),
    Case("predict-txt-numeric-run", predict_text_file_with_numeric_run, r"raw\.txt is a \.txt file: raw text, one per line, which only a text model reads"),
    # task: tag (per-timestep labels).
    Case("tag-label-count", tag_label_count, r"train\.jsonl, line 3: 1 labels for a sequence of 2 timesteps\. With `task: tag` every timestep needs exactly one label"),
    Case("tag-scalar-label", tag_scalar_label, r"train\.jsonl, line 1, key 'label': with `task: tag` the label must be a list with one label per timestep"),
    Case("tag-label-list-when-classifying", tag_label_list_when_classifying, r"train\.jsonl, line 1, key 'label': the label must be a string or a number; got a list\. .*set `task: tag`"),
    Case("tag-npz-label-shape", tag_npz_label_shape, r"train\.npz: with `task: tag`, `y` must hold one label per timestep, aligned .*: shape \(samples=6, timesteps=4\); got shape \(6,\)"),
    Case("tag-unseen-test-label", tag_unseen_test_label, r"test\.jsonl, line 2, timestep 1: label 'z' was not among the training classes \(a, b\)\. Fix the label"),
    Case("tag-with-sigmoid", tag_with_sigmoid, r"`task: tag` predicts a softmax over the classes at every timestep, but `model\.output` is 'sigmoid'\. Set `model\.output: softmax`"),
    Case("tag-padded-tokens", tag_padded_tokens, r"train\.npz, index 0: the sequence starts or ends with the padding code 0 .*set `preprocessing\.pad_code: null`"),
    Case("predict-run-missing", predict_run_missing, r"Run directory .*no-run does not exist\. `seqcli train` prints the run directory"),
    Case("predict-run-incomplete", predict_run_incomplete, r"run is not a complete seqcli run: preprocessing\.json is missing\. Give a directory created by `seqcli train`"),
    Case("predict-run-json-corrupt", predict_run_json_corrupt, r"run/run\.json is corrupt .*Train again"),
    Case(
        "predict-checkpoint-corrupt",
        predict_checkpoint_corrupt,
        r"Cannot load checkpoint .*run/checkpoints/best\.keras: (?!.*\.\.).*[^.]\. The file is damaged\. Train again, or try `--checkpoint last`\.$",
    ),
    Case("predict-interrupted-checkpoint-corrupt", predict_interrupted_state_corrupt, r"Cannot read checkpoint .*run/checkpoints/epoch-000\d\.npz: .*damaged; train again"),
    Case(
        "predict-input-missing",
        predict_input_missing,
        r"^(?!.*`data\.\*`).*new\.csv does not exist\. Check the path",
    ),
    Case("predict-output-exists", predict_output_exists, r"preds\.csv already exists\. Choose another --output, or pass --force to replace it"),
    Case(
        "predict-output-under-a-file",
        predict_output_under_file,
        r"Cannot write .*blocker/preds\.csv: .*Not a directory",
    ),
    Case(
        "predict-output-is-a-directory",
        predict_output_is_directory,
        r"preds\.csv is a directory; give a file name for --output",
    ),
    Case(
        "predict-format-not-the-extension",
        predict_format_not_the_extension,
        r"--format csv does not match --output .*/c\.json, a \.json name\. Name the file c\.csv, or pass --format json, or leave --format out \(the extension decides\)\.",
    ),
    Case("predict-json-format-for-csv-name", predict_json_format_for_csv_name, r"--format json does not match --output .*/preds\.csv, a \.csv name\. Name the file preds\.json"),
    Case("predict-output-dir-missing", predict_output_dir_missing, r"Cannot write .*out/preds\.csv: the directory .*out does not exist\. Create it first"),
    Case(
        "predict-crashed-run-without-an-epoch",
        predict_crashed_before_an_epoch,
        r"Run .*run crashed before its first epoch ended \(its process \d+ is gone\); resume it with `seqcli train --resume .*run`\. There is no best checkpoint to predict with",
    ),
    Case(
        "predict-best-model-deleted",
        predict_models_deleted,
        r"its best model is missing: checkpoints/best\.keras and its epoch's state are gone \(deleted or moved\)\. checkpoints/ still holds .*last\.keras: predict with `--checkpoint last`",
    ),
    Case("predict-checkpoints-emptied", predict_checkpoints_emptied, r"its best model is missing: .*checkpoints/ is empty\. Train again\.$"),
    Case("output-dir-is-a-file", output_dir_is_a_file, r"Cannot create the run directory under .*blocker/smoke: .*blocker is a file \(Not a directory\)\. Set `output\.dir`"),
    # train --resume: what a run can continue with, and what it must keep.
    Case("resume-run-missing", resume_run_missing, r"Run directory .*no-run does not exist"),
    Case(
        "resume-completed-run",
        resume_completed,
        r"Run .*run is already completed \(2 epochs\); there is nothing to resume\. Train it for more epochs with `seqcli train --resume .*run --set training\.epochs=N` \(N > 2\)",
    ),
    Case("resume-live-run", resume_live_run, r"Run .*run is still training \(process \d+; 2 epochs committed so far\)\. Stop that process first, or wait for it"),
    Case(
        "resume-with-another-set",
        resume_with_other_set,
        r"`--set model\.layers\[0\]\.units=16` with `--resume` would change the run's spec; .*takes only `--set training\.epochs=N` \(to train for more epochs\)",
    ),
    Case("resume-too-few-epochs", resume_too_few_epochs, r"`--set training\.epochs=2` must exceed the 2 epochs run .*run has done already\. Give a larger number"),
    Case("resume-other-backend", resume_other_backend, r"`backend: \w+` with `--resume`: run .*run trains on \w+, and a resumed run keeps its backend\. Drop `--backend`"),
    Case(
        "resume-stopped-early",
        resume_stopped_early,
        r"Run .*run stopped early after epoch 2 \(val_loss did not improve for 1 epoch\); trained further, it would stop again at once\. .*larger `training\.early_stopping\.patience`",
    ),
    # export: only a completed run; the output checked before anything is written.
    Case(
        "export-run-interrupted",
        export_with_status("interrupted"),
        r"Run .*run has not completed \(status: interrupted; after epoch 2 of 2\), and only a completed run can be exported .*Finish it with `seqcli train --resume .*run`, then export it",
    ),
    Case(
        "export-run-crashed",
        export_with_status("running", pid=2**22 + 7, host=socket.gethostname()),
        r"Run .*run has not completed \(status: running, but its process is gone: it crashed; after epoch 2 of 2\).*`seqcli train --resume",
    ),
    Case("export-run-failed", export_with_status("failed"), r"Run .*run has not completed \(status: failed; after epoch 2 of 2\), and only a completed run can be exported"),
    Case("export-run-missing", export_run_missing, r"Run directory .*no-run does not exist"),
    Case("export-unknown-format", export_unknown_format, r"Unknown export format 'onnnx'\. Choose one of saved_model, onnx, litert \(--format\)\. Did you mean onnx\?"),
    Case("export-output-exists", export_output_exists, r"model\.onnx already exists\. Choose another --output, or pass --force to replace it"),
    Case("export-description-exists", export_description_exists, r"model\.onnx\.json already exists\. Choose another --output, or pass --force"),
    Case("export-output-dir-missing", export_output_dir_missing, r"Cannot write .*out/model\.onnx: the directory .*out does not exist\. Create it first"),
    Case("export-output-under-file", export_output_under_file, r"Cannot write .*blocker/model\.onnx: .*blocker is a file, not a directory"),
    Case("export-litert-extension", export_litert_extension, r"A LiteRT model is a \.tflite file; --output .*model\.lite has another extension\. Name it model\.tflite"),
    # Multi-input specs: samples matched by id, the keys of each input, the shared splits.
    Case(
        "multi-input-missing-id",
        multi_input_missing_id,
        r"Input 'aux' \(.*aux\.jsonl\) does not match input 'main' sample for sample: 1 id\(s\) of .*main\.jsonl are missing from it \('s2'\); it has 1 id\(s\) that .* lacks \('s9'\)",
    ),
    Case("multi-input-unknown-key", multi_input_unknown_key, r"Unknown key `inputs\.aux\.layer` \(.*spec\.yaml, line 8\)\. .*Did you mean `inputs\.aux\.layers`\?"),
    # tune: a malformed `tune:` section, an unreachable or malformed --storage (its host, never its password), a study made from another spec, an unwritable output.
    Case("tune-malformed-section", tune_malformed, r"`tune` must be a mapping of dotted spec paths to choices or ranges\. Received: a list .*line 19\)\. Write one line per searched field, e\.g\."),
    Case("tune-unknown-path", tune_unknown_path, r"Unknown path `tune\.training\.learnig_rate` \(.*line 20\): `training` has no key `learnig_rate`\. .*Did you mean `tune\.training\.learning_rate`\?"),
    Case("tune-low-above-high", tune_low_above_high, r"`tune\.training\.batch_size` must be a range with low below high\. .*line 20\)\. Swap them"),
    Case(
        "tune-choice-out-of-range",
        tune_choice_out_of_range,
        r"`model\.layers\[0\]\.dropout` must be a fraction in \[0, 1\)\. Received: 1\.0 \(from `tune\.model\.layers\[0\]\.dropout`, .*line 20\)",
    ),
    Case("tune-without-section", tune_without_section, r"smoke\.yaml has no `tune:` section, so there is nothing to search\. Add one .*docs/tuning\.md"),
    Case(
        "tune-storage-unreachable",
        tune_storage_unreachable,
        r"^(?!.*s3cret)Cannot open the study storage, the PostgreSQL server at 127\.0\.0\.1:9 \(database 'studies', user 'tuner'\): .*Check that the server runs",
    ),
    Case("tune-trials-zero", tune_trials_zero, r"^--trials must be a positive number of trials\. Received: 0\. Use e\.g\. --trials 20\.$"),
    Case("tune-storage-not-a-url", tune_storage_not_a_url, r"^(?!.*s3cret)--storage is not a database URL: it has no `scheme://` .*Give one like postgresql://USER:PASSWORD@HOST:5432/DATABASE"),
    Case(
        "tune-study-from-another-spec",
        tune_study_from_another_spec,
        r"The study 'tune_smoke' in the SQLite file .*tune\.db was made from a different spec: `training\.epochs` was 1, now 2\. Its 0 finished trial\(s\) are kept\. .*--new-study",
    ),
    Case("tune-output-under-a-file", tune_output_under_a_file, r"Cannot create .*blocker/runs/tune_smoke: Not a directory\. Set `output\.dir` to a writable directory"),
    Case("multi-input-split-mismatch", multi_input_split_mismatch, r"`data` has a `test` file, so `inputs\.aux\.data\.test` must be given too: all inputs share the same splits"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=c.marks) for c in CASES])
def test_bad_input(case: Case, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # a run written to the default output.dir would land in tmp_path/runs
    args = case.build(Env(tmp_path, request))
    assert_reported(invoke(args), args, case.message)


def test_catalogue_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)
    assert len(CASES) >= 32


def test_export_to_an_unwritable_directory(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission bits do not stop root, so make creating a file in the output's directory fail as it would."""
    real_mkstemp = seqcli.rundir.tempfile.mkstemp
    locked = tmp_path / "locked"
    locked.mkdir()

    def refusing_mkstemp(*args: Any, **kwargs: Any) -> Any:
        if Path(kwargs.get("dir") or ".") == locked:
            raise PermissionError(errno.EACCES, "Permission denied")
        return real_mkstemp(*args, **kwargs)

    monkeypatch.setattr(seqcli.rundir.tempfile, "mkstemp", refusing_mkstemp)
    args = ["export", str(smoke_run), "--format", "onnx", "--output", str(locked / "model.onnx")]
    assert_reported(invoke(args), args, r"Cannot write .*locked/model\.onnx: Permission denied in .*locked\. Give an --output in a directory you can write to")
    assert list(locked.iterdir()) == []


def test_export_without_its_packages(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pip install without the export extra: one line that says what to install."""
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in ("tf2onnx", "onnxruntime") else real_find_spec(name, *a))
    args = ["export", str(smoke_run), "--format", "onnx", "--output", str(tmp_path / "model.onnx")]
    assert_reported(invoke(args), args, r"--format onnx needs the Python package\(s\) tf2onnx, onnxruntime, which are not installed\. Install them with `pip install 'seqcli\[export\]'`")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow  # an export (seconds); the other disk-full tests cover the run directory
def test_export_when_the_disk_fills(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The model is written, then fsync fails: no model, no JSON, no temporary file is left."""
    full_disk(monkeypatch, first_failing_call=1)
    args = ["export", str(smoke_run), "--format", "onnx", "--output", str(tmp_path / "model.onnx")]
    assert_reported(invoke(args), args, r"Cannot write .*model\.onnx: No space left on device\. Check free disk space")
    assert list(tmp_path.iterdir()) == []


def test_run_check_catches_a_completed_run(smoke_run: Path) -> None:
    """The check behind contract 6 is not vacuous: it rejects the smoke run, which is completed."""
    with pytest.raises(AssertionError, match="metrics.json"):
        assert_no_complete_run(smoke_run.parent.parent)


# --------------------------------------------------------------------------- cases that need monkeypatching


def test_unreadable_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Permission bits do not stop root, so make open() refuse the one data file."""
    env = Env(tmp_path)
    spec = csv_spec(env)
    locked = str(tmp_path / "train.csv")
    real_open = builtins.open

    def refusing_open(file: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(file, (str, os.PathLike)) and os.fspath(file) == locked:
            raise PermissionError(errno.EACCES, "Permission denied", locked)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", refusing_open)
    monkeypatch.chdir(tmp_path)
    args = train(env, spec)
    assert_reported(invoke(args), args, r"Cannot read data file .*train\.csv: Permission denied\. Check its permissions")


def test_unreadable_spec_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = csv_spec(Env(tmp_path))
    real_read_text = Path.read_text

    def refusing_read_text(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == spec:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", refusing_read_text)
    monkeypatch.chdir(tmp_path)
    args = ["validate", str(spec)]
    assert_reported(invoke(args), args, r"Cannot read spec file .*spec\.yaml: Permission denied\. Check its permissions")


def test_model_too_large_for_this_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine with 256 MB available: the estimate refuses an LSTM(4096) (1 GB to train) before Keras builds it."""
    monkeypatch.setattr(seqcli.memory, "memory_bytes", lambda: (256 * 2**20, 512 * 2**20))
    monkeypatch.chdir(tmp_path)
    args = train(Env(tmp_path), SMOKE_SPEC, "model.layers[0].units=4096")
    assert_reported(
        invoke(args), args,
        r"Training this model needs about 1\.0 GB of memory, but this machine has 256\.0 MB available \(of 512\.0 MB\): [\d,]+ parameters take 1\.0 GB .*"
        r"The largest part is LSTM\(4,096\) .*Lower `model\.layers\[0\]\.units`",
    )
    assert not (tmp_path / "runs").exists()


@dataclass
class FullDisk:
    calls: int = 0
    failed: list[str] = field(default_factory=list)  # the files whose write failed, in order


def full_disk(monkeypatch: pytest.MonkeyPatch, first_failing_call: int = 3) -> FullDisk:
    """Make fsync fail with ENOSPC from its ``first_failing_call``-th call on."""
    disk = FullDisk()
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        disk.calls += 1
        if disk.calls >= first_failing_call:
            disk.failed.append(_written_file(fd))
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(seqcli.rundir.os, "fsync", fsync)
    return disk


def _written_file(fd: int) -> str:
    """``model_summary.txt`` for an fd open on atomic_write's temporary ``.model_summary.<random>.tmp.txt``."""
    try:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
    except OSError:  # no /proc
        return "?"
    match = re.fullmatch(r"\.(.+)\.\w{8}\.tmp(.*)", name)
    return match.group(1) + match.group(2) if match else name


def test_disk_full_while_writing_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """fsync fails from its 3rd call on: the run directory exists, then writing it fails."""
    disk = full_disk(monkeypatch)
    monkeypatch.chdir(tmp_path)
    args = train(Env(tmp_path, None), SMOKE_SPEC)  # type: ignore[arg-type]
    message = assert_reported(invoke(args), args, r"Cannot write .*: No space left on device\. Check free disk space")
    (run,) = (tmp_path / "runs" / "smoke").iterdir()  # it got as far as creating the run directory
    assert disk.calls >= 3
    assert str(run) in message
    assert not list(run.glob("**/.*.tmp*")), "temporary files left behind"


def test_disk_full_reports_the_write_that_failed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    disk = full_disk(monkeypatch)
    monkeypatch.chdir(tmp_path)
    args = train(Env(tmp_path), SMOKE_SPEC)
    result = invoke(args)
    assert disk.failed[0] != "?", "needs /proc to tell which write failed"
    assert_reported(result, args, rf"Cannot write .*/{re.escape(disk.failed[0])}: No space left on device\. Check free disk space")
