"""What each model layer does to the shapes: its output in named axes, its parameters, whether it carries a mask.

Written to every run (``layers.json``) and shown by ``inspect-shapes``. Reads a built Keras model; imports nothing heavy itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class LayerRow:
    """One model layer: output shape in named axes, parameter count, mask."""

    name: str
    kind: str
    output_shape: str
    params: int
    mask: bool


def layer_rows(model: Any, *, output_axis: str = "classes") -> list[LayerRow]:
    """Every layer's output shape in named axes, parameter count and mask; ``output_axis`` names the output layer's last axis (classes, targets)."""
    rows = []
    for layer in model.layers:
        shape = tuple(layer.output.shape)
        kind = type(layer).__name__
        if kind == "Bidirectional":
            kind = f"Bidirectional({type(layer.forward_layer).__name__})"
        mask = getattr(layer.output, "_keras_mask", None) is not None
        rows.append(LayerRow(layer.name, kind, named_shape(shape, kind, layer.name, output_axis=output_axis), int(layer.count_params()), mask))
    return rows


def named_shape(shape: tuple[Any, ...], kind: str, name: str = "", *, output_axis: str = "classes") -> str:
    """``(None, 29, 12)`` -> ``(batch, timesteps=29, features=12)``.

    >>> named_shape((None, None, 16), "Dense", "output", output_axis="targets")
    '(batch, timesteps, targets=16)'
    """
    recurrent = kind in ("LSTM", "GRU") or kind.startswith("Bidirectional")
    last = output_axis if name == "output" else "units" if recurrent else {"Dense": "units", "Dropout": "units", "Concatenate": "units", "Embedding": "embedding"}.get(kind, "features")
    if name.endswith(("one_hot", "code_value")):
        last = "features"
    timesteps = "timesteps" if len(shape) > 1 and shape[1] is None else f"timesteps={shape[1]}" if len(shape) > 1 else ""
    if len(shape) == 3:
        axes = ["batch", timesteps, f"{last}={shape[2]}"]
    elif len(shape) == 2:
        axes = ["batch", timesteps] if kind == "InputLayer" else ["batch", f"{last}={shape[1]}"]
    else:
        axes = ["batch"] + [str(s) for s in shape[1:]]
    return "(" + ", ".join(axes) + ")"
