"""The Keras backend: choosing it, importing Keras quietly, seeding and determinism.

The backend (JAX or TensorFlow) is fixed when Keras is first imported in a process;
:func:`use_backend` sets it before that. The input pipeline is ``tf.data`` on either
backend. JAX compiles one program per batch shape (about 2 s each on 2 CPU cores)
and then runs an LSTM step 3-4x faster than TensorFlow, which traces once for all
widths. ``auto`` therefore takes ``KERAS_BACKEND`` when it names one of ours, else
JAX when every batch has the same width and TensorFlow when length bucketing varies
it (numbers in ``benchmarks/README.md``).
"""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

from seqcli.errors import RunError

BACKENDS = ("jax", "tensorflow")


def resolve_backend(declared: str, bucketing: bool) -> str:
    """The backend to train with: ``declared``; under ``auto``, ``KERAS_BACKEND`` if set, else JAX for fixed widths, TensorFlow with bucketing."""
    if declared != "auto":
        return declared
    if os.environ.get("KERAS_BACKEND") in BACKENDS:
        return os.environ["KERAS_BACKEND"]
    return "tensorflow" if bucketing else "jax"


def backend_before_fitting(declared: str, input_kind: str, bucketing: bool | None) -> str | None:
    """The backend, when it must be fixed before the preprocessing is fitted, else None.

    Text is tokenized by a Keras layer, which imports Keras (and so fixes the backend) before the token
    lengths, and with them the bucketing, are known; text lengths vary, so ``auto`` counts on bucketing
    unless ``bucketing`` is false.
    """
    return resolve_backend(declared, bucketing is not False) if input_kind == "text" else None


def backend_reason(bucketing: bool) -> str:
    """Why ``auto`` chose the backend it did, for ``inspect-shapes``."""
    if os.environ.get("KERAS_BACKEND") in BACKENDS:
        return "auto: from $KERAS_BACKEND"
    if bucketing:
        return "auto: length bucketing gives batches of many widths, and JAX would compile each one (about 2 s)"
    return "auto: every batch has one width, so JAX compiles once and then runs 3-4x faster than TensorFlow"


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


def compiles_each_shape(backend: str | None = None) -> bool:
    """Whether ``backend`` (default: this process's) compiles one program per batch shape, so bucketed widths go on a grid."""
    return (backend or current_backend()) == "jax"


def current_backend() -> str:
    """The backend Keras runs on in this process (importing Keras if needed)."""
    return str(import_keras().backend.backend())


def import_keras() -> Any:
    """Import Keras with TensorFlow's start-up log noise silenced (JAX unless :func:`use_backend` chose otherwise)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import logging

    import keras

    logging.getLogger("tensorflow").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:  # pragma: no cover - absl ships with TensorFlow
        pass
    return keras


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and the backend; on a GPU, also switch TensorFlow to deterministic kernels.

    The CPU kernels seqcli uses are deterministic already (the test suite checks that two runs, in one
    process or two, give bit-identical histories); forcing op determinism there halves training speed.
    """
    keras = import_keras()
    keras.utils.set_random_seed(seed)
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            tf.config.experimental.enable_op_determinism()


def versions() -> dict[str, str]:
    """Library versions recorded in every run."""
    import numpy

    import seqcli

    keras = import_keras()
    import tensorflow as tf  # the input pipeline runs on tf.data with either backend

    found = {"seqcli": seqcli.__version__, "python": platform.python_version(), "numpy": numpy.__version__, "keras": keras.__version__, "backend": keras.backend.backend()}
    found["tensorflow"] = tf.__version__
    if found["backend"] == "jax":
        import jax

        found["jax"] = jax.__version__
    return found
