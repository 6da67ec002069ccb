"""Data identity: a content hash of every data file, recorded in the run and shown by validate/inspect-shapes."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any


def fingerprint(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def data_files(spec_data: object) -> dict[str, str]:
    """``{"train": path, "train.labels": path, ...}`` for every data file a spec's ``data`` section names."""
    files: dict[str, str] = {}
    for role in ("train", "validation", "test"):
        data_file = getattr(spec_data, role)
        if data_file is not None:
            files[role] = data_file.path
            if data_file.labels:
                files[f"{role}.labels"] = data_file.labels
    return files


def fingerprints(spec_data: object) -> dict[str, str]:
    """Fingerprints of the data files that exist (missing files are reported by the loaders)."""
    return {role: fingerprint(path) for role, path in data_files(spec_data).items() if Path(path).is_file()}


def spec_files(spec: Any) -> dict[str, str]:
    """:func:`data_files` of ``spec.data``, plus ``inputs.NAME.data.ROLE`` for every further input of a multi-input spec."""
    files = data_files(spec.data)
    for name, extra in (spec.inputs or {}).items():
        files |= {f"inputs.{name}.data.{role}": path for role, path in data_files(extra.data).items()}
    return files


def spec_fingerprints(spec: Any) -> dict[str, str]:
    """Fingerprints of every existing data file of a spec, keyed like :func:`spec_files`."""
    return {role: fingerprint(path) for role, path in spec_files(spec).items() if Path(path).is_file()}


def file_key(role: str) -> str:
    """The spec key of a :func:`spec_files` role: ``train`` -> ``data.train``; ``inputs.x.data.train`` as it is."""
    return role if role.startswith("inputs.") else f"data.{role}"
