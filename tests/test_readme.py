"""The README tells the truth: the spec reference it links to is the schema's, its test command is CI's."""

from __future__ import annotations

import re

from seqcli.spec import reference_markdown
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
SPEC_REFERENCE = ROOT / "docs" / "spec-reference.md"


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
