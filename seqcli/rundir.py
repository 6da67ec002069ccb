"""The run directory: the only module that writes files.

Layout of ``<output.dir>/<output.name>/<YYYYmmdd-HHMMSS>-<id>/``::

    run.json             status (running/completed/failed/interrupted), the training process (pid, host, start), versions, seed, data fingerprints
    spec.yaml            the resolved spec (every default filled in, absolute data paths)
    preprocessing.json   fitted state: input kind, maxlen, padding, pad value, scaler, classes, token range
    model_summary.txt    Keras' summary; layers.json: every layer's output shape in named axes
    history.csv/.json    one row per committed epoch (its metrics, learning rate and wall time)
    metrics.json         loss, accuracy, per-class precision/recall/F1, confusion matrix (validation, test)
    test_values.npz      regression: true and predicted values of the test split (what predictions.png plots)
    history.png, confusion_matrix.png, predictions.png   plots of a completed run (seqcli.plots; `seqcli plot` redraws them)
    tensorboard/         TensorBoard logs, with `output.tensorboard: true` (Keras' callback writes them)
    checkpoints/epoch-NNNN.npz     training state of the last and the best epoch (weights, optimizer state)
    checkpoints/last.keras, best.keras   the completed run's models, loadable by Keras alone
    members/<k>/         an ensemble (`training.ensemble: N`): member k's checkpoints/ and history.csv/.json, k = 2..N;
                         member 1's are the ones above, so a run of one member is laid out as it always was

Every file is written atomically (temporary file in the same directory, fsync,
rename), so a crash never leaves a truncated file behind. An epoch is committed
by :meth:`RunDir.commit_epoch`: its training state, then the history, then run.json,
the commit point. Whatever run.json says is a consistent state to resume from.
An ensemble's run.json also says which member trains (``member``; ``epochs_completed`` and ``best_epoch`` are that
member's) and lists every member's progress (``members``: seed, status pending/training/completed, epochs, best epoch).
The state is plain NumPy arrays, written in about 2 ms (a ``.keras`` file takes
20 ms or more); the ``.keras`` models are written once, when the run completes.
:class:`EpochWriter` runs the commits on a background thread.

A run that says ``running`` may have crashed (``kill -9``, a power cut): :func:`run_status` tells the two
apart from the process recorded in run.json, for every reader.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import os
import secrets
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from seqcli.errors import RunError

if TYPE_CHECKING:
    import numpy as np

STATUSES = ("running", "completed", "failed", "interrupted")
RUN_STATUSES = (*STATUSES, "crashed")  # what run_status reports: "running" in run.json, but its process is gone
CHECKPOINTS = ("best", "last")
MEMBERS = "members"  # an ensemble's members after the first: members/<k>/


def member_file(name: str, member: int = 1) -> str:
    """The name of a run file of ensemble member ``member`` (from 1), relative to the run: ``name`` itself for member 1,
    ``members/<k>/name`` for the others.

    >>> member_file("history.json", 1), member_file("history.json", 3)
    ('history.json', 'members/3/history.json')
    """
    return name if member == 1 else f"{MEMBERS}/{member}/{name}"


def ensemble_size(info: dict[str, Any]) -> int:
    """How many members the run trains: the length of run.json's ``members``, 1 for a run of one model."""
    members = info.get("members")
    return len(members) if isinstance(members, list) and members else 1


def member_progress(info: dict[str, Any], member: int = 1) -> dict[str, Any]:
    """Member ``member``'s ``epochs_completed``, ``best_epoch`` and ``status`` (pending, training, completed) from
    run.json; a run of one model is its own member 1 (completed when the run is)."""
    if ensemble_size(info) == 1:
        done = "completed" if info.get("status") == "completed" else "training"
        return {"epochs_completed": int(info.get("epochs_completed", 0)), "best_epoch": int(info.get("best_epoch", 0)), "status": done}
    entry = info["members"][member - 1]
    return {"epochs_completed": int(entry.get("epochs_completed", 0)), "best_epoch": int(entry.get("best_epoch", 0)), "status": str(entry.get("status", "pending"))}


def _member_fields(info: dict[str, Any], member: int, **progress: Any) -> dict[str, Any]:
    """The run.json fields that record ``progress`` of ensemble member ``member``: its entry in ``members`` and, for the
    member that trains now, the top-level ``epochs_completed``/``best_epoch``; nothing extra for a run of one model."""
    if ensemble_size(info) == 1:
        return {key: value for key, value in progress.items() if key in ("epochs_completed", "best_epoch")}
    members = [dict(entry) for entry in info["members"]]
    members[member - 1].update(progress)
    entry = members[member - 1]
    return {"member": member, "epochs_completed": entry.get("epochs_completed", 0), "best_epoch": entry.get("best_epoch", 0), "members": members}


def atomic_write(path: Path, write: Callable[[Path], object]) -> None:
    """Run ``write(tmp)`` on a temporary sibling of ``path``, then rename it into place."""
    path = Path(path)
    tmp = path  # replaced by the temporary file's path once it exists
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        if tmp != path:
            tmp.unlink(missing_ok=True)
        raise RunError(f"Cannot write {path}: {exc.strerror or exc}. Check free disk space and permissions of {path.parent}.") from None
    except BaseException:
        if tmp != path:
            tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_bytes(path: Path, data: bytes) -> None:
    """Write a binary file (e.g. a PNG) atomically."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_output(path: Path, content: str | bytes, *, force: bool, option: str = "--output") -> None:
    """Write a result file (predictions, a PNG) outside a run; never overwrite without ``force``."""
    check_output(path, force=force, option=option)
    if isinstance(content, bytes):
        write_bytes(Path(path), content)
    else:
        write_text(Path(path), content)


def check_output_dir(output_dir: str | Path, name: str) -> None:
    """Refuse an ``output.dir`` that :meth:`RunDir.create` could not create a run under, before anything is loaded; creates nothing."""
    parent = Path(output_dir) / name
    blocker = _file_above(parent)
    if blocker is not None:
        raise RunError(f"Cannot create the run directory under {parent}: {blocker} is a file (Not a directory). Set `output.dir` to a writable directory.")
    existing = next(p for p in (parent, *parent.parents) if p.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RunError(f"Cannot create the run directory under {parent}: {existing} is not writable (Permission denied). Set `output.dir` to a writable directory.")


def _file_above(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` (``path`` included) when it is not a directory, else None."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return None if candidate.is_dir() else candidate
    return None


# ----------------------------------------------------------------- the training process, and whether it is alive


def process_identity(pid: int | None = None) -> dict[str, Any]:
    """What run.json records of the training process: pid, host and, where /proc tells it, when the process started
    (boot id and start time in clock ticks), which a later process with the same pid does not share."""
    pid = os.getpid() if pid is None else pid
    found: dict[str, Any] = {"pid": pid, "host": socket.gethostname()}
    started = _process_start(pid)
    if started is not None:
        found["process_start"] = started
    return found


def _process_start(pid: int) -> str | None:
    """``<boot id>/<start time in clock ticks since boot>`` of process ``pid`` (Linux), else None."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ": state is field 3, starttime field 22
    return f"{boot}/{fields[19]}" if len(fields) > 19 else None


def process_alive(info: dict[str, Any]) -> bool | None:
    """Whether the process run.json names is still alive: True, False, or None when it runs on another host (cannot tell)."""
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False  # seqcli always records a real one (and os.kill would take 0 or -1 as "every process")
    if info.get("host") != socket.gethostname():
        return None
    if pid == os.getpid():
        return False  # this process is not training it (it would know): it was written by an earlier run in this process
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, under another user
    recorded, now = info.get("process_start"), _process_start(pid)
    return recorded is None or now is None or recorded == now  # a different start: the pid was reused by another process


def run_status(info: dict[str, Any]) -> str:
    """The run's status for every reader: run.json's (completed, failed, interrupted, running), or ``crashed`` when it
    says running but its process is gone (``kill -9``, a crash, a reboot). A process on another host counts as running."""
    status = str(info["status"])
    if status == "running" and process_alive(info) is False:
        return "crashed"
    return status


def describe_status(path: Path, info: dict[str, Any]) -> str:
    """One sentence on where a run stands, with the way on, e.g. "Run R crashed after epoch 3; resume it with `seqcli train --resume R`."."""
    status, epochs = run_status(info), int(info.get("epochs_completed", 0))
    after = f"after epoch {epochs}" if epochs else "before its first epoch ended"
    if ensemble_size(info) > 1 and status != "completed":
        member = int(info.get("member", 1))
        done = member_progress(info, member)["status"] == "completed"
        after = f"after member {member} of {ensemble_size(info)} completed" if done else f"in member {member} of {ensemble_size(info)} {after}"
    resume = f"resume it with `seqcli train --resume {path}`"
    if status == "crashed":
        return f"Run {path} crashed {after} (its process {info.get('pid')} is gone); {resume}."
    if status == "running":
        where = "" if info.get("host") == socket.gethostname() else f" on host {info.get('host')}"
        return f"Run {path} is still training (process {info.get('pid')}{where}; {epochs} epoch{'' if epochs == 1 else 's'} committed so far)."
    if status == "interrupted":
        return f"Run {path} was interrupted {after}; {resume}."
    if status == "failed":
        return f"Run {path} failed {after} ({str(info.get('error', 'no error recorded')).rstrip('.')}); {resume} once the cause is fixed."
    return f"Run {path} is completed ({epochs} epochs)."


def check_output(path: Path, *, force: bool, option: str = "--output", directory: bool = False) -> None:
    """Refuse to write ``path`` (a result file outside any run, or with ``directory`` a folder such as a SavedModel) when
    it exists and ``force`` is off, when it is a folder where a file is due, when its folder is missing or lies under a
    file, or when nothing can be created in that folder (tried with a temporary file, which root's permission bits would
    not show). Writes nothing."""
    path = Path(path)
    if path.is_dir() and not directory:
        raise RunError(f"{path} is a directory; give a file name for {option}.")
    if (path.exists() or path.is_symlink()) and not force:
        raise RunError(f"{path} already exists. Choose another {option}, or pass --force to replace it.")
    parent = path.parent
    if not parent.exists():
        blocker = _file_above(parent)
        if blocker is not None:
            raise RunError(f"Cannot write {path}: {blocker} is a file, not a directory (Not a directory). Choose another {option} path.")
        raise RunError(f"Cannot write {path}: the directory {parent} does not exist. Create it first.")
    if not parent.is_dir():
        raise RunError(f"Cannot write {path}: {parent} is a file, not a directory (Not a directory). Choose another {option} path.")
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise RunError(f"Cannot write {path}: {exc.strerror or exc} in {parent}. Give an {option} in a directory you can write to.") from None
    os.close(fd)
    os.unlink(probe)


def write_artifact(path: Path, write: Callable[[Path], object], *, directory: bool, force: bool, companions: dict[Path, str]) -> None:
    """Write an exported model and its text companions (e.g. a JSON description) so that none is ever half-written.

    ``write(tmp)`` fills a temporary sibling of ``path`` (a folder when ``directory``; its name ends like ``path``'s, for
    writers that check the extension) and may raise to refuse the result; then each companion is written to a temporary
    file, and only then is everything renamed into place, the model first. An existing ``path`` or companion is replaced
    only with ``force``. Any failure removes the temporary files and leaves existing files as they were.
    """
    path = Path(path)
    check_output(path, force=force, directory=directory)
    for companion in companions:
        check_output(companion, force=force)
    temporary: list[Path] = []
    try:
        if directory:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp" + path.suffix, dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        temporary.append(tmp)
        write(tmp)
        _fsync_tree(tmp)
        _usual_permissions(tmp)
        staged: list[tuple[Path, Path]] = []
        for companion, text in companions.items():
            fd, name = tempfile.mkstemp(prefix=f".{companion.stem}.", suffix=".tmp" + companion.suffix, dir=companion.parent)
            os.close(fd)
            temporary.append(Path(name))
            Path(name).write_text(text, encoding="utf-8")
            _fsync_tree(Path(name))
            _usual_permissions(Path(name))
            staged.append((Path(name), companion))
        _replace(tmp, path)
        for source, target in staged:
            os.replace(source, target)
    except OSError as exc:
        _remove(temporary)
        raise RunError(f"Cannot write {path}: {exc.strerror or exc}. Check free disk space and permissions of {path.parent}.") from None
    except BaseException:
        _remove(temporary)
        raise


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file in a folder."""
    for file in [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]:
        with open(file, "rb+") as handle:
            os.fsync(handle.fileno())


def _usual_permissions(path: Path) -> None:
    """What a plain ``open``/``mkdir`` would have given (temporary files are private to their owner): readable by a server's user."""
    umask = os.umask(0)
    os.umask(umask)
    for item in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.chmod(item, (0o777 if item.is_dir() else 0o666) & ~umask)


def _replace(source: Path, target: Path) -> None:
    """Rename ``source`` onto ``target``; a folder (or a file where a folder is, or the other way round) is moved aside first."""
    if (target.is_dir() and not target.is_symlink()) or (target.exists() and source.is_dir()):
        aside = target.with_name(f".{target.name}.{secrets.token_hex(4)}.old")
        os.replace(target, aside)
        os.replace(source, target)
        _remove([aside])
        return
    os.replace(source, target)


def _remove(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def experiment_dir(output_dir: str | Path, name: str) -> Path:
    """``<output.dir>/<name>``, created if missing: the folder of an experiment's runs (and of its tuning study)."""
    parent = Path(output_dir) / name
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"Cannot create {parent}: {exc.strerror}. Set `output.dir` to a writable directory.") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RunError(f"Cannot write to {parent}: permission denied. Set `output.dir` to a writable directory.")
    return parent


def write_spec_file(path: Path, text: str) -> None:
    """A spec outside any run (the best trial of ``seqcli tune``), written atomically; replaces an older one."""
    write_text(path, text)


def _json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False) + "\n"


class RunDir:
    """One run directory; create it with :meth:`create`, open an existing one with :meth:`open`."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    # ----------------------------------------------------------------- create / open

    @classmethod
    def create(cls, output_dir: str | Path, name: str) -> RunDir:
        """Make a new, empty run directory; never reuses an existing one."""
        parent = Path(output_dir) / name
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot create the run directory under {parent}: {exc.strerror}. Set `output.dir` to a writable directory.") from None
        for _ in range(100):
            stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
            path = parent / f"{stamp}-{secrets.token_hex(3)}"
            try:
                path.mkdir()  # fails if it exists: two runs never share a directory
            except FileExistsError:
                continue
            except OSError as exc:
                raise RunError(f"Cannot create run directory {path}: {exc.strerror}. Set `output.dir` to a writable directory.") from None
            (path / "checkpoints").mkdir()
            return cls(path)
        raise RunError(f"Could not find a free run directory name under {parent}.")  # pragma: no cover

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """Open an existing run, checking that it describes itself."""
        run = cls(Path(path))
        if not run.path.exists():
            raise RunError(f"Run directory {run.path} does not exist. `seqcli train` prints the run directory it creates.")
        if not run.path.is_dir():
            raise RunError(f"{run.path} is a file; give the run directory (the one holding run.json).")
        for name in ("run.json", "spec.yaml", "preprocessing.json"):
            if not (run.path / name).is_file():
                raise RunError(f"{run.path} is not a complete seqcli run: {name} is missing. Give a directory created by `seqcli train`.")
        return run

    # ----------------------------------------------------------------- writing

    def write_json(self, name: str, obj: Any) -> None:
        write_text(self.path / name, _json(obj))

    def write_text(self, name: str, text: str) -> None:
        write_text(self.path / name, text)

    def write_bytes(self, name: str, data: bytes) -> Path:
        """A binary file of the run (a PNG), atomically; returns its path."""
        write_bytes(self.path / name, data)
        return self.path / name

    def write_arrays(self, name: str, arrays: dict[str, np.ndarray]) -> None:
        """A NumPy ``.npz`` file of the run (no pickles), atomically."""
        atomic_write(self.path / name, lambda tmp: _save_arrays(tmp, arrays))

    def read_arrays(self, name: str) -> dict[str, np.ndarray]:
        """The arrays of a ``.npz`` file of the run, loaded without pickles."""
        import numpy as np

        file = self.path / name
        try:
            with np.load(file, allow_pickle=False) as arrays:
                return {key: arrays[key] for key in arrays.files}
        except FileNotFoundError:
            raise RunError(f"{file} is missing; the run is incomplete.") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:
            raise RunError(f"Cannot read {file}: {str(exc).rstrip('.')}. The file is damaged; train again.") from None

    def tensorboard_dir(self) -> Path:
        """tensorboard/, created empty if needed: where Keras' TensorBoard callback writes the run's logs."""
        folder = self.path / "tensorboard"
        try:
            folder.mkdir(exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot create {folder}: {exc.strerror}.") from None
        return folder

    def add_member(self, member: int) -> None:
        """members/<k>/checkpoints/ of ensemble member ``member`` (from 2; member 1 lives in the run itself), if not there yet."""
        folder = self.path / member_file("checkpoints", member)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunError(f"Cannot create {folder}: {exc.strerror}. Check free disk space and permissions of {self.path}.") from None

    def set_member(self, member: int, **progress: Any) -> dict[str, Any]:
        """Record ensemble member ``member``'s progress in run.json (e.g. ``status="completed"``), keeping the run's status;
        it becomes the member that trains now. Returns what run.json now holds."""
        info = self.info()
        return self.set_status(info["status"], **_member_fields(info, member, **progress))

    def write_history(self, rows: list[dict[str, float]], *, member: int = 1) -> None:
        """history.csv and history.json (of ensemble member ``member``): one row per completed epoch (epoch numbers from 1)."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text(member_file("history.csv", member), buffer.getvalue())
        self.write_json(member_file("history.json", member), rows)

    def save_model(self, model: Any, which: str, *, member: int = 1) -> Path:
        """Save the Keras model as checkpoints/<which>.keras (of ensemble member ``member``) atomically."""
        from seqcli.backend import without_tensorflow

        target = self.checkpoint_path(which, member=member)
        with without_tensorflow():  # on JAX, Keras would import TensorFlow only to look for its types
            atomic_write(target, lambda tmp: model.save(tmp))
        return target

    def commit_epoch(
        self, state: dict[str, np.ndarray], epoch: int, best_epoch: int, best_state: dict[str, np.ndarray], history: list[dict[str, float]], *, member: int = 1
    ) -> None:
        """Commit a completed epoch (numbered from 1) of ensemble member ``member``: its training state, the best epoch's if
        not on disk yet, the history, then run.json; then prune."""
        atomic_write(self.state_path(epoch, member=member), lambda tmp: _save_arrays(tmp, state))
        if not self.state_path(best_epoch, member=member).exists():  # the best epoch ended between two commits
            atomic_write(self.state_path(best_epoch, member=member), lambda tmp: _save_arrays(tmp, best_state))
        self.write_history(history, member=member)
        info = self.info()
        self.settle_checkpoints(self.set_status("running", **_member_fields(info, member, epochs_completed=epoch, best_epoch=best_epoch)))

    def settle_checkpoints(self, info: dict[str, Any] | None = None) -> None:
        """Delete the epoch states run.json does not name, models of a run (an ensemble's member) that is not completed,
        and temporary files; for every member of an ensemble.

        Idempotent: after a crash at any point of :meth:`commit_epoch`, this restores the committed state.
        ``info``: run.json's content, if the caller has just written it.
        """
        info = info or self.info()
        for member in range(1, ensemble_size(info) + 1):
            progress = member_progress(info, member)
            last, best = progress["epochs_completed"], progress["best_epoch"]
            keep = {self.state_path(last).name, self.state_path(best).name} if last else set()
            if progress["status"] == "completed":
                keep |= {self.checkpoint_path(which).name for which in CHECKPOINTS}
            for file in (self.path / member_file("checkpoints", member)).glob("*"):
                if file.name not in keep:
                    file.unlink()
            if member > 1:
                for stale in (self.path / MEMBERS / str(member)).glob(".*.tmp*"):
                    stale.unlink()
        for stale in self.path.glob(".*.tmp*"):
            stale.unlink()  # a write that a crash interrupted before its rename

    def mark_running(self, **fields: Any) -> None:
        """Status running, with this process's id, host and start time (to tell a live run from a crashed one)."""
        self.set_status("running", **process_identity(), **fields)

    def status(self) -> str:
        """:func:`run_status` of this run."""
        return run_status(self.info())

    def checkpoints_left(self, *, member: int = 1) -> list[str]:
        """The files in checkpoints/ (of ensemble member ``member``), sorted: what a damaged or half-deleted run still has."""
        folder = self.path / member_file("checkpoints", member)
        return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if folder.is_dir() else []

    def discard(self, name: str) -> None:
        """Delete one file of the run, if it is there (e.g. metrics.json of a completed run that is being extended)."""
        (self.path / name).unlink(missing_ok=True)

    def update(self, **fields: Any) -> dict[str, Any]:
        """Add or change run.json fields, keeping its status; returns what it now holds."""
        return self.set_status(self.info()["status"], **fields)

    def set_status(self, status: str, **fields: Any) -> dict[str, Any]:
        """Update run.json's status (and any other fields); returns what it now holds."""
        assert status in STATUSES
        info = self.info() if (self.path / "run.json").exists() else {}
        info.update(fields, status=status, updated=datetime.now(UTC).isoformat(timespec="seconds"))
        self.write_json("run.json", info)
        return info

    # ----------------------------------------------------------------- reading

    def read_json(self, name: str) -> Any:
        file = self.path / name
        try:
            return json.loads(file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RunError(f"{file} is missing; the run is incomplete.") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RunError(f"{file} is corrupt ({exc}); the run cannot be used. Train again.") from None

    def read_yaml(self, name: str) -> dict[str, Any]:
        """A YAML mapping from the run (safe loader, aliases bounded like a spec's)."""
        import yaml

        from seqcli.spec import load_yaml

        try:
            data = load_yaml(self.read_text(name), str(self.path / name))
        except (yaml.YAMLError, RecursionError) as exc:
            raise RunError(f"{self.path / name} is corrupt ({exc}). Train again.") from None
        if not isinstance(data, dict):
            raise RunError(f"{self.path / name} is corrupt (not a mapping). Train again.")
        return data

    def read_text(self, name: str) -> str:
        try:
            return (self.path / name).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise RunError(f"Cannot read {self.path / name}: {exc}.") from None

    def info(self) -> dict[str, Any]:
        info = self.read_json("run.json")
        if not isinstance(info, dict) or info.get("status") not in STATUSES:
            raise RunError(f"{self.path / 'run.json'} is corrupt (no valid status). Train again.")
        return info

    def checkpoint_path(self, which: str, *, member: int = 1) -> Path:
        """checkpoints/<which>.keras (of ensemble member ``member``): the completed run's best or last model."""
        return self.path / member_file("checkpoints", member) / f"{which}.keras"

    def state_path(self, epoch: int, *, member: int = 1) -> Path:
        return self.path / member_file("checkpoints", member) / f"epoch-{epoch:04d}.npz"

    def read_state(self, epoch: int, *, member: int = 1) -> dict[str, np.ndarray]:
        """The training state committed for ``epoch`` (numbered from 1) of ensemble member ``member``, as :meth:`commit_epoch` wrote it."""
        import numpy as np

        file = self.state_path(epoch, member=member)
        try:
            with np.load(file, allow_pickle=False) as arrays:
                return {name: arrays[name] for name in arrays.files}
        except FileNotFoundError:
            left = ", ".join(self.checkpoints_left(member=member)) or "nothing"
            raise RunError(
                f"{file} is missing, though run.json names epoch {epoch}; {member_file('checkpoints', member)}/ holds {left}. "
                "If the run is still training, try again; otherwise train again."
            ) from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # what NumPy and zipfile raise for a damaged archive
            raise RunError(f"Cannot read checkpoint {file}: {str(exc).rstrip('.')}. The file is damaged; train again.") from None

    def __str__(self) -> str:
        return str(self.path)


class EpochWriter:
    """Commits epochs to a run on a background thread, one at a time and in order, while the next epoch trains.

    :meth:`commit` waits for the previous commit first (and raises its error, e.g. a full disk); :meth:`wait`
    returns once everything submitted is on disk. Nothing else may write the run while a commit is pending.
    """

    def __init__(self, run: RunDir) -> None:
        self.run = run
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seqcli-commit")
        self._pending: Future[None] | None = None

    def commit(
        self, state: dict[str, np.ndarray], epoch: int, best_epoch: int, best_state: dict[str, np.ndarray], history: list[dict[str, float]], *, member: int = 1
    ) -> None:
        """Start :meth:`RunDir.commit_epoch` of these (no longer changing) arrays and rows (of ensemble member ``member``)."""
        self.wait()
        self._pending = self._executor.submit(functools.partial(self.run.commit_epoch, member=member), state, epoch, best_epoch, best_state, list(history))

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the pending commit, then stop the thread."""
        try:
            self.wait()
        finally:
            self._executor.shutdown()


def _save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    import numpy as np

    with open(path, "wb") as handle:  # a file object: np.savez would append .npz to a name
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: a **dict could also fill savez's allow_pickle (bool)
