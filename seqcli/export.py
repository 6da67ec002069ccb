"""Export a completed run's model for serving without seqcli: a TensorFlow SavedModel, an ONNX file or a LiteRT
(``.tflite``) file, written by Keras' ``model.export``, and beside it a JSON description of the preprocessing that
feeds it (:func:`description`): features, scaler, token codes or vocabulary, pad value, padding side, widths, input
names and dtypes, and what the outputs hold (class names, or the targets' names and scaling).

The mask: seqcli's models mask padded timesteps inside the model (``Masking``, or ``Embedding(mask_zero=True)``), so
the mask is part of the exported computation; only a per-timestep model's *output* mask is not exported
(keras-team/keras#21133), and the description says which timesteps are real. Every export is checked before it is
kept (:func:`_check`): the exported file, run by its own runtime (TensorFlow, onnxruntime, LiteRT's interpreter), must
give the Keras model's outputs to :data:`TOLERANCE` on a batch of sequences of different lengths, padded as seqcli
pads them, at two widths where the signature allows it; a format that loses the mask is refused, and nothing is written.

An ensemble (``training.ensemble: N``) is exported as one model that runs every member and outputs the mean of their
outputs (:func:`seqcli.model.ensemble_model`), what ``seqcli predict`` computes.

LiteRT's builtin operators have no loop over a dynamic number of timesteps (the interpreter would need TensorFlow's
Flex delegate), so the LiteRT file takes batches padded to exactly ``maxlen`` and its recurrent layers are unrolled.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seqcli import __version__
from seqcli.errors import RunError
from seqcli.preprocess import Preprocessor
from seqcli.rundir import RunDir, check_output, run_status, write_artifact
from seqcli.sequences import Sequences
from seqcli.spec import TASK_KINDS

FORMATS = ("saved_model", "onnx", "litert")
KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
PACKAGES = {"saved_model": ("tensorflow",), "onnx": ("tf2onnx", "onnx", "onnxruntime"), "litert": ("ai_edge_litert",)}
INSTALL = "pip install 'seqcli[export]'"
TOLERANCE = 1e-5
LITERT_MAX_TIMESTEPS = 1000  # unrolled: one copy of every recurrent cell per timestep
DESCRIPTION_VERSION = 1


@dataclass
class Exported:
    """What :func:`export_run` wrote: the model (``path``) and its description (``description``), and the check's figures."""

    format: str
    path: Path
    description: Path
    inputs: list[dict[str, Any]]
    difference: float  # the largest absolute difference to the Keras model in the check
    widths: list[int]  # the padded widths the check fed
    notes: list[str] = field(default_factory=list)


def description_path(output: Path) -> Path:
    """The JSON beside an export: ``model.onnx`` -> ``model.onnx.json``, a SavedModel folder ``model`` -> ``model.json``."""
    return output.with_name(output.name + ".json")


def check_format(fmt: str) -> str:
    if fmt in FORMATS:
        return fmt
    close = difflib.get_close_matches(fmt.lower().replace("-", "_"), FORMATS, n=1)
    hint = f" Did you mean {close[0]}?" if close else ""
    raise RunError(f"Unknown export format {fmt!r}. Choose one of {', '.join(FORMATS)} (--format).{hint}")


def missing_packages(fmt: str) -> list[str]:
    return [name for name in PACKAGES[fmt] if importlib.util.find_spec(name) is None]


def export_run(run_dir: str | Path, *, fmt: str, output: str | Path, checkpoint: str = "best", force: bool = False) -> Exported:
    """Export run ``run_dir``'s ``checkpoint`` model as ``fmt`` to ``output``, with its description beside it.

    Checks everything that needs no model first (the format, its packages, the output, the run's status), then loads
    the run on the TensorFlow backend (a run trained on JAX loads the same), exports, checks the export, and writes.
    """
    fmt = check_format(fmt)
    output = Path(output)
    if fmt == "litert" and output.suffix != ".tflite":
        raise RunError(f"A LiteRT model is a .tflite file; --output {output} has another extension. Name it {output.with_suffix('.tflite').name}.")
    missing = missing_packages(fmt)
    if missing:
        raise RunError(f"--format {fmt} needs the Python package(s) {', '.join(missing)}, which are not installed. Install them with `{INSTALL}` (in this repository: `uv sync`).")
    check_output(output, force=force, directory=fmt == "saved_model")
    check_output(description_path(output), force=force)
    run = RunDir.open(run_dir)
    _check_completed(run)
    _check_backend()
    from seqcli.predict import load_run

    loaded = load_run(run.path, checkpoint, "tensorflow")
    preps = loaded.pipeline.preps
    fixed = fmt == "litert"
    if fixed:
        too_long = [name for name, prep in preps.items() if prep.maxlen > LITERT_MAX_TIMESTEPS]
        if too_long:
            raise RunError(
                f"A LiteRT export unrolls the recurrent layers over maxlen timesteps, and input {too_long[0]!r} has maxlen {preps[too_long[0]].maxlen} "
                f"(at most {LITERT_MAX_TIMESTEPS}). Export --format saved_model or onnx, which take any width."
            )
    model = _fixed_width_model(loaded) if fixed else loaded.model
    names = list(preps)
    described = description(loaded, fmt, output.name, fixed=fixed, input_names=_input_names(model, names, loaded.pipeline.multi_input))
    report: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        _keras_export(model, tmp, fmt, multi=loaded.pipeline.multi_input)
        report.update(_check(loaded, tmp, fmt, fixed=fixed, described=described))

    write_artifact(output, write, directory=fmt == "saved_model", force=force, companions={description_path(output): json.dumps(described, indent=2) + "\n"})
    notes = [f"The model takes batches padded to exactly maxlen ({', '.join(str(p.maxlen) for p in preps.values())} timesteps); its recurrent layers are unrolled."] if fixed else []
    if TASK_KINDS[loaded.pipeline.task.name].per_timestep:
        notes.append("Outputs at padded timesteps are not predictions: keep each sequence's real timesteps (the description's `outputs.real_timesteps`).")
    return Exported(fmt, output, description_path(output), described["inputs"], report["difference"], report["widths"], notes)


def _check_completed(run: RunDir) -> None:
    info = run.info()
    status = run_status(info)
    if status == "completed":
        return
    planned = run.read_yaml("spec.yaml").get("training", {}).get("epochs")
    epochs = f"after epoch {info.get('epochs_completed', 0)}{f' of {planned}' if isinstance(planned, int) else ''}"
    if status == "running":
        raise RunError(f"Run {run.path} is still training (process {info.get('pid')}, {epochs}). Export it once it has completed.")
    shown = "running, but its process is gone: it crashed" if status == "crashed" else status
    raise RunError(
        f"Run {run.path} has not completed (status: {shown}; {epochs}), and only a completed run can be exported (its final models are written when training completes). "
        f"Finish it with `seqcli train --resume {run.path}`, then export it."
    )


def _check_backend() -> None:
    """Export runs on TensorFlow (Keras' ONNX and LiteRT exporters, and the SavedModel, need it); Keras loaded on JAX cannot switch."""
    if "keras" in sys.modules:
        from seqcli.backend import import_keras

        current = import_keras().backend.backend()
        if current != "tensorflow":
            raise RunError(f"Export needs Keras on the TensorFlow backend, but this process loaded it with {current}. Run `seqcli export` in a fresh process (a run trained on JAX exports the same).")


def _input_names(model: Any, names: list[str], multi: bool) -> list[str]:
    """The Keras inputs' names in the order of ``names`` (a one-input model's input is ``sequence`` or ``tokens``)."""
    return names if multi else [model.inputs[0].name]


def _fixed_width_model(loaded: Any) -> Any:
    """The run's model rebuilt for inputs of exactly maxlen timesteps with unrolled recurrent layers, holding the same
    weights (an ensemble: every member so, averaged)."""
    from seqcli.model import build_model, ensemble_model

    preps = {name: dataclasses.replace(prep, boundaries=None) for name, prep in loaded.pipeline.preps.items()}
    members = []
    for member in loaded.member_models:
        model = build_model(loaded.spec, preps, unroll=True)
        model.set_weights(member.get_weights())
        for layer in model.layers:  # Keras' unrolled loop zeroes a backward layer's outputs at the wrong (unreversed) timesteps: keep them
            for rnn in (layer.forward_layer, layer.backward_layer) if hasattr(layer, "backward_layer") else (layer,):
                if hasattr(rnn, "zero_output_for_mask"):
                    rnn.zero_output_for_mask = False  # padded timesteps then repeat the last real output; they are masked downstream
        members.append(model)
    return ensemble_model(members, name=loaded.model.name)


def _keras_export(model: Any, path: Path, fmt: str, *, multi: bool) -> None:
    """``model.export`` to ``path``, quietly, with the model's own inputs as the signature; a converter's failure is an error that names the format."""
    import contextlib
    import io
    import warnings

    import tensorflow as tf

    specs = {t.name: tf.TensorSpec(tuple(t.shape), t.dtype, name=t.name) for t in model.inputs}
    kwargs: dict[str, Any] = {"input_signature": [specs] if multi else list(specs.values())}
    if fmt == "litert":
        kwargs["target_spec"] = {"supported_ops": [tf.lite.OpsSet.TFLITE_BUILTINS]}  # no Flex ops: LiteRT's interpreter runs it as it is
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            model.export(str(path), format=KERAS_FORMATS[fmt], verbose=False, **kwargs)
    except OSError:
        raise
    except Exception as exc:  # the converters raise many types
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
        raise RunError(f"Keras could not export this model as {fmt} ({type(exc).__name__}: {first}). Try another --format.") from None


# ---------------------------------------------------------------------------- the description


def description(loaded: Any, fmt: str, file_name: str, *, fixed: bool, input_names: list[str]) -> dict[str, Any]:
    """The JSON written beside an export: everything a server needs to turn raw sequences into the model's input and its
    output into predictions, without seqcli (plain data)."""
    pipe = loaded.pipeline
    task = pipe.task
    kind = TASK_KINDS[task.name]
    first = pipe.prep
    spec = loaded.spec
    sections = spec.sections()
    inputs = [_describe_input(name, key, prep, sections[key][0], fixed=fixed, multi=pipe.multi_input) for name, (key, prep) in zip(input_names, pipe.preps.items(), strict=True)]
    units = len(first.classes) if not kind.numeric else len((first.targets or {}).get("names", []))
    sigmoid = not kind.numeric and spec.model.output == "sigmoid"
    outputs: dict[str, Any] = {
        "shape": [None, None if not fixed else first.maxlen, 1 if sigmoid else units] if kind.per_timestep else [None, 1 if sigmoid else units],
        "dtype": "float32",
    }
    if kind.numeric:
        targets = first.targets or {}
        outputs["holds"] = "standardized targets: prediction = output * std + mean, per target"
        outputs["targets"] = {"names": targets.get("names"), "mean": targets.get("mean"), "std": targets.get("std")}
    else:
        outputs["holds"] = "the probability of classes[1] (one sigmoid unit; classes[0] has 1 - p)" if sigmoid else "class probabilities (softmax), in the order of classes"
        outputs["classes"] = list(first.classes)
    if loaded.ensemble is not None:
        outputs["ensemble"] = f"the mean of {len(loaded.members)} members' outputs (seeds {', '.join(map(str, loaded.ensemble['seeds']))}), computed inside the model"
    if kind.per_timestep:
        outputs["real_timesteps"] = (
            f"one output per timestep of the first input ({inputs[0]['name']!r}); only its real timesteps are predictions: "
            f"the first `length` timesteps with padding post, the last `length` with padding pre (length after truncation to maxlen)"
        )
    return {
        "seqcli_export": DESCRIPTION_VERSION,
        "format": fmt,
        "model": file_name,
        "seqcli_version": __version__,
        "run": str(loaded.run.path),
        "checkpoint": loaded.checkpoint,
        "task": task.name,
        "per_timestep": kind.per_timestep,
        "inputs": inputs,
        "outputs": outputs,
        "batch": (
            "every input padded to exactly its maxlen" if fixed
            else "each input padded to any width from its longest sequence (after truncation) up to maxlen; the padding is masked, so the width does not change the outputs"
        ),
    }


def _describe_input(name: str, key: str, prep: Preprocessor, options: Any, *, fixed: bool, multi: bool) -> dict[str, Any]:
    tokens = prep.input == "tokens"
    timesteps = prep.maxlen if fixed or not prep.boundaries else None
    described: dict[str, Any] = {
        "name": name,
        "dtype": "int32" if tokens else "float32",
        "shape": [None, timesteps] if tokens else [None, timesteps, prep.n_features],
        "kind": "text" if prep.vocabulary is not None else prep.input,
        "maxlen": prep.maxlen,
        "truncating": prep.truncating,
        "truncate": "keep the first maxlen timesteps" if prep.truncating == "post" else "keep the last maxlen timesteps",
        "padding": prep.padding,
        "pad": "after the sequence" if prep.padding == "post" else "before the sequence",
        "pad_value": 0 if tokens else prep.pad_value,
        "fixed_width": fixed or not prep.boundaries,
        "bucket_boundaries": prep.boundaries,
    }
    if multi:
        described["spec_input"] = key
    if not tokens:
        columns = options.csv.feature_columns if options.csv is not None else None
        described["features"] = prep.n_features
        described["feature_columns"] = columns
        described["scaler"] = None if prep.mean is None else {"mean": prep.mean, "std": prep.std, "apply": "(value - mean) / std, per feature, before padding"}
        described["masked"] = f"timesteps whose every feature equals pad_value ({prep.pad_value}) after scaling"
        return described
    described["masked"] = "code 0"
    if prep.vocabulary is not None and prep.text is not None:
        from seqcli.text import strips_punctuation

        described["text"] = {
            "level": prep.text["level"],
            "lowercase": bool(prep.text["lowercase"]),
            "strip_punctuation": strips_punctuation(prep.text),
            "split": "on whitespace" if prep.text["level"] == "word" else "into characters",
            "oov": "tokens outside the vocabulary are code 1" if prep.text["oov_token"] is not None else "tokens outside the vocabulary are dropped",
            "vocabulary": prep.vocabulary,
            "codes": "a token's code is its index in vocabulary (0 padding, 1 out of vocabulary)",
        }
        return described
    described["tokens"] = {
        "num_tokens": prep.num_tokens,
        "pad_code": prep.pad_code,
        "strip": "the data's pad_code is stripped from both ends of each sequence" if prep.pad_code is not None else "nothing is stripped",
        "shift": 0 if prep.pad_code == 0 else 1,
        "codes": f"code = raw code + shift, then min(code, num_tokens): num_tokens ({prep.num_tokens}) stands for codes unseen in training",
    }
    return described


# ---------------------------------------------------------------------------- the check


def _check(loaded: Any, path: Path, fmt: str, *, fixed: bool, described: dict[str, Any]) -> dict[str, Any]:
    """Run the export with its runtime on sequences of different lengths, padded as seqcli pads them (to maxlen, and for a
    signature of any width to a wider width too), and compare with the Keras model; refuse a difference above TOLERANCE."""
    from seqcli import batching

    preps = loaded.pipeline.preps
    names = [entry["name"] for entry in described["inputs"]]
    sequences = {key: _probe_sequences(prep) for key, prep in preps.items()}
    packed = [batching.Packed(prep, sequences[key]) for key, prep in preps.items()]
    rows = np.arange(len(next(iter(sequences.values()))))
    any_width = not fixed and all(prep.boundaries for prep in preps.values())
    widths = [max(p.maxlen for p in preps.values())] + ([max(p.maxlen for p in preps.values()) + 7] if any_width else [])

    def feed(width: int) -> list[np.ndarray]:
        return [p.batch(rows, width if any_width else p.maxlen) for p in packed]

    reference = np.asarray(loaded.model.predict_on_batch(_structure(feed(widths[0]), names, loaded.pipeline.multi_input)))
    run = _runner(path, fmt, names)
    first = packed[0]
    worst = 0.0
    for width in widths:
        got = np.asarray(run(feed(width)))
        if described["per_timestep"]:
            w = width if any_width else first.maxlen
            ref_cells, ref_real = first.cells(rows, widths[0] if any_width else first.maxlen)
            cells, real = first.cells(rows, w)
            expected = np.zeros((len(first.sequences.values), reference.shape[-1]))
            actual = np.zeros_like(expected)
            expected[ref_cells[ref_real]] = reference[ref_real]
            actual[cells[real]] = got[real]
            difference = float(np.abs(expected - actual).max())
        else:
            difference = float(np.abs(got - reference).max()) if got.shape == reference.shape else float("inf")
        worst = max(worst, difference)
        if not difference <= TOLERANCE:
            raise RunError(
                f"The {fmt} export does not reproduce the model: on sequences of different lengths padded to width {width}, its outputs differ from Keras' by {difference:.3g} "
                f"(more than {TOLERANCE}), so it does not keep the padding mask (compare keras-team/keras#21133). Nothing was written; export --format "
                f"{'onnx' if fmt != 'onnx' else 'saved_model'} instead."
            )
    return {"difference": worst, "widths": widths}


def _probe_sequences(prep: Preprocessor) -> Sequences:
    """Sequences of lengths 1, about maxlen / 2 and maxlen in the model's input space (scaled values or token codes), seeded."""
    rng = np.random.default_rng(0)
    lengths = sorted({1, max(1, prep.maxlen // 2), prep.maxlen})
    arrays: list[np.ndarray]
    if prep.input == "tokens":
        assert prep.num_tokens is not None
        arrays = [rng.integers(1, prep.num_tokens + 1, size=(n, 1)) for n in lengths]
    else:
        arrays = [rng.normal(size=(n, prep.n_features)) for n in lengths]  # never every feature exactly pad_value
    return Sequences.from_arrays(arrays)


def _structure(arrays: list[np.ndarray], names: list[str], multi: bool) -> Any:
    return {name: array for name, array in zip(names, arrays, strict=True)} if multi else arrays[0]


def _runner(path: Path, fmt: str, names: list[str]) -> Callable[[list[np.ndarray]], np.ndarray]:
    """A function from padded input arrays (in ``names`` order) to the export's output, run by the format's own runtime."""
    if fmt == "saved_model":
        import tensorflow as tf

        serve = tf.saved_model.load(str(path)).signatures["serving_default"]
        keys = list(serve.structured_input_signature[1])

        def run_saved_model(arrays: list[np.ndarray]) -> np.ndarray:
            given = dict(zip(names, arrays, strict=True)) if len(keys) > 1 else {keys[0]: arrays[0]}
            (out,) = serve(**{key: tf.constant(given[key]) for key in keys}).values()
            return np.asarray(out)

        return run_saved_model
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        order = [i.name for i in session.get_inputs()]

        def run_onnx(arrays: list[np.ndarray]) -> np.ndarray:
            given = dict(zip(names, arrays, strict=True))
            return np.asarray(session.run(None, {name: given[name] for name in order})[0])

        return run_onnx
    from ai_edge_litert.interpreter import Interpreter

    from seqcli.backend import without_native_lines

    quiet = (b"Created TensorFlow Lite XNNPACK delegate",)  # LiteRT's log line as it first runs
    interpreter = Interpreter(model_path=str(path))
    runner = interpreter.get_signature_runner()
    keys = interpreter.get_signature_list()["serving_default"]["inputs"]

    def run_litert(arrays: list[np.ndarray]) -> np.ndarray:
        given = dict(zip(names, arrays, strict=True)) if len(keys) > 1 else {keys[0]: arrays[0]}
        with without_native_lines(quiet):
            (out,) = runner(**given).values()
        return np.asarray(out)

    return run_litert
