"""The Keras backend: choosing it, importing Keras quietly, seeding and determinism.

The backend (JAX or TensorFlow) is fixed when Keras is first imported in a process;
:func:`use_backend` sets it before that. JAX compiles one program per batch shape
(about 1.6 s each on 2 CPU cores) and then runs an LSTM step 3-4x faster than
TensorFlow, which traces once for all widths. ``auto`` therefore takes ``KERAS_BACKEND`` when it names one of ours, else
JAX when every batch has the same width, and with length bucketing JAX only when
compiling its batch shapes pays back within the run's epochs (:class:`Workload`;
numbers in ``benchmarks/README.md``). Compiled programs are kept between runs in
JAX's persistent cache (:func:`compile_cache_dir`).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seqcli.errors import RunError

BACKENDS = ("jax", "tensorflow")
CACHE_ENV = "SEQCLI_CACHE_DIR"


# Measured on the development machine (benchmarks/README.md, batch 32, 2 cores): JAX spends this long tracing and
# compiling each batch shape, and then saves this much over TensorFlow per sequential step of a batch and per 32
# recurrent units (forward and backward; TensorFlow runs each step as a loop iteration of small ops): an LSTM(32)
# saved 0.11-0.16 ms per step, an LSTM(128) 0.6-0.8 ms, two stacked LSTM(32) 0.3 ms.
COMPILE_SECONDS = 1.6
SAVED_PER_STEP = 1e-4
FORWARD_STEP_SECONDS = 1.5e-5  # JAX, one forward step of a batch through an LSTM(32) (prediction)


@dataclass(frozen=True)
class Workload:
    """What training asks of the backend, for ``auto``: the distinct batch shapes JAX would compile (training and
    validation, shared widths), the sequential steps of one training epoch (summed batch widths), the recurrent
    units per step (all layers, both directions of a bidirectional one), the epochs."""

    shapes: int
    steps: int
    units: int
    epochs: int

    @property
    def compile_seconds(self) -> float:
        return self.shapes * COMPILE_SECONDS

    @property
    def saved_per_epoch(self) -> float:
        return self.steps * SAVED_PER_STEP * self.units / 32

    def jax_pays(self) -> bool:
        """Whether JAX's compiling pays back within the run's epochs (the most it can run; early stopping may cut it)."""
        return self.epochs * self.saved_per_epoch >= self.compile_seconds


def user_preference() -> str | None:
    """The backend the user asked for in ``$KERAS_BACKEND`` (Keras' own setting), when it names one of ours: what
    ``backend: auto`` takes first. The one place that reads it; the backend chosen is then a value passed on."""
    preferred = os.environ.get("KERAS_BACKEND")
    return preferred if preferred in BACKENDS else None


def choose_backend(declared: str, workload: Workload | None) -> tuple[str, str]:
    """The backend to train with, and why (for ``inspect-shapes``). ``workload`` None: every batch has one width.

    ``auto``: ``$KERAS_BACKEND`` if it names one of ours; JAX for one width; with length bucketing, JAX when compiling
    its batch shapes pays back within the epochs (:meth:`Workload.jax_pays`), else TensorFlow.
    """
    if declared != "auto":
        return declared, f"`backend: {declared}`"
    preferred = user_preference()
    if preferred is not None:
        return preferred, "auto: from $KERAS_BACKEND"
    if workload is None:
        return "jax", "auto: every batch has one width, so JAX compiles once and then runs 3-4x faster than TensorFlow"
    shapes = f"length bucketing gives {workload.shapes} batch shapes to compile for JAX (about {workload.compile_seconds:.0f} s, less from the cache)"
    if workload.jax_pays():
        return "jax", f"auto: {shapes}, which pays back within the {workload.epochs} epochs: JAX then saves about {workload.saved_per_epoch:.2g} s per epoch"
    return "tensorflow", f"auto: {shapes}, which would not pay back within {workload.epochs} epochs (JAX saves about {workload.saved_per_epoch:.2g} s per epoch)"


def backend_before_fitting(declared: str, input_kind: str, bucketing: bool | None) -> tuple[str, str] | None:
    """The backend and why, when it must be fixed before the preprocessing is fitted, else None.

    Text is tokenized by a Keras layer, which imports Keras (and so fixes the backend) before the token
    lengths, and with them the batch shapes, are known; text lengths vary, so ``auto`` counts on bucketing
    unless ``bucketing`` is false, and then takes TensorFlow, which needs no compiling per shape.
    """
    if input_kind != "text":
        return None
    if declared == "auto" and bucketing is not False and user_preference() is None:
        return "tensorflow", "auto: text is tokenized before its lengths are known, and with length bucketing TensorFlow needs no compiling per batch shape"
    return choose_backend(declared, None)


def use_backend(name: str) -> None:
    """Make ``name`` the Keras backend of this process; an error if Keras was already imported with another one."""
    if "keras" in sys.modules:
        current = import_keras().backend.backend()
        if current != name:
            raise RunError(
                f"Keras is already loaded with the {current} backend in this process and cannot switch to {name}. "
                f"Run seqcli in a fresh process, or use `backend: {current}`."
            )
        return
    os.environ["KERAS_BACKEND"] = name


def compiles_each_shape(backend: str) -> bool:
    """Whether ``backend`` compiles one program per batch shape, so bucketed batches share a few widths."""
    return backend == "jax"


def import_keras() -> Any:
    """Import Keras with TensorFlow's start-up log noise silenced (JAX unless :func:`use_backend` chose otherwise).

    On the TensorFlow backend Keras loads TensorFlow, which is imported here first so that the lines its libraries
    print as they load can be held back (:func:`_without_load_noise`), and without JAX: TensorFlow's ``tf.lite``
    imports JAX when it can (about 0.5 s), which seqcli never needs there. On the JAX backend TensorFlow is not
    loaded at all (2-4 s): only text (``TextVectorization``) needs it there, through :func:`import_tensorflow`.

    Either way Keras' import is kept from loading the optional libraries it merely checks for (:data:`KERAS_EXTRAS`).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import logging

    if os.environ["KERAS_BACKEND"] == "tensorflow" and "keras" not in sys.modules:
        import_tensorflow()
    with _hidden(*KERAS_EXTRAS):
        import keras

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    if keras.backend.backend() == "jax":
        _keep_compiled_programs()
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow (and JAX)
        pass
    return keras


# Imported by Keras as it loads when they are installed, for features seqcli does not use (its scikit-learn wrappers,
# DataFrame inputs, an image-gallery plot), each import guarded so that Keras does without: about 5 s of TensorFlow's
# 12 s import on the development machine. seqcli imports matplotlib itself, later, for its plots.
KERAS_EXTRAS = ("sklearn", "pandas", "matplotlib")


def import_tensorflow() -> Any:
    """Import TensorFlow with its start-up log noise silenced, and without the libraries it would load only for
    Keras' optional features (:data:`KERAS_EXTRAS`) or for ``tf.lite`` (JAX; see :func:`import_keras`)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" not in sys.modules:
        quiet = os.environ["TF_CPP_MIN_LOG_LEVEL"] not in ("", "0")  # 0: the user asked for TensorFlow's INFO lines
        # JAX is hidden only on the TensorFlow backend: on JAX, TensorFlow's import may load Keras, whose backend is JAX.
        on_jax = os.environ.get("KERAS_BACKEND", "jax") == "jax"
        with _without_load_noise() if quiet else contextlib.nullcontext(), _hidden(*KERAS_EXTRAS, *(() if on_jax else ("jax",))):
            import tensorflow  # noqa: F401
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def _hidden(*modules: str) -> Iterator[None]:
    """Make ``import module`` raise ImportError meanwhile for each of ``modules`` not loaded already (what tries it
    then does without); afterwards they import as usual."""
    hidden = [module for module in modules if module not in sys.modules]
    for module in hidden:
        sys.modules[module] = None  # type: ignore[assignment]  # None in sys.modules: Python's documented way to make an import fail
    try:
        yield
    finally:
        for module in hidden:
            if sys.modules.get(module, "") is None:
                del sys.modules[module]


# Printed by TensorFlow 2.21 as its shared libraries load, whatever TF_CPP_MIN_LOG_LEVEL says: libtensorflow_framework.so.2
# and _pywrap_profiler_plugin.so each link their own copy of Abseil and log oneDNN's notice (TF_ENABLE_ONEDNN_OPTS
# unset or 1) from a static initializer, before TensorFlow reads TF_CPP_MIN_LOG_LEVEL and before absl::InitializeLog,
# so each copy first warns that logs go to stderr. Only TF_ENABLE_ONEDNN_OPTS=0 stops them at the source, and it
# switches oneDNN's kernels off.
LOAD_NOISE = (b"All log messages before absl::InitializeLog() is called", b"oneDNN custom operations are on")


def without_native_lines(noise: tuple[bytes, ...]) -> contextlib.AbstractContextManager[None]:
    """Meanwhile, drop the lines written to file descriptor 2 (by C++ libraries too) that contain one of ``noise``."""
    return _without_load_noise(noise)


@contextlib.contextmanager
def _without_load_noise(noise: tuple[bytes, ...] = LOAD_NOISE) -> Iterator[None]:
    """Hold back what is written to file descriptor 2 meanwhile (C++ and Python alike), then pass on every line but ``noise`` (:data:`LOAD_NOISE`)."""
    import tempfile

    if sys.stderr is not None:
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to hold back
        yield
        return
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            yield
        finally:
            if sys.stderr is not None:
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            kept = b"".join(line for line in held.read().splitlines(keepends=True) if not any(text in line for text in noise))
            if kept:
                os.write(2, kept)


def compile_cache_dir() -> Path | None:
    """Where JAX keeps compiled programs between runs: ``$SEQCLI_CACHE_DIR/jax``, else ``$XDG_CACHE_HOME/seqcli/jax``
    or ``~/.cache/seqcli/jax``; None when ``SEQCLI_CACHE_DIR`` is set but empty (no cache)."""
    if CACHE_ENV in os.environ:
        return Path(os.environ[CACHE_ENV]) / "jax" if os.environ[CACHE_ENV] else None
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "seqcli" / "jax"


def _keep_compiled_programs() -> None:
    """Switch on JAX's persistent compilation cache (unless already configured, e.g. by ``JAX_COMPILATION_CACHE_DIR``).

    A training step compiles in about 1 s per batch shape; from the cache, the same program (same model,
    batch shape and library versions) loads in a fraction of that, so reruns, resumes and predictions
    start much sooner. At most 1 GiB, least recently used programs dropped first.
    """
    import jax

    folder = compile_cache_dir()
    if folder is None or jax.config.jax_compilation_cache_dir or not _writable(folder):  # type: ignore[attr-defined]  # JAX adds its options as attributes at run time
        return
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)  # every program, so that what is cached does not depend on timing
    jax.config.update("jax_compilation_cache_max_size", 2**30)


def _writable(folder: Path) -> bool:
    """Whether ``folder`` can be written or created (JAX would warn at every compile if not): its nearest existing ancestor is writable."""
    existing = next(path for path in (folder, *folder.parents) if path.exists())
    return existing.is_dir() and os.access(existing, os.W_OK | os.X_OK)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; on a GPU, also switch TensorFlow to deterministic kernels.

    The CPU kernels seqcli uses are deterministic already (the test suite checks that two runs, in one
    process or two, give bit-identical histories); forcing op determinism there halves training speed.
    On JAX, TensorFlow's seed is set only when TensorFlow is loaded (text): nothing else draws from it.
    """
    keras = import_keras()
    with without_tensorflow():
        keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.enable_op_determinism()


@contextlib.contextmanager
def without_tensorflow() -> Iterator[None]:
    """On the JAX backend, unless TensorFlow is loaded already: Keras meanwhile does without it.

    Keras imports TensorFlow (2-4 s, and its log noise) wherever it is installed, to seed it
    (``set_random_seed``) or to look for its types when saving a model, neither of which a JAX run needs.
    Afterwards Keras may import it again (text needs it).
    """
    if os.environ.get("KERAS_BACKEND") == "tensorflow" or "tensorflow" in sys.modules:
        yield
        return
    try:
        with _hidden("tensorflow"):
            yield
    finally:
        with contextlib.suppress(ImportError, AttributeError):  # Keras' lazy module is private: if it changed, there is nothing to undo
            from keras.src.utils import module_utils

            if module_utils.tensorflow.module is None:
                module_utils.tensorflow._available = None  # it remembers the failed import: let it try again


def versions() -> dict[str, str]:
    """Library versions recorded in every run (TensorFlow's from its package metadata when it is not loaded)."""
    import numpy

    import seqcli

    keras = import_keras()
    found = {"seqcli": seqcli.__version__, "python": platform.python_version(), "numpy": numpy.__version__, "keras": keras.__version__, "backend": keras.backend.backend()}
    found["tensorflow"] = sys.modules["tensorflow"].__version__ if "tensorflow" in sys.modules else _installed("tensorflow-cpu", "tensorflow")
    if found["backend"] == "jax":
        import jax

        found["jax"] = jax.__version__
    return found


def _installed(*names: str) -> str:
    """The version of the first of the distributions ``names`` that is installed, else ``"not installed"``."""
    from importlib import metadata

    for name in names:
        with contextlib.suppress(metadata.PackageNotFoundError):
            return metadata.version(name)
    return "not installed"
