"""Tests for seqcli.spec: schema defaults, validation messages, --set overrides, cross-field rules."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from seqcli.errors import SpecError
from seqcli.spec import (
    ConvBlock,
    DataFile,
    EarlyStoppingSpec,
    FcnSpec,
    FrontendSpec,
    KernelsSpec,
    LRScheduleSpec,
    RecurrentLayer,
    cross_field_problems,
    keras_name,
    load_search,
    load_spec,
    reference_markdown,
    spec_from_dict,
    to_yaml,
)

MINIMAL = "data: {train: x.npz}\n"
RECIPE_FRONTEND = FrontendSpec(blocks=[ConvBlock(pool=4)])  # one block of the field defaults, pooled over 4 (docs/recipe.md)
RECIPE_FCN = FcnSpec(blocks=[ConvBlock(128, 8, pool=4), ConvBlock(256, 5), ConvBlock(128, 3)])  # LSTM-FCN's blocks, the first pooled (docs/recipe.md)


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# --------------------------------------------------------------------------- defaults and resolution


def test_minimal_spec_resolves_with_defaults(tmp_path, monkeypatch):
    write(tmp_path, MINIMAL + "recipe: plain\n", "exp/my-exp.yaml")  # the field defaults (a minimal spec gets the recipe: below)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # data paths must not depend on the working directory

    spec = load_spec(Path("..") / "exp" / "my-exp.yaml")

    assert spec.data.train == DataFile(path=str((tmp_path / "exp" / "x.npz").resolve()), labels=None)
    assert Path(spec.data.train.path).is_absolute()
    assert spec.data.validation is None and spec.data.test is None
    assert spec.data.validation_split == 0.2
    assert spec.data.format == "auto"
    assert spec.data.layout == "channels_last"
    assert (spec.data.npz.x, spec.data.npz.y, spec.data.npz.lengths) == ("x", "y", "lengths")
    assert (spec.data.csv.id_column, spec.data.csv.time_column, spec.data.csv.label_column) == ("id", "time", "label")
    assert spec.data.csv.feature_columns is None
    assert spec.preprocessing.maxlen is None
    assert spec.preprocessing.padding == "post"
    assert spec.preprocessing.standardize is True
    assert spec.model.layers == [RecurrentLayer(units=64, cell="lstm", bidirectional=False, dropout=0.0, recurrent_dropout=0.0, return_sequences=None)]
    assert spec.model.dense == []
    assert spec.model.output == "softmax"
    assert spec.training.epochs == 30
    assert spec.training.batch_size == 32
    assert spec.training.optimizer == "adam"
    assert spec.training.learning_rate == 0.001
    assert spec.training.metrics is None  # the task's: accuracy for classify
    assert spec.training.monitor == "val_loss"
    assert spec.training.early_stopping == EarlyStoppingSpec(patience=10, min_delta=0.0)
    assert (spec.training.lr_schedule, spec.training.class_weight, spec.training.label_smoothing) == (None, None, 0.0)
    assert spec.output.dir == "runs"
    assert spec.output.name == "my-exp"
    assert spec.seed == 0


def test_all_data_paths_resolved_relative_to_spec_dir(tmp_path, monkeypatch):
    write(
        tmp_path,
        "data:\n  train: sub/a.npy\n  validation: {path: v.ts}\n  test: {path: t.npy, labels: ../l.npy}\noutput:\n  name: chosen\n",
        "specs/s.yaml",
    )
    monkeypatch.chdir(tmp_path)
    spec = load_spec("specs/s.yaml")
    base = (tmp_path / "specs").resolve()
    assert spec.data.train.path == str(base / "sub" / "a.npy")
    assert spec.data.validation == DataFile(path=str(base / "v.ts"), labels=None)
    assert spec.data.test == DataFile(path=str(base / "t.npy"), labels=str(tmp_path.resolve() / "l.npy"))
    assert spec.output.name == "chosen"  # an explicit name is kept


def test_output_name_defaults_to_the_file_name_as_written(tmp_path):
    """Spaces and non-ASCII letters name the run folder as they are; only the Keras model gets a sanitized name."""
    assert load_spec(write(tmp_path, MINIMAL, "my expérience.yaml")).output.name == "my expérience"
    assert load_spec(write(tmp_path, MINIMAL + "output: {name: nämé x}\n")).output.name == "nämé x"
    assert keras_name("my expérience") == "my_experience" and keras_name("a/b c") == "a_b_c" and keras_name("-") == "seqcli"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "It is empty"),
        ("   ", "It is only spaces"),
        (".", "'.' stands for the folder itself"),
        ("a\\b", "It contains '\\', a path separator"),
        ("a\tb", "It contains the control character '\\t'"),
        ("é" * 200, "It is 400 bytes long; file systems allow 255"),
    ],
)
def test_output_name_must_name_one_folder(tmp_path, name, problem):
    path = write(tmp_path, MINIMAL + f"output:\n  name: {yaml.safe_dump(name).strip().removesuffix('...').strip()}\n")
    with pytest.raises(SpecError, match=r"`output\.name` must be a folder name: .*Received: .*\(.*spec\.yaml, line 3\)\. " + re.escape(problem)):
        load_spec(path)


def test_a_file_name_that_cannot_name_the_folder_asks_for_output_name(tmp_path):
    path = write(tmp_path, MINIMAL, "tab\there.yaml")
    with pytest.raises(SpecError, match=r"The spec file's name 'tab\\there' names its runs' folder by default, but it contains the control character '\\t'\. Set `output\.name`"):
        load_spec(path)
    assert load_spec(path, ["output.name=tab"]).output.name == "tab"


def test_yaml_aliases_within_the_bound_are_read(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL + "model:\n  layers:\n    - &layer {units: 8, cell: gru}\n    - *layer\n"))
    assert spec.model.layers == [RecurrentLayer(units=8, cell="gru"), RecurrentLayer(units=8, cell="gru")]


@pytest.mark.parametrize(
    ("setting", "ok"),
    [("model.layers[0].units=16384", True), ("model.layers[0].units=16385", False), ("seed=4294967295", True), ("seed=4294967296", False),
     ("training.batch_size=65536", True), ("training.batch_size=65537", False), ("preprocessing.maxlen=1000000", True), ("preprocessing.maxlen=1000001", False),
     ("model.embedding_dim=16385", False), ("training.epochs=100001", False), ("training.early_stopping.patience=100001", False),
     ("preprocessing.text.max_tokens=2147483648", False), ("preprocessing.pad_code=-2147483648", True), ("preprocessing.pad_code=2147483648", False),
     ("training.early_stopping.min_delta=-0.1", False)],
)
def test_numbers_are_bounded(tmp_path, setting, ok):
    path = write(tmp_path, MINIMAL)
    if ok:
        load_spec(path, [setting])
    else:
        with pytest.raises(SpecError, match=rf"`{re.escape(setting.split('=')[0])}` (is too large: at most|must be)"):
            load_spec(path, [setting])


@pytest.mark.parametrize(
    ("setting", "fix"),
    [
        ("preprocessing.pad_code=1e400", "1e400 is far too large for any integer (YAML reads it as text, too). Write an integer in digits."),
        ("training.epochs=1e3", "YAML reads 1e3 as text, not as a number. Write the integer in digits: 1000."),
        ("training.epochs=2.5", "2.5 is not a whole number. Write an integer."),
        ("training.epochs=true", "Write an integer."),
        ("training.learning_rate=.inf", "inf is not a finite number. Write a finite number."),
    ],
)
def test_a_number_of_the_wrong_kind_says_what_is_wrong(tmp_path, setting, fix):
    with pytest.raises(SpecError, match=re.escape(f"(from `--set {setting}`). {fix}")):
        load_spec(write(tmp_path, MINIMAL), [setting])


def test_int_given_for_float_becomes_float(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL + "training:\n  learning_rate: 1\n"))
    assert spec.training.learning_rate == 1.0
    assert isinstance(spec.training.learning_rate, float)


def test_early_stopping_null_is_allowed(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL + "training:\n  early_stopping: null\n"))
    assert spec.training.early_stopping is None


# --------------------------------------------------------------------------- unknown keys, types, ranges


def test_unknown_key_suggests_close_match(tmp_path):
    path = write(tmp_path, MINIMAL + "training:\n  epoch: 3\n")
    with pytest.raises(SpecError, match=r"Unknown key `training\.epoch` \(.*spec\.yaml, line 3\)\..*Did you mean `training\.epochs`\?"):
        load_spec(path)


def test_key_in_wrong_section_suggests_the_right_one(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  epochs: 3\n")
    with pytest.raises(SpecError, match=r"Unknown key `model\.epochs` \(.*line 3\).*move it to `training\.epochs`"):
        load_spec(path)


def test_key_in_wrong_section_suggests_list_item_path(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  units: 32\n")
    with pytest.raises(SpecError, match=r"Unknown key `model\.units` \(.*line 3\)") as info:
        load_spec(path)
    assert "`model.layers.units`" not in str(info.value)
    assert re.search(r"`model\.layers\[\d*\]\.units`", str(info.value))


def test_string_for_int_is_rejected(tmp_path):
    path = write(tmp_path, MINIMAL + "training:\n  epochs: '10'\n")
    with pytest.raises(SpecError, match=r"`training\.epochs` must be an integer\. Received: '10' \(.*line 3\)\. Write an integer without quotes\."):
        load_spec(path)


def test_bool_is_not_an_int(tmp_path):
    path = write(tmp_path, MINIMAL + "training:\n  batch_size: true\n")
    with pytest.raises(SpecError, match=r"`training\.batch_size` must be an integer\. Received: true \(.*line 3\)\. Write an integer"):
        load_spec(path)


def test_section_must_be_a_mapping(tmp_path):
    path = write(tmp_path, MINIMAL + "model: 5\n")
    with pytest.raises(SpecError, match=r"`model` must be a mapping of keys to values\. Received: 5 \(.*line 2\)\. Write it as `key: value` lines under `model:`"):
        load_spec(path)


def test_list_field_given_a_mapping(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  layers:\n    units: 3\n")
    with pytest.raises(SpecError, match=r"`model\.layers` must be a list\. Received: a mapping \{'units': 3\} \(.*line 3\)\. Write it as a YAML list"):
        load_spec(path)


def test_range_error_names_list_item_and_line(tmp_path):
    text = "data:\n  train: x.npz\nmodel:\n  layers:\n    - units: 32\n    - units: 0\n"
    path = write(tmp_path, text)
    expected = re.escape("`model.layers[1].units` must be a positive integer. Received: 0 (") + r".*spec\.yaml, line 6\)\. Use e\.g\. 64 \(the default\)\."
    with pytest.raises(SpecError, match=expected):
        load_spec(path)


def test_fraction_range_error(tmp_path):
    path = write(tmp_path, "data:\n  train: x.npz\n  validation_split: 1.0\n")
    with pytest.raises(SpecError, match=r"`data\.validation_split` must be a fraction in \[0, 1\)\. Received: 1\.0 \(.*line 3\)\. Use e\.g\. 0\.2"):
        load_spec(path)


def test_invalid_literal_suggests_closest(tmp_path):
    path = write(tmp_path, MINIMAL + "training:\n  optimizer: adm\n")
    with pytest.raises(
        SpecError,
        match=r"`training\.optimizer` must be one of 'adam', 'adamw', 'rmsprop', 'sgd'\. Received: 'adm' \(.*line 3\)\..*Did you mean 'adam'\?",
    ):
        load_spec(path)


# --------------------------------------------------------------------------- layer and training options


def test_layer_and_training_options_parse(tmp_path):
    text = MINIMAL + (
        "model:\n  layers: [{units: 8, cell: gru, bidirectional: true}, {units: 4}]\n  dense: [{units: 16, dropout: 0.2}]\n"
        "training:\n  class_weight: {rare: 4, 1: 2.5, '0': 1}\n  label_smoothing: 0.1\n  lr_schedule: {factor: 0.2, patience: 3}\n"
    )
    spec = load_spec(write(tmp_path, text))
    assert spec.model.layers[0] == RecurrentLayer(units=8, cell="gru", bidirectional=True)
    assert spec.model.layers[1] == RecurrentLayer(units=4, cell="lstm", bidirectional=False)
    assert spec.training.class_weight == {"rare": 4.0, "1": 2.5, "0": 1.0}  # class names as text, like the labels
    assert spec.training.label_smoothing == 0.1
    assert spec.training.lr_schedule == LRScheduleSpec(type="reduce_on_plateau", factor=0.2, patience=3, min_delta=0.0, min_lr=0.0, monitor=None)
    assert load_spec(write(tmp_path, MINIMAL + "training: {class_weight: balanced}\n", "b.yaml")).training.class_weight == "balanced"
    # --set fills a null section from its defaults
    on = load_spec(write(tmp_path, MINIMAL, "c.yaml"), ["training.lr_schedule.type=cosine", "training.class_weight.rare=3"])
    assert on.training.lr_schedule == LRScheduleSpec(type="cosine") and on.training.class_weight == {"rare": 3.0}


BAD_OPTIONS = {
    "cell": ("model:\n  layers: [{cell: gur}]\n", r"`model\.layers\[0\]\.cell` must be one of 'lstm', 'gru'\. Received: 'gur' \(.*line 3\)\. .*Did you mean 'gru'\?"),
    "bidirectional": ("model:\n  layers: [{bidirectional: 'yes'}]\n", r"`model\.layers\[0\]\.bidirectional` must be true or false\. Received: 'yes' \(.*line 3\)\. Write true or false without quotes"),
    "class-weight-typo": ("training:\n  class_weight: balancd\n", r"`training\.class_weight` must be 'balanced'\. Received: 'balancd' \(.*line 3\)\. .*Did you mean 'balanced'\?"),
    "class-weight-number": (
        "training:\n  class_weight: 2\n",
        r"`training\.class_weight` must be 'balanced' or a mapping of names to numbers or null\. Received: 2 \(.*line 3\)\. See the spec reference",
    ),
    "class-weight-zero": (
        "training:\n  class_weight: {a: 0}\n",
        r"`training\.class_weight` must be 'balanced', or a mapping of class names to positive weights\. Received: a mapping \{'a': 0\.0\} \(.*line 3\)\. "
        r"Use one of those, or remove the key for the default \(null\)\.",
    ),
    "class-weight-text": ("training:\n  class_weight: {a: heavy}\n", r"`training\.class_weight\.a` must be a number\. Received: 'heavy' \(.*line 3\)\."),
    "class-weight-yaml-boolean": (
        "training:\n  class_weight: {yes: 2, no: 1}\n",
        r"`training\.class_weight` must be a mapping with names as keys\. Received: .*The key true is not a name: YAML reads unquoted yes/no.*Quote it, e\.g\. 'yes': 2\.0\.",
    ),
    "label-smoothing": ("training:\n  label_smoothing: 1\n", r"`training\.label_smoothing` must be a fraction in \[0, 1\)\. Received: 1\.0 \(.*line 3\)\. Use e\.g\. 0\.0 \(the default\)"),
    "schedule-type": ("training:\n  lr_schedule: {type: plateau}\n", r"`training\.lr_schedule\.type` must be one of 'reduce_on_plateau', 'cosine', 'exponential'\. Received: 'plateau'"),
    "schedule-factor": ("training:\n  lr_schedule: {factor: 1.5}\n", r"`training\.lr_schedule\.factor` must be a fraction in \(0, 1\)\. Received: 1\.5 \(.*line 3\)\. Use e\.g\. 0\.5 \(the default\)"),
    "schedule-patience": ("training:\n  lr_schedule: {patience: 0}\n", r"`training\.lr_schedule\.patience` must be a positive integer\. Received: 0"),
    "schedule-min-lr": ("training:\n  lr_schedule: {min_lr: -0.1}\n", r"`training\.lr_schedule\.min_lr` must be a non-negative number\. Received: -0\.1"),
    "schedule-monitor": (
        "training:\n  lr_schedule: {monitor: val_auc}\n",
        r"`training\.lr_schedule\.monitor` must be one of 'val_loss', 'val_accuracy', 'val_mae', 'val_rmse', 'loss', 'accuracy', 'mae', 'rmse'\. "
        r"Received: 'val_auc' \(.*line 3\)\. Use one of the listed values",
    ),
    "pooling-typo": (
        "model:\n  pooling: [mean, avg]\n",
        r"`model\.pooling\[1\]` must be one of 'last', 'mean', 'max', 'attention'\. Received: 'avg' \(.*line 3\)\. Use one of the listed values",
    ),
    "pooling-not-a-list": ("model:\n  pooling: mean\n", r"`model\.pooling` must be a list\. Received: 'mean' \(.*line 3\)\. Write it as a YAML list"),
    "conv-stride-zero": ("model:\n  frontend: {blocks: [{stride: 0}]}\n", r"`model\.frontend\.blocks\[0\]\.stride` must be a positive integer\. Received: 0 \(.*line 3\)\. Use e\.g\. 1"),
    "conv-normalization": (
        "model:\n  fcn: {normalization: group}\n",
        r"`model\.fcn\.normalization` must be one of 'layer', 'batch', 'none'\. Received: 'group' \(.*line 3\)\. Use one of the listed values",
    ),
    "frontend-unknown-key": ("model:\n  frontend: {filters: 8}\n", r"Unknown key `model\.frontend\.filters` .*`filters` belongs in each item of `model\.frontend\.blocks`"),
    "layer-norm-not-bool": ("model:\n  layers: [{layer_norm: 1}]\n", r"`model\.layers\[0\]\.layer_norm` must be true or false\. Received: 1"),
    "clip-norm-zero": ("training:\n  clip_norm: 0\n", r"`training\.clip_norm` must be a positive number\. Received: 0\.0 \(.*line 3\)\. Use one of those, or remove the key for the default \(null\)"),
    "weight-decay-negative": ("training:\n  weight_decay: -0.01\n", r"`training\.weight_decay` must be a non-negative number\. Received: -0\.01"),
    "schedule-not-mapping": ("training:\n  lr_schedule: cosine\n", r"`training\.lr_schedule` must be a mapping of keys to values\. Received: 'cosine' \(.*line 3\)\. Write it as `key: value` lines"),
}


@pytest.mark.parametrize("case", list(BAD_OPTIONS))
def test_bad_layer_and_training_options(tmp_path, case):
    extra, message = BAD_OPTIONS[case]
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, MINIMAL + extra))


def test_missing_data_train(tmp_path):
    path = write(tmp_path, "data:\n  test: t.npz\n")
    with pytest.raises(SpecError, match=r"`data\.train` is required but missing \(.*spec\.yaml, line 1\)\..*Add `train:` under `data`"):
        load_spec(path)


# --------------------------------------------------------------------------- YAML-level errors


def test_malformed_yaml_reports_line_and_column(tmp_path):
    path = write(tmp_path, "data:\n  train: x.npz\n  format: npz: extra\n")
    with pytest.raises(SpecError, match=r"is not valid YAML at line 3, column 14: mapping values are not allowed here\. Check the indentation"):
        load_spec(path)


def test_duplicate_keys_rejected_with_both_lines(tmp_path):
    path = write(tmp_path, "data:\n  train: a.npz\ntraining:\n  epochs: 3\n  batch_size: 8\n  epochs: 5\n")
    with pytest.raises(SpecError, match=r"`training\.epochs` appears twice in .*spec\.yaml \(lines 4 and 6\).*Delete one of them\."):
        load_spec(path)


def test_duplicate_keys_in_list_item(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  layers:\n    - units: 3\n    - units: 3\n      units: 4\n")
    with pytest.raises(SpecError, match=r"`model\.layers\[1\]\.units` appears twice .*\(lines 5 and 6\)"):
        load_spec(path)


def test_empty_file_reports_missing_data(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(SpecError, match=r"`data` is required but missing \(.*spec\.yaml\)\..*Add `data:`"):
        load_spec(path)


def test_top_level_list_is_rejected(tmp_path):
    path = write(tmp_path, "- data\n- model\n")
    with pytest.raises(SpecError, match=r"spec\.yaml must hold a YAML mapping with the sections data, .*Received: a list \['data', 'model'\]"):
        load_spec(path)


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match=r"Spec file .*nope\.yaml does not exist\. Check the path"):
        load_spec(tmp_path / "nope.yaml")


# --------------------------------------------------------------------------- --set overrides


def test_set_overrides_int_and_wins_over_file(tmp_path):
    path = write(tmp_path, MINIMAL + "training:\n  epochs: 5\n")
    spec = load_spec(path, ["training.epochs=3", "training.optimizer=sgd"])
    assert spec.training.epochs == 3
    assert spec.training.optimizer == "sgd"
    assert spec.training.batch_size == 32  # untouched siblings keep their defaults


def test_set_nested_list_index(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  layers:\n    - units: 8\n    - units: 4\n")
    spec = load_spec(path, ["model.layers[0].units=64"])
    assert [layer.units for layer in spec.model.layers] == [64, 4]


def test_set_list_index_without_layers_key_uses_default_list(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  dense: [{units: 3}]\n")
    spec = load_spec(path, ["model.layers[0].units=7"])
    assert spec.model.layers == [RecurrentLayer(units=7)]
    assert [d.units for d in spec.model.dense] == [3]


def test_set_list_index_without_model_section(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL), ["model.layers[0].dropout=0.5"])
    assert spec.model.layers == [RecurrentLayer(units=64, dropout=0.5)]


def test_set_index_out_of_range(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(
        SpecError,
        match=re.escape("`--set model.layers[2].units=64`: `model.layers` has 1 item(s), so index [2] does not exist. Add the item in the spec file first."),
    ):
        load_spec(path, ["model.layers[2].units=64"])


def test_set_without_equals_is_malformed(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(SpecError, match=r"`--set training\.epochs` is not PATH=VALUE\. Write it like `--set training\.epochs=3`"):
        load_spec(path, ["training.epochs"])


def test_set_unknown_key_names_the_override(tmp_path):
    path = write(tmp_path, MINIMAL)
    with pytest.raises(SpecError, match=r"Unknown key `training\.epoch` \(from `--set training\.epoch=3`\)\..*Did you mean `training\.epochs`\?"):
        load_spec(path, ["training.epoch=3"])


def test_set_bad_value_names_the_override(tmp_path):
    path = write(tmp_path, MINIMAL + "model:\n  layers:\n    - units: 8\n")
    with pytest.raises(SpecError, match=re.escape("`model.layers[0].units` must be a positive integer. Received: 0 (from `--set model.layers[0].units=0`).")):
        load_spec(path, ["model.layers[0].units=0"])


# --------------------------------------------------------------------------- maxlen


@pytest.mark.parametrize(("text", "expected"), [("null", None), ("100", 100), ("p95", "p95"), ("p100", "p100")])
def test_maxlen_accepts(tmp_path, text, expected):
    spec = load_spec(write(tmp_path, MINIMAL + f"preprocessing:\n  maxlen: {text}\n"))
    assert spec.preprocessing.maxlen == expected


@pytest.mark.parametrize(("text", "shown"), [("p0", "'p0'"), ("0", "0"), ("abc", "'abc'"), ("p101", "'p101'")])
def test_maxlen_rejects(tmp_path, text, shown):
    path = write(tmp_path, MINIMAL + f"preprocessing:\n  maxlen: {text}\n")
    expected = (
        r"`preprocessing\.maxlen` must be null \(the longest training sequence\), a positive integer, or a percentile such as 'p95'\. "
        rf"Received: {re.escape(shown)} \(.*line 3\)\. Use one of those, or remove the key for the default \(null\)\."
    )
    with pytest.raises(SpecError, match=expected):
        load_spec(path)


# --------------------------------------------------------------------------- text, JSON Lines and token options


def test_text_and_token_defaults_keep_existing_specs_unchanged(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    pp = spec.preprocessing
    assert (pp.input, pp.encoding, pp.pad_code) == ("auto", "embedding", 0)
    assert (pp.text.level, pp.text.max_tokens, pp.text.lowercase, pp.text.strip_punctuation, pp.text.oov_token) == ("word", None, True, None, "[UNK]")
    assert (spec.data.jsonl.id_key, spec.data.jsonl.sequence_key, spec.data.jsonl.text_key, spec.data.jsonl.label_key) == ("id", "sequence", "text", "label")
    assert spec.data.csv.text_column == "text"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("preprocessing:\n  text:\n    max_tokens: 2\n", r"`preprocessing\.text\.max_tokens` must be an integer >= 3 \(padding, the OOV entry and at least one token\), or null\. Received: 2 "),
        ("preprocessing:\n  text:\n    level: chars\n", r"`preprocessing\.text\.level` must be one of 'word', 'char'\. Received: 'chars' \(.*line 4\)\. .*Did you mean 'char'"),
        ("preprocessing:\n  encoding: onehot\n", r"`preprocessing\.encoding` must be one of 'embedding', 'one_hot', 'float'\. Received: 'onehot' .*Did you mean 'one_hot'\?"),
        ("preprocessing:\n  pad_code: -1.5\n", r"`preprocessing\.pad_code` must be an integer or null\. Received: -1\.5 \(.*line 3\)"),
        ("preprocessing:\n  text:\n    oov_token: 5\n", r"`preprocessing\.text\.oov_token` must be a string or null\. Received: 5"),
        ("preprocessing:\n  level: char\n", r"Unknown key `preprocessing\.level` .* `level` belongs under `preprocessing\.text`: move it to `preprocessing\.text\.level`\."),
        ("data:\n  jsonl:\n    label: y\n", r"Unknown key `data\.jsonl\.label` .*Valid keys in `data\.jsonl`: id_key, sequence_key, text_key, label_key\. Did you mean `data\.jsonl\.label_key`\?"),
    ],
    ids=["max-tokens", "level", "encoding", "pad-code", "oov-token", "level-misplaced", "jsonl-key"],
)
def test_text_and_token_options_are_validated(tmp_path, text, message):
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, _merge_minimal(text)))


@pytest.mark.parametrize(("text", "expected"), [("';'", ";"), ('"\\t"', "\t"), ("'|'", "|"), ("null", None)])
def test_csv_delimiter_accepts(tmp_path, text, expected):
    assert load_spec(write(tmp_path, _merge_minimal(f"data:\n  csv: {{delimiter: {text}}}\n"))).data.csv.delimiter == expected


@pytest.mark.parametrize(("text", "shown"), [("';;'", "';;'"), ("'\\t'", "'\\\\t'"), ("''", "''"), ("'\"'", "'\"'")])
def test_csv_delimiter_rejects(tmp_path, text, shown):
    message = rf"`data\.csv\.delimiter` must be a single character such as ',', ';', '\|' or \"\\t\" \(a tab: in double quotes\), or null .*Received: {re.escape(shown)} \(.*line 3\)"
    with pytest.raises(SpecError, match=message):
        load_spec(write(tmp_path, _merge_minimal(f"data:\n  csv: {{delimiter: {text}}}\n")))


# --------------------------------------------------------------------------- cross-field rules

CROSS_FIELD = {
    "non_last_no_sequences": (
        "model:\n  layers: [{units: 4, return_sequences: false}, {units: 3}]\n",
        r"`model\.layers\[0\]\.return_sequences` is false, but `model\.layers\[1\]` is another LSTM.*Remove the key \(seqcli sets it\) or set it to true\.",
    ),
    "last_returns_sequences": (
        "model:\n  layers: [{units: 4}, {units: 5, return_sequences: true}]\n",
        r"`model\.layers\[1\]\.return_sequences` is true for the last LSTM: its output is per timestep \(batch, timesteps, 5\).*Remove the key",
    ),
    "val_monitor_without_validation": (
        "data:\n  validation_split: 0\n",
        r"`training\.monitor` is 'val_loss' but there is no validation data.*Set `training\.monitor: loss`, or hold out data with `data\.validation_split: 0\.2`\.",
    ),
    "auc_without_sigmoid": (
        "training:\n  metrics: [accuracy, auc]\n",
        r"`training\.metrics` has 'auc', which needs .*`model\.output: sigmoid`\. Remove 'auc' or set `model\.output: sigmoid`\.",
    ),    "encoding_with_float_input": (
        "preprocessing:\n  input: float\n  encoding: one_hot\n",
        r"`preprocessing\.encoding: one_hot` applies to integer token codes and text, but `preprocessing\.input` is 'float'.*Remove `encoding`, or set `input: tokens`",
    ),
    "text_from_numpy_format": (
        "data:\n  format: npz\npreprocessing:\n  input: text\n",
        r"`preprocessing\.input: text` reads raw text from \.csv, \.jsonl or \.txt files, but `data\.format` is 'npz'\. Set `data\.format: auto`",
    ),
    "last_bidirectional_gru_returns_sequences": (
        "model:\n  layers: [{units: 5, cell: gru, bidirectional: true, return_sequences: true}]\n",
        r"`model\.layers\[0\]\.return_sequences` is true for the last GRU: its output is per timestep \(batch, timesteps, 10\).*false for the last GRU\), or set `task: tag` to label every timestep\.",
    ),
    "tag_last_layer_without_sequences": (
        "task: tag\nmodel:\n  layers: [{units: 4}, {units: 5, return_sequences: false}]\n",
        r"`model\.layers\[1\]\.return_sequences` is false, but `task: tag` predicts one label per timestep.*Remove the key \(seqcli sets it to true\)\.",
    ),
    "tag_with_sigmoid": (
        "task: tag\nmodel:\n  output: sigmoid\n",
        r"`task: tag` predicts a softmax over the classes at every timestep, but `model\.output` is 'sigmoid'\. Set `model\.output: softmax`",
    ),
    "tag_with_label_smoothing": ("task: tag\ntraining:\n  label_smoothing: 0.1\n", r"`training\.label_smoothing` is not supported with `task: tag`"),
    "tag_with_class_weight": ("task: tag\ntraining:\n  class_weight: balanced\n", r"`training\.class_weight` is not supported with `task: tag`"),
    "tag_with_text": ("task: tag\npreprocessing:\n  input: text\n", r"`task: tag` needs one label per timestep of numeric sequences, but `preprocessing\.input: text`"),
    "schedule_monitor_without_validation": (
        "data:\n  validation_split: 0\ntraining:\n  monitor: loss\n  lr_schedule: {monitor: val_loss}\n",
        r"`training\.lr_schedule\.monitor` is 'val_loss' but there is no validation data.*Set `training\.lr_schedule\.monitor: loss`",
    ),
    "schedule_monitor_metric_not_logged": (
        "training:\n  metrics: []\n  monitor: loss\n  lr_schedule: {monitor: accuracy}\n",
        r"`training\.lr_schedule\.monitor` is 'accuracy' but 'accuracy' is not in `training\.metrics`\. Add it there\.",
    ),
    "schedule_min_lr_not_below_rate": (
        "training:\n  learning_rate: 0.01\n  lr_schedule: {min_lr: 0.01}\n",
        r"`training\.lr_schedule\.min_lr` \(0\.01\) is not below `training\.learning_rate` \(0\.01\), so the schedule could never lower the rate\. Lower `min_lr`",
    ),
    "duplicate_times_without_time_column": (
        "data:\n  csv: {allow_duplicate_times: true, time_column: null}\n",
        r"`data\.csv\.allow_duplicate_times` is true, but `data\.csv\.time_column` is null: rows keep their file order .*Remove one of the two\.",
    ),
    "pooling_empty": ("model:\n  pooling: []\n", r"`model\.pooling` is empty, so the recurrent outputs would never become one vector per sequence\. Remove the key for the default \[last\]"),
    "pooling_repeated": ("model:\n  pooling: [mean, last, mean]\n", r"`model\.pooling` is \[mean, last, mean\]: mean appears more than once .*List each head once"),
    "pooling_per_timestep": (
        "task: tag\nmodel:\n  pooling: [last, attention]\n",
        r"`model\.pooling` is \[last, attention\], but `task: tag` predicts one label per timestep, so nothing is pooled over time\. Remove `model\.pooling`",
    ),
    "pooling_last_layer_without_sequences": (
        "model:\n  layers: [{units: 4}, {units: 3, return_sequences: false}]\n  pooling: [max]\n",
        r"`model\.layers\[1\]\.return_sequences` is false, but `model\.pooling` \[max\] pools the last layer's outputs over time.*Remove the key \(seqcli sets it\)\.",
    ),
    "frontend_without_blocks": ("model:\n  frontend: {blocks: []}\n", r"`model\.frontend\.blocks` is empty\. Give at least one block, .*or remove `model\.frontend` for none\."),
    "frontend_stride_with_pre_padding": (
        "preprocessing:\n  padding: pre\nmodel:\n  frontend: {blocks: [{}, {stride: 2}]}\n",
        r"`model\.frontend\.blocks\[1\]\.stride` is 2, which shortens the sequence, but `preprocessing\.padding` is 'pre': .*Set `preprocessing\.padding: post` \(the default\), or stride and pool 1",
    ),
    "fcn_pool_with_pre_padding": (
        "preprocessing:\n  padding: pre\nmodel:\n  fcn: {blocks: [{pool: 3}]}\n",
        r"`model\.fcn\.blocks\[0\]\.pool` is 3, which shortens the sequence, but `preprocessing\.padding` is 'pre'",
    ),
    "frontend_pool_per_timestep": (
        "task: regress_timesteps\nmodel:\n  frontend: {blocks: [{pool: 2}]}\n",
        r"`model\.frontend\.blocks\[0\]\.pool` is 2, which shortens the sequence, but `task: regress_timesteps` predicts one target per input timestep\. Set stride and pool to 1",
    ),
    "fcn_per_timestep": ("task: tag\nmodel:\n  fcn: {}\n", r"`model\.fcn` adds one vector per sequence \(its average over time\), but `task: tag` predicts one label per timestep\. Remove"),
    "ngrams_per_timestep": ("task: tag\nmodel:\n  ngrams: {}\n", r"`model\.ngrams` adds one vector per sequence .* but `task: tag` predicts one label per timestep\. Remove `model\.ngrams`\."),
    "ngrams_on_floats": (
        "preprocessing:\n  input: float\nmodel:\n  ngrams: {}\n",
        r"`model\.ngrams` hashes token codes, but `preprocessing\.input` is 'float'.*Remove `model\.ngrams`, or read the data as `input: tokens` or `text`\.",
    ),
    "kernels_per_timestep": ("task: tag\nmodel:\n  kernels: {}\n", r"`model\.kernels` adds one vector per sequence .* but `task: tag` predicts one label per timestep\. Remove `model\.kernels`\."),
    "kernels_on_tokens": (
        "preprocessing:\n  input: tokens\nmodel:\n  kernels: {}\n",
        r"`model\.kernels` convolves real-valued series, but `preprocessing\.input` is 'tokens'.*Remove `model\.kernels`, or read the data as `input: float`\.",
    ),
    "label_smoothing_with_sparse_loss": (
        "training:\n  loss: sparse_categorical_crossentropy\n  label_smoothing: 0.1\n",
        r"`training\.label_smoothing` needs one-hot targets, so seqcli trains with categorical cross-entropy .*Set `training\.loss: auto`\.",
    ),
}


def _merge_minimal(extra: str) -> str:
    if extra.startswith("data:\n"):
        return "data:\n  train: x.npz\n" + extra.removeprefix("data:\n")
    return MINIMAL + extra


@pytest.mark.parametrize("case", list(CROSS_FIELD))
def test_cross_field_rules(tmp_path, case):
    extra, message = CROSS_FIELD[case]
    path = write(tmp_path, _merge_minimal(extra))
    with pytest.raises(SpecError, match=message):
        load_spec(path)


@pytest.mark.parametrize("case", list(CROSS_FIELD))
def test_non_strict_skips_cross_field_rules(tmp_path, case):
    extra, message = CROSS_FIELD[case]
    spec = load_spec(write(tmp_path, _merge_minimal(extra)), strict=False)
    problems = cross_field_problems(spec)
    assert len(problems) == 1
    assert re.search(message, problems[0])


def test_cross_field_ok_cases(tmp_path):
    # validation_split 0 is fine with a separate validation file, or when monitoring training loss
    with_file = load_spec(write(tmp_path, "data:\n  train: x.npz\n  validation: v.npz\n  validation_split: 0\n", "a.yaml"))
    on_loss = load_spec(write(tmp_path, "data:\n  train: x.npz\n  validation_split: 0\ntraining:\n  monitor: loss\n", "b.yaml"))
    auc = load_spec(write(tmp_path, MINIMAL + "model:\n  output: sigmoid\ntraining:\n  metrics: [accuracy, auc]\n", "c.yaml"))
    assert with_file.data.validation_split == 0.0
    assert on_loss.training.monitor == "loss"
    assert auc.training.metrics == ["accuracy", "auc"]
    assert [cross_field_problems(s) for s in (with_file, on_loss, auc)] == [[], [], []]


def test_model_pieces_parse_and_stay_off_by_default(tmp_path):
    """Every new piece is off in a spec that does not name it; each, when named, gets its documented defaults."""
    default = load_spec(write(tmp_path, MINIMAL + "recipe: plain\n", "a.yaml"))
    assert (default.model.frontend, default.model.fcn, default.model.pooling) == (None, None, ["last"])
    assert not default.model.layers[0].layer_norm and (default.training.clip_norm, default.training.weight_decay) == (None, None)
    text = MINIMAL + "model:\n  frontend: {}\n  fcn: {}\n  pooling: [mean, attention]\n  layers: [{units: 4, layer_norm: true, return_sequences: true}]\n"
    text += "training:\n  clip_norm: 1\n  weight_decay: 0.01\n"
    spec = load_spec(write(tmp_path, text, "b.yaml"))  # an explicit return_sequences: true on the last layer is what pooling needs
    assert spec.model.frontend == FrontendSpec(blocks=[ConvBlock(filters=64, kernel_size=5, stride=1, pool=1)], normalization="layer", activation="relu")
    assert spec.model.fcn == FcnSpec(blocks=[ConvBlock(128, 8), ConvBlock(256, 5), ConvBlock(128, 3)], normalization="batch", activation="relu")
    assert spec.model.pooling == ["mean", "attention"] and spec.model.layers[0].layer_norm and (spec.training.clip_norm, spec.training.weight_decay) == (1.0, 0.01)
    assert load_spec(write(tmp_path, MINIMAL + "preprocessing: {padding: pre}\nmodel:\n  frontend: {}\n", "c.yaml")).preprocessing.padding == "pre"  # stride and pool 1: fine
    on = load_spec(write(tmp_path, MINIMAL + "recipe: plain\n", "d.yaml"), ["model.frontend.normalization=batch"])  # --set fills the null section from its defaults
    assert on.model.frontend == FrontendSpec(normalization="batch")


def test_a_minimal_spec_gets_the_recommended_recipe_and_a_spec_with_its_own_model_does_not(tmp_path):
    minimal = load_spec(write(tmp_path, MINIMAL, "a.yaml"))
    assert minimal.recipe == "recommended"
    assert minimal.model.frontend == RECIPE_FRONTEND and minimal.model.fcn == RECIPE_FCN and minimal.model.kernels == KernelsSpec() and minimal.model.layers == [RecurrentLayer(units=64)]
    assert (minimal.training.epochs, minimal.training.batch_size, minimal.training.early_stopping) == (300, 16, EarlyStoppingSpec(patience=50))
    assert minimal.preprocessing.shorten == 512
    # a --set does not switch the recipe off (the file's own sections decide), and what it sets wins
    tried = load_spec(write(tmp_path, MINIMAL, "b.yaml"), ["training.epochs=3", "model.fcn=null"])
    assert (tried.recipe, tried.training.epochs, tried.training.batch_size, tried.model.fcn) == ("recommended", 3, 16, None)
    own = load_spec(write(tmp_path, MINIMAL + "training:\n  epochs: 5\n", "c.yaml"))
    assert (own.recipe, own.model.fcn, own.training.batch_size, own.training.early_stopping) == ("plain", None, 32, EarlyStoppingSpec(patience=10))
    asked = load_spec(write(tmp_path, MINIMAL + "recipe: recommended\ntraining:\n  epochs: 5\n", "d.yaml"))
    assert (asked.model.fcn, asked.training.epochs, asked.training.batch_size) == (RECIPE_FCN, 5, 16)
    assert load_spec(write(tmp_path, MINIMAL, "e.yaml"), ["recipe=plain"]).model.fcn is None
    tagged = load_spec(write(tmp_path, MINIMAL + "task: tag\nrecipe: recommended\n", "f.yaml"))  # no FCN or kernels: they reduce over time
    assert (tagged.model.frontend, tagged.model.fcn, tagged.model.kernels, tagged.preprocessing.shorten, tagged.training.epochs) == (None, None, None, None, 300)  # and every timestep has a target
    texts = load_spec(write(tmp_path, MINIMAL + "recipe: recommended\npreprocessing: {input: text}\n", "t.yaml"))  # codes keep their length
    assert (texts.preprocessing.shorten, texts.model.fcn, texts.model.kernels) == (512, RECIPE_FCN, None)  # and are not convolved as values
    assert texts.model.frontend == RECIPE_FRONTEND
    pre = load_spec(write(tmp_path, MINIMAL + "preprocessing: {padding: pre}\n", "p.yaml"))  # a pool would keep timesteps that depend on the padding
    assert (pre.recipe, pre.model.frontend, pre.model.fcn, cross_field_problems(pre)) == ("recommended", None, FcnSpec(), [])
    pre_set = load_spec(write(tmp_path, MINIMAL, "p.yaml"), ["preprocessing.padding=pre"])  # the same by --set
    assert (pre_set.model.frontend, pre_set.model.fcn) == (None, FcnSpec())
    normalized = load_spec(write(tmp_path, MINIMAL, "n.yaml"), ["model.frontend.normalization=batch"])  # --set changes one key of the recipe's front-end
    assert normalized.model.frontend == FrontendSpec(blocks=[ConvBlock(pool=4)], normalization="batch")
    with pytest.raises(SpecError, match=r"`model\.frontend\.blocks\[0\]\.pool` is 4.* The recommended recipe sets these pools .* set `recipe: plain`"):
        load_search(write(tmp_path, MINIMAL + "tune:\n  preprocessing.padding: [post, pre]\n", "s.yaml"))  # a tuned value applies after the recipe
    assert load_spec(write(tmp_path, MINIMAL + "task: tag\n", "g.yaml")).recipe == "plain"
    assert load_spec(write(tmp_path, MINIMAL + "preprocessing: {input: tokens}\n", "h.yaml")).recipe == "plain"  # measured on float series only
    saved = spec_from_dict(yaml.safe_load(to_yaml(minimal)))  # a run's spec.yaml holds every value the recipe gave
    assert saved == minimal


def test_the_recipe_trains_on_the_whole_file_only_when_a_test_file_judges_it(tmp_path):
    """With a test file and nothing said about validation, the recipe holds out nothing and keeps the epoch of lowest
    training loss, also under a --set that creates a section from the field defaults; a validation file, a validation
    split (in the file or by --set), no test file, a spec of its own, a monitor on validation data or a tune section
    keep validation as the field defaults have it."""
    tested = "data: {train: x.npz, test: t.npz}\n"
    whole = load_spec(write(tmp_path, tested, "a.yaml"))
    assert (whole.data.validation_split, whole.training.monitor) == (0.0, "loss") and cross_field_problems(whole) == []
    for sets in (["training.epochs=10"], ["training.lr_schedule.type=cosine"], ["output.dir=elsewhere", "seed=3"]):  # sections --set creates from the defaults
        also = load_spec(write(tmp_path, tested, "a.yaml"), sets)
        assert (also.data.validation_split, also.training.monitor) == (0.0, "loss"), sets
    tagged = load_spec(write(tmp_path, tested, "a.yaml"), ["task=tag"])  # the recipe's pieces follow the task and input --set gives
    assert (tagged.model.frontend, tagged.model.fcn, tagged.model.kernels, tagged.preprocessing.shorten) == (None, None, None, None)
    assert load_spec(write(tmp_path, tested, "a.yaml"), ["preprocessing.input=tokens"]).model.kernels is None
    kept = [
        load_spec(write(tmp_path, MINIMAL, "b.yaml")),
        load_spec(write(tmp_path, "data: {train: x.npz, test: t.npz, validation_split: 0.1}\n", "c.yaml")),
        load_spec(write(tmp_path, "data: {train: x.npz, test: t.npz, validation: v.npz}\n", "d.yaml")),
        load_spec(write(tmp_path, tested, "e.yaml"), ["data.validation_split=0.3"]),
        load_spec(write(tmp_path, tested + "training: {epochs: 5}\n", "f.yaml")),
        load_spec(write(tmp_path, tested, "h.yaml"), ["training.monitor=val_accuracy"]),
        load_spec(write(tmp_path, tested + "recipe: recommended\ntraining: {lr_schedule: {monitor: val_loss}}\n", "i.yaml")),
    ]
    assert [(s.recipe, s.data.validation_split, s.training.monitor) for s in kept] == [
        ("recommended", 0.2, "val_loss"), ("recommended", 0.1, "val_loss"), ("recommended", 0.2, "val_loss"), ("recommended", 0.3, "val_loss"), ("plain", 0.2, "val_loss"),
        ("recommended", 0.2, "val_accuracy"), ("recommended", 0.2, "val_loss"),
    ]
    search = load_search(write(tmp_path, tested + "tune:\n  training.learning_rate: [0.001, 0.01]\n", "g.yaml"))
    assert (search.spec.recipe, search.spec.data.validation_split, search.spec.training.monitor) == ("recommended", 0.2, "val_loss")


def test_a_run_on_the_whole_training_file_says_so() -> None:
    """inspect-shapes and train note that the recipe held out no validation data, and how to get it back; not when it did."""
    from seqcli import shapes
    from tests.test_model_pieces import float_data

    def notes(validation_split: float, monitor: str) -> str:
        raw = {"data": {"train": "x.npy", "validation_split": validation_split}, "preprocessing": {"bucketing": False}, "training": {"monitor": monitor}, "recipe": "recommended"}
        return " ".join(shapes.trace(spec_from_dict(raw), train=float_data()).notes)

    said = "No validation split: the model trains on the whole training file, keeps the epoch with the lowest training loss, and the test file judges it."
    assert said in notes(0.0, "loss") and "`data.validation_split: 0.2`" in notes(0.0, "loss")
    assert said not in notes(0.2, "val_loss")


def test_cross_field_problems_lists_all(tmp_path):
    text = "data:\n  train: x.npz\n  validation_split: 0\nmodel:\n  layers: [{units: 4, return_sequences: true}]\ntraining:\n  metrics: [auc]\n"
    problems = cross_field_problems(load_spec(write(tmp_path, text), strict=False))
    assert len(problems) == 3
    assert problems[0].startswith("`model.layers[0].return_sequences` is true")
    assert problems[1].startswith("`training.monitor` is 'val_loss'")
    assert problems[2].startswith("`training.metrics` has 'auc'")


# --------------------------------------------------------------------------- round trip and reference


def test_to_yaml_round_trip(tmp_path):
    text = (
        "data:\n  train: x.npz\n  test: {path: t.npy, labels: l.npy}\n"
        "preprocessing:\n  maxlen: p90\n"
        "model:\n  layers: [{units: 8}, {units: 4, dropout: 0.25}]\n  dense: [{units: 16, activation: gelu}]\n"
        "training:\n  epochs: 2\n  early_stopping: null\n  class_weight: {1: 2, b: 0.5}\n  lr_schedule: {type: exponential, factor: 0.9}\n"
    )
    spec = load_spec(write(tmp_path, text))
    dumped = to_yaml(spec)
    raw = yaml.safe_load(dumped)
    assert list(raw) == ["data", "preprocessing", "model", "training", "output", "seed", "backend", "task", "inputs", "input_name", "recipe"]
    again = spec_from_dict(raw)
    assert again == spec
    assert again.model.layers[1].dropout == 0.25
    assert again.preprocessing.maxlen == "p90"
    assert again.training.early_stopping is None
    assert again.training.class_weight == {"1": 2.0, "b": 0.5} and again.training.lr_schedule == LRScheduleSpec(type="exponential", factor=0.9)


def test_spec_from_dict_validates(tmp_path):
    with pytest.raises(SpecError, match=re.escape("`training.epochs` must be a positive integer. Received: 0. Use e.g. 30 (the default).")):
        spec_from_dict({"data": {"train": "x.npz"}, "training": {"epochs": 0}})


EXPECTED_REFERENCE_KEYS = [
    "data.train", "data.validation", "data.test", "data.validation_split", "data.format", "data.layout",
    "data.npz.x", "data.npz.y", "data.npz.lengths",
    "data.csv.id_column", "data.csv.time_column", "data.csv.label_column", "data.csv.target_columns", "data.csv.feature_columns", "data.csv.text_column",
    "data.csv.delimiter", "data.csv.allow_scattered_ids", "data.csv.allow_duplicate_times",
    "data.jsonl.id_key", "data.jsonl.sequence_key", "data.jsonl.text_key", "data.jsonl.label_key", "data.target_names",
    "preprocessing.input", "preprocessing.encoding", "preprocessing.pad_code",
    "preprocessing.text.level", "preprocessing.text.max_tokens", "preprocessing.text.lowercase", "preprocessing.text.strip_punctuation", "preprocessing.text.oov_token",
    "preprocessing.maxlen", "preprocessing.padding", "preprocessing.truncating",
    "preprocessing.pad_value", "preprocessing.standardize", "preprocessing.znorm", "preprocessing.resample", "preprocessing.shorten", "preprocessing.bucketing", "preprocessing.bucket_boundaries",
    "model.frontend", "model.frontend.blocks[].filters", "model.frontend.blocks[].kernel_size", "model.frontend.blocks[].stride", "model.frontend.blocks[].pool",
    "model.frontend.normalization", "model.frontend.activation",
    "model.layers[].units", "model.layers[].cell", "model.layers[].bidirectional", "model.layers[].dropout", "model.layers[].recurrent_dropout", "model.layers[].return_sequences",
    "model.layers[].layer_norm", "model.pooling",
    "model.fcn", "model.fcn.blocks[].filters", "model.fcn.blocks[].kernel_size", "model.fcn.blocks[].stride", "model.fcn.blocks[].pool", "model.fcn.normalization", "model.fcn.activation",
    "model.kernels", "model.kernels.features",
    "model.ngrams", "model.ngrams.longest", "model.ngrams.buckets", "model.ngrams.dim",
    "model.dense[].units", "model.dense[].activation", "model.dense[].dropout",
    "model.embedding_dim", "model.output",
    "training.epochs", "training.batch_size", "training.optimizer", "training.learning_rate", "training.clip_norm", "training.weight_decay",
    "training.lr_schedule", "training.lr_schedule.type", "training.lr_schedule.factor", "training.lr_schedule.patience",
    "training.lr_schedule.min_delta", "training.lr_schedule.min_lr", "training.lr_schedule.monitor",
    "training.loss", "training.metrics", "training.monitor",
    "training.early_stopping", "training.early_stopping.patience", "training.early_stopping.min_delta",
    "training.shuffle", "training.class_weight",
    "training.augment.jitter", "training.augment.scaling", "training.augment.magnitude_warp", "training.augment.time_warp", "training.augment.window",
    "training.label_smoothing", "training.ensemble",
    "output.dir", "output.name", "output.tensorboard",
    "seed",
    "backend",
    "task", "inputs", "inputs.NAME.data", "inputs.NAME.preprocessing", "inputs.NAME.layers", "input_name", "recipe",
]  # fmt: skip


def test_reference_markdown_has_one_row_per_leaf_field():
    lines = reference_markdown().splitlines()
    assert lines[0] == "| key | type | default | meaning |"
    assert lines[1] == "|---|---|---|---|"
    keys = [re.match(r"\| `([^`]+)` \|", line).group(1) for line in lines[2:]]
    assert keys == EXPECTED_REFERENCE_KEYS
    rows = {k: line for k, line in zip(keys, lines[2:], strict=True)}
    assert rows["model.layers[].units"] == "| `model.layers[].units` | an integer | `64` | Hidden units (per direction when bidirectional). At most 16,384. |"
    assert rows["training.lr_schedule"].startswith("| `training.lr_schedule` | a mapping or null | `null` | ")  # an optional section, off by default
    assert rows["training.early_stopping"].startswith("| `training.early_stopping` | a mapping or null | a mapping | ")
    assert "| required |" in rows["data.train"]
    assert "| required |" in rows["model.dense[].units"]
    assert "| `null` |" in rows["training.metrics"]


def test_tag_task_implies_sequences_from_every_layer(tmp_path):
    """`task: tag` makes the last layer return sequences too; an explicit true there is no problem for tagging."""
    from seqcli.model import return_sequences

    spec = load_spec(write(tmp_path, MINIMAL + "task: tag\nmodel:\n  layers: [{units: 4}, {units: 5, return_sequences: true}]\n"))
    assert spec.task == "tag"
    assert return_sequences(spec.model.layers, per_timestep=True) == [True, True]
    assert return_sequences(load_spec(write(tmp_path, MINIMAL + "model:\n  layers: [{units: 4}, {units: 5}]\n")).model.layers, per_timestep=False) == [True, False]
