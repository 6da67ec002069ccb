"""The seqcli command line: parse, call the core, render.

Only :class:`~seqcli.errors.SeqcliError` is caught (message on stderr, exit 1);
anything else is a bug and keeps its traceback. Ctrl-C stops every command with
one message and exit status 130 (:mod:`seqcli.interrupt` makes sure it is not
lost). Heavy modules (NumPy, TensorFlow) are imported inside the commands that
need them, so ``--help`` and ``validate`` stay fast, and every check that needs
no model runs before Keras is imported.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer

from seqcli import __version__
from seqcli.errors import SeqcliError

if TYPE_CHECKING:
    from seqcli.rundir import RunDir
    from seqcli.train import Resume

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
    """Turn seqcli's own errors into a one-paragraph message and exit status 1, and Ctrl-C into one message and exit status 130."""
    name = command.__name__.replace("_", "-")

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from seqcli import interrupt

        restore = interrupt.install()
        try:
            return command(*args, **kwargs)
        except SeqcliError as exc:
            from seqcli import render

            render.error(str(exc))
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            from seqcli import render

            render.error(f"Interrupted (Ctrl-C): `seqcli {name}` stopped before it finished.")
            raise typer.Exit(130) from None
        finally:
            interrupt.clear()
            restore()

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
    baseline: Annotated[bool, typer.Option("--baseline", help="Also fit MiniRocket (aeon, an optional dependency) on the same splits and show it beside the model.")] = False,
) -> None:
    """Train a model and write a new run directory (checkpoints, history, metrics), or resume one."""
    from seqcli import render
    from seqcli.errors import SpecError
    from seqcli.rundir import check_output_dir
    from seqcli.spec import load_spec

    if resume is None and spec is None:
        raise SpecError("Give a spec to train (`seqcli train SPEC`), or a run to continue (`seqcli train --resume RUN_DIR`).")
    if backend is not None:
        set_ = [*(set_ or []), f"backend={backend.value}"]
    runs: list[RunDir] = []  # the run directory, once it exists

    def started(run: RunDir) -> None:
        runs.append(run)
        if not quiet and resume is None:
            render.note(f"training run {run.path}")

    try:
        resolved = load_spec(spec, set_ or []) if resume is None and spec is not None else None
        if resolved is not None:
            check_output_dir(resolved.output.dir, resolved.output.name or "run")  # before the slow part (train.prepare checks it too)
        if not quiet:
            render.note(f"loading data and building the model for {resume or spec} ...")
        from seqcli import train as core

        if resume is not None:
            prepared, state = core.prepare_resume(resume, spec, set_ or [])
            if not quiet:
                render.note(_resuming(state, prepared.spec.training.epochs))
        else:
            assert resolved is not None  # checked above: without --resume there is a SPEC
            prepared, state = core.prepare(resolved), None
        if baseline:
            from seqcli import baseline as reference

            reference.check(prepared)  # before training: aeon missing, or data it cannot take
        for text in prepared.warnings:
            render.warning(text)
        if quiet:
            result = core.fit(prepared, resume=state, on_run=started)
        else:
            with render.RichProgress() as progress:
                result = core.fit(prepared, progress, resume=state, on_run=started)
        if baseline:
            if not quiet:
                render.note(f"fitting {reference.NAME} on the same training split ...")
            result = reference.attach(result, reference.fit(prepared))
    except KeyboardInterrupt:
        render.error(_interrupted(runs[0] if runs else None, resume))
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


def _resuming(state: Resume, epochs: int) -> str:
    """``resuming RUN after epoch N`` (an ensemble's: ``in member K of N after epoch E``), with how it had stopped and,
    with a new ``training.epochs``, the epochs it now trains for."""
    how = {"crashed": ", which crashed,", "failed": ", which failed,", "completed": ", which completed,"}.get(state.status, "")
    more = f"; training it for {epochs} epochs instead of {state.extended_from}" if state.extended_from is not None else ""
    if state.members > 1 and state.extended_from is not None:
        more += ", every member in turn"
    if state.members > 1 and not state.epochs_completed:
        return f"resuming {state.run.path}{how} with member {state.member} of {state.members}{more}"
    where = f" in member {state.member} of {state.members}" if state.members > 1 else ""
    return f"resuming {state.run.path}{how}{where} after epoch {state.epochs_completed}{more}"


def _interrupted(run: RunDir | None, resume: Path | None) -> str:
    """The Ctrl-C message of `train`: where the run stands and how to continue it."""
    if run is None:
        if resume is not None:
            return f"Interrupted (Ctrl-C) before training resumed; run {resume} is unchanged. Continue it with `seqcli train --resume {resume}`."
        return "Interrupted (Ctrl-C) while loading the data and building the model; no run directory was created."
    from seqcli.rundir import ensemble_size

    try:
        info = run.info()
    except SeqcliError:
        info = {}
    epochs, size = int(info.get("epochs_completed", 0)), ensemble_size(info)
    kept = f"keeps its {epochs} completed epoch{'s' if epochs != 1 else ''}" if epochs else "has no completed epoch yet"
    if size > 1:
        member = info.get("member", 1)
        done = f"member {member}'s {epochs} completed epoch{'s' if epochs != 1 else ''}" if epochs else f"no completed epoch of member {member} of {size}"
        kept = f"keeps its completed members and {done}"
    return f"Interrupted (Ctrl-C). Run {run.path} is marked 'interrupted' and {kept}; continue it with `seqcli train --resume {run.path}`."


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
    from seqcli.rundir import check_output, write_output

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
    if output is not None:
        check_output(output, force=force)  # first: these need nothing loaded, and the model takes seconds to load
    loaded = core.load_run(run_dir, checkpoint.value, backend.value if backend else None)  # the model loads when first used, after INPUT is checked
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


@app.command()
@_reports_errors
def export(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A completed run directory created by `seqcli train`.")],
    format_: Annotated[str, typer.Option("--format", metavar="saved_model|onnx|litert", help="saved_model: a TensorFlow SavedModel folder; onnx: an .onnx file; litert: a .tflite file.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the model; its preprocessing description goes beside it, as OUTPUT.json.")],
    checkpoint: Annotated[Checkpoint, typer.Option(help="Which checkpoint to export.")] = Checkpoint.best,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing --output (and its .json).")] = False,
) -> None:
    """Export a run's model (Keras' model.export) with a JSON of the preprocessing that feeds it, to serve it without seqcli."""
    from seqcli import export as core
    from seqcli import render

    result = core.export_run(run_dir, fmt=format_, output=output, checkpoint=checkpoint.value, force=force)
    for note in result.notes:
        render.note(note)
    inputs = ", ".join(f"{i['name']} {i['dtype']} ({', '.join('None' if d is None else str(d) for d in i['shape'])})" for i in result.inputs)
    render.out.print(
        f"wrote {result.path} ({result.format}) and {result.description}; inputs: {inputs}; "
        f"checked against the Keras model at width(s) {', '.join(map(str, result.widths))}: largest difference {result.difference:.2g}",
        highlight=False, markup=False, soft_wrap=True,
    )


@app.command("inspect-shapes")
@_reports_errors
def inspect_shapes(
    target: Annotated[Path, typer.Argument(metavar="SPEC_OR_DATA", help="A spec (.yaml/.yml), or a bare data file to get a suggested spec for.")],
    data: Annotated[Path | None, typer.Option("--data", help="Inspect this data file with the spec's preprocessing instead of data.train.")] = None,
    set_: SetOption = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    yaml_: Annotated[bool, typer.Option("--yaml", help="For a bare data file: print only the suggested spec, as plain YAML (e.g. `> spec.yaml`).")] = False,
) -> None:
    """Show how data flows: raw shape, each reshape/pad/mask step, every layer's output shape, warnings. No training."""
    import json

    from seqcli import render
    from seqcli import shapes as core

    if yaml_ and target.suffix.lower() in (".yaml", ".yml"):
        from seqcli.errors import SpecError

        raise SpecError("--yaml prints the spec suggested for a bare data file; for a spec, `seqcli validate SPEC --print` shows it resolved.")
    if target.suffix.lower() in (".yaml", ".yml"):
        result = core.inspect_spec(target, set_ or [], data)
    else:
        if data is not None or set_:
            from seqcli.errors import SpecError

            raise SpecError("--data and --set need a spec; for a bare data file run `seqcli inspect-shapes FILE`.")
        result = core.inspect_data(target)
    if json_:
        render.out.print(json.dumps(result.to_dict(), indent=2), highlight=False, markup=False, soft_wrap=True)
    elif yaml_:
        render.out.print(result.suggested_spec or "", end="", highlight=False, markup=False, soft_wrap=True)
    else:
        render.out.print(render.trace(result))


@app.command()
@_reports_errors
def runs(
    directory: Annotated[Path, typer.Argument(metavar="[DIR]", help="The directory that holds the runs: a spec's `output.dir` (default: runs), or one experiment's folder.")] = Path("runs"),
    name: Annotated[str | None, typer.Option("--name", help="Only the runs of experiments with this name (`*` wildcards, e.g. 'smoke*').")] = None,
    status: Annotated[str | None, typer.Option("--status", help="Only the runs with this status: running, completed, failed, interrupted, crashed or damaged.")] = None,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output: a list of runs.")] = False,
) -> None:
    """List the runs under DIR, newest first: status, epochs, best epoch, the monitored value, test scores, training time."""
    import json

    from seqcli import render
    from seqcli import runs as core

    found = core.list_runs(directory, name=name, status=status)
    if json_:
        render.out.print(json.dumps([s.to_dict() for s in found], indent=2), highlight=False, markup=False, soft_wrap=True)
    else:
        render.out.print(render.runs_table(found, directory))


@app.command()
@_reports_errors
def compare(
    run_dirs: Annotated[list[Path], typer.Argument(metavar="RUN_DIR RUN_DIR [...]", help="Two run directories or more.")],
    plot: Annotated[Path | None, typer.Option("--plot", metavar="FILE", help="Also write the runs' validation curves, overlaid, to this PNG file.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing --plot file.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare runs: the spec fields that differ (dotted paths), the metrics side by side, the per-class F1 of classification runs."""
    import json

    from seqcli import render
    from seqcli import runs as core
    from seqcli.rundir import check_output, write_output

    if plot is not None:
        check_output(plot, force=force, option="--plot")  # before anything is read
    result = core.compare(list(run_dirs))
    if plot is not None:
        from seqcli.plots import curves_png

        curves = curves_png(
            list(zip(result.labels, result.histories, strict=True)), title=f"validation curves of {len(result.labels)} runs", best=[(s.monitor, s.best_epoch) for s in result.runs]
        )
        write_output(plot, curves, force=force, option="--plot")
    if json_:
        render.out.print(json.dumps(result.to_dict(), indent=2), highlight=False, markup=False, soft_wrap=True)
    else:
        render.out.print(render.comparison(result))
    if plot is not None:
        render.note(f"wrote the validation curves of {len(result.labels)} runs to {plot}")


@app.command()
@_reports_errors
def plot(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN_DIR", help="A run directory created by `seqcli train` (any status with a committed epoch).")],
) -> None:
    """Redraw a run's plots: history.png from its committed epochs, and confusion_matrix.png or predictions.png once it has completed."""
    from seqcli import render
    from seqcli.plots import plot_run
    from seqcli.rundir import RunDir

    written = plot_run(RunDir.open(run_dir))
    render.out.print(f"wrote {', '.join(p.name for p in written)} to {run_dir}", highlight=False, soft_wrap=True)
