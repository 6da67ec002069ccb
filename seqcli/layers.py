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
        if kind == "MaskedPooling":
            kind = f"MaskedPooling({layer.mode})"
        if kind == "ConvBlock":
            shortening = "".join(f", {what} {n}" for what, n in (("stride", layer.stride), ("pool", layer.pool)) if n > 1)
            kind = f"ConvBlock(kernel {layer.kernel_size}{shortening}, {layer.normalization} norm)"
        if kind == "KernelFeatures":
            spread = f"dilations 1-{layer.dilations[-1]}" if len(layer.dilations) > 1 else "dilation 1"
            kind = f"KernelFeatures({layer.kernels[0].shape[-1]} kernels, {spread}, fixed)"
        if kind == "NgramBag":
            kind = f"NgramBag({'1-grams' if layer.longest == 1 else f'1- to {layer.longest}-grams'}, {layer.buckets:,} buckets)"
        rows.append(LayerRow(layer.name, kind, named_shape(shape, kind, layer.name, output_axis=output_axis), int(layer.count_params()), _masked(layer.output)))
    return rows


def _masked(tensor: Any) -> bool:
    return getattr(tensor, "_keras_mask", None) is not None


def dropped_masks(model: Any) -> list[str]:
    """The layers that receive a masked sequence and return a sequence without a mask ``(batch, timesteps, ...)``: after
    them padded timesteps count as real. Layers that reduce the time axis (a recurrent layer's last state, pooling) drop
    the mask rightly and are not listed."""
    dropped = []
    for layer in model.layers:
        inputs = [] if type(layer).__name__ == "InputLayer" else layer.input if isinstance(layer.input, (list, tuple)) else [layer.input]
        if len(layer.output.shape) == 3 and not _masked(layer.output) and any(_masked(x) for x in inputs):
            dropped.append(layer.name)
    return dropped


def named_shape(shape: tuple[Any, ...], kind: str, name: str = "", *, output_axis: str = "classes") -> str:
    """``(None, 29, 12)`` -> ``(batch, timesteps=29, features=12)``.

    >>> named_shape((None, None, 16), "Dense", "output", output_axis="targets")
    '(batch, timesteps, targets=16)'
    >>> named_shape((None, 15, 8), "ConvBlock(kernel 5, stride 2, layer norm)")
    '(batch, timesteps=15, filters=8)'
    """
    recurrent = kind in ("LSTM", "GRU") or kind.startswith(("Bidirectional", "MaskedPooling", "AttentionPooling", "LayerNormalization"))
    axes_of = {"Dense": "units", "Dropout": "units", "Concatenate": "units", "Embedding": "embedding"}
    last = output_axis if name == "output" else "units" if recurrent else "filters" if kind.startswith("ConvBlock") else axes_of.get(kind, "features")
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
