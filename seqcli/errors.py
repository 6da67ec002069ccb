"""The one exception hierarchy of seqcli.

The CLI catches :class:`SeqcliError` only and prints its message; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class SeqcliError(Exception):
    """Base of every error seqcli reports to the user as a one-paragraph message."""


class SpecError(SeqcliError):
    """The experiment spec (YAML file or ``--set`` override) is invalid."""


class DataError(SeqcliError):
    """A data file is missing, unreadable or does not fit the spec or the run."""


class RunError(SeqcliError):
    """A run directory is missing, incomplete, corrupt or cannot be written."""


class TuneError(SeqcliError):
    """A hyperparameter search cannot start or go on: its study storage, or a study made from another spec."""
