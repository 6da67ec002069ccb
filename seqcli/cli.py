"""The seqcli command line: parse, call the core, render.

Only :class:`~seqcli.errors.SeqcliError` is caught (message on stderr, exit 1);
anything else is a bug and keeps its traceback. Heavy modules (NumPy,
TensorFlow) are imported inside the commands that need them, so ``--help`` and
``validate`` stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, ParamSpec, TypeVar

import typer

from seqcli import __version__
from seqcli.errors import SeqcliError

app = typer.Typer(
    name="seqcli",
    help=(
        "Sequence classification and regression experiments with stacked Keras LSTMs, from a YAML spec.\n\n"
        "The spec's `task` says what the model predicts: classify (one label per sequence), tag (one label per timestep), "
        "regress (one real value or vector per sequence), regress_timesteps (one real value or vector per timestep)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: Typer's Rich help imports markdown-it and pygments (+0.3 s)
)

P = ParamSpec("P")
R = TypeVar("R")

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="PATH=VALUE", help="Override a spec field, e.g. --set training.epochs=3 --set model.layers[0].units=64. Repeatable."),
]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress display or notes: only results and errors (for logs and CI).")]


class Backend(StrEnum):
    jax = "jax"
    tensorflow = "tensorflow"


def _reports_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn seqcli's own errors into a one-paragraph message and exit status 1."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except SeqcliError as exc:
            from seqcli import render

            render.error(str(exc))
            raise typer.Exit(1) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"seqcli {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """Train, predict and inspect LSTM sequence models from a YAML spec."""


@app.command()
@_reports_errors
def validate(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML).")],
    set_: SetOption = None,
    print_: Annotated[bool, typer.Option("--print", help="Print the resolved spec with every default filled in.")] = False,
) -> None:
    """Check a spec and that its data files exist, without loading data or TensorFlow; show the data files' fingerprints."""
    from seqcli.fingerprint import file_key, spec_files, spec_fingerprints
    from seqcli.spec import check_data_files, load_spec, to_yaml

    resolved = load_spec(spec, set_ or [])
    check_data_files(resolved)
    if print_:
        typer.echo(to_yaml(resolved), nl=False)
        return
    typer.echo(f"{spec}: valid.")
    found = spec_fingerprints(resolved)
    for role, path in spec_files(resolved).items():
        typer.echo(f"  {file_key(role)}: {_relative(path)}  {found.get(role, '(not found)')}")


def _relative(path: str) -> str:
    """A path relative to the working directory when it is below it."""
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


@app.command()
@_reports_errors
def train(
    spec: Annotated[Path | None, typer.Argument(metavar="[SPEC]", help="The experiment spec (YAML); optional with --resume.")] = None,
    resume: Annotated[Path | None, typer.Option("--resume", metavar="RUN_DIR", help="Continue an interrupted run from its last completed epoch.")] = None,
    set_: SetOption = None,
    backend: Annotated[Backend | None, typer.Option(help="Keras backend; the same as --set backend=NAME (default: the spec's, auto).")] = None,
    quiet: QuietOption = False,
) -> None:
    """Train a model and write a new run directory (checkpoints, history, metrics), or resume one."""
    from seqcli import render
    from seqcli import train as core
    from seqcli.errors import SpecError
    from seqcli.spec import load_spec

    if resume is None and spec is None:
        raise SpecError("Give a spec to train (`seqcli train SPEC`), or a run to continue (`seqcli train --resume RUN_DIR`).")
    if backend is not None:
        set_ = [*(set_ or []), f"backend={backend.value}"]
    if not quiet:
        render.note(f"loading data and building the model for {resume or spec} ...")
    if resume is not None:
        prepared, state = core.prepare_resume(resume, spec, set_ or [])
        if not quiet:
            render.note(f"resuming {state.run.path} after epoch {state.epochs_completed}")
    else:
        assert spec is not None  # checked above: without --resume there is a SPEC
        prepared, state = core.prepare(load_spec(spec, set_ or [])), None
    for text in prepared.warnings:
        render.warning(text)
    try:
        if quiet:
            result = core.fit(prepared, resume=state)
        else:
            with render.RichProgress() as progress:
                result = core.fit(prepared, progress, resume=state)
    except KeyboardInterrupt:
        render.error(
            "Interrupted. The run is marked 'interrupted' and keeps every completed epoch; "
            "continue it with `seqcli train --resume RUN_DIR` (RUN_DIR is the newest directory under `output.dir`)."
        )
        raise typer.Exit(130) from None
    render.out.print(render.train_result(result))


@app.command()
@_reports_errors
def tune(
    spec: Annotated[Path, typer.Argument(metavar="SPEC", help="The experiment spec (YAML) with a `tune:` section: dotted spec paths mapped to choices or ranges.")],
    trials: Annotated[int, typer.Option("--trials", "-n", help="Finish when the study has this many finished (completed or pruned) trials, whoever ran them.")] = 20,
    storage: Annotated[
        str | None,
        typer.Option(
            "--storage", metavar="URL",
            help="The study's database, e.g. postgresql://USER:PASSWORD@HOST/DB, shared by several workers. Default: SQLite, <output.dir>/<name>/tune.db.",
        ),
    ] = None,
    study: Annotated[str | None, typer.Option("--study", metavar="NAME", help="The study's name (default: the experiment's latest study, or its name).")] = None,
    new_study: Annotated[bool, typer.Option("--new-study", help="Start a new study (the older ones are kept), e.g. after changing the spec.")] = False,
    no_prune: Annotated[bool, typer.Option("--no-prune", help="Train every trial to its end (no median pruning of poor trials).")] = False,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable result on stdout.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Search hyperparameters with Optuna (TPE, median pruning): each trial is a run; the study is kept in a database and continued when run again."""
    import json

    from seqcli import render
    from seqcli import tune as core
    from seqcli.spec import load_search

    search = load_search(spec, set_ or [])
    try:
        result = core.search(search, trials=trials, storage=storage, study_name=study, new_study=new_study, prune=not no_prune, progress=None if quiet else render.TuneLines())
    except KeyboardInterrupt:
        render.error("Interrupted. Finished trials are kept in the study; run the same command again to continue it.")
        raise typer.Exit(130) from None
    if json_:
        render.out.print(json.dumps(result.to_dict(), indent=2), highlight=False, markup=False, soft_wrap=True)
    else:
        render.out.print(render.tune_result(result))


class Checkpoint(StrEnum):
    best = "best"
    last = "last"


class OutputFormat(StrEnum):
    auto = "auto"
    table = "table"
    csv = "csv"
    json = "json"


@app.command()
@_reports_errors
def predict(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory created by `seqcli train`.")],
    input_: Annotated[
        Path | None,
        typer.Argument(metavar="[INPUT]", help="Data to predict: a file in any training format, one .npy sequence (timesteps[, features]), or texts (.csv, .jsonl, .txt: one per line)."),
    ] = None,
    text: Annotated[list[str] | None, typer.Option("--text", help="A raw text to predict with a text run, instead of INPUT. Repeatable.")] = None,
    input_files: Annotated[
        list[str] | None, typer.Option("--input", metavar="NAME=FILE", help="For a multi-input run, instead of INPUT: the data file of the input NAME. Repeat for every input.")
    ] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write predictions to this .csv or .json file.")] = None,
    checkpoint: Annotated[Checkpoint, typer.Option(help="Which checkpoint to load.")] = Checkpoint.best,
    backend: Annotated[Backend | None, typer.Option(help="Keras backend to predict with (same predictions on either); default: the one the run trained with.")] = None,
    format_: Annotated[OutputFormat, typer.Option("--format", help="auto: a table on stdout, or by --output's extension.")] = OutputFormat.auto,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --output file.")] = False,
    quiet: QuietOption = False,
) -> None:
    """Predict with a trained run, applying exactly the run's preprocessing."""
    from seqcli import predict as core
    from seqcli import render
    from seqcli.errors import RunError
    from seqcli.rundir import write_output

    fmt = format_.value
    named = {".csv": "csv", ".json": "json"}.get(output.suffix.lower(), "") if output is not None else ""  # the format --output's extension names
    if fmt == "auto":
        fmt = "table" if output is None else named
        if not fmt:
            raise RunError(f"Cannot tell the output format from {output}; name it .csv or .json, or pass --format csv|json.")
    elif output is not None and named and fmt in ("csv", "json") and fmt != named:
        raise RunError(
            f"--format {fmt} does not match --output {output}, a .{named} name. Name the file {output.with_suffix('.' + fmt).name}, "
            f"or pass --format {named}, or leave --format out (the extension decides)."
        )
    if output is not None and fmt == "table":
        raise RunError("--format table prints to the terminal; use --format csv or json with --output.")
    if sum([input_ is not None, bool(text), bool(input_files)]) != 1:
        raise RunError("Give either INPUT (a data file) or --text TEXT (for a text run), or --input NAME=FILE for every input of a multi-input run: exactly one of the three.")
    files = _named_files(input_files or [])
    loaded = core.load_run(run_dir, checkpoint.value, backend.value if backend else None)
    if input_files:
        result = core.predict_inputs(loaded, files)
    elif text:
        result = core.predict_texts(loaded, text)
    else:
        assert input_ is not None  # checked above: exactly one of INPUT, --text and --input
        result = core.predict_file(loaded, input_)
    if not quiet:
        for note in result.notes:
            render.note(note)
    if fmt == "table":
        render.out.print(render.prediction(result))
        return
    content = core.to_csv(result) if fmt == "csv" else core.to_json(result)
    if output is None:
        render.out.print(content, end="", highlight=False, markup=False, soft_wrap=True)
        return
    write_output(output, content, force=force)
    summary = f"wrote {len(result.ids)} {'per-timestep ' if result.timesteps is not None else ''}predictions to {output}"
    scores = ", ".join(f"{name} {value:.4f}" for name, value in result.scores.items() if value is not None)
    if scores:
        summary += f"; {scores}"
    render.out.print(summary, highlight=False)


def _named_files(values: list[str]) -> dict[str, Path]:
    """``["accel=a.jsonl", ...]`` -> ``{"accel": Path("a.jsonl")}``; an error for a malformed or repeated NAME."""
    from seqcli.errors import RunError

    files: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise RunError(f"--input {value!r} is not NAME=FILE. Write it like `--input temperature=data/temperature_test.jsonl`.")
        if name.strip() in files:
            raise RunError(f"--input {name.strip()} is given twice. Give each input once.")
        files[name.strip()] = Path(path.strip())
    return files


@app.command("inspect-shapes")
@_reports_errors
def inspect_shapes(
    target: Annotated[Path, typer.Argument(metavar="SPEC_OR_DATA", help="A spec (.yaml/.yml), or a bare data file to get a suggested spec for.")],
    data: Annotated[Path | None, typer.Option("--data", help="Inspect this data file with the spec's preprocessing instead of data.train.")] = None,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Show how data flows: raw shape, each reshape/pad/mask step, every layer's output shape, warnings. No training."""
    import json

    from seqcli import render
    from seqcli import shapes as core

    if target.suffix.lower() in (".yaml", ".yml"):
        result = core.inspect_spec(target, set_ or [], data)
    else:
        if data is not None or set_:
            from seqcli.errors import SpecError

            raise SpecError("--data and --set need a spec; for a bare data file run `seqcli inspect-shapes FILE`.")
        result = core.inspect_data(target)
    if json_:
        render.out.print(json.dumps(result.to_dict(), indent=2), highlight=False, markup=False, soft_wrap=True)
    else:
        render.out.print(render.trace(result))
