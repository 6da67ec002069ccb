"""Write the "stdlib lines" text data: lines of CPython's standard library, labelled code, comment or docstring.

Real text from the Python that runs this script (the shipped files were made with
CPython 3.11.7): every line of the modules below is labelled by Python's own
``tokenize`` and ``ast`` modules as ``code`` (a line of statements, its trailing
comment removed), ``comment`` (a comment's text, without the ``#``) or
``docstring`` (one line of a module, class or function docstring). Lines shorter
than 12 characters are skipped; leading indentation is removed. Train and test
come from different modules, 1,000 and 300 lines per class, sampled with a fixed
seed. ``uv run python data/stdlib_lines/generate.py`` recreates train.csv and
test.csv; predict.txt holds a few unlabelled lines for ``seqcli predict``.
"""

import ast
import csv
import importlib.util
import io
import tokenize
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TRAIN_MODULES = [
    "argparse", "ast", "calendar", "configparser", "csv", "dataclasses", "datetime", "difflib", "enum", "fractions",
    "functools", "gettext", "heapq", "inspect", "ipaddress", "logging", "pathlib", "pickle", "pprint", "shutil",
    "statistics", "string", "subprocess", "tarfile", "textwrap", "threading", "typing", "zipfile",
]
TEST_MODULES = ["base64", "bisect", "cmd", "collections", "contextlib", "copy", "fnmatch", "glob", "locale", "random", "shlex", "tempfile", "uuid", "weakref"]
PER_CLASS = {"train": 1000, "test": 300}
MIN_CHARS = 12


def docstring_lines(tree: ast.AST) -> set[int]:
    """Line numbers (1-based) of every module, class and function docstring."""
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
                lines.update(range(first.lineno, first.end_lineno + 1))
    return lines


def labelled_lines(module: str) -> list[tuple[str, str]]:
    """(text, label) for the lines of one stdlib module."""
    source = Path(importlib.util.find_spec(module).origin).read_text(encoding="utf-8")
    doc = docstring_lines(ast.parse(source))
    comments: dict[int, str] = {}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            comments[token.start[0]] = token.string.lstrip("#").strip()
    out = []
    for number, line in enumerate(source.splitlines(), start=1):
        if number in doc:
            text, label = line.strip().strip('"').strip("'").strip(), "docstring"
        elif number in comments and line.strip().startswith("#"):
            text, label = comments[number], "comment"
        else:
            text, label = line.strip(), "code"
            if number in comments:
                text = text[: text.rfind("#")].rstrip()  # the trailing comment is not code
        if len(text) >= MIN_CHARS:
            out.append((text, label))
    return out


def write(path: Path, modules: list[str], per_class: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pool = [(module, text, label) for module in modules for text, label in labelled_lines(module)]
    rows = []
    for label in ("code", "comment", "docstring"):
        members = [row for row in pool if row[2] == label]
        rows += [members[i] for i in sorted(rng.choice(len(members), per_class, replace=False))]
    order = rng.permutation(len(rows))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "text", "label"])
        for i in order:
            module, text, label = rows[i]
            writer.writerow([f"{module}-{i}", text, label])


def main() -> None:
    write(HERE / "train.csv", TRAIN_MODULES, PER_CLASS["train"], seed=0)
    write(HERE / "test.csv", TEST_MODULES, PER_CLASS["test"], seed=1)
    examples = ["Return the number of items in the queue.", "for key, value in sorted(items.items()):", "XXX This is a hack; see issue 1234"]
    (HERE / "predict.txt").write_text("\n".join(examples) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
