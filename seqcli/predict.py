"""Prediction: load a run, apply exactly its preprocessing, predict.

The run directory is all that is needed: the resolved spec (loader options),
the fitted preprocessing and the checkpoint. One unbatched sample, a
``(timesteps, features)`` array or a 1-D sequence, is predicted as a batch of one.
An ensemble (``training.ensemble: N``) predicts the mean of its members' outputs (class probabilities, or regression
predictions), each member from its own checkpoint, with one Keras model (:func:`seqcli.model.ensemble_model`).

Everything that needs no model comes first: the run's files and checkpoint are checked when it is opened, and the
input is read and checked against the run's preprocessing (features, classes) before the model is loaded, which
imports Keras (seconds), so that a mistake is reported at once.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqcli import __version__
from seqcli.errors import DataError, RunError
from seqcli.rundir import CHECKPOINTS, RunDir, describe_status, ensemble_size, member_file, member_progress
from seqcli.spec import TASK_KINDS, DataFile, Spec, spec_from_dict

if TYPE_CHECKING:  # the rest is imported where it is used: importing this module stays light, so `predict` checks --output first
    import numpy as np

    from seqcli.data import SequenceData
    from seqcli.pipeline import Pipeline, Split
    from seqcli.preprocess import Preprocessor
    from seqcli.tasks.base import Outputs


@dataclass
class LoadedRun:
    """A run opened for prediction: its pipeline rebuilt from the saved spec and preprocessing, and the checkpoint's
    model, loaded on first use (:attr:`model`): a completed run's ``.keras`` file, or ``epoch`` (its ``.npz`` state).
    An ensemble's ``members`` name each member predicted with and its epoch (None: its ``.keras`` file); its model
    averages theirs."""

    run: RunDir
    pipeline: Pipeline
    checkpoint: str
    epoch: int | None = None  # a run that has not completed: the epoch whose state is loaded
    notes: list[str] = field(default_factory=list)
    members: list[tuple[int, int | None]] = field(default_factory=list)  # an ensemble's: (member, epoch or None); empty for one model
    _model: Any = None
    _member_models: list[Any] = field(default_factory=list)

    @property
    def spec(self) -> Spec:
        return self.pipeline.spec

    @property
    def prep(self) -> Preprocessor:
        return self.pipeline.prep

    @property
    def ensemble(self) -> dict[str, Any] | None:
        """An ensemble's members and seeds, as ``predict --format json`` reports them; None for one model."""
        if not self.members:
            return None
        return {"members": [m for m, _ in self.members], "seeds": [self.spec.seed + m - 1 for m, _ in self.members], "of": self.spec.training.ensemble}

    @property
    def member_models(self) -> list[Any]:
        """The models of an ensemble's members (one model: its own), each loaded from its checkpoint (imports Keras the first time)."""
        if not self._member_models:
            self._member_models = [self._load_model(m, e) for m, e in self.members] if self.members else [self._load_model(1, self.epoch)]
        return self._member_models

    @property
    def model(self) -> Any:
        """The checkpoint's model (imports Keras the first time); an ensemble's averages its members' outputs."""
        if self._model is None:
            from seqcli.model import ensemble_model

            self._model = ensemble_model(self.member_models, name=self.member_models[0].name)
        return self._model

    def _load_model(self, member: int, epoch: int | None) -> Any:
        from seqcli.model import build_model, load_checkpoint, restore_training_state

        pipe = self.pipeline
        if epoch is None:
            path = self.run.checkpoint_path(self.checkpoint, member=member)
            try:
                return load_checkpoint(path, compile=False)
            except RunError as exc:
                other = next(c for c in CHECKPOINTS if c != self.checkpoint)
                left = f"{member_file('checkpoints', member)}/ holds {', '.join(self.run.checkpoints_left(member=member)) or 'nothing'}"
                instead = f"try `--checkpoint {other}`" if self.run.checkpoint_path(other, member=member).is_file() else left
                raise RunError(f"{exc} Train again, or {instead}.") from None
        model = build_model(self.spec, pipe.preps)
        restore_training_state(model, self.run.read_state(epoch, member=member), self.run.state_path(epoch, member=member), optimizer=False)
        return model


@dataclass
class Prediction:
    """Predictions for ``len(ids)`` rows, in the task's terms (:meth:`seqcli.tasks.base.Task.rows`).

    A row is a sequence, or for a per-timestep task (``timesteps`` not None) one real timestep: ``ids[r]`` names its
    sequence and ``timesteps[r]`` its index within the sequence (after truncation), in order. ``values`` is
    ``(rows, columns)``: class probabilities, or predicted values in the targets' units. ``scores``: accuracy, or
    RMSE and MAE, when the input had targets (else None).
    """

    task: str
    ids: list[str]
    columns: list[str]
    values: np.ndarray
    rows: list[dict[str, Any]]
    scores: dict[str, float | None]
    notes: list[str]
    timesteps: list[int] | None = None
    ensemble: dict[str, Any] | None = None  # an ensemble's members and seeds (:attr:`LoadedRun.ensemble`)

    @property
    def accuracy(self) -> float | None:
        return self.scores.get("accuracy")

    @property
    def labelled(self) -> bool:
        return any(value is not None for value in self.scores.values())


def load_run(path: str | Path, checkpoint: str = "best", backend: str | None = None) -> LoadedRun:
    """Open a run directory, load its spec and preprocessing and check its checkpoint: a completed run's ``.keras`` model
    (loaded in Keras' safe mode), or for a run that has not completed, the model built from its spec with the epoch's
    ``.npz`` weights. The model itself is loaded on first use (:attr:`LoadedRun.model`).

    ``backend`` None: the backend the run trained with. Either backend gives the same predictions.
    """
    from seqcli import pipeline

    if checkpoint not in CHECKPOINTS:
        raise RunError(f"--checkpoint must be one of {', '.join(CHECKPOINTS)}. Received: {checkpoint!r}.")
    run = RunDir.open(path)
    info = run.info()
    spec = spec_from_dict(run.read_yaml("spec.yaml"))
    written = info.get("versions", {}).get("seqcli", "an unknown version")
    try:
        pipe = pipeline.from_state(spec, run.read_json("preprocessing.json"), backend=backend or info.get("versions", {}).get("backend", "tensorflow"))
    except (TypeError, KeyError, AttributeError) as exc:
        raise RunError(
            f"{run.path / 'preprocessing.json'} does not describe a preprocessing this seqcli ({__version__}) can rebuild ({type(exc).__name__}: {exc}); "
            f"the run was written by seqcli {written}. Predict with that version, or train again."
        ) from None
    if ensemble_size(info) > 1:
        members, notes = _ensemble_members(run, info, checkpoint, numeric=TASK_KINDS[spec.task].numeric)
        return LoadedRun(run, pipe, checkpoint, notes=notes, members=members)
    epoch = int(info.get("best_epoch" if checkpoint == "best" else "epochs_completed", 0))
    if info["status"] == "completed":
        if run.checkpoint_path(checkpoint).is_file():
            return LoadedRun(run, pipe, checkpoint)
        model = f"checkpoints/{checkpoint}.keras"
        if not epoch or not run.state_path(epoch).is_file():
            raise RunError(_missing_model(run, checkpoint))
        note = f"Run {run.path} is completed, but {model} is missing; predicting with the same weights from epoch {epoch}'s state, checkpoints/{run.state_path(epoch).name}."
        return LoadedRun(run, pipe, checkpoint, epoch, [note])
    # no .keras model yet: the run's own architecture with the committed epoch's weights
    status = describe_status(run.path, info)
    if not epoch:
        raise RunError(f"{status} There is no {checkpoint} checkpoint to predict with: no epoch was committed.")
    if not run.state_path(epoch).is_file():
        left = ", ".join(run.checkpoints_left()) or "nothing"
        raise RunError(f"{status} Its {checkpoint} checkpoint, checkpoints/{run.state_path(epoch).name} (epoch {epoch}), is missing; checkpoints/ holds {left}. Train again.")
    return LoadedRun(run, pipe, checkpoint, epoch, [f"{status} Predicting with its {checkpoint} checkpoint (epoch {epoch})."])


def _ensemble_members(run: RunDir, info: dict[str, Any], checkpoint: str, *, numeric: bool) -> tuple[list[tuple[int, int | None]], list[str]]:
    """The members an ensemble predicts with, each with its epoch (None: its ``checkpoints/<checkpoint>.keras``), and
    the notes that say so: every member of a completed run; of one that has not completed, those with a committed epoch."""
    size = ensemble_size(info)
    members: list[tuple[int, int | None]] = []
    missing: list[int] = []
    for member in range(1, size + 1):
        progress = member_progress(info, member)
        epoch = progress["best_epoch" if checkpoint == "best" else "epochs_completed"]
        if progress["status"] == "completed" and run.checkpoint_path(checkpoint, member=member).is_file():
            members.append((member, None))
        elif epoch and run.state_path(epoch, member=member).is_file():
            members.append((member, epoch))
        else:
            missing.append(member)
    seed = int(info.get("seed", 0))
    mean = "their predictions" if numeric else "their class probabilities"
    if info["status"] == "completed" and missing:
        where = ", ".join(f"{member_file('checkpoints', m)}/" for m in missing)
        raise RunError(f"Run {run.path} is a completed ensemble of {size} members, but member(s) {', '.join(map(str, missing))} have no {checkpoint} model in {where} (deleted or moved). Train again.")
    if not members:
        raise RunError(f"{describe_status(run.path, info)} There is no {checkpoint} checkpoint to predict with: no member of the ensemble has committed an epoch.")
    notes = [f"An ensemble of {size} members (seeds {seed}-{seed + size - 1}): the predictions are the mean of {mean}."]
    if missing:
        used = ", ".join(str(m) for m, _ in members)
        notes = [
            f"{describe_status(run.path, info)} Predicting with the {checkpoint} checkpoints of the members trained so far ({used} of {size}), "
            f"the mean of {mean}; member(s) {', '.join(map(str, missing))} have no committed epoch yet."
        ]
    elif info["status"] != "completed":
        notes.append(f"{describe_status(run.path, info)} Predicting with every member's {checkpoint} checkpoint committed so far.")
    return members, notes


def _missing_model(run: RunDir, checkpoint: str) -> str:
    """What a completed run lacks when checkpoints/<checkpoint>.keras and its epoch's state are gone, and what it still has."""
    left = run.checkpoints_left()
    other = next(c for c in CHECKPOINTS if c != checkpoint)
    message = f"Run {run.path} is completed, but its {checkpoint} model is missing: checkpoints/{checkpoint}.keras and its epoch's state are gone (deleted or moved). "
    if f"{other}.keras" in left:
        return message + f"checkpoints/ still holds {', '.join(left)}: predict with `--checkpoint {other}`, or train again."
    if left:
        return message + f"checkpoints/ holds only {', '.join(left)}, none of them the {checkpoint} epoch's. Train again."
    return message + "checkpoints/ is empty. Train again."


def check_inputs(input_: Path | None, files: dict[str, Path]) -> None:
    """Refuse an INPUT or ``--input NAME=FILE`` that does not exist (before anything is read or loaded)."""
    if input_ is not None and not Path(input_).exists():
        raise DataError(f"INPUT {input_} does not exist. Check the path.")
    for name, file in files.items():
        if not Path(file).exists():
            raise DataError(f"--input {name}={file}: the file does not exist. Check the path.")


def read_input(loaded: LoadedRun, path: str | Path) -> tuple[SequenceData, list[str]]:
    """Read INPUT with the run's loader options; a lone ``.npy`` sequence becomes a batch of one.

    The format comes from INPUT's extension, else from the run's ``data.format``.
    """
    from seqcli import data as data_mod
    from seqcli.data import SequenceData
    from seqcli.sequences import Sequences

    file = Path(path)
    check_inputs(file, {})
    notes: list[str] = []
    fmt = data_mod.FORMATS.get(file.suffix.lower()) or data_mod.detect_format(file, loaded.spec.data.format)
    options = dataclasses.replace(loaded.spec.data, format=fmt)
    if loaded.prep.vocabulary is not None:
        return data_mod.load(DataFile(path=str(file)), options, need_labels=False, text=True), notes
    if fmt == "npy" and file.is_file():
        array = data_mod.np_load(file)
        single = _single_sample(array, loaded.prep, file)
        if single is not None:
            notes.append(
                f"INPUT is one unbatched sequence of shape {array.shape} ({'timesteps' if array.ndim == 1 else 'timesteps, features'}); "
                f"predicting it as a batch of one: {(1, loaded.prep.width_for(len(single)), *loaded.prep.input_shape[1:])}."
            )
            data = SequenceData(Sequences.from_arrays([single]), None, str(file), "npy", str(array.shape), ["the sequence"])
            data_mod.validate(data, need_labels=False)
            return data, notes
    return data_mod.load(DataFile(path=str(file)), options, need_labels=False, targets=loaded.pipeline.task.kind), notes


def _single_sample(array: np.ndarray, prep: Preprocessor, file: Path) -> np.ndarray | None:
    """``(timesteps, features)`` for a lone sequence, or None when ``array`` is a batch."""
    import numpy as np

    features = prep.n_features
    if array.ndim == 1:
        if features != 1:
            raise DataError(
                f"INPUT {file} is 1-D with {array.shape[0]} values, but the model expects {features} features per timestep. "
                f"Save one sequence as (timesteps, {features}), or a batch as (samples, timesteps, {features})."
            )
        return array[:, np.newaxis]
    if array.ndim == 2 and prep.input == "float" and features > 1:
        if array.shape[1] != features:
            raise DataError(
                f"INPUT {file} has shape {array.shape}: {array.shape[1]} features per timestep, but the model was trained on {features}. "
                f"Give one sequence as (timesteps, {features}) or a batch as (samples, timesteps, {features})."
            )
        return array
    if array.ndim == 2 and features == 1 and array.shape[1] == 1 and prep.input == "float":
        return array
    return None


def predict(loaded: LoadedRun, data: SequenceData, notes: list[str] | None = None) -> Prediction:
    """Apply the run's preprocessing (for text: its vocabulary) and model to loaded sequences or texts."""
    split = loaded.pipeline.prepare(data)
    return _prediction(loaded, split, loaded.pipeline.outputs(loaded.model, split), notes or [])


def _prediction(loaded: LoadedRun, split: Split, outputs: Outputs, notes: list[str]) -> Prediction:
    """The task's rows for ``outputs``: one per sequence, or one per real timestep of every sequence (truncated sequences: per kept timestep)."""
    from seqcli.sequences import Sequences

    pipe = loaded.pipeline
    task, prep = pipe.task, pipe.prep
    rows, scores = task.rows(outputs, prep, split.y)
    ids, timesteps = list(split.data.ids), None
    if isinstance(outputs, Sequences):  # per timestep
        ids = [seq_id for seq_id, count in zip(split.data.ids, outputs.lengths.tolist(), strict=True) for _ in range(count)]
        timesteps = [t for count in outputs.lengths.tolist() for t in range(count)]
    return Prediction(task.name, ids, task.columns(prep), task.predictions(outputs, prep), rows, scores, [*loaded.notes, *notes, *split.notes], timesteps, loaded.ensemble)


def predict_file(loaded: LoadedRun, path: str | Path) -> Prediction:
    """Read INPUT with the run's loaders and predict every sequence in it."""
    if loaded.pipeline.multi_input:
        preps = loaded.pipeline.preps
        raise DataError(f"Run {loaded.run.path} is a multi-input model: give every input by name, {' '.join(f'--input {n}=FILE' for n in preps)}, instead of INPUT.")
    data, notes = read_input(loaded, path)
    return predict(loaded, data, notes)


def predict_inputs(loaded: LoadedRun, files: dict[str, Path]) -> Prediction:
    """Predict with a multi-input run: one file per input (``--input NAME=FILE``), read with that input's loader options and matched by id.

    The ids, and the true labels when present, come from the file of the input that carries the labels in training.
    """
    preps, spec = loaded.pipeline.preps, loaded.spec
    if not loaded.pipeline.multi_input:
        raise DataError(f"--input NAME=FILE is for multi-input runs; {loaded.run.path} has one input. Give the data file as INPUT.")
    unknown = [name for name in files if name not in preps]
    missing = [name for name in preps if name not in files]
    if unknown or missing:
        problem = f"unknown input(s) {', '.join(map(repr, unknown))}" if unknown else f"no file for input(s) {', '.join(map(repr, missing))}"
        raise DataError(f"--input: {problem}. This model takes the inputs {', '.join(map(repr, preps))}: give each once, e.g. {' '.join(f'--input {n}=FILE' for n in preps)}.")
    from seqcli import data as data_mod

    check_inputs(None, files)
    options = spec.sections()
    parts: dict[str, SequenceData] = {}
    for name, path in files.items():
        file = Path(path)
        data_options = options[name][0]
        fmt = data_mod.FORMATS.get(file.suffix.lower()) or data_mod.detect_format(file, data_options.format)
        text = preps[name].vocabulary is not None
        parts[name] = data_mod.load(DataFile(path=str(file)), dataclasses.replace(data_options, format=fmt), need_labels=False, text=text, targets=loaded.pipeline.task.kind)
    split = loaded.pipeline.prepare_inputs(parts)
    return _prediction(loaded, split, loaded.pipeline.outputs(loaded.model, split), [])


def predict_texts(loaded: LoadedRun, texts: list[str]) -> Prediction:
    """Predict raw strings (``--text``) with a text run; each text is its own id."""
    if loaded.prep.vocabulary is None:
        raise DataError(f"--text needs a run trained on text (`preprocessing.input: text`), but {loaded.run.path} was trained on {loaded.prep.input} input. Give an INPUT file instead.")
    from seqcli import data as data_mod
    from seqcli.data import SequenceData
    from seqcli.sequences import Sequences

    where = [f"text {i + 1}" for i in range(len(texts))]
    data = SequenceData(Sequences.from_arrays([]), None, "--text", "txt", f"{len(texts)} texts", where, ids=list(texts), texts=list(texts))
    data_mod.validate(data, need_labels=False)
    return predict(loaded, data)


def to_rows(prediction: Prediction) -> list[dict[str, Any]]:
    """One row per sequence (per-timestep tasks: per real timestep, with its index): id, (timestep), then the task's columns."""
    rows = []
    for i, row in enumerate(prediction.rows):
        lead: dict[str, Any] = {"id": prediction.ids[i]}
        if prediction.timesteps is not None:
            lead["timestep"] = prediction.timesteps[i]
        rows.append(lead | row)
    return rows


def to_csv(prediction: Prediction) -> str:
    rows = to_rows(prediction)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def to_json(prediction: Prediction) -> str:
    """The task, what the columns hold (``classes`` or ``targets``), the scores, an ensemble's members, the notes and every row."""
    columns = "targets" if TASK_KINDS[prediction.task].numeric else "classes"
    ensemble = {"ensemble": prediction.ensemble} if prediction.ensemble is not None else {}
    payload = {"task": prediction.task, columns: prediction.columns, **prediction.scores, **ensemble, "notes": prediction.notes, "predictions": to_rows(prediction)}
    return json.dumps(payload, indent=2) + "\n"
