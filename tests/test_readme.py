"""The README tells the truth: its console examples are what the commands print, its test command is CI's,
and the spec reference it links to is the schema's.

The console examples are compared line by line at a terminal width of 120 columns (``COLUMNS=120``; Rich
tables depend on it). Both sides lose trailing spaces and blank lines, and a line ``...`` in the README
stands for any number of left-out lines. ``validate`` and ``inspect-shapes`` must match exactly otherwise.
``train`` and ``predict`` print timings and floats, so for them both sides are compared after :func:`shape`:
numbers become ``N``, run ids ``RUN``, the smoke data's class names ``CLASS``; ``* best`` marks are dropped,
runs of spaces and of table rules squeezed. docs/contributing.md says the same for contributors.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqcli.cli import app
from seqcli.spec import reference_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
SPEC_REFERENCE = ROOT / "docs" / "spec-reference.md"
WIDTH = "120"
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")


def console_examples(text: str) -> list[tuple[str, list[str]]]:
    """Each ``$ command`` of the ```console blocks, with the lines shown after it."""
    examples: list[tuple[str, list[str]]] = []
    for block in re.findall(r"^```console\n(.*?)^```", text, re.S | re.M):
        for line in block.splitlines():
            if line.startswith("$ "):
                examples.append((line[2:].strip(), []))
            else:
                assert examples, f"console output before any command: {line!r}"
                examples[-1][1].append(line)
    return examples


def plain(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip()]


def shape(lines: list[str]) -> list[str]:
    """A line's structure without its values: what stays the same from one training to the next."""
    shaped = []
    for line in plain(lines):
        line = RUN_ID.sub("RUN", line)
        line = re.sub(r"\b(fall|flat|rise)\b", "CLASS", line)
        line = re.sub(r"\s*\* best\b", "", line)
        line = re.sub(r"\d+(?:[.,]\d+)*", "N", line)
        line = re.sub(r"([─━])\1+", r"\1", line)
        shaped.append(re.sub(r"\s+", " ", line))
    return shaped


def assert_shows(command: str, shown: list[str], actual: list[str]) -> None:
    """``shown`` (the README's lines, ``...`` for left-out ones) is ``actual``, in order and contiguous between the ``...``."""
    segments: list[list[str]] = [[]]
    for line in shown:
        if line.strip() == "...":
            segments.append([])
        else:
            segments[-1].append(line)
    message = f"The README's output of `{command}` is out of date. It shows:\n" + "\n".join(shown) + "\n\nThe command prints:\n" + "\n".join(actual)
    position = 0
    for i, segment in enumerate(segments):
        first, last = i == 0, i == len(segments) - 1
        if last and not first and segment:  # after a `...`: the last lines must end the output
            assert len(actual) - len(segment) >= position and actual[len(actual) - len(segment) :] == segment, message
            return
        starts = [position] if first else range(position, len(actual) - len(segment) + 1)
        found = next((s for s in starts if actual[s : s + len(segment)] == segment), None)
        assert found is not None, message
        position = found + len(segment)
    ends_open = len(segments) > 1 and not segments[-1]  # a final `...`: anything may follow
    assert ends_open or position == len(actual), message


EXAMPLES = console_examples(README)


def commands(program: str, subcommand: str | None = None) -> list[tuple[str, list[str]]]:
    return [(c, out) for c, out in EXAMPLES if c.startswith(program) and (subcommand is None or shlex.split(c)[3] == subcommand)]


def test_every_console_example_is_checked() -> None:
    checked = commands("uv run seqcli", "validate") + commands("uv run seqcli", "inspect-shapes")
    checked += commands("uv run seqcli", "train") + commands("uv run seqcli", "predict") + commands("head ")
    assert [command for command, shown in EXAMPLES if (command, shown) not in checked] == [], "a README console example that no test runs"
    assert len(commands("uv run seqcli", "validate")) >= 2 and len(commands("uv run seqcli", "inspect-shapes")) == 1
    assert len(commands("uv run seqcli", "train")) == 1 and commands("uv run seqcli", "predict")


def test_the_matching_rules() -> None:
    assert_shows("x", ["a", "...", "c"], ["a", "b", "b", "c"])
    assert_shows("x", ["a", "...", "c", "..."], ["a", "c", "d"])
    assert_shows("x", ["...", "b"], ["a", "b"])
    for shown, actual in ((["a", "c"], ["a", "b", "c"]), (["a", "..."], ["b"]), (["...", "a"], ["a", "b"]), (["a"], ["a", "b"])):
        with pytest.raises(AssertionError):
            assert_shows("x", shown, actual)
    assert shape(["epoch 2/8  loss 0.9273  accuracy 0.7037  * best", "│ s000 │ rise │   0.101 │", "Run: runs/smoke/20261201-230609-abe8f2"]) == [
        "epoch N/N loss N accuracy N",
        "│ sN │ CLASS │ N │",
        "Run: runs/smoke/RUN",
    ]


@pytest.mark.parametrize("command", [c for c, _ in commands("uv run seqcli", "validate")])
def test_validate_examples(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    shown = dict(EXAMPLES)[command]
    result = CliRunner().invoke(app, shlex.split(command)[3:], env={"COLUMNS": WIDTH})
    assert_shows(command, plain(shown), plain(result.output.splitlines()))


def test_inspect_shapes_example() -> None:
    """Run as a user runs it: a fresh process, `backend: auto` free to choose (no $KERAS_BACKEND), stderr and stdout in one stream."""
    ((command, shown),) = commands("uv run seqcli", "inspect-shapes")
    env = {k: v for k, v in os.environ.items() if k != "KERAS_BACKEND"} | {"COLUMNS": WIDTH, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run([sys.executable, "-m", "seqcli", *shlex.split(command)[3:]], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert_shows(command, plain(shown), plain(output.splitlines()))


def test_train_and_predict_examples(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README's train -> predict -> head sequence, verbatim, in a scratch directory that sees the repository's data and specs."""
    for name in ("experiments", "data"):
        (tmp_path / name).symlink_to(ROOT / name)
    monkeypatch.chdir(tmp_path)
    run_dir = None
    for command, shown in commands("uv run seqcli", "train") + commands("uv run seqcli", "predict") + commands("head "):
        args = shlex.split(command)
        if args[0] == "head":
            lines = (tmp_path / args[2]).read_text().splitlines()[: int(args[1].lstrip("-"))]
        else:
            args = [RUN_ID.sub(run_dir.name, a) if run_dir else a for a in args[3:]]
            result = CliRunner().invoke(app, args, env={"COLUMNS": WIDTH})
            assert result.exit_code == 0, result.output
            lines = result.output.splitlines()
            if args[0] == "train":
                (run_dir,) = (tmp_path / "runs" / "smoke").iterdir()
        assert_shows(command, shape(shown), shape(lines))


def test_spec_reference_matches_schema() -> None:
    match = re.search(r"<!-- spec-reference:start[^>]*-->\n(.*?)<!-- spec-reference:end -->", SPEC_REFERENCE.read_text(), re.S)
    assert match, "docs/spec-reference.md lost its spec-reference markers"
    assert match.group(1).strip() == reference_markdown(), (
        "The spec reference in docs/spec-reference.md is out of date; replace the table between the markers with the output of\n"
        "uv run python -c 'from seqcli.spec import reference_markdown; print(reference_markdown())'"
    )


def test_ci_runs_the_readme_test_command() -> None:
    assert "uv run pytest                                                            # the tests" in README
    ci = (ROOT / ".ci" / "run").read_text()
    assert "\nuv run pytest\n" in ci and "uv run pytest -m slow" in ci
