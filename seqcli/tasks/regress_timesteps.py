"""``task: regress_timesteps``: one real value, or a vector of them, per timestep.

Targets ``(timesteps_i, targets)`` per sequence: ``y`` of shape ``(samples, timesteps[, targets])`` (or, with
``lengths``, ``(total_timesteps[, targets])``), per-row CSV target columns, or a JSON Lines list per record. They are
standardized over the real training timesteps. The last recurrent layer returns sequences and a linear Dense applies
at every timestep, ``(batch, timesteps, targets)``: e.g. ``LSTM(32, return_sequences=True)`` into ``Dense(16)``, so
that one sample ``(1, 480, 16)`` gives ``(1, 480, 16)``. The mask the output carries keeps padded timesteps out of the
loss and the metrics; evaluation and prediction rows cover every real timestep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from seqcli.spec import TASK_KINDS
from seqcli.tasks.base import Targets
from seqcli.tasks.regress import Regress, check_target_count
from seqcli.tasks.tag import check_unpadded_codes

if TYPE_CHECKING:
    from seqcli.data import SequenceData
    from seqcli.preprocess import Preprocessor


class RegressTimesteps(Regress):
    kind = TASK_KINDS["regress_timesteps"]

    def raw_targets(self, data: SequenceData) -> np.ndarray:
        """The raw targets of every real timestep, ``(total_timesteps, targets)``."""
        assert data.step_targets is not None
        return data.step_targets.values

    def encode(self, prep: Preprocessor, data: SequenceData) -> Targets:
        """Standardized targets ``(timesteps_i, targets)`` float32 per sequence, truncated like the sequences."""
        assert data.step_targets is not None
        check_target_count(prep, data.step_targets.cell_shape[0] if len(data.step_targets) else 0, data.source)
        check_unpadded_codes(prep, data)
        return prep.truncate(data.step_targets.map(lambda t: self.standardize(prep, t).astype(np.float32)))

    def describe(self, prep: Preprocessor) -> str:
        assert prep.targets is not None
        names = prep.targets["names"]
        return (
            f"Task: regress_timesteps (real values per timestep). Targets (samples, timesteps, targets={len(names)}), standardized over the real training timesteps; "
            f"the last recurrent layer returns sequences and a linear Dense applies per timestep (batch, timesteps, targets={len(names)}); "
            "the mask it carries keeps padded timesteps out of the loss and the metrics."
        )
