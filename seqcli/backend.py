"""Importing Keras quietly, seeding and determinism (the only place TensorFlow is configured)."""

from __future__ import annotations

import os
import platform
from typing import Any


def import_keras() -> Any:
    """Import Keras with TensorFlow's start-up log noise silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
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
    found = {"seqcli": seqcli.__version__, "python": platform.python_version(), "numpy": numpy.__version__, "keras": keras.__version__, "backend": keras.backend.backend()}
    if found["backend"] == "tensorflow":
        import tensorflow as tf

        found["tensorflow"] = tf.__version__
    return found
