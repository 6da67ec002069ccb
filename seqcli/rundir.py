"""The run directory: the only module that writes files.

Layout of ``<output.dir>/<output.name>/<YYYYmmdd-HHMMSS>-<id>/``::

    run.json             status (running/completed/failed/interrupted), versions, seed, data fingerprints
    spec.yaml            the resolved spec (every default filled in, absolute data paths)
    preprocessing.json   fitted state: input kind, maxlen, padding, pad value, scaler, classes, token range
    model_summary.txt    Keras' summary; layers.json: every layer's output shape in named axes
    history.csv/.json    one row per committed epoch
    metrics.json         loss, accuracy, per-class precision/recall/F1, confusion matrix (validation, test)
    checkpoints/epoch-NNNN.npz     training state of the last and the best epoch (weights, optimizer state)
    checkpoints/last.keras, best.keras   the completed run's models, loadable by Keras alone

Every file is written atomically (temporary file in the same directory, fsync,
rename), so a crash never leaves a truncated file behind. An epoch is committed
by :meth:`RunDir.commit_epoch`: its training state, then the history, then run.json,
the commit point. Whatever run.json says is a consistent state to resume from.
The state is plain NumPy arrays, written in about 2 ms (a ``.keras`` file takes
20 ms or more); the ``.keras`` models are written once, when the run completes.
:class:`EpochWriter` runs the commits on a background thread.
"""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import socket
import tempfile
import zipfile
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from seqcli.errors import RunError

STATUSES = ("running", "completed", "failed", "interrupted")
CHECKPOINTS = ("best", "last")


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


def write_output(path: Path, text: str, *, force: bool) -> None:
    """Write a result file (e.g. predictions) outside a run; never overwrite without ``force``."""
    path = Path(path)
    if path.is_dir():
        raise RunError(f"{path} is a directory; give a file name for --output.")
    if path.exists() and not force:
        raise RunError(f"{path} already exists. Choose another --output file, or pass --force to overwrite it.")
    if not path.parent.exists():
        raise RunError(f"Cannot write {path}: the directory {path.parent} does not exist. Create it first.")
    write_text(path, text)


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

    def write_history(self, rows: list[dict[str, float]]) -> None:
        """history.csv and history.json: one row per completed epoch (epoch numbers from 1)."""
        columns = list(dict.fromkeys(key for row in rows for key in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        self.write_text("history.csv", buffer.getvalue())
        self.write_json("history.json", rows)

    def save_model(self, model: Any, which: str) -> Path:
        """Save the Keras model as checkpoints/<which>.keras atomically."""
        target = self.checkpoint_path(which)
        atomic_write(target, lambda tmp: model.save(tmp))
        return target

    def commit_epoch(self, state: dict[str, np.ndarray], epoch: int, best_epoch: int, best_state: dict[str, np.ndarray], history: list[dict[str, float]]) -> None:
        """Commit a completed epoch (numbered from 1): its training state, the best epoch's if not on disk yet, the history,
        then run.json; then prune."""
        atomic_write(self.state_path(epoch), lambda tmp: _save_arrays(tmp, state))
        if not self.state_path(best_epoch).exists():  # the best epoch ended between two commits
            atomic_write(self.state_path(best_epoch), lambda tmp: _save_arrays(tmp, best_state))
        self.write_history(history)
        self.settle_checkpoints(self.set_status("running", epochs_completed=epoch, best_epoch=best_epoch))

    def settle_checkpoints(self, info: dict[str, Any] | None = None) -> None:
        """Delete the epoch states run.json does not name, models of a run that is not completed, and temporary files.

        Idempotent: after a crash at any point of :meth:`commit_epoch`, this restores the committed state.
        ``info``: run.json's content, if the caller has just written it.
        """
        info = info or self.info()
        last, best = info.get("epochs_completed", 0), info.get("best_epoch", 0)
        keep = {self.state_path(last).name, self.state_path(best).name} if last else set()
        if info["status"] == "completed":
            keep |= {self.checkpoint_path(which).name for which in CHECKPOINTS}
        for file in (self.path / "checkpoints").glob("*"):
            if file.name not in keep:
                file.unlink()
        for stale in self.path.glob(".*.tmp*"):
            stale.unlink()  # a write that a crash interrupted before its rename

    def mark_running(self, **fields: Any) -> None:
        """Status running, with this process's id and host (to tell a live run from a crashed one)."""
        self.set_status("running", pid=os.getpid(), host=socket.gethostname(), **fields)

    def is_live(self) -> bool:
        """True when run.json says running and its process is alive on this host."""
        info = self.info()
        if info["status"] != "running" or info.get("host") != socket.gethostname() or not isinstance(info.get("pid"), int):
            return False
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return info["pid"] != os.getpid()

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

    def checkpoint_path(self, which: str) -> Path:
        """checkpoints/<which>.keras: the completed run's best or last model."""
        return self.path / "checkpoints" / f"{which}.keras"

    def state_path(self, epoch: int) -> Path:
        return self.path / "checkpoints" / f"epoch-{epoch:04d}.npz"

    def read_state(self, epoch: int) -> dict[str, np.ndarray]:
        """The training state committed for ``epoch`` (numbered from 1), as :meth:`commit_epoch` wrote it."""
        file = self.state_path(epoch)
        try:
            with np.load(file, allow_pickle=False) as arrays:
                return {name: arrays[name] for name in arrays.files}
        except FileNotFoundError:
            raise RunError(f"{file} is missing, though run.json names epoch {epoch}. If the run is still training, try again; otherwise train again.") from None
        except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as exc:  # what NumPy and zipfile raise for a damaged archive
            raise RunError(f"Cannot read checkpoint {file}: {exc}. The file is damaged; train again.") from None

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

    def commit(self, state: dict[str, np.ndarray], epoch: int, best_epoch: int, best_state: dict[str, np.ndarray], history: list[dict[str, float]]) -> None:
        """Start :meth:`RunDir.commit_epoch` of these (no longer changing) arrays and rows."""
        self.wait()
        self._pending = self._executor.submit(self.run.commit_epoch, state, epoch, best_epoch, best_state, list(history))

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
    with open(path, "wb") as handle:  # a file object: np.savez would append .npz to a name
        np.savez(handle, **arrays)  # type: ignore[arg-type]  # numpy's stub: a **dict could also fill savez's allow_pickle (bool)
