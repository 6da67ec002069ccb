"""The design rules, checked: thin CLI, core modules that never print, one writer of files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "seqcli"
PRESENTATION = {"cli.py", "render.py", "__main__.py"}
CORE = sorted(p for p in PACKAGE.glob("*.py") if p.name not in PRESENTATION)


def imported_modules(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_core_modules_never_print_or_import_the_cli_stack(path: Path) -> None:
    tree = ast.parse(path.read_text())
    calls = {node.func.id for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert "print" not in calls
    assert not imported_modules(tree) & {"typer", "rich", "click"}


@pytest.mark.parametrize("path", CORE, ids=lambda p: p.name)
def test_tensorflow_is_imported_lazily(path: Path) -> None:
    """Module-level imports of TensorFlow/Keras (or Optuna and its SQLAlchemy) would make --help and validate slow."""
    tree = ast.parse(path.read_text())
    top_level = ast.Module(body=[n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))], type_ignores=[])
    assert not imported_modules(top_level) & {"tensorflow", "keras", "optuna", "sqlalchemy"}


def _is_run_dir(receiver: ast.expr) -> bool:
    """``run.write_text(...)`` / ``self.run.save_checkpoint(...)`` go through rundir.RunDir."""
    return (isinstance(receiver, ast.Name) and receiver.id == "run") or (isinstance(receiver, ast.Attribute) and receiver.attr == "run")


def test_only_rundir_writes_files() -> None:
    writers = {"write_text", "write_bytes", "save", "savez", "savez_compressed", "mkdir", "mkstemp", "unlink", "rename"}
    offenders = []
    for path in [*CORE, PACKAGE / "cli.py", PACKAGE / "render.py"]:
        if path.name == "rundir.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writers and not _is_run_dir(node.func.value):
                offenders.append(f"{path.name}:{node.lineno} .{node.func.attr}()")
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "open":
                mode = node.args[1] if len(node.args) > 1 else next((k.value for k in node.keywords if k.arg == "mode"), None)
                if isinstance(mode, ast.Constant) and any(c in str(mode.value) for c in "wax+"):
                    offenders.append(f"{path.name}:{node.lineno} open(..., {mode.value!r})")
    assert offenders == []
