"""Tasks: what a model predicts (see :mod:`seqcli.tasks.base`). One module per task, registered here."""

from __future__ import annotations

from seqcli.tasks.base import Task
from seqcli.tasks.classify import Classify
from seqcli.tasks.regress import Regress
from seqcli.tasks.regress_timesteps import RegressTimesteps
from seqcli.tasks.tag import Tag

TASKS: dict[str, Task] = {task.name: task for task in (Classify(), Tag(), Regress(), RegressTimesteps())}


def get(name: str) -> Task:
    """The task named ``name`` (a spec's ``task``; ``preprocessing.json``'s ``task``)."""
    return TASKS[name]
