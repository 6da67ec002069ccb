"""Text input: the vocabulary (fitted on training texts only), word vs character tokens, lower-casing,
out-of-vocabulary handling, and a trained text run predicting --text and files of raw strings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import preprocess, train
from seqcli.cli import app
from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.sequences import Sequences
from seqcli.spec import PreprocessingSpec, TextSpec, load_spec

runner = CliRunner()


def texts_of(texts: list[str], labels: list[str] | None = None) -> SequenceData:
    labels = labels if labels is not None else ["a", "b"] * (len(texts) // 2) + ["a"] * (len(texts) % 2)
    return SequenceData(Sequences.from_arrays([]), np.array(labels), "mem", "jsonl", "-", [f"line {i + 1}" for i in range(len(texts))], ids=[str(i) for i in range(len(texts))], texts=texts)


def text_spec(**options: object) -> PreprocessingSpec:
    return PreprocessingSpec(input="text", text=TextSpec(**options))  # type: ignore[arg-type]


def codes(prep: preprocess.Preprocessor, texts: list[str]) -> list[list[int]]:
    return [s[:, 0].tolist() for s in prep.tokenize(texts_of(texts)).sequences]


def test_word_vocabulary_by_frequency_with_padding_and_oov_first() -> None:
    prep = preprocess.fit(texts_of(["the cat, the dog.", "The end!"]), text_spec())
    # Lower-cased, punctuation stripped; "the" 3 times first, ties in Keras' order; 0 padding, 1 OOV.
    assert prep.vocabulary is not None and prep.vocabulary[:3] == ["", "[UNK]", "the"]
    assert sorted(prep.vocabulary[3:]) == ["cat", "dog", "end"]
    assert (prep.input, prep.num_tokens, prep.maxlen, prep.n_features) == ("tokens", 5, 4, 1)  # maxlen: "the cat the dog"
    cat, end = prep.vocabulary.index("cat"), prep.vocabulary.index("end")
    assert codes(prep, ["The CAT ate", "end."]) == [[2, cat, 1], [end]]  # "ate" was never seen in training: OOV


def test_characters_keep_spaces_and_punctuation_and_lowercase_is_unicode_aware() -> None:
    prep = preprocess.fit(texts_of(["Äb a!", "ab"]), text_spec(level="char"))
    assert prep.vocabulary is not None
    assert set(prep.vocabulary[2:]) == {"ä", "a", "b", " ", "!"}  # Keras' own "lower" would keep "Ä"
    index = {token: i for i, token in enumerate(prep.vocabulary)}
    assert codes(prep, ["ÄA?"]) == [[index["ä"], index["a"], 1]]
    cased = preprocess.fit(texts_of(["Äb a!", "ab"]), text_spec(level="char", lowercase=False, strip_punctuation=True))
    assert cased.vocabulary is not None and set(cased.vocabulary[2:]) == {"Ä", "a", "b", " "}


def test_max_tokens_keeps_the_most_frequent() -> None:
    prep = preprocess.fit(texts_of(["x x x y y z", "x y"]), text_spec(max_tokens=4))
    assert prep.vocabulary == ["", "[UNK]", "x", "y"]
    assert codes(prep, ["z x"]) == [[1, 2]]


def test_oov_token_name_or_dropping_unknown_tokens() -> None:
    named = preprocess.fit(texts_of(["a b", "b c"]), text_spec(oov_token="<unk>"))
    assert named.vocabulary is not None and named.vocabulary[1] == "<unk>"
    assert codes(named, ["a zzz"]) == [[named.vocabulary.index("a"), 1]]
    dropping = preprocess.fit(texts_of(["a b", "b c"]), text_spec(oov_token=None))
    assert dropping.vocabulary is not None
    assert codes(dropping, ["zzz a yyy", "b"]) == [[dropping.vocabulary.index("a")], [dropping.vocabulary.index("b")]]
    with pytest.raises(DataError, match=r"mem, line 1: the text 'zzz' has no word tokens after tokenizing .* once tokens outside the vocabulary are dropped"):
        dropping.tokenize(texts_of(["zzz"]))


def test_oov_token_that_occurs_in_the_text_is_refused() -> None:
    with pytest.raises(DataError, match=r"The out-of-vocabulary token '<unk>' occurs as a real token in the training text of mem\. Set `preprocessing\.text\.oov_token`"):
        preprocess.fit(texts_of(["<unk> a", "b"]), text_spec(strip_punctuation=False, oov_token="<unk>"))


def test_text_without_tokens_names_the_line() -> None:
    with pytest.raises(DataError, match=r"mem, line 2: the text '\?!' has no word tokens after tokenizing \(word-level, lower-cased, punctuation stripped\)\. Remove it, or change `preprocessing"):
        preprocess.fit(texts_of(["fine", "?!"]), text_spec())


def test_vocabulary_is_fitted_on_the_training_part_only(tmp_path: Path) -> None:
    lines = [{"text": f"alpha w{i}", "label": "a"} for i in range(4)] + [{"text": f"beta v{i}", "label": "b"} for i in range(4)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    (tmp_path / "test.jsonl").write_text(json.dumps({"text": "alpha gamma", "label": "a"}) + "\n")
    (tmp_path / "spec.yaml").write_text("data: {train: train.jsonl, test: test.jsonl, validation_split: 0.25}\npreprocessing: {input: text}\nmodel: {layers: [{units: 2}]}\n")
    prepared = train.prepare(load_spec(tmp_path / "spec.yaml"))
    vocabulary = prepared.prep.vocabulary
    assert vocabulary is not None
    held_out = [t for t in prepared.splits["validation"].data.texts or [] for t in t.split()[1:]]
    assert len(held_out) == 2 and not set(held_out) & set(vocabulary)  # the validation texts' own words are not in it
    assert "gamma" not in vocabulary
    assert prepared.splits["test"].sequences[0][:, 0].tolist() == [vocabulary.index("alpha"), 1]


# --------------------------------------------------------------------------- a trained text run, through the CLI


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch word-level run on 12 tiny texts (CSV), trained through the CLI."""
    folder = tmp_path_factory.mktemp("text")
    rows = [("good fine day", "pos"), ("bad awful day", "neg")] * 6
    (folder / "train.csv").write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in rows))
    (folder / "spec.yaml").write_text("data: {train: train.csv, validation_split: 0.25}\npreprocessing: {input: text}\nmodel: {layers: [{units: 2}], embedding_dim: 2}\ntraining: {epochs: 1}\n")
    result = runner.invoke(app, ["train", str(folder / "spec.yaml"), "--quiet", "--set", f"output.dir={folder / 'runs'}"])
    assert result.exit_code == 0, result.output
    (run,) = (folder / "runs" / "spec").iterdir()
    return run


def predicted_ids(args: list[str]) -> list[str]:
    result = runner.invoke(app, ["predict", *args, "--format", "json"])
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["classes"] == ["neg", "pos"]
    return [row["id"] for row in payload["predictions"]]


def test_run_saves_the_vocabulary(text_run: Path) -> None:
    state = json.loads((text_run / "preprocessing.json").read_text())
    assert state["vocabulary"][:3] == ["", "[UNK]", "day"] and set(state["vocabulary"][3:]) == {"good", "fine", "bad", "awful"}
    assert state["text"] == dataclasses.asdict(TextSpec()) and state["input"] == "tokens"


def test_predict_text_option(text_run: Path) -> None:
    assert predicted_ids([str(text_run), "--text", "a good day", "--text", "AWFUL!"]) == ["a good day", "AWFUL!"]


@pytest.mark.parametrize(
    ("name", "content", "ids"),
    [
        ("raw.txt", "good day\n\nawful unknown words\n", ["1", "3"]),
        ("raw.csv", "id,text\nr1,good day\nr2,bad\n", ["r1", "r2"]),
        ("raw.jsonl", '{"id": "j", "text": "fine"}\n{"text": "bad bad"}\n', ["j", "2"]),
    ],
)
def test_predict_file_of_raw_strings(text_run: Path, tmp_path: Path, name: str, content: str, ids: list[str]) -> None:
    (tmp_path / name).write_text(content)
    assert predicted_ids([str(text_run), str(tmp_path / name)]) == ids


def test_predict_text_errors(text_run: Path, smoke_run: Path, tmp_path: Path) -> None:
    both = runner.invoke(app, ["predict", str(text_run), "x.txt", "--text", "hi"])
    assert both.exit_code == 1 and "Give either INPUT (a data file) or --text TEXT" in both.stderr
    numeric = runner.invoke(app, ["predict", str(smoke_run), "--text", "hi"])
    assert numeric.exit_code == 1 and "--text needs a run trained on text (`preprocessing.input: text`)" in numeric.stderr
    empty = runner.invoke(app, ["predict", str(text_run), "--text", " "])
    assert empty.exit_code == 1 and "--text, text 1: the text is empty" in empty.stderr
    np.save(tmp_path / "x.npy", np.zeros((2, 3)))
    wrong = runner.invoke(app, ["predict", str(text_run), str(tmp_path / "x.npy")])
    assert wrong.exit_code == 1 and "reads raw text from .csv, .jsonl or .txt files, but x.npy is a .npy file" in wrong.stderr


def test_inspect_shapes_shows_tokenization_and_encodings(text_run: Path) -> None:
    result = runner.invoke(app, ["inspect-shapes", str(text_run / "spec.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    steps = {s["name"]: s for s in trace["steps"]}
    assert steps["read texts"]["shape"] == "12 texts"
    assert steps["tokenize"]["shape"] == "8 x (tokens, 1)"
    assert "word-level, lower-cased, punctuation stripped; vocabulary of 7 codes fitted on the training texts (0 padding, 1 '[UNK]')" in steps["tokenize"]["detail"]
    assert steps["encode (embedding) + mask"]["shape"] == "(samples=8, timesteps=3, features=2)"
    assert trace["arrays"][0]["dtype"] == "text -> int64 codes" and trace["input_shape"] == "(batch, timesteps=3)"
    assert [(r["name"], r["output_shape"]) for r in trace["layers"][:2]] == [("tokens", "(batch, timesteps=3)"), ("embedding", "(batch, timesteps=3, embedding=2)")]
    assert any("one_hot: (batch, timesteps=3, 6)" in n for n in trace["notes"])


@pytest.mark.slow  # a fresh process that loads TensorFlow and JAX (about 20 s)
def test_text_trains_on_jax_in_a_fresh_process(tmp_path: Path) -> None:
    """Text on JAX: TensorFlow (for the tokenizer) is imported next to Keras' JAX backend without breaking it
    (hiding JAX during that import once left Keras half-loaded: "keras.src.backend has no attribute name_scope")."""
    import os
    import subprocess
    import sys

    texts = tmp_path / "texts.csv"
    texts.write_text("id,text,label\n" + "".join(f"{i},{'ab cd' if i % 2 else 'ef gh ij'} {i},{'x' if i % 2 else 'y'}\n" for i in range(12)))
    spec = tmp_path / "text.yaml"
    spec.write_text("data:\n  train: texts.csv\n  validation_split: 0.25\npreprocessing:\n  input: text\n  bucketing: false\nmodel:\n  layers: [{units: 4}]\ntraining:\n  epochs: 1\n")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"}
    done = subprocess.run([sys.executable, "-m", "seqcli", "train", str(spec), "--quiet", "--backend", "jax", "--set", f"output.dir={tmp_path / 'runs'}"], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    (run,) = (tmp_path / "runs" / "text").iterdir()
    assert json.loads((run / "run.json").read_text())["versions"]["backend"] == "jax"
