"""Multi-input models on the one pipeline path: length bucketing and per-timestep tasks, with padding invariance.

Runs on the session's backend; CI also runs this file under ``KERAS_BACKEND=jax`` (see ``.ci/run``), so both backends'
batches (tf.data and NumPy) and masks are checked.
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from seqcli import pipeline, train
from seqcli.cli import app
from seqcli.model import load_checkpoint
from seqcli.pipeline import Pipeline
from seqcli.sequences import Sequences
from seqcli.spec import load_spec
from tests.conftest import numpy_batches

runner = CliRunner()

# 12 samples: `motion` (2 features, 2-7 timesteps; tag: a label per timestep, the sign of feature 0) and `ctx` (1 feature,
# 1-3 timesteps, listed in reverse order; matched by id).
SPEC = """\
data:
  train: motion.jsonl
  test: motion.jsonl
  validation_split: 0
task: {task}
input_name: motion
inputs:
  ctx:
    data:
      train: ctx.jsonl
      test: ctx.jsonl
    layers: [{{units: 3}}]
model:
  layers: [{{units: 4}}]
training:
  epochs: 1
  batch_size: 4
  monitor: loss
seed: 3
output:
  dir: runs
"""


def write(folder: Path, task: str) -> Path:
    rng = np.random.default_rng(0)
    motion, ctx = [], []
    for k in range(12):
        x = rng.normal(size=(2 + k % 6, 2)).round(3)
        label: object = ["pos" if v > 0 else "neg" for v in x[:, 0]] if task == "tag" else ("up" if k % 2 else "down")
        motion.append({"id": f"s{k}", "sequence": x.tolist(), "label": label})
        ctx.append({"id": f"s{k}", "sequence": rng.normal(size=(1 + k % 3, 1)).round(3).tolist()})
    (folder / "motion.jsonl").write_text("".join(json.dumps(r) + "\n" for r in motion))
    (folder / "ctx.jsonl").write_text("".join(json.dumps(r) + "\n" for r in reversed(ctx)))
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(SPEC.format(task=task)))
    return path


def unbucketed(pipe: Pipeline) -> Pipeline:
    """The same pipeline and model with every input padded to its maxlen instead of bucketed."""
    return dataclasses.replace(pipe, preps={name: dataclasses.replace(p, boundaries=None) for name, p in pipe.preps.items()})


def test_bucketed_batches_pad_every_input_to_its_own_width(tmp_path: Path) -> None:
    pipe = pipeline.run(load_spec(write(tmp_path, "classify")))
    assert pipe.preps["motion"].boundaries == [7] and pipe.preps["ctx"].boundaries == [3]  # lengths vary in both: bucketed
    split = pipe.splits["train"]
    batches = numpy_batches(pipe.eval_batches(split))
    assert [len(y) for _, y in batches] == [4, 4, 4]
    motion, ctx = split.inputs["motion"].lengths, split.inputs["ctx"].lengths
    order = np.argsort(motion, kind="stable")  # evaluation batches go by the first input's length
    for (x, _), rows in zip(batches, np.split(order, 3), strict=True):
        if pipe.backend == "tensorflow":
            assert x["motion"].shape[1] == motion[rows].max()  # its batch's longest
        else:
            assert motion[rows].max() <= x["motion"].shape[1] <= 7  # that, rounded up to a shared width (few JAX compilations)
        assert x["ctx"].shape[1] >= ctx[rows].max() and x["ctx"].shape[1] <= 3


@pytest.mark.parametrize("task", ["classify", "tag"])
def test_bucketed_predictions_equal_padded_to_maxlen(tmp_path: Path, task: str) -> None:
    """Padding invariance through both branches and the merge: the same model predicts the same, whatever the batches' widths."""
    pipe = pipeline.run(load_spec(write(tmp_path, task)))
    split = pipe.splits["test"]
    bucketed = pipe.outputs(pipe.model, split)
    padded = unbucketed(pipe).outputs(pipe.model, split)
    if task == "tag":
        assert isinstance(bucketed, Sequences) and isinstance(padded, Sequences)
        assert bucketed.lengths.tolist() == split.inputs["motion"].lengths.tolist() and bucketed.cell_shape == (2,)
        bucketed, padded = bucketed.values, padded.values
    assert isinstance(bucketed, np.ndarray) and isinstance(padded, np.ndarray)
    np.testing.assert_allclose(bucketed, padded, atol=1e-5)


def test_per_timestep_task_with_two_inputs_trains_saves_and_predicts(tmp_path: Path) -> None:
    """`task: tag` with a second input: the second branch's vector joins every timestep of the first (AlongTime, masked like it)."""
    spec_file = write(tmp_path, "tag")
    pipe = train.prepare(load_spec(spec_file, [f"output.dir={tmp_path / 'runs'}"]))
    merge = pipe.model.get_layer("merge")
    assert type(merge).__name__ == "AlongTime" and tuple(merge.output.shape) == (None, None, 4 + 3)
    assert tuple(pipe.model.output.shape) == (None, None, 2)  # (batch, timesteps, classes)
    result = train.fit(pipe)
    saved = load_checkpoint(result.run.checkpoint_path("best"), compile=False)  # the custom layer loads in safe mode
    split = pipe.splits["test"]
    np.testing.assert_allclose(pipe.outputs(saved, split).values, pipe.outputs(pipe.model, split).values, atol=1e-6)
    predicted = runner.invoke(app, ["predict", str(result.run.path), "--input", f"motion={tmp_path / 'motion.jsonl'}", "--input", f"ctx={tmp_path / 'ctx.jsonl'}", "--format", "json"])
    assert predicted.exit_code == 0, predicted.output
    rows = json.loads(predicted.stdout)["predictions"]
    assert len(rows) == int(split.inputs["motion"].lengths.sum()) and rows[0]["id"] == "s0" and [r["timestep"] for r in rows[:2]] == [0, 1]


def test_inspect_shapes_shows_the_per_timestep_merge(tmp_path: Path) -> None:
    result = runner.invoke(app, ["inspect-shapes", str(write(tmp_path, "tag")), "--json"])
    assert result.exit_code == 0, result.output
    trace = json.loads(result.stdout)
    merge = trace["steps"][-1]
    assert (merge["name"], merge["shape"]) == ("merge", "(batch, timesteps, units=7)") and "At every timestep of 'motion'" in merge["detail"]
    assert [layer["name"] for layer in trace["layers"]][-2:] == ["merge", "output"]
