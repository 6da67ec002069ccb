"""Multi-input models: several named inputs, each with its own data, preprocessing and recurrent branch.

The input that ``data`` describes (named ``input_name``) carries the targets; every other input
(``inputs: {name: ...}``) is matched to it sample by sample by id (npz/CSV/JSONL ids, else the
index), so all inputs share one row order and the same splits. Everything else is the pipeline's one
path (:mod:`seqcli.pipeline`), where a one-input model is the case of one input: a preprocessor per
input, batches planned on the first input's lengths (bucketed or not), each input padded to its own width
(:mod:`seqcli.batching`), and a branch per input (:mod:`seqcli.model`).
"""

from __future__ import annotations

import numpy as np

from seqcli.data import SequenceData
from seqcli.errors import DataError
from seqcli.spec import TASK_KINDS, Spec, sequence_pooling


def match(first: SequenceData, other: SequenceData, name: str, first_name: str) -> SequenceData:
    """``other`` reordered to ``first``'s sample ids; an error naming the ids one input has and the other lacks."""
    if other.ids == first.ids:
        return other
    position = {sample_id: i for i, sample_id in enumerate(other.ids)}
    missing = [i for i in first.ids if i not in position]
    extra = sorted(set(other.ids) - set(first.ids))
    if missing or extra or len(other.ids) != len(first.ids):
        parts = []
        if missing:
            parts.append(f"{len(missing)} id(s) of {first.source} are missing from it ({', '.join(map(repr, missing[:5]))}{', ...' if len(missing) > 5 else ''})")
        if extra:
            parts.append(f"it has {len(extra)} id(s) that {first.source} lacks ({', '.join(map(repr, extra[:5]))}{', ...' if len(extra) > 5 else ''})")
        if not parts:
            parts.append(f"it has {len(other.ids)} samples with repeated ids, {first.source} {len(first.ids)}")
        raise DataError(
            f"Input {name!r} ({other.source}) does not match input {first_name!r} sample for sample: {'; '.join(parts)}. "
            "Every input needs one sequence per sample, with the same ids (files without ids are matched by position, so they need the same number of samples)."
        )
    return other.subset(np.array([position[i] for i in first.ids]))


def buildable(spec: Spec) -> bool:
    """Whether every branch that must end in a vector does: each extra input's, and for a per-sequence task the first
    input's too (its last recurrent layer returns a vector and none before it does). Else the spec's warnings say why not."""
    if spec.inputs is None:
        return True
    per_timestep = TASK_KINDS[spec.task].per_timestep
    branches = list(spec.sections().items())[1 if per_timestep else 0 :]
    pooled = {spec.input_name: sequence_pooling(spec)}  # the first input's pooling heads reduce a last layer that returns sequences
    return all(
        layers and (pooled.get(name, False) or not layers[-1].return_sequences) and all(x.return_sequences is not False for x in layers[:-1])
        for name, (_, _, layers) in branches
    )
