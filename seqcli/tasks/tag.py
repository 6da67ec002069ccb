"""``task: tag``: one class label per timestep.

The classes are those of all real training timesteps. The last recurrent layer returns sequences and the
softmax applies at every timestep, ``(batch, timesteps, classes)``; the mask it carries keeps padded timesteps
out of the loss and the accuracy. The validation split is random (a sequence has no single class). Evaluation
and prediction rows cover every real timestep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from seqcli.errors import DataError
from seqcli.spec import TASK_KINDS
from seqcli.tasks.base import Targets
from seqcli.tasks.classify import ClassLabels, class_indices, label_names, numeric_first

if TYPE_CHECKING:
    from seqcli.data import SequenceData
    from seqcli.preprocess import Preprocessor


class Tag(ClassLabels):
    kind = TASK_KINDS["tag"]

    def class_names(self, data: SequenceData) -> list[str]:
        """Sorted class names over all real training timesteps; at least two."""
        if data.step_targets is None:
            raise DataError(f"{data.source} has no labels; with `task: tag` training data needs one label per timestep.")
        names = sorted(set(label_names(data.step_targets.values).tolist()), key=numeric_first)
        if len(names) < 2:
            raise DataError(f"The training data in {data.source} has a single class ({names[0]!r}) over all timesteps; a tagger needs at least two. Check the labels.")
        return names

    def encode(self, prep: Preprocessor, data: SequenceData) -> Targets:
        """Per-timestep class indices ``(timesteps_i,)``, truncated like the sequences; an unseen label is an error naming the timestep."""
        assert data.step_targets is not None
        starts = data.step_targets.starts
        names = label_names(data.step_targets.values) if len(data.step_targets) else np.zeros(0, str)
        unknown = np.flatnonzero(~np.isin(names, prep.classes))
        if unknown.size:
            i = int(np.searchsorted(starts, unknown[0], side="right")) - 1
            t = int(unknown[0] - starts[i])
            raise DataError(
                f"{data.source}, {data.where[i]}, timestep {t}: label {str(names[unknown[0]])!r} was not among the training classes "
                f"({', '.join(prep.classes)}). Fix the label or add the class to the training data."
            )
        codes = class_indices(names, prep.classes).astype(np.int32)
        check_unpadded_codes(prep, data)
        return prep.truncate(data.step_targets.with_values(codes))

    def describe(self, prep: Preprocessor) -> str:
        return (
            f"Task: tag (one label per timestep). Targets (samples, timesteps) class indices of {len(prep.classes)} classes; the last recurrent layer returns sequences "
            f"and the softmax applies per timestep (batch, timesteps, classes={len(prep.classes)}); the mask it carries keeps padded timesteps out of the loss and the accuracy."
        )


def check_unpadded_codes(prep: Preprocessor, data: SequenceData) -> None:
    """Per-timestep targets of token codes: no sequence may start or end with the padding code, which is stripped (the targets would shift)."""
    if prep.input != "tokens" or prep.pad_code is None:
        return
    seqs = data.sequences
    padded = np.flatnonzero((seqs.values[seqs.starts, 0] == prep.pad_code) | (seqs.values[seqs.starts + seqs.lengths - 1, 0] == prep.pad_code))
    if padded.size:
        i = int(padded[0])
        raise DataError(
            f"{data.source}, {data.where[i]}: the sequence starts or ends with the padding code {prep.pad_code} (`preprocessing.pad_code`), which is stripped, "
            "so its targets no longer line up with its timesteps. Give unpadded sequences, or set `preprocessing.pad_code: null`."
        )
