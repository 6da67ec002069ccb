"""The documentation's links resolve: every relative link names a file that exists, every #anchor a heading."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import ROOT

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md"), ROOT / "benchmarks" / "README.md", *(ROOT / "data").glob("*/README.md")])

FENCE = re.compile(r"^\s*(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
INLINE_CODE = re.compile(r"(`+)(.+?)\1")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (where `#` starts a comment, not a heading, and `[x](y)` is code)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: its text lower-cased, punctuation other than '-' and '_' removed, spaces to '-'.

    >>> slug("Backends: JAX or TensorFlow")
    'backends-jax-or-tensorflow'
    >>> slug("Check a spec: `validate`")
    'check-a-spec-validate'
    >>> slug("`classify`: one label per sequence")
    'classify-one-label-per-sequence'
    >>> slug("Preprocessing, the model and training options")
    'preprocessing-the-model-and-training-options'
    >>> slug("See [the spec](spec.md) (v2.1)")
    'see-the-spec-v21'
    """
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link counts by its text
    text = text.replace("`", "").replace("*", "")
    text = re.sub(r"[^\w\- ]", "", text.lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every anchor of a page: its headings' slugs (repeats get -1, -2, ... as on GitHub) and explicit HTML anchors."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(text):
        match = HEADING.match(line)
        if match:
            base = slug(match.group(2))
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        found.update(HTML_ANCHOR.findall(line))
    return found


def links(text: str) -> list[str]:
    """Every link target of a page outside code: inline links, images and reference definitions."""
    targets = []
    for line in prose_lines(text):
        line = INLINE_CODE.sub("", line)
        targets += INLINE_LINK.findall(line)
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            targets.append(definition.group(1))
    return targets


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """The links of ``page`` that do not resolve, each with the reason."""
    problems = []
    for target in links(page.read_text()):
        if re.match(r"^(https?|mailto):", target):
            continue  # external: not checked
        path_part, _, anchor = target.partition("#")
        destination = (page.parent / path_part if path_part else page).resolve()
        if not destination.is_relative_to(root.resolve()):
            problems.append(f"{target}: points outside the repository")
            continue
        if not destination.exists():
            problems.append(f"{target}: {destination.relative_to(root.resolve())} does not exist")
            continue
        if anchor:
            if destination.suffix != ".md" or destination.is_dir():
                problems.append(f"{target}: an anchor into a file that is not a Markdown page")
            elif anchor not in anchors(destination.read_text()):
                problems.append(f"{target}: no heading of {destination.name} has the anchor #{anchor}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_resolves(page: Path) -> None:
    assert broken_links(page) == []


def test_the_pages_are_all_checked_and_linked_from_the_readme() -> None:
    names = {str(p.relative_to(ROOT)) for p in PAGES}
    assert {"README.md", "benchmarks/README.md", "docs/spec-reference.md", "data/japanese_vowels/README.md"} <= names
    readme_targets = {(ROOT / t.partition("#")[0]).resolve() for t in links((ROOT / "README.md").read_text()) if not t.startswith(("http", "#"))}
    unlinked = [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in readme_targets]
    assert unlinked == [], f"README.md's documentation list misses {unlinked}"


def test_the_checker_finds_broken_links(tmp_path: Path) -> None:
    (tmp_path / "other.md").write_text("# Other page\n\n## A section: `code`\n\n```\n# not a heading\n```\n")
    (tmp_path / "page.md").write_text(
        "# Page\n\n"
        "[ok](other.md) [ok](other.md#a-section-code) [ok](#page) [skipped](https://example.com/missing)\n"
        "[missing file](nothing.md) [missing anchor](other.md#not-a-heading) [own page](#nowhere)\n"
        "`[inside code](nothing.md)`\n\n"
        "```\n[inside a fence](nothing.md)\n```\n"
    )
    assert broken_links(tmp_path / "page.md", tmp_path) == [
        "nothing.md: nothing.md does not exist",
        "other.md#not-a-heading: no heading of other.md has the anchor #not-a-heading",
        "#nowhere: no heading of page.md has the anchor #nowhere",
    ]


def test_repeated_headings_get_numbered_anchors() -> None:
    assert anchors("# Notes\n## Notes\n## Notes\n") == {"notes", "notes-1", "notes-2"}


def test_the_spec_reference_example_is_the_main_experiment() -> None:
    """docs/spec-reference.md shows experiments/japanese_vowels.yaml without its comments."""
    page = (ROOT / "docs" / "spec-reference.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", page, re.S)
    assert example
    spec = (ROOT / "experiments" / "japanese_vowels.yaml").read_text()
    uncommented = [re.sub(r"\s+#.*$", "", line) for line in spec.splitlines() if not line.lstrip().startswith("#")]
    assert example.group(1).splitlines() == [line for line in uncommented if line.strip()]
