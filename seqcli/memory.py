"""How much memory training a model needs, estimated from the spec and the fitted preprocessing before it is built.

Arithmetic only (no Keras): the parameters of every layer as Keras creates them, and the float32 values that training
keeps for the backward pass of one batch of ``training.batch_size`` sequences padded to ``maxlen`` timesteps (each
recurrent layer: its gates and states at every timestep it reads, fewer behind a shortening front-end; each conv block
of the front-end and the FCN branch: its outputs at every timestep; the kernel branch: its largest comparison of every
timestep's kernel outputs with their biases), and the kernel features that training computes once for every training
and validation sequence (:meth:`seqcli.pipeline.Pipeline.trainer`). :func:`check` refuses, with the numbers, a model
that cannot fit in the memory this machine has available, before Keras tries the allocation; when only the features
do not fit, it leaves them out, and training computes them in every batch. The estimate is a floor: the framework
itself, the data and the compiled programs come on top.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from seqcli.errors import SpecError
from seqcli.keras_layers import conv_length
from seqcli.kernels import KERNEL_LENGTH, PATTERNS, cacheable, dilations, feature_count
from seqcli.preprocess import Preprocessor
from seqcli.spec import TASK_KINDS, FcnSpec, FrontendSpec, RecurrentLayer, Spec, input_piece

FLOAT32 = 4
GATES = {"lstm": 4, "gru": 3}
STEP_VALUES = {"lstm": 6, "gru": 4}  # values kept per unit and timestep for the backward pass: LSTM 4 gates, cell and state; GRU 3 gates and state
CONV_VALUES = 3  # values kept per filter and output step of a conv block for the backward pass: convolution, normalization, activation
NORM_PARAMS = {"layer": 2, "batch": 4, "none": 0}  # per filter: scale and offset (batch norm also its moving mean and variance)
OPTIMIZER_SLOTS = {"adam": 2, "adamw": 2, "rmsprop": 1, "sgd": 0}  # values per parameter besides the weight and its gradient


@dataclass(frozen=True)
class Part:
    """One layer: the spec key that sizes it, what it is, its parameters and the values a batch keeps for the backward pass;
    ``held``: values kept for the whole training, without a gradient (the kernel features computed once)."""

    key: str
    what: str
    params: int
    activations: int
    held: int = 0


@dataclass(frozen=True)
class Estimate:
    """The layers' parts and the bytes they need in training: each parameter with its gradient and the optimizer's
    slots; each kept activation with its gradient; each held value once."""

    parts: list[Part]
    optimizer: str
    batch_size: int

    @property
    def params(self) -> int:
        return sum(p.params for p in self.parts)

    def part_bytes(self, part: Part) -> int:
        return part.params * FLOAT32 * (2 + OPTIMIZER_SLOTS[self.optimizer]) + part.activations * FLOAT32 * 2 + part.held * FLOAT32

    @property
    def parameter_bytes(self) -> int:
        return self.params * FLOAT32 * (2 + OPTIMIZER_SLOTS[self.optimizer])

    @property
    def activation_bytes(self) -> int:
        return sum(p.activations for p in self.parts) * FLOAT32 * 2

    @property
    def held_bytes(self) -> int:
        return sum(p.held for p in self.parts) * FLOAT32

    @property
    def total_bytes(self) -> int:
        return self.parameter_bytes + self.activation_bytes + self.held_bytes

    @property
    def largest(self) -> Part:
        return max(self.parts, key=self.part_bytes)


def estimate(spec: Spec, preps: dict[str, Preprocessor], *, samples: int | None = None, computed_once: int = 0) -> Estimate:
    """The :class:`Estimate` of the model that :func:`seqcli.model.build_model` would build from ``spec`` and ``preps``
    (one fitted preprocessor per input by name, the first input's first); ``samples``: the training sequences, when
    fewer than ``training.batch_size`` make the one batch; ``computed_once``: the training and validation sequences
    whose kernel features training may compute once (0 for an augmented run, which computes them in every batch)."""
    batch = min(spec.training.batch_size, samples) if samples else spec.training.batch_size
    first = next(iter(preps.values()))
    per_timestep = TASK_KINDS[spec.task].per_timestep
    parts: list[Part] = []
    width = 0
    for name, (_, _, layers) in spec.sections().items():
        own = name == spec.input_name
        layers_key = "model.layers" if own else f"inputs.{name}.layers"
        label = f"input {name!r}: " if spec.inputs is not None else ""
        encoded, part = _input(spec, preps[name], batch, "preprocessing" if own else f"inputs.{name}.preprocessing", label)
        parts.append(part)
        features, steps = encoded, preps[name].maxlen
        if own and spec.model.frontend is not None:
            features, steps = _convs(spec.model.frontend, "model.frontend", features, steps, batch, parts)
        for i, layer in enumerate(layers):
            part, features = _recurrent(layer, features, batch * steps, f"{layers_key}[{i}]", label)
            parts.append(part)
        width += features * (len(spec.model.pooling) if own and not per_timestep else 1)
        if own and spec.model.fcn is not None:
            width += _convs(spec.model.fcn, "model.fcn", encoded, preps[name].maxlen, batch, parts)[0]  # the branches are concatenated (per timestep of the first input's, for a per-timestep task)
        kernels, ngrams = input_piece(spec.model, "kernels", preps[name].input), input_piece(spec.model, "ngrams", preps[name].input)
        if own and kernels is not None:
            steps, biases = preps[name].maxlen, dilations(preps[name].maxlen, kernels.features)[1]
            features = feature_count(steps, kernels.features)
            fixed = len(biases) * KERNEL_LENGTH * encoded * len(PATTERNS) + 3 * features  # the kernels, the biases, the mean and standard deviation (none trained)
            parts.append(Part("model.kernels.features", f"the kernel branch ({features:,} features)", fixed, batch * steps * len(PATTERNS) * max(biases)))
            if computed_once and cacheable(sequences=computed_once, features=features):
                parts.append(Part("model.kernels.features", f"the kernel features computed once ({computed_once:,} sequences)", 0, 0, computed_once * features))
            width += features
        if own and ngrams is not None:
            rows_read = batch * (preps[name].maxlen + ngrams.longest - 1) * ngrams.longest  # one table row per n-gram start and length
            parts.append(Part("model.ngrams.buckets", f"the n-gram branch ({ngrams.buckets:,} x {ngrams.dim})", ngrams.buckets * ngrams.dim, rows_read * ngrams.dim))
            width += ngrams.dim
    rows = batch * (first.maxlen if per_timestep else 1)  # the dense layers and the head run per timestep for a per-timestep task
    for i, dense in enumerate(spec.model.dense):
        parts.append(Part(f"model.dense[{i}]", f"Dense({dense.units:,})", width * dense.units + dense.units, rows * dense.units))
        width = dense.units
    outputs = len(first.targets["names"]) if first.targets else 1 if spec.model.output == "sigmoid" else len(first.classes)
    parts.append(Part("model.output", f"the output layer ({outputs:,} units)", width * outputs + outputs, rows * outputs))
    return Estimate(parts, spec.training.optimizer, batch)


def _input(spec: Spec, prep: Preprocessor, batch: int, pp_key: str, label: str) -> tuple[int, Part]:
    """The encoded input's features and its part: the input batch, and for tokens the embedding table."""
    steps = prep.maxlen
    if prep.input != "tokens":
        return prep.n_features, Part(f"{pp_key}.maxlen", f"{label}the input ({steps:,} timesteps x {prep.n_features:,} features)", 0, batch * steps * prep.n_features)
    codes = (prep.num_tokens or 0) + 1
    features = {"embedding": spec.model.embedding_dim, "one_hot": codes - 1, "float": 1}[prep.encoding]
    key = "model.embedding_dim" if prep.encoding == "embedding" else f"{pp_key}.encoding"
    table = f"{label}the {prep.encoding} table ({codes:,} codes x {features:,})"
    return features, Part(key, table, codes * features, batch * steps * features)


def _convs(stack: FrontendSpec | FcnSpec, key: str, features: int, steps: int, batch: int, parts: list[Part]) -> tuple[int, int]:
    """The parts of ``model.frontend`` or ``model.fcn`` (one per block, added to ``parts``), and the features and timesteps they output."""
    for i, block in enumerate(stack.blocks):
        steps = conv_length(steps, stride=block.stride, pool=block.pool) or 0
        params = block.kernel_size * features * block.filters + block.filters + NORM_PARAMS[stack.normalization] * block.filters
        parts.append(Part(f"{key}.blocks[{i}].filters", f"Conv1D({block.filters:,}, kernel {block.kernel_size})", params, batch * steps * block.filters * CONV_VALUES))
        features = block.filters
    return features, steps


def _recurrent(layer: RecurrentLayer, inputs: int, timesteps: int, key: str, label: str) -> tuple[Part, int]:
    """A recurrent layer's part and its output features; ``timesteps``: batch x maxlen, the steps a batch takes."""
    units, directions = layer.units, 2 if layer.bidirectional else 1
    biases = units if layer.cell == "lstm" else 2 * units  # Keras' GRU keeps two biases (reset_after)
    params = directions * GATES[layer.cell] * (inputs * units + units * units + biases)
    kind = f"{'bidirectional ' if layer.bidirectional else ''}{layer.cell.upper()}({units:,})"
    return Part(f"{key}.units", f"{label}{kind}", params, timesteps * directions * STEP_VALUES[layer.cell] * units), directions * units


# --------------------------------------------------------------------------- this machine


def memory_bytes() -> tuple[int | None, int | None]:
    """``(available, total)`` bytes of memory for this process: /proc/meminfo (else ``os.sysconf``), within a cgroup's
    limit; None where it cannot be read."""
    info = _meminfo()
    available = info.get("MemAvailable")
    total = info.get("MemTotal")
    if total is None:
        total = _sysconf("SC_PHYS_PAGES")
    if available is None:
        available = _sysconf("SC_AVPHYS_PAGES")
    limit, used = _cgroup_limit()
    if limit is not None:
        total = min(total, limit) if total is not None else limit
        free = max(limit - (used or 0), 0)
        available = min(available, free) if available is not None else free
    return available, total


def _meminfo() -> dict[str, int]:
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        fields = value.split()
        if fields and fields[0].isdigit():
            found[name] = int(fields[0]) * (1024 if fields[1:] == ["kB"] else 1)
    return found


def _sysconf(name: str) -> int | None:
    try:
        pages, size = os.sysconf(name), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
    return pages * size if pages > 0 and size > 0 else None


def _cgroup_limit() -> tuple[int | None, int | None]:
    """The memory limit of this process's cgroup (v2, else v1) and what it uses, when there is a limit."""
    for limit_file, used_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(limit_file)
        if limit is not None and limit < 2**60:  # v1 writes a huge number for "no limit"
            return limit, _read_int(used_file)
    return None, None


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


# --------------------------------------------------------------------------- the check


def size(n: float) -> str:
    """``1536`` -> ``'1.5 KB'``, in powers of 1024.

    >>> size(640 * 1024**3), size(12_345)
    ('640.0 GB', '12.1 KB')
    """
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1024 or unit == "PB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    raise AssertionError  # pragma: no cover


def check(
    spec: Spec, preps: dict[str, Preprocessor], *, samples: int | None = None, computed_once: int = 0, available: int | None = None, total: int | None = None
) -> Estimate:
    """The model's :func:`estimate`; a :class:`~seqcli.errors.SpecError` with the numbers when it exceeds the memory
    available (``available``/``total``: given, else this machine's, :func:`memory_bytes`). When the kernel features
    computed once do not fit but the model does, the estimate without them: training then computes them in every batch
    (whether the returned estimate holds them, :attr:`Estimate.held_bytes`, is that decision)."""
    found = estimate(spec, preps, samples=samples, computed_once=computed_once)
    if available is None:
        available, total = memory_bytes()
    if available is None or found.total_bytes <= available:
        return found
    if found.held_bytes:
        found = estimate(spec, preps, samples=samples)
        if found.total_bytes <= available:
            return found
    largest = found.largest
    of_total = f" (of {size(total)})" if total is not None else ""
    slots = OPTIMIZER_SLOTS[spec.training.optimizer]
    kept = f"weights, gradients{f' and {spec.training.optimizer} moments' if slots else ''}"
    lower = f"`{largest.key}`"
    if found.activation_bytes > found.parameter_bytes:
        lower += ", `training.batch_size` or `preprocessing.maxlen`" if largest.key != "preprocessing.maxlen" else " or `training.batch_size`"
    raise SpecError(
        f"Training this model needs about {size(found.total_bytes)} of memory, but this machine has {size(available)} available{of_total}: "
        f"{found.params:,} parameters take {size(found.parameter_bytes)} ({kept}, float32), and what a batch of {found.batch_size:,} sequences "
        f"x {next(iter(preps.values())).maxlen:,} timesteps keeps for the backward pass {size(found.activation_bytes)}. The largest part is {largest.what} "
        f"({largest.params:,} parameters, {size(found.part_bytes(largest))}). Lower {lower}."
    )
