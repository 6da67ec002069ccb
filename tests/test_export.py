"""`seqcli export`: each format, run by its own runtime, gives `seqcli predict`'s outputs to 1e-5.

The exported models are fed as a server would feed them: raw sequences read without seqcli, scaled or coded,
truncated and padded from the JSON description alone (:func:`serve_batch`). Variable-length input is padded to two
widths where the signature takes any width (the mask must make the width irrelevant: keras-team/keras#21133).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from tests.conftest import BACKEND, ROOT, SMOKE_TEST

pytestmark = pytest.mark.skipif(BACKEND != "tensorflow", reason="export runs on the TensorFlow backend; the in-process tests run on another")

runner = CliRunner()
FORMATS = {"saved_model": "model", "onnx": "model.onnx", "litert": "model.tflite"}
TOLERANCE = 1e-5


def invoke(*args: object) -> Any:
    from seqcli.cli import app

    return runner.invoke(app, [str(a) for a in args])


# --------------------------------------------------------------------------- what a server does, from the JSON alone


def serve_batch(entry: dict[str, Any], raw: list[np.ndarray], width: int | None = None) -> tuple[np.ndarray, list[int]]:
    """Raw sequences ``(timesteps_i, features)`` or token codes ``(timesteps_i,)`` -> the padded batch the model takes,
    and each sequence's length after truncation; ``width`` None: the longest (exactly maxlen for a fixed-width input)."""
    maxlen = entry["maxlen"]
    prepared = []
    for seq in raw:
        if "tokens" in entry:
            tokens = entry["tokens"]
            codes = np.asarray(seq, dtype=np.int64)
            if tokens["pad_code"] is not None:
                real = np.flatnonzero(codes != tokens["pad_code"])
                codes = codes[real[0] : real[-1] + 1]
            seq = np.minimum(codes + tokens["shift"], tokens["num_tokens"])
        elif entry["scaler"] is not None:
            seq = (np.asarray(seq, dtype=np.float64) - np.asarray(entry["scaler"]["mean"])) / np.asarray(entry["scaler"]["std"])
        seq = seq[:maxlen] if entry["truncating"] == "post" else seq[-maxlen:]
        prepared.append(seq)
    lengths = [len(s) for s in prepared]
    if entry["fixed_width"]:
        width = maxlen
    width = width or max(lengths)
    dtype = np.dtype(entry["dtype"])
    batch = np.full((len(raw), width, *entry["shape"][2:]), entry["pad_value"], dtype=dtype)
    for i, seq in enumerate(prepared):
        if entry["padding"] == "post":
            batch[i, : len(seq)] = seq
        else:
            batch[i, width - len(seq) :] = seq
    return batch, lengths


def runtime(fmt: str, path: Path) -> Callable[[dict[str, np.ndarray]], np.ndarray]:
    """The exported model run by its own runtime: {input name: batch} -> the output."""
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        keys = list(serve.structured_input_signature[1])
        return lambda feeds: np.asarray(next(iter(serve(**{k: tf.constant(feeds[k] if k in feeds else next(iter(feeds.values()))) for k in keys}).values())))
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda feeds: session.run(None, feeds)[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    signature = interpreter.get_signature_runner()
    return lambda feeds: np.asarray(next(iter(signature(**feeds).values())))


def predicted(run: Path, data: Path) -> dict[str, np.ndarray]:
    """What `seqcli predict RUN DATA` computes, unrounded (its CSV and JSON round to 6 decimals): id -> class probabilities."""
    from seqcli import predict

    prediction = predict.predict_file(predict.load_run(run), data)
    return dict(zip(prediction.ids, prediction.values, strict=True))


def exported(run: Path, fmt: str, folder: Path) -> tuple[Path, dict[str, Any]]:
    output = folder / FORMATS[fmt]
    result = invoke("export", run, "--format", fmt, "--output", output)
    assert result.exit_code == 0, result.output
    assert f"wrote {output} ({fmt})" in result.stdout
    description = json.loads((folder / (output.name + ".json")).read_text())
    assert description["format"] == fmt and description["model"] == output.name
    return output, description


def parity(run: Path, fmt: str, folder: Path, raw: dict[str, np.ndarray], data: Path) -> list[float]:
    """The largest |export - seqcli predict| for each width the export takes (the batch's longest sequence, and maxlen)."""
    output, description = exported(run, fmt, folder)
    (entry,) = description["inputs"]
    expected = predicted(run, data)
    ids = list(raw)
    serve = runtime(fmt, output)
    differences = []
    for width in (None, entry["maxlen"] + 3) if not entry["fixed_width"] else (None,):
        batch, _ = serve_batch(entry, [raw[i] for i in ids], width)
        out = np.asarray(serve({entry["name"]: batch}), dtype=np.float64)
        assert out.shape == (len(ids), len(description["outputs"]["classes"]))
        differences.append(float(np.abs(out - np.array([expected[i] for i in ids])).max()))
    return differences


# --------------------------------------------------------------------------- the runs


def smoke_sequences() -> dict[str, np.ndarray]:
    """data/smoke/test.csv read with the csv module: id -> (timesteps, features a and b), in time order."""
    rows: dict[str, list[tuple[int, float, float]]] = {}
    with open(SMOKE_TEST, newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["id"], []).append((int(row["time"]), float(row["a"]), float(row["b"])))
    return {i: np.array([r[1:] for r in sorted(steps)]) for i, steps in rows.items()}


@pytest.fixture(scope="module")
def token_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A token-code run (1 epoch): a bidirectional GRU, padding and truncation at the front, maxlen 7 below the longest
    sequence (9), bucketed; and its test file, 0-padded at the end, with a code never seen in training."""
    return make_token_run(tmp_path_factory.mktemp("tokens"))


def make_token_run(folder: Path, ngrams: bool = False) -> tuple[Path, Path]:
    """The run of :func:`token_run` trained in ``folder``; with ``ngrams``, an n-gram branch beside the GRU."""
    rng = np.random.default_rng(3)

    def codes(samples: int, highest: int) -> tuple[np.ndarray, np.ndarray]:
        x = np.zeros((samples, 9), dtype=np.int64)
        y = np.array(["a", "b"] * (samples // 2))
        for i, label in enumerate(y):
            length = 2 + i % 8
            x[i, :length] = rng.integers(1, highest, size=length) + (3 if label == "b" else 0)
        return x, y

    x, y = codes(24, 4)
    np.savez(folder / "train.npz", x=x, y=y)
    x, y = codes(10, 4)
    x[0, 1] = 12  # unseen: the highest code stands for it
    np.savez(folder / "test.npz", x=x, y=y)
    spec = folder / "tokens.yaml"
    spec.write_text(
        "data: {train: train.npz, validation_split: 0.25}\n"
        "preprocessing: {input: tokens, padding: pre, truncating: pre, maxlen: 7}\n"
        f"model: {{layers: [{{units: 4, cell: gru, bidirectional: true}}], embedding_dim: 3{', ngrams: {buckets: 512, dim: 4}' if ngrams else ''}}}\n"
        f"training: {{epochs: 1, batch_size: 8}}\noutput: {{dir: {folder / 'runs'}}}\n"
    )
    result = invoke("train", spec, "--quiet")
    assert result.exit_code == 0, result.output
    (run,) = (folder / "runs").glob("*/*")
    return run, folder / "test.npz"


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=pytest.mark.slow if f == "litert" else ()) for f in FORMATS])  # LiteRT (unrolled, fixed width): slow
def test_float_input_of_variable_length_matches_predict(fmt: str, smoke_run: Path, tmp_path: Path) -> None:
    """Masked float input (the smoke run: bucketed, padded at the end): every format, at every width it takes."""
    differences = parity(smoke_run, fmt, tmp_path, smoke_sequences(), SMOKE_TEST)
    assert len(differences) == (1 if fmt == "litert" else 2)
    assert max(differences) <= TOLERANCE, differences


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=() if f == "onnx" else pytest.mark.slow) for f in FORMATS])  # the other formats: slow
def test_token_input_matches_predict(fmt: str, token_run: tuple[Path, Path], tmp_path: Path) -> None:
    """Token codes: 0-padded raw rows stripped, an unseen code mapped to num_tokens, truncated and padded at the front."""
    run, data = token_run
    with np.load(data) as arrays:
        raw = {str(i): row for i, row in enumerate(arrays["x"])}
    differences = parity(run, fmt, tmp_path, raw, data)
    assert max(differences) <= TOLERANCE, differences


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=() if f == "onnx" else pytest.mark.slow) for f in FORMATS])  # the other formats: slow
def test_ngram_branch_matches_predict(fmt: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path) -> None:
    """The n-gram branch's integer hashing and table lookups (token codes padded at the front), in every format."""
    run, data = make_token_run(tmp_path_factory.mktemp("ngrams"), ngrams=True)
    with np.load(data) as arrays:
        raw = {str(i): row for i, row in enumerate(arrays["x"])}
    differences = parity(run, fmt, tmp_path, raw, data)
    assert max(differences) <= TOLERANCE, differences


@pytest.fixture(scope="module")
def kernels_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """experiments/smoke.yaml with a kernel branch (``model.kernels``), 1 epoch."""
    folder = tmp_path_factory.mktemp("kernels")
    sets = ["training.epochs=1", "model.kernels={features: 168}", f"output.dir={folder}"]
    result = invoke("train", ROOT / "experiments" / "smoke.yaml", "--quiet", *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    (run,) = folder.glob("*/*")
    return run


@pytest.mark.parametrize("fmt", [pytest.param(f, marks=() if f == "onnx" else pytest.mark.slow) for f in FORMATS])  # the other formats: slow
def test_kernel_branch_matches_predict(fmt: str, kernels_run: Path, tmp_path: Path) -> None:
    """The kernel branch's fixed convolutions, thresholds and masked shares, in every format, at every width it takes."""
    differences = parity(kernels_run, fmt, tmp_path, smoke_sequences(), SMOKE_TEST)
    assert max(differences) <= TOLERANCE, differences


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """experiments/segments.yaml (task: tag, a bidirectional LSTM), 1 epoch of 4 units, truncated to 20 timesteps (LiteRT unrolls them)."""
    folder = tmp_path_factory.mktemp("tag")
    sets = ["training.epochs=1", "model.layers[0].units=4", "preprocessing.maxlen=20", f"output.dir={folder}"]
    result = invoke("train", ROOT / "experiments" / "segments.yaml", "--quiet", *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    (run,) = folder.glob("*/*")
    return run


@pytest.mark.slow  # trains a tagger; per format
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_per_timestep_outputs_match_predict(fmt: str, tag_run: Path, tmp_path: Path) -> None:
    """One label per timestep: the real timesteps' probabilities (the first `length` of each padded row) equal predict's rows."""
    from seqcli import predict

    data = ROOT / "data" / "segments" / "test.csv"
    rows: dict[str, list[tuple[int, float, float]]] = {}
    with open(data, newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(row["id"], []).append((int(row["time"]), float(row["magnitude"]), float(row["wave"])))
    ids = list(rows)[:40]
    raw = [np.array([r[1:] for r in sorted(rows[i])]) for i in ids]
    output, description = exported(tag_run, fmt, tmp_path)
    assert description["per_timestep"] and "real_timesteps" in description["outputs"]
    (entry,) = description["inputs"]
    prediction = predict.predict_file(predict.load_run(tag_run), data)
    expected = {(i, t): v for i, t, v in zip(prediction.ids, prediction.timesteps or [], prediction.values, strict=True)}
    serve = runtime(fmt, output)
    for width in (None, entry["maxlen"] + 3) if not entry["fixed_width"] else (None,):
        batch, lengths = serve_batch(entry, raw, width)
        out = np.asarray(serve({entry["name"]: batch}), dtype=np.float64)
        got = np.concatenate([out[k, :n] for k, n in enumerate(lengths)])  # padding post: the first `length` timesteps are real
        want = np.array([expected[(i, t)] for i, n in zip(ids, lengths, strict=True) for t in range(n)])
        assert float(np.abs(got - want).max()) <= TOLERANCE


def test_the_description_says_how_to_feed_the_model(token_run: tuple[Path, Path], smoke_run: Path, tmp_path: Path) -> None:
    run, _ = token_run
    _, description = exported(run, "onnx", tmp_path)
    (entry,) = description["inputs"]
    assert (entry["name"], entry["dtype"], entry["shape"], entry["padding"], entry["truncating"], entry["maxlen"]) == ("tokens", "int32", [None, None], "pre", "pre", 7)
    assert entry["tokens"] == entry["tokens"] | {"num_tokens": 7, "pad_code": 0, "shift": 0}
    assert description["task"] == "classify" and description["outputs"]["classes"] == ["a", "b"]
    (tmp_path / "litert").mkdir()
    _, fixed = exported(smoke_run, "litert", tmp_path / "litert")
    (entry,) = fixed["inputs"]
    assert (entry["name"], entry["dtype"], entry["shape"], entry["fixed_width"], entry["pad_value"]) == ("sequence", "float32", [None, 9, 2], True, 0.0)
    assert len(entry["scaler"]["mean"]) == 2


# --------------------------------------------------------------------------- refusals and safety


def test_an_export_that_loses_the_mask_is_refused_and_nothing_is_written(smoke_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check: a runtime whose outputs depend on the padding (as a lost mask makes them) is refused."""
    import seqcli.export

    real = seqcli.export._runner

    def unmasked(path: Path, fmt: str, names: list[str]) -> Callable[[list[np.ndarray]], np.ndarray]:
        run = real(path, fmt, names)
        return lambda arrays: run(arrays) + 1e-3 * arrays[0].shape[1]  # changes with the width, like padding read as data

    monkeypatch.setattr(seqcli.export, "_runner", unmasked)
    result = invoke("export", smoke_run, "--format", "onnx", "--output", tmp_path / "model.onnx")
    assert result.exit_code == 1
    assert "does not keep the padding mask" in result.stderr and "Nothing was written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_force_replaces_an_earlier_export(smoke_run: Path, tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "old.txt").write_text("an earlier export\n")
    (tmp_path / "model.json").write_text("{}\n")
    assert invoke("export", smoke_run, "--format", "saved_model", "--output", tmp_path / "model").exit_code == 1
    assert (tmp_path / "model" / "old.txt").exists()
    result = invoke("export", smoke_run, "--format", "saved_model", "--output", tmp_path / "model", "--force")
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "model" / "old.txt").exists() and (tmp_path / "model" / "saved_model.pb").exists()
    assert json.loads((tmp_path / "model.json").read_text())["format"] == "saved_model"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model", "model.json"]  # no temporary files left


@pytest.mark.slow
def test_multi_input_model_matches_predict(tmp_path: Path) -> None:
    """experiments/two_sensors.yaml (motion and temperature, matched by id), 1 epoch: the ONNX file takes both inputs by
    name, each padded from its own entry of the JSON, and gives predict's probabilities (the other formats: the export check)."""
    from seqcli import predict

    sets = ["training.epochs=1", "model.layers[0].units=4", f"output.dir={tmp_path / 'runs'}"]
    result = invoke("train", ROOT / "experiments" / "two_sensors.yaml", "--quiet", *[a for s in sets for a in ("--set", s)])
    assert result.exit_code == 0, result.output
    (run,) = (tmp_path / "runs").glob("*/*")
    files = {"motion": ROOT / "data" / "two_sensors" / "motion_test.jsonl", "temperature": ROOT / "data" / "two_sensors" / "temperature_test.jsonl"}
    raw = {name: {row["id"]: np.array(row["sequence"], dtype=np.float64).reshape(len(row["sequence"]), -1) for row in map(json.loads, file.read_text().splitlines())} for name, file in files.items()}
    output, description = exported(run, "onnx", tmp_path)
    assert [e["name"] for e in description["inputs"]] == ["motion", "temperature"]
    prediction = predict.predict_inputs(predict.load_run(run), files)
    expected = dict(zip(prediction.ids, prediction.values, strict=True))
    ids = list(expected)
    feeds = {e["name"]: serve_batch(e, [raw[e["name"]][i] for i in ids])[0] for e in description["inputs"]}
    out = runtime("onnx", output)(feeds)
    assert float(np.abs(out - np.array([expected[i] for i in ids])).max()) <= TOLERANCE
