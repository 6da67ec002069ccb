"""Data loading: files -> :class:`~seqcli.sequences.Sequences` of ``(timesteps, features)`` plus labels, or raw texts.

Formats: NumPy ``.npy``/``.npz`` (never with pickles), the UEA/UCR ``.ts``
text format (channels-first, unequal lengths), long-format CSV (one row per
timestep) and JSON Lines (one record per sequence). For text input, CSV and JSON
Lines hold one raw text per row or record, and ``.txt`` one per line. Every loader
checks for empty data, NaN/inf, ragged rows and label counts, naming the
sequence, line or row. No TensorFlow here.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import difflib
import itertools
import json
import math
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from seqcli.errors import DataError
from seqcli.sequences import Sequences
from seqcli.spec import TASK_KINDS, DataFile, DataSpec, TaskKind

FileFormat = Literal["npy", "npz", "ts", "csv", "jsonl", "txt"]
FORMATS: dict[str, FileFormat] = {".npy": "npy", ".npz": "npz", ".ts": "ts", ".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl", ".txt": "txt"}
TEXT_FORMATS = ("csv", "jsonl", "txt")


@dataclass(frozen=True)
class Step:
    """One transformation of the data, with the shape after it (named axes)."""

    name: str
    shape: str
    detail: str = ""


LABELS = TASK_KINDS["classify"]  # one class label per sequence


@dataclass
class SequenceData:
    """Sequences as loaded from one file.

    ``sequences`` is the ragged :class:`~seqcli.sequences.Sequences`: ``sequences[i]`` has shape ``(timesteps_i, features)``;
    integer data keeps its integer dtype (token codes).
    Text data holds ``texts`` (raw strings) and no sequences until the fitted vocabulary turns them into token codes
    (:meth:`seqcli.preprocess.Preprocessor.tokenize`). ``ids[i]`` identifies sequence ``i`` in outputs (its
    index, or its CSV/JSON id); ``where[i]`` says where it is in the file for error
    messages (``"index 3"``, ``"line 12"``, ``"id 'a7' (lines 4-9)"``).

    Targets, as the task's :class:`~seqcli.spec.TaskKind` asked the loader to read them: ``labels`` holds one per sequence, class labels
    ``(samples,)`` or numbers ``(samples, targets)`` float64; with per-timestep targets ``labels`` is None and
    ``step_targets[i]`` holds sequence ``i``'s, ``(timesteps_i,)`` labels or ``(timesteps_i, targets)`` numbers (ragged, cut like the sequences).
    ``target_names`` names numeric targets when the file does (CSV columns).
    """

    sequences: Sequences
    labels: np.ndarray | None
    source: str
    format: str
    raw_shape: str
    where: list[str]
    steps: list[Step] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    texts: list[str] | None = None
    step_targets: Sequences | None = None
    target_names: list[str] | None = None
    raw_ndim: int = 0  # NumPy formats: the dimensions of the stored array (2 or 3), 0 otherwise
    is_flat: bool = False  # .npz: sequences stored concatenated and cut by `lengths`

    def __post_init__(self) -> None:
        if not self.ids:
            self.ids = [str(i) for i in range(len(self))]

    def __len__(self) -> int:
        """The number of sequences (or texts)."""
        return len(self.texts) if self.texts is not None else len(self.sequences)

    @property
    def n_features(self) -> int:
        return int(self.sequences.values.shape[1])

    @property
    def lengths(self) -> np.ndarray:
        """Timesteps per sequence, shape ``(samples,)``."""
        return self.sequences.lengths

    @property
    def is_integer(self) -> bool:
        return bool(np.issubdtype(self.sequences.dtype, np.integer))

    def subset(self, index: np.ndarray) -> SequenceData:
        """The sequences at ``index`` (a split), same file and steps."""
        return dataclasses.replace(
            self,
            sequences=self.sequences.subset(index) if len(self.sequences) else self.sequences,
            labels=None if self.labels is None else self.labels[index],
            where=[self.where[i] for i in index],
            steps=list(self.steps),
            ids=[self.ids[i] for i in index],
            texts=None if self.texts is None else [self.texts[i] for i in index],
            step_targets=None if self.step_targets is None else self.step_targets.subset(index),
        )


def detect_format(path: Path, declared: FileFormat | Literal["auto"] = "auto") -> FileFormat:
    """The file's format: ``declared`` unless it is ``auto``, else from the extension."""
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"Cannot tell the format of {path} from its extension {path.suffix or '(none)'}. "
            f"seqcli reads {', '.join(FORMATS)}; rename the file or set `data.format` to one of {', '.join(dict.fromkeys(FORMATS.values()))}."
        )
    return fmt


def load(data_file: DataFile, options: DataSpec, *, need_labels: bool = True, text: bool = False, targets: TaskKind = LABELS) -> SequenceData:
    """Load one data file as described by the spec's ``data`` section; ``text``: raw texts (``preprocessing.input: text``);
    ``targets``: what the task reads as targets (per sequence or per timestep; labels or numbers)."""
    path = Path(data_file.path)
    _check_readable(path)
    fmt = detect_format(path, options.format)
    if text and fmt not in TEXT_FORMATS:
        raise DataError(
            f"`preprocessing.input: text` reads raw text from .csv, .jsonl or .txt files, but {path.name} is a .{fmt} file. "
            "Give the texts in one of those, or set `preprocessing.input` to float or tokens."
        )
    if fmt == "txt" and not text:
        raise DataError(
            f"{path.name} is a .txt file: raw text, one per line, which only a text model reads (`preprocessing.input: text`). "
            "Give sequences as .npy, .npz, .ts, .csv or .jsonl, or set `data.format` to the file's real format (e.g. csv)."
        )
    if options.layout == "channels_first" and fmt in ("ts", "csv"):
        raise DataError(
            f"`data.layout: channels_first` applies to 3-D NumPy arrays, but {path.name} is a .{fmt} file "
            f"({'always channels-first and transposed by seqcli' if fmt == 'ts' else 'one row per timestep'}). Remove `data.layout`."
        )
    if data_file.labels is not None and fmt != "npy":
        raise DataError(f"A separate `labels:` file is read for .npy data only, but {path.name} is a .{fmt} file that carries its own labels ({_label_hint(fmt)}). Remove `labels:`.")
    if targets.per_timestep and (text or fmt == "ts"):
        what = "raw text" if text else "a .ts file"
        raise DataError(
            f"`task: {targets.name}` reads one target per timestep of numeric sequences from .csv, .jsonl, .npy or .npz files, but {path.name} holds {what}. Convert the data."
        )
    if fmt == "npy":
        data = _load_npy(path, data_file.labels, options.layout)
    elif fmt == "npz":
        data = _load_npz(path, options)
    elif fmt == "ts":
        data = _load_ts(path, targets)
    elif fmt == "jsonl":
        data = _load_jsonl(path, options, text=text, need_labels=need_labels, targets=targets)
    elif fmt == "txt":
        data = _load_txt(path)
    elif text:
        data = _load_text_csv(path, options, need_labels=need_labels, targets=targets)
    else:
        data = _load_csv(path, options, targets)
    if fmt in ("npy", "npz"):
        data = _array_targets(data, targets)
    validate(data, need_labels=need_labels, targets=targets)
    return _named_targets(data, options.target_names)


def _named_targets(data: SequenceData, names: list[str] | None) -> SequenceData:
    """The data with ``data.target_names`` given; a count other than the file's targets is an error."""
    values = data.step_targets[0] if data.step_targets else data.labels
    if names is None or values is None or values.ndim != 2 or data.target_names is not None:
        return data
    if len(names) != values.shape[1]:
        raise DataError(f"`data.target_names` names {len(names)} target(s), but {data.source} has {values.shape[1]}. Give one name per target, in order.")
    return dataclasses.replace(data, target_names=list(names))


def _check_readable(path: Path) -> None:
    if not path.exists():
        raise DataError(f"Data file {path} does not exist. Paths in a spec are relative to the spec file; check `data.*` paths.")
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a data file. Point the spec at a .npy, .npz, .ts, .csv or .jsonl file inside it.")
    try:
        with open(path, "rb") as handle:
            empty = handle.read(1) == b""
    except OSError as exc:
        raise DataError(f"Cannot read data file {path}: {exc.strerror}. Check its permissions.") from None
    if empty:
        raise DataError(f"Data file {path} is empty (0 bytes). Write or export it again, or point the spec's `data.*` path at the right file.")


# --------------------------------------------------------------------------- NumPy


def np_load(path: Path) -> Any:
    """``np.load`` without pickles, with readable errors."""
    with open(path, "rb") as handle:
        magic = handle.read(6)
    if magic[:6] != b"\x93NUMPY" and magic[:4] != b"PK\x03\x04":
        raise DataError(f"{path} is not a NumPy file (no .npy/.npz header). Write it with numpy.save/numpy.savez, or set `data.format` to its real format.")
    with _no_pickles(path):
        return np.load(path, allow_pickle=False)


def _npz_array(archive: Any, key: str, path: Path) -> np.ndarray:
    with _no_pickles(path):
        return archive[key]


@contextlib.contextmanager
def _no_pickles(path: Path) -> Iterator[None]:
    """Turn NumPy's load errors (object arrays above all) into DataErrors."""
    try:
        yield
    except ValueError as exc:
        if "pickle" in str(exc).lower():
            raise DataError(
                f"{path} holds Python objects (a pickled or ragged object array). seqcli never loads pickles, which can run "
                "arbitrary code. Store variable-length data as an .npz with `x` (all sequences concatenated) and `lengths`."
            ) from None
        raise DataError(f"{path} is not a readable NumPy file: {exc}. Write it again with numpy.save/numpy.savez.") from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # zlib: a damaged member of a compressed .npz
        raise DataError(f"{path} is not a readable NumPy file ({exc}). Write it again with numpy.save/numpy.savez.") from None


def _load_npy(path: Path, labels_path: str | None, layout: str) -> SequenceData:
    x = np_load(path)
    if not isinstance(x, np.ndarray):
        raise DataError(f"{path} is an .npz archive saved with a .npy name; rename it to .npz or set `data.format: npz`.")
    labels = None
    if labels_path is not None:
        _check_readable(Path(labels_path))
        labels = np_load(Path(labels_path))
        if not isinstance(labels, np.ndarray):
            raise DataError(f"Labels file {labels_path} must be a .npy array of labels.")
    return _from_array(x, labels, path, "npy", layout)


def _load_npz(path: Path, options: DataSpec) -> SequenceData:
    archive = np_load(path)
    if isinstance(archive, np.ndarray):
        raise DataError(f"{path} is a single .npy array saved with an .npz name; rename it to .npy or set `data.format: npy`.")
    keys = options.npz
    with archive:
        names = list(archive.files)
        if keys.x not in names:
            raise DataError(f"{path} has no array named {keys.x!r} (arrays in it: {', '.join(names) or 'none'}). Set `data.npz.x` to the name of the sequences array.")
        x = _npz_array(archive, keys.x, path)
        labels = _npz_array(archive, keys.y, path) if keys.y in names else None
        lengths = _npz_array(archive, keys.lengths, path) if keys.lengths in names else None
    if lengths is None:
        return _from_array(x, labels, path, "npz", options.layout)
    return _from_flat(x, lengths, labels, path, keys.x, keys.lengths)


def _from_array(x: np.ndarray, labels: np.ndarray | None, path: Path, fmt: str, layout: str) -> SequenceData:
    """Split a dense array into sequences of shape (timesteps, features)."""
    _check_dtype(x, path)
    raw_shape, raw_ndim = _shape_text(x.shape, x.ndim, layout), x.ndim
    steps: list[Step] = []
    if x.ndim == 2:
        # (samples, timesteps) -> (samples, timesteps, features=1)
        x = x[:, :, np.newaxis]
        steps.append(Step("reshape", _axes(x.shape), "2-D (samples, timesteps): one feature per timestep"))
    elif x.ndim == 3:
        if layout == "channels_first":
            # (samples, features, timesteps) -> (samples, timesteps, features)
            x = np.transpose(x, (0, 2, 1))
            steps.append(Step("transpose", _axes(x.shape), "channels-first (samples, features, timesteps) -> (samples, timesteps, features)"))
    else:
        hint = " If it is one sequence, predict it with `seqcli predict`; to train, stack sequences into (samples, timesteps[, features])." if x.ndim == 1 else ""
        raise DataError(f"{path} holds a {x.ndim}-D array of shape {x.shape}; expected 2-D (samples, timesteps) or 3-D (samples, timesteps, features).{hint}")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"{path} holds no data: shape {raw_shape}. Save at least one sequence with at least one timestep.")
    return SequenceData(Sequences.from_dense(x), labels, str(path), fmt, raw_shape, [f"index {i}" for i in range(x.shape[0])], steps, raw_ndim=raw_ndim)


def _from_flat(values: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None, path: Path, x_key: str, len_key: str) -> SequenceData:
    """Cut concatenated values ``(total_timesteps[, features])`` into sequences by ``lengths``."""
    _check_dtype(values, path)
    if lengths.ndim != 1 or not np.issubdtype(lengths.dtype, np.integer):
        raise DataError(f"`{len_key}` in {path} must be a 1-D integer array (one length per sequence); got shape {lengths.shape}, dtype {lengths.dtype}.")
    if values.ndim == 1:
        values = values[:, np.newaxis]
    if values.ndim != 2:
        raise DataError(f"With `{len_key}` present, `{x_key}` in {path} must be (total_timesteps[, features]); got shape {values.shape}.")
    bad = np.flatnonzero(lengths < 1)
    if bad.size:
        raise DataError(f"Sequence {bad[0]} in {path} has length {lengths[bad[0]]}; every sequence needs at least one timestep. Remove empty sequences.")
    if int(lengths.sum()) != values.shape[0]:
        raise DataError(f"`{len_key}` in {path} adds up to {int(lengths.sum())} timesteps but `{x_key}` has {values.shape[0]} rows; they must match.")
    raw_shape = f"{x_key} {_axes(values.shape, ('total_timesteps', 'features'))}, {len_key} ({len(lengths)},)"
    steps = [Step("split by lengths", f"{len(lengths)} sequences of (timesteps, {values.shape[1]})", f"{len_key} cut {x_key} into sequences")]
    return SequenceData(Sequences(values, lengths), labels, str(path), "npz", raw_shape, [f"index {i}" for i in range(len(lengths))], steps, raw_ndim=values.ndim, is_flat=True)


def _array_targets(data: SequenceData, targets: TaskKind) -> SequenceData:
    """Targets from an array, as the task reads them.

    Per sequence: labels ``(samples,)``, or numbers ``(samples,)``/``(samples, targets)``. Per timestep: ``(samples, timesteps[, targets])``
    aligned with dense x, or ``(total_timesteps[, targets])`` cut by ``lengths`` like x.
    """
    labels = data.labels
    if labels is None:
        return data
    if targets.numeric:
        labels = _numeric_array(labels, data.source, targets)
    if not targets.per_timestep:
        if targets.numeric and labels.ndim == 1:
            labels = labels[:, np.newaxis]
        return dataclasses.replace(data, labels=labels)
    lengths = data.lengths
    what = f"`y` must hold one {'value (or vector)' if targets.numeric else 'label'} per timestep"
    extra = labels.ndim - (1 if data.is_flat else 2)
    trailing = " (one more axis for several targets)" if targets.numeric else ""
    if extra not in ((0, 1) if targets.numeric else (0,)):
        extra = -1
    if data.is_flat:
        if extra < 0 or len(labels) != int(lengths.sum()):
            raise DataError(
                f"{data.source}: with `task: {targets.name}` and `lengths`, {what}, all sequences concatenated: shape ({int(lengths.sum())},){trailing}; got shape {labels.shape}. "
                "Store the targets like `x`, cut by the same `lengths`."
            )
        step_targets = Sequences(labels, lengths)
    else:
        if extra < 0 or labels.shape[:2] != (len(lengths), int(lengths[0])):
            raise DataError(
                f"{data.source}: with `task: {targets.name}`, {what}, aligned with the sequences: shape (samples={len(lengths)}, timesteps={int(lengths[0])}){trailing}; "
                f"got shape {labels.shape}. For one {'target' if targets.numeric else 'label'} per sequence set `task: {'regress' if targets.numeric else 'classify'}`."
            )
        step_targets = Sequences.from_dense(labels)
    if targets.numeric and step_targets.values.ndim == 1:
        step_targets = step_targets.with_values(step_targets.values[:, np.newaxis])
    return dataclasses.replace(data, labels=None, step_targets=step_targets)


def _numeric_array(values: np.ndarray, source: str, targets: TaskKind) -> np.ndarray:
    """Regression targets from an array as float64; strings or other non-numbers are an error that names the task."""
    if values.dtype.kind not in "iufb":
        example = values.reshape(-1)[0] if values.size else ""
        raise DataError(
            f"{source}: `task: {targets.name}` needs numeric targets, but `y` holds {values.dtype} values such as {str(example)!r}. "
            "For class labels set `task: classify` (or `tag` per timestep); otherwise store the targets as numbers."
        )
    return values.astype(np.float64)


def _check_dtype(x: np.ndarray, path: Path) -> None:
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_):
        raise DataError(f"{path} holds values of dtype {x.dtype}; seqcli needs numbers (float for features, int for token codes). Convert the array to numbers before saving it.")


# --------------------------------------------------------------------------- UEA/UCR .ts


def _load_ts(path: Path, targets: TaskKind = LABELS) -> SequenceData:
    """Read a .ts file: one sequence per line, channels separated by ':', then the class label (``@classLabel true``)
    or the regression target (``@targetLabel true``, the UEA/UCR/TSER regression archives)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file; is it really in the .ts format?") from None
    header: dict[str, str] = {}
    sequences: list[np.ndarray] = []
    labels: list[Any] = []
    where: list[str] = []
    in_data = False
    has_label = False
    classes: list[str] = []  # the class values that @classLabel lists
    class_line = 0
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith(("#", "%")):
            continue
        if not in_data:
            if line.startswith("@"):
                name, value = _ts_header_line(line, path, number)
                if name == "data":
                    in_data = True
                    has_label = _ts_target_kind(header, path, targets)
                else:
                    header[name] = value
                    if name == "classlabel":
                        classes, class_line = [c.lower() for c in value.split()[1:]], number  # compared like aeon does, ignoring case
                continue
            raise DataError(f"{path}, line {number}: expected a header line starting with '@' before '@data'; got {line[:40]!r}.")
        parts = line.split(":")
        if has_label:
            label = parts.pop().strip()
            if targets.numeric:
                try:
                    labels.append([float(label) if label != "?" else math.nan])
                except ValueError:
                    raise DataError(f"{path}, line {number}: the target {label[:40]!r} is not a number; `task: {targets.name}` needs a real value at the end of each line.") from None
            else:
                if classes and label.lower() not in classes:
                    raise DataError(
                        f"{path}, line {number}: the label {label[:40]!r} is not among the classes that @classLabel lists on line {class_line} ({header['classlabel'].split(None, 1)[1]}). "
                        "Fix the label, or add it to the @classLabel line."
                    )
                labels.append(label)
        if header.get("timestamps", "false").lower() == "true":
            raise DataError(f"{path} uses @timeStamps true, which seqcli does not read yet; export the data without timestamps.")
        channels = []
        for c, part in enumerate(parts):
            try:
                channels.append([float(v) if v.strip() != "?" else math.nan for v in part.split(",")])
            except ValueError:
                raise DataError(f"{path}, line {number}, channel {c + 1}: non-numeric value in {part[:40]!r}. Each channel is a comma-separated list of numbers.") from None
        lengths = {len(ch) for ch in channels}
        if len(lengths) > 1:
            raise DataError(f"{path}, line {number}: channels have different lengths {sorted(lengths)}; every channel of a sequence must have one value per timestep.")
        # (channels, timesteps) -> (timesteps, features)
        sequences.append(np.array(channels, dtype=np.float64).T)
        where.append(f"line {number}")
    if not in_data:
        raise DataError(f"{path} has no '@data' line, so it is not a UEA/UCR .ts file: the header lines (@problemName, @dimensions, ...) must end with @data. Check the export, or set `data.format`.")
    if not sequences:
        raise DataError(f"{path} has no sequences after '@data'. Add one line per sequence after it.")
    dims = {s.shape[1] for s in sequences}
    if len(dims) > 1:
        first = next(i for i, s in enumerate(sequences) if s.shape[1] != sequences[0].shape[1])
        raise DataError(f"{path}, {where[first]}: {sequences[first].shape[1]} channels, but {where[0]} has {sequences[0].shape[1]}. Every sequence needs the same channels.")
    declared = header.get("dimensions")
    if declared and declared.isdigit() and int(declared) != sequences[0].shape[1]:
        raise DataError(f"{path} declares @dimensions {declared} but its sequences have {sequences[0].shape[1]} channels.")
    raw_shape = f"({len(sequences)}, channels={sequences[0].shape[1]}, timesteps={_range_text([len(s) for s in sequences])})"
    steps = [Step("transpose", f"{len(sequences)} x (timesteps, {sequences[0].shape[1]})", ".ts is channels-first (samples, channels, timesteps) -> (samples, timesteps, features)")]
    label_array = np.array(labels, dtype=np.float64 if targets.numeric else None) if labels else None
    return SequenceData(Sequences.from_arrays(sequences), label_array, str(path), "ts", raw_shape, where, steps)


TS_HEADER_KEYS = {  # lower case -> as the format spells it
    key.lower(): key
    for key in ("problemName", "timeStamps", "missing", "univariate", "dimensions", "dimension", "equalLength", "seriesLength", "classLabel", "targetLabel", "data")
}
TS_BOOLEAN = ("timestamps", "missing", "univariate", "equallength", "targetlabel")
TS_COUNT = {"dimensions": "the number of channels", "dimension": "the number of channels", "serieslength": "the length of every sequence"}


def _ts_header_line(line: str, path: Path, number: int) -> tuple[str, str]:
    """A .ts header line ``@key value`` as (key in lower case, value), checked: a known key (else the closest one is
    suggested) and a well-formed value (true/false, a positive count, or for @classLabel true/false and the classes).
    ``@dimension`` is read as ``@dimensions``."""
    name, _, value = line[1:].partition(" ")
    key, value = name.lower(), value.strip()
    if key not in TS_HEADER_KEYS:
        close = difflib.get_close_matches(key, list(TS_HEADER_KEYS), n=1, cutoff=0.6)
        hint = f" Did you mean @{TS_HEADER_KEYS[close[0]]}?" if close else ""
        known = ", ".join(f"@{k}" for k in dict.fromkeys(TS_HEADER_KEYS.values()) if k != "dimension")
        raise DataError(f"{path}, line {number}: unknown header key @{name}.{hint} The .ts header keys are {known}. Fix the key, or start the line with '#' to make it a comment.")
    spelled = f"@{TS_HEADER_KEYS[key]}"
    words = value.split()
    if key in TS_BOOLEAN and (len(words) != 1 or words[0].lower() not in ("true", "false")):
        raise DataError(f"{path}, line {number}: {spelled} must be followed by true or false; got {value[:40]!r}. Write e.g. `{spelled} false`.")
    if key in TS_COUNT and (len(words) != 1 or not words[0].isdigit() or int(words[0]) < 1):
        raise DataError(f"{path}, line {number}: {spelled} must be followed by a positive whole number ({TS_COUNT[key]}); got {value[:40]!r}. Write e.g. `{spelled} 2`.")
    if key == "classlabel" and (not words or words[0].lower() not in ("true", "false") or (words[0].lower() == "false" and len(words) > 1)):
        raise DataError(
            f"{path}, line {number}: @classLabel must be followed by true and the class values (e.g. `@classLabel true 1 2 3`), or by false alone; got {value[:40]!r}."
        )
    if key == "data" and value:
        raise DataError(f"{path}, line {number}: @data stands alone on its line; got {line[:40]!r}. Put the first sequence on the next line.")
    return ("dimensions" if key == "dimension" else key), value


def _ts_target_kind(header: dict[str, str], path: Path, targets: TaskKind) -> bool:
    """Whether each line of a .ts file ends with a target, checked against what the task reads: class labels
    (``@classLabel true``) or real values (``@targetLabel true``)."""
    classes = header.get("classlabel", "false").split(" ")[0].lower() == "true"
    values = header.get("targetlabel", "false").split(" ")[0].lower() == "true"
    if targets.numeric and classes:
        raise DataError(
            f"{path} holds class labels (@classLabel true), but `task: {targets.name}` predicts real values. "
            "Set `task: classify`, or give a regression file (@targetLabel true)."
        )
    if values and not targets.numeric:
        raise DataError(
            f"{path} holds regression targets (@targetLabel true: a real value per sequence), but `task: {targets.name}` predicts classes. "
            "Set `task: regress`."
        )
    return classes or values


# --------------------------------------------------------------------------- long CSV


CSV_DELIMITERS = (",", ";", "\t", "|")  # detected from the header line when `data.csv.delimiter` is null


def _read_csv(path: Path, example: str, delimiter: str | None = None) -> tuple[list[str], list[tuple[int, list[str]]], str]:
    """The header (stripped), each record with its line number (a record's last line: quoted fields may span lines) and
    the delimiter: ``delimiter``, or when None the one of :data:`CSV_DELIMITERS` the header line holds most (a comma if none)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:  # -sig: Excel's "CSV UTF-8" starts with a BOM
            if delimiter is None:
                delimiter = detect_delimiter(handle.readline())
                handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter)
            header = [h.strip() for h in next(reader, None) or []]
            rows = [(reader.line_num, row) for row in reader]
    except UnicodeDecodeError:
        raise DataError(f"{path} is not a UTF-8 text file; is it really a CSV file?") from None
    except csv.Error as exc:
        raise DataError(f"{path} is not valid CSV: {exc}.") from None
    if not header:
        raise DataError(f"{path} has no header row; the first row must name the columns{example}.")
    return header, rows, delimiter


def detect_delimiter(header_line: str) -> str:
    """The delimiter of a CSV header line: the one of :data:`CSV_DELIMITERS` it holds most, a comma on a tie or if none.

    >>> detect_delimiter("id;time;a;b;label"), detect_delimiter("id,time,a"), detect_delimiter("text")
    (';', ',', ',')
    """
    counts = {d: header_line.count(d) for d in CSV_DELIMITERS}
    best = max(CSV_DELIMITERS, key=lambda d: counts[d])  # the first of equal counts: the comma
    return best if counts[best] else ","


def _delimiter_note(delimiter: str, declared: str | None) -> str:
    """How the cells were separated, for the loading step; nothing for the usual comma."""
    if delimiter == ",":
        return ""
    return f"; cells separated by {delimiter!r} ({'detected from the header line' if declared is None else '`data.csv.delimiter`'})"


def _delimiter_hint(header: list[str], delimiter: str) -> str:
    """For a header read as one column that holds another delimiter: the setting that would split it."""
    other = detect_delimiter(header[0]) if len(header) == 1 else delimiter
    if other == delimiter:
        return ""
    return f" The header is read as one column because its cells are separated by {other!r}, not {delimiter!r}: set `data.csv.delimiter: {other!r}`, or null to detect it."


def _load_csv(path: Path, options: DataSpec, targets: TaskKind = LABELS) -> SequenceData:
    """Read long-format CSV: one row per timestep, grouped by id, ordered by time.

    The targets are in ``label_column`` (or, for regression, ``target_columns``): the same on every row of a
    sequence, or with per-timestep targets each row's own; numbers for regression.
    """
    opts = options.csv
    header, numbered, delimiter = _read_csv(path, "", opts.delimiter)
    rows = [row for _, row in numbered]
    target_key = "data.csv.target_columns" if opts.target_columns is not None else "data.csv.label_column"
    target_columns = opts.target_columns if opts.target_columns is not None else [opts.label_column] if opts.label_column is not None else []
    wanted = {"data.csv.id_column": [opts.id_column], "data.csv.time_column": [opts.time_column] if opts.time_column is not None else [], target_key: target_columns}
    for key, columns in wanted.items():
        for column in columns:
            if column not in header:
                text_hint = f" If {opts.text_column!r} holds one raw text per row, set `preprocessing.input: text`." if opts.text_column in header else ""
                or_null = " or null" if key != "data.csv.id_column" else ""
                raise DataError(
                    f"{path} has no column {column!r} (columns: {', '.join(header)}). Set `{key}` to the right column name{or_null}.{text_hint}{_delimiter_hint(header, delimiter)}"
                )
    reserved = {c for columns in wanted.values() for c in columns}
    features = opts.feature_columns if opts.feature_columns is not None else [h for h in header if h not in reserved]
    missing = [f for f in features if f not in header]
    if missing:
        raise DataError(f"{path} has no column(s) {', '.join(map(repr, missing))} listed in `data.csv.feature_columns` (columns: {', '.join(header)}).")
    if not features:
        raise DataError(f"{path} has no feature columns besides {', '.join(sorted(reserved))}. Add feature columns or set `data.csv.feature_columns`.")
    if not any(any(cell.strip() for cell in row) for row in rows):
        raise DataError(f"{path} has a header but no data rows. Add one row per timestep below the header.")
    index = {h: i for i, h in enumerate(header)}
    groups: dict[str, list[tuple[float, int, list[float], tuple[Any, ...]]]] = {}
    blocks: dict[str, list[list[int]]] = {}  # each id's runs of adjacent rows: [first line, last line]
    last_id: str | None = None
    for number, row in enumerate(rows, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(f"{path}, line {number}: {len(row)} cells but the header has {len(header)} columns. Fix the row (a missing or extra comma?).")
        values = []
        for name in features:
            cell = row[index[name]].strip()
            try:
                values.append(float(cell))
            except ValueError:
                text_hint = f" For raw text in {name!r}, one row per sequence, set `preprocessing.input: text`." if name == opts.text_column else ""
                raise DataError(f"{path}, line {number}, column {name!r}: {cell!r} is not a number. Fix the cell, or leave the column out via `data.csv.feature_columns`.{text_hint}") from None
        order: float = number
        if opts.time_column is not None:
            cell = row[index[opts.time_column]].strip()
            try:
                order = float(cell)
            except ValueError:
                raise DataError(
                    f"{path}, line {number}, column {opts.time_column!r} (the time column): {cell!r} is not a number. "
                    "Fix the cell, or set `data.csv.time_column: null` to keep the rows in file order."
                ) from None
        cells = tuple(row[index[column]].strip() for column in target_columns)
        target = tuple(_csv_number(cell, f"{path}, line {number}, column {column!r}", targets) for cell, column in zip(cells, target_columns, strict=True)) if targets.numeric else cells
        seq_id = row[index[opts.id_column]].strip()
        groups.setdefault(seq_id, []).append((order, number, values, target))
        if seq_id == last_id:
            blocks[seq_id][-1][1] = number
        else:
            blocks.setdefault(seq_id, []).append([number, number])
            last_id = seq_id
    if not opts.allow_scattered_ids:
        _check_adjacent_ids(path, blocks)
    sequences, labels, where, ids, step_targets = [], [], [], [], []
    for seq_id, items in groups.items():
        items.sort(key=lambda item: item[0])  # stable: rows with the same time keep their file order
        lines = [item[1] for item in items]
        place = f"id {seq_id!r} (lines {min(lines)}-{max(lines)})"
        if opts.time_column is not None and not opts.allow_duplicate_times:
            _check_distinct_times(path, place, opts.time_column, items)
        seen = {item[3] for item in items}
        if len(seen) > 1 and not targets.per_timestep:
            found = ", ".join(sorted(", ".join(map(str, t)) for t in seen)[:5])
            if targets.numeric:
                listed = ", ".join(map(repr, target_columns))
                raise DataError(f"{path}, {place}: the target column(s) {listed} change within the sequence ({found}). One target per sequence; for one per timestep set `task: regress_timesteps`.")
            raise DataError(
                f"{path}, {place}: the label column {target_columns[0]!r} changes within the sequence ({found}). One label per sequence; for one label per timestep set `task: tag`."
            )
        sequences.append(np.array([item[2] for item in items], dtype=np.float64))
        labels.append(items[0][3] if targets.numeric else items[0][3][0] if target_columns else None)
        step_targets.append(np.array([item[3] if targets.numeric else item[3][0] for item in items if target_columns]))
        where.append(place)
        ids.append(seq_id)
    raw_shape = f"{len(rows)} rows x {len(header)} columns"
    ordered = f", ordered by {opts.time_column!r}" if opts.time_column else ""
    steps = [Step("group rows", f"{len(sequences)} x (timesteps, {len(features)})", f"rows grouped by {opts.id_column!r}{ordered}{_delimiter_note(delimiter, opts.delimiter)}")]
    names = list(target_columns) if targets.numeric and target_columns else None
    ragged = Sequences.from_arrays(sequences)
    if not target_columns:
        return SequenceData(ragged, None, str(path), "csv", raw_shape, where, steps, ids, target_names=names)
    if targets.per_timestep:
        return SequenceData(ragged, None, str(path), "csv", raw_shape, where, steps, ids, step_targets=Sequences.from_arrays(step_targets), target_names=names)
    return SequenceData(ragged, np.array(labels, dtype=np.float64 if targets.numeric else None), str(path), "csv", raw_shape, where, steps, ids, target_names=names)


def _check_adjacent_ids(path: Path, blocks: dict[str, list[list[int]]]) -> None:
    """An error for the id whose rows first come in more than one block of adjacent rows (``blocks``: each id's runs of lines)."""
    scattered = [(runs[1][0], seq_id, runs) for seq_id, runs in blocks.items() if len(runs) > 1]
    if not scattered:
        return
    _, seq_id, runs = min(scattered)
    listed = ", ".join(f"{a}-{b}" if a != b else str(a) for a, b in runs[:4]) + (", ..." if len(runs) > 4 else "")
    raise DataError(
        f"{path}, id {seq_id!r}: its rows are in {len(runs)} separate blocks (lines {listed}), with other ids between them. "
        "The same id in two places is usually two sequences that share an id: give each its own id. "
        "If the blocks are one sequence, put its rows together, or set `data.csv.allow_scattered_ids: true` to join them."
    )


def _check_distinct_times(path: Path, place: str, time_column: str, items: list[tuple[float, int, list[float], tuple[Any, ...]]]) -> None:
    """An error for the first two rows of a sequence (``items``, sorted by time) with the same time."""
    for (time, first, *_), (other, second, *_) in itertools.pairwise(items):
        if time == other:
            raise DataError(
                f"{path}, {place}: lines {min(first, second)} and {max(first, second)} have the same time {time:g} (column {time_column!r}). "
                "Each timestep of a sequence needs its own time: fix the time or remove the duplicate row, "
                "or set `data.csv.allow_duplicate_times: true` to keep such rows (in file order)."
            )


def _csv_number(cell: str, place: str, targets: TaskKind) -> float:
    """A regression target cell as a number; a class-like value is an error that names the task to use."""
    try:
        return float(cell)
    except ValueError:
        raise DataError(
            f"{place}: the target {cell!r} is not a number, but `task: {targets.name}` predicts real values. "
            "Fix the cell (missing values are not allowed), or for class labels set `task: classify` (`tag` per timestep)."
        ) from None


# --------------------------------------------------------------------------- text CSV, JSON Lines, .txt


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not a UTF-8 text file (byte {exc.start} is {exc.object[exc.start:exc.start + 1]!r}). Save it as UTF-8.") from None


def has_regression_targets(path: Path) -> bool:
    """True for a .ts file whose header says ``@targetLabel true`` (real-valued targets, read by ``task: regress``)."""
    if FORMATS.get(path.suffix.lower()) != "ts" or not path.is_file():
        return False
    with contextlib.suppress(OSError, UnicodeDecodeError), open(path, encoding="utf-8") as handle:
        for line in handle:
            words = line.strip().lower().split()
            if words[:1] == ["@data"]:
                break
            if words[:2] == ["@targetlabel", "true"]:
                return True
    return False


def looks_like_text(path: Path, options: DataSpec) -> bool:
    """True for a .txt file, and for a .jsonl file whose first record has ``text_key`` but not ``sequence_key``."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt != "jsonl" or not path.is_file():
        return fmt == "txt"
    with contextlib.suppress(OSError, UnicodeDecodeError, json.JSONDecodeError), open(path, encoding="utf-8-sig") as handle:
        first = json.loads(next((line for line in handle if line.strip()), "{}"))
        return isinstance(first, dict) and options.jsonl.text_key in first and options.jsonl.sequence_key not in first
    return False


def _load_text_csv(path: Path, options: DataSpec, *, need_labels: bool, targets: TaskKind = LABELS) -> SequenceData:
    """Read CSV with one text per row: ``text_column``, ``label_column`` (regression: a number) and, if present, ``id_column``."""
    opts = options.csv
    header, rows, delimiter = _read_csv(path, " (e.g. `text,label`)", opts.delimiter)
    if opts.text_column not in header:
        raise DataError(
            f"{path} has no column {opts.text_column!r} (columns: {', '.join(header)}). Set `data.csv.text_column` to the column that holds the texts.{_delimiter_hint(header, delimiter)}"
        )
    label_column = opts.label_column if opts.label_column in header or need_labels else None
    if label_column is not None and label_column not in header:
        raise DataError(f"{path} has no column {label_column!r} (columns: {', '.join(header)}). Set `data.csv.label_column` to the right column name.{_delimiter_hint(header, delimiter)}")
    index = {h: i for i, h in enumerate(header)}
    texts, labels, where, ids = [], [], [], []
    for number, row in rows:
        if not any(cell.strip() for cell in row):
            continue  # blank line
        if len(row) != len(header):
            raise DataError(f"{path}, line {number}: {len(row)} cells but the header has {len(header)} columns. Quote texts that contain commas or line breaks.")
        texts.append(row[index[opts.text_column]])
        if label_column is not None:
            cell = row[index[label_column]].strip()
            labels.append([_csv_number(cell, f"{path}, line {number}, column {label_column!r}", targets)] if targets.numeric else cell)
        where.append(f"line {number}")
        ids.append(row[index[opts.id_column]].strip() if opts.id_column in index else str(number))
    if not texts:
        raise DataError(f"{path} has a header but no data rows. Add one row per text below the header.")
    steps = [Step("read texts", f"{len(texts)} texts", f"one text per row from column {opts.text_column!r}{_delimiter_note(delimiter, opts.delimiter)}")]
    label_array = np.array(labels, dtype=np.float64 if targets.numeric else None) if label_column is not None else None
    return SequenceData(Sequences.from_arrays([]), label_array, str(path), "csv", f"{len(texts)} rows x {len(header)} columns", where, steps, ids, texts)


def _load_txt(path: Path) -> SequenceData:
    """Read raw texts, one per non-blank line (no labels); each is named by its line number."""
    numbered = [(n, line) for n, line in enumerate(_read_text(path).splitlines(), start=1) if line.strip()]
    if not numbered:
        raise DataError(f"{path} has no text: every line is blank. Write one text per line.")
    texts = [line for _, line in numbered]
    steps = [Step("read texts", f"{len(texts)} texts", "one text per line")]
    return SequenceData(Sequences.from_arrays([]), None, str(path), "txt", f"{len(texts)} lines", [f"line {n}" for n, _ in numbered], steps, [str(n) for n, _ in numbered], texts)


def _load_jsonl(path: Path, options: DataSpec, *, text: bool, need_labels: bool, targets: TaskKind = LABELS) -> SequenceData:
    """Read JSON Lines: one object per line with an id, the sequence (or text) and its target under ``label_key``: a label, or
    per timestep a list of labels; for regression a number or a list of numbers, per timestep a list of them (or of lists)."""
    keys = options.jsonl
    key, field_name = (keys.text_key, "text_key") if text else (keys.sequence_key, "sequence_key")
    values: list[Any] = []
    labels: list[Any] = []
    where: list[str] = []
    ids: list[str] = []
    first_line: dict[str, int] = {}
    unlabelled: int | None = None
    for number, line in enumerate(_read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        place = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DataError(
                f"{place} is not valid JSON ({exc.msg} at column {exc.colno}). Each line must be one JSON object, "
                f'e.g. {{"{keys.id_key}": "a1", "{key}": {_example(text)}, "{keys.label_key or "label"}": "x"}}.'
            ) from None
        if not isinstance(record, dict):
            raise DataError(f"{place} holds a JSON {_json_type(record)}, not an object; each line must be one object with the keys {key!r} and {keys.label_key!r}.")
        if key not in record:
            other = keys.sequence_key if text else keys.text_key
            hint = f" The record has {other!r}: for {'sequences' if text else 'raw text'} set `preprocessing.input: {'auto' if text else 'text'}`." if other in record else ""
            what = "text" if text else "sequence"
            raise DataError(f"{place} has no key {key!r} (keys: {', '.join(map(repr, record)) or 'none'}). Set `data.jsonl.{field_name}` to the key that holds the {what}.{hint}")
        if keys.label_key is not None:
            if keys.label_key in record:
                if unlabelled is not None:
                    raise DataError(f"{path}, line {unlabelled} has no key {keys.label_key!r}, but line {number} has one. Give every record a label, or none (for prediction).")
                labels.append(_json_target(record[keys.label_key], f"{place}, key {keys.label_key!r}", targets))
            elif labels or need_labels:
                raise DataError(f"{place} has no key {keys.label_key!r} (keys: {', '.join(map(repr, record))}). Give every record its label, or set `data.jsonl.label_key` to the key that holds it.")
            elif unlabelled is None:
                unlabelled = number
        value = record[key]
        if text:
            if not isinstance(value, str):
                raise DataError(f"{place}, key {key!r}: the text must be a JSON string; got a {_json_type(value)}. Quote it, or use `preprocessing.input: auto` for numeric sequences.")
            values.append(value)
        else:
            values.append(_json_sequence(value, place, key, strict="true" in line or "false" in line))
        record_id = _json_id(record.get(keys.id_key), number, f"{place}, key {keys.id_key!r}")
        if record_id in first_line:
            raise DataError(f"{place}: id {record_id!r} is also used on line {first_line[record_id]}. Ids must be unique; fix one of them or leave the key out.")
        first_line[record_id] = number
        ids.append(record_id)
        where.append(f"line {number}")
    if not values:
        raise DataError(f"{path} has no records: every line is blank. Write one JSON object per line.")
    label_array = np.array(labels, dtype=np.float64 if targets.numeric else None) if labels and not targets.per_timestep else None
    if text:
        steps = [Step("read texts", f"{len(values)} texts", f"one text per record under {key!r}")]
        return SequenceData(Sequences.from_arrays([]), label_array, str(path), "jsonl", f"{len(values)} records", where, steps, ids, values)
    widths = [v.shape[1] for v in values]
    odd = next((i for i, w in enumerate(widths) if w != widths[0]), None)
    if odd is not None:
        raise DataError(f"{path}, {where[odd]}: {widths[odd]} features per timestep, but {where[0]} has {widths[0]}. Every sequence needs the same features.")
    if any(v.dtype.kind == "f" for v in values):
        values = [v.astype(np.float64, copy=False) for v in values]
    raw_shape = f"{len(values)} records x (timesteps={_range_text([len(v) for v in values])}, features={widths[0]})"
    steps = [Step("read records", f"{len(values)} x (timesteps, {widths[0]})", f"one sequence per record under {key!r}" + ("; a flat list is one feature per timestep" if widths[0] == 1 else ""))]
    step_targets = None
    if targets.per_timestep and labels:
        if targets.numeric:
            odd = next((i for i, t in enumerate(labels) if t.shape[1:] != labels[0].shape[1:]), None)
            if odd is not None:
                raise DataError(f"{path}, {where[odd]}: {labels[odd].shape[1]} targets per timestep, but {where[0]} has {labels[0].shape[1]}. Every timestep needs the same targets.")
        step_targets = Sequences.from_arrays(labels)
    return SequenceData(Sequences.from_arrays(values), label_array, str(path), "jsonl", raw_shape, where, steps, ids, step_targets=step_targets)


def _example(text: bool) -> str:
    return '"some words"' if text else "[[0.1, 2.0], [0.3, 1.5]]"


def _json_type(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _json_sequence(value: Any, place: str, key: str, *, strict: bool) -> np.ndarray:
    """A record's sequence as ``(timesteps, features)``: from a list of lists, or a flat list (one feature).

    NumPy converts well-formed lists at once; ``strict`` (the line has a JSON boolean, which NumPy would read as 0/1)
    and any list NumPy cannot convert to numbers are checked value by value, to name the bad one.
    """
    if not isinstance(value, list):
        raise DataError(f"{place}, key {key!r}: the sequence must be a list of timesteps, e.g. [[0.1, 2.0], [0.3, 1.5]] or [1, 2, 3]; got a {_json_type(value)}.")
    if not value:
        raise DataError(f"{place}, key {key!r}: the sequence is empty (no timesteps). Remove the record.")
    nested = isinstance(value[0], list)
    width = len(value[0]) if nested else 1
    if not strict:
        with contextlib.suppress(ValueError, TypeError):
            array = np.array(value)
            if array.dtype.kind in "iuf" and array.ndim == (2 if nested else 1) and width > 0:
                return array if nested else array[:, np.newaxis]
    for t, step in enumerate(value):
        if isinstance(step, list) != nested:
            raise DataError(
                f"{place}, timestep {t}: {'a number' if nested else 'a list'} among {'lists' if nested else 'numbers'}. "
                "Write every timestep as a list of features, or every one as a single number."
            )
        cells = step if nested else [step]
        if len(cells) != width or width == 0:
            raise DataError(f"{place}, timestep {t}: {len(cells)} features, but timestep 0 has {width}. Every timestep needs the same features{'' if width else ' (at least one)'}.")
        for f, cell in enumerate(cells):
            if isinstance(cell, bool) or not isinstance(cell, (int, float)):
                raise DataError(f"{place}, timestep {t}, feature {f}: {json.dumps(cell)} is not a number. Write features as JSON numbers (missing values are not allowed).")
    array = np.array(value)
    if array.dtype.kind not in "iuf":
        array = array.astype(np.float64)  # integers too large for int64
    return array if nested else array[:, np.newaxis]


def _json_target(value: Any, place: str, targets: TaskKind) -> Any:
    """A record's target as the task reads it (see :func:`_load_jsonl`)."""
    if not targets.numeric:
        return _json_tags(value, place) if targets.per_timestep else _json_label(value, place)
    example = "[0.5, 1.2, 0.9] (one value per timestep) or [[0.5, 1.0], ...]" if targets.per_timestep else "0.52, or [0.52, 1.3] for several targets"
    if targets.per_timestep and not isinstance(value, list):
        raise DataError(f"{place}: `task: {targets.name}` needs one target per timestep, a list such as {example}; got {json.dumps(value)}.")
    items = value if isinstance(value, list) else [value]
    flat = [v for item in items for v in (item if isinstance(item, list) and targets.per_timestep else [item])]
    bad = next((v for v in flat if isinstance(v, bool) or not isinstance(v, (int, float))), None) if flat else None
    if bad is not None or not flat:
        raise DataError(
            f"{place}: `task: {targets.name}` needs numeric targets, e.g. {example}; got {json.dumps(bad if bad is not None else value)}. "
            "For class labels set `task: classify` (`tag` per timestep)."
        )
    try:
        array = np.array(items, dtype=np.float64)
    except ValueError:
        raise DataError(f"{place}: the targets are ragged ({json.dumps(value)[:60]}); every timestep needs the same number of targets.") from None
    if targets.per_timestep:
        return array if array.ndim == 2 else array[:, np.newaxis]
    return array


def _json_label(value: Any, place: str) -> Any:
    if isinstance(value, list):
        raise DataError(f"{place}: the label must be a string or a number; got a list. For one label per timestep set `task: tag`.")
    if isinstance(value, dict) or value is None:
        raise DataError(f"{place}: the label must be a string or a number; got {json.dumps(value)}.")
    return value


def _json_tags(value: Any, place: str) -> np.ndarray:
    """A record's per-timestep labels (``task: tag``): a list of strings or numbers, ``(timesteps,)``."""
    if not isinstance(value, list):
        raise DataError(f"{place}: with `task: tag` the label must be a list with one label per timestep, e.g. [\"B\", \"I\", \"O\"]; got {json.dumps(value)}.")
    for t, item in enumerate(value):
        if isinstance(item, (dict, list, bool)) or item is None:
            raise DataError(f"{place}, timestep {t}: each label must be a string or a number; got {json.dumps(item)}.")
    return np.array([str(v) for v in value] if any(isinstance(v, str) for v in value) else value)


def _json_id(value: Any, number: int, place: str) -> str:
    if value is None:
        return str(number)
    if isinstance(value, (dict, list)):
        raise DataError(f"{place}: the id must be a string or a number; got a {_json_type(value)}.")
    return str(value)


# --------------------------------------------------------------------------- checks shared by all formats


def validate(data: SequenceData, *, need_labels: bool, targets: TaskKind = LABELS) -> None:
    """Reject empty sequences or texts, NaN/inf values, and targets that do not match the sequences: their count, one per
    timestep for per-timestep tasks, the same number of finite values for every sequence (or timestep) for regression."""
    for i, text in enumerate(data.texts or []):
        if not text.strip():
            raise DataError(f"{data.source}, {data.where[i]}: the text is empty. Remove it or write the text.")
    seqs = data.sequences
    empty = np.flatnonzero(seqs.lengths == 0)
    if empty.size:
        raise DataError(f"{data.source}, {data.where[int(empty[0])]}: the sequence has no timesteps. Remove it.")
    if np.issubdtype(seqs.dtype, np.floating) and not np.isfinite(seqs.values).all():
        row, f = (int(v) for v in np.argwhere(~np.isfinite(seqs.values.reshape(len(seqs.values), -1)))[0])
        i = int(np.searchsorted(seqs.starts, row, side="right")) - 1
        t = row - int(seqs.starts[i])
        raise DataError(
            f"{data.source}, {data.where[i]}: {seqs[i][t, f]} at timestep {t}, feature {f}. Replace missing or infinite values "
            "(e.g. interpolate or drop the sequence) before training."
        )
    if targets.per_timestep:
        _validate_step_targets(data, need_labels, targets)
        return
    what = "target" if targets.numeric else "label"
    if data.labels is None:
        if need_labels:
            raise DataError(f"{data.source} has no {what}s. Training and test data need one {what} per sequence ({_label_hint(data.format)}).")
        return
    if targets.numeric:
        if data.labels.ndim != 2:
            raise DataError(f"Targets for {data.source} must be (samples,) or (samples, targets); got shape {data.labels.shape}. For one target per timestep set `task: regress_timesteps`.")
        _check_finite_targets(data.labels, data, lambda i: data.where[i])
    elif data.labels.ndim != 1:
        raise DataError(
            f"Labels for {data.source} must be 1-D (one label per sequence); got shape {data.labels.shape}. For one-hot labels use `argmax(axis=1)`; "
            "for one label per timestep set `task: tag`; for real values set `task: regress`."
        )
    if len(data.labels) != len(data):
        raise DataError(f"{data.source}: {len(data.labels)} {what}s for {len(data)} sequences. There must be exactly one {what} per sequence.")


def _validate_step_targets(data: SequenceData, need_labels: bool, targets: TaskKind) -> None:
    """Per-timestep targets: present when needed, exactly as many as each sequence has timesteps, and (numbers) finite, as many per timestep everywhere."""
    what = "target" if targets.numeric else "label"
    if data.step_targets is None:
        if need_labels:
            raise DataError(f"{data.source} has no {what}s. With `task: {targets.name}`, training and test data need one {what} per timestep ({_label_hint(data.format)}).")
        return
    wrong = np.flatnonzero(data.step_targets.lengths != data.sequences.lengths)
    if wrong.size:
        i = int(wrong[0])
        raise DataError(
            f"{data.source}, {data.where[i]}: {data.step_targets.lengths[i]} {what}s for a sequence of {data.sequences.lengths[i]} timesteps. "
            f"With `task: {targets.name}` every timestep needs exactly one {what}; fix the {what}s or the sequence."
        )
    if targets.numeric:  # as many targets per timestep everywhere: the ragged type holds one cell shape
        starts = data.step_targets.starts

        def place(row: int) -> str:
            i = int(np.searchsorted(starts, row, side="right")) - 1
            return f"{data.where[i]}, timestep {row - int(starts[i])}"

        _check_finite_targets(data.step_targets.values, data, place)


def _check_finite_targets(values: np.ndarray, data: SequenceData, place: Callable[[int], str]) -> None:
    """An error naming the first NaN or infinite target of ``values`` ``(rows, targets)``; ``place(row)`` says where the row is."""
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        row, column = (int(v) for v in bad[0])
        which = f" (target {column})" if values.shape[1] > 1 else ""
        raise DataError(f"{data.source}, {place(row)}: the target{which} is {values[row, column]}. Regression targets must be finite numbers; fill or drop it.")


def _label_hint(fmt: str) -> str:
    return {
        "npy": "set `labels:` next to `path:` to a .npy label file",
        "npz": "store them in the .npz under the name in `data.npz.y`",
        "ts": "the .ts file needs @classLabel true and a label at the end of each line",
        "csv": "set `data.csv.label_column`",
        "jsonl": "give every record a label under the key in `data.jsonl.label_key`",
        "txt": "a .txt file holds raw texts without labels; give labelled texts as .csv or .jsonl",
    }[fmt]


def _axes(shape: tuple[int, ...], names: tuple[str, ...] = ("samples", "timesteps", "features")) -> str:
    return "(" + ", ".join(f"{n}={s}" for n, s in zip(names, shape, strict=False)) + ")"


def _shape_text(shape: tuple[int, ...], ndim: int, layout: str) -> str:
    if ndim == 3 and layout == "channels_first":
        return _axes(shape, ("samples", "features", "timesteps"))
    return _axes(shape)


def _range_text(values: list[int]) -> str:
    lo, hi = min(values), max(values)
    return str(lo) if lo == hi else f"{lo}..{hi}"
