"""Data identity: a content hash of every data file, recorded in the run and shown by validate/inspect-shapes."""

from __future__ import annotations

import hashlib
from pathlib import Path


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
