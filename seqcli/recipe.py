"""The recommended recipe: the model and training a spec gets when it leaves both to seqcli (``recipe``).

A *minimal* spec, one that names its data and nothing about the model or its training, used to get a single LSTM(64)
trained for 30 epochs, which loses badly to a MiniRocket on real time series (GunPoint 0.527, two classes). The recipe
is what the measurements in ``docs/recipe.md`` chose across the shared UCR sets and the shipped examples, with no
data-set-specific tuning: the LSTM-FCN shape (Karim et al.), a fully convolutional branch with batch normalization
beside the LSTM, averaged over the real timesteps, and MiniRocket's random convolutional kernel features beside both
(``model.kernels``), trained longer, in smaller batches, with early stopping. The LSTM reads a convolutional
front-end's output and the FCN's wider blocks their first block's, both max-pooled over 4 timesteps; series longer
than 512 timesteps are resampled to 512 first. A spec that has a test file to judge the model and says nothing about
validation trains on the whole training file (:func:`trains_on_the_whole_file`).

``auto`` (the default) applies it when the spec file has no ``model`` and no ``training`` section, no ``inputs``,
a per-sequence task and does not declare text or token input; ``recommended`` applies it under whatever the spec sets (the spec's keys win); ``plain`` keeps the
field defaults of the spec reference. The choice is resolved when the spec is read and saved with the run, with every
value the recipe gave, so a run's ``spec.yaml`` says exactly what trained.

Raw spec data only: no imports from the rest of seqcli (the spec module builds on it).
"""

from __future__ import annotations

import copy
from typing import Any, Final

RECIPES: Final = ("auto", "recommended", "plain")
PER_SEQUENCE_TASKS: Final = ("classify", "regress")

# The sections a spec sets that make `auto` keep the field defaults: a spec that describes its model or its training
# has made its own choices, and the recipe does not second-guess them.
OWN_CHOICES: Final = ("model", "training", "inputs")

RECOMMENDED: Final[dict[str, Any]] = {
    "preprocessing": {"shorten": 512},
    # The LSTM reads a convolutional front-end's output max-pooled over 4 timesteps, and the FCN branch has LSTM-FCN's
    # blocks with the first one's output pooled the same way, so that the LSTM's steps and the two wider blocks, most
    # of an epoch on long series, run on a quarter of the timesteps (docs/recipe.md: as accurate, twice as fast)
    "model": {
        "frontend": {"blocks": [{"pool": 4}]},
        "fcn": {"blocks": [{"filters": 128, "kernel_size": 8, "pool": 4}, {"filters": 256, "kernel_size": 5}, {"filters": 128, "kernel_size": 3}]},
        "kernels": {},
        "layers": [{"units": 64}],
    },
    "training": {"epochs": 300, "batch_size": 16, "early_stopping": {"patience": 50}},
}


# Input kinds the recipe was not measured on, when the spec names them (`preprocessing.input`); integer codes that
# `input: auto` reads as tokens are known only once the data is loaded, and get the recipe.
UNMEASURED_INPUTS: Final = ("text", "tokens")


def _preprocessing(raw: dict[str, Any], key: str) -> Any:
    """The raw spec's `preprocessing.<key>`, or None when it names none."""
    preprocessing = raw.get("preprocessing")
    return preprocessing.get(key) if isinstance(preprocessing, dict) else None


def applies(raw: dict[str, Any]) -> bool:
    """Whether ``recipe: auto`` means the recommended recipe for the spec file's raw mapping (before ``--set``)."""
    return not any(key in raw for key in OWN_CHOICES) and raw.get("task", "classify") in PER_SEQUENCE_TASKS and _preprocessing(raw, "input") not in UNMEASURED_INPUTS


def trains_on_the_whole_file(raw: dict[str, Any], *, tuned: bool = False) -> bool:
    """Whether the recipe trains on the whole training file, holding out no validation split, and keeps the model of the
    epoch with the lowest training loss: when the spec names a test file to judge the model, says nothing about
    validation (neither `data.validation` nor `data.validation_split`), monitors nothing on it (`training.monitor`,
    `training.lr_schedule.monitor`), and is not ``tuned`` (a search compares trials on validation data).

    On small training sets the held-out fifth costs more than the early stopping it buys: ridge regression on the
    same kernel features scored 0.771 on ArrowHead trained on 30 of its 36 sequences, 0.857 on all 36 (docs/recipe.md).
    Deep time-series classifiers are trained this way in the literature too (Wang et al. 2017, Fawaz et al. 2019).
    """
    data, training = raw.get("data"), raw.get("training")
    if tuned or not isinstance(data, dict):
        return False
    schedule = training.get("lr_schedule") if isinstance(training, dict) else None
    monitors = [training.get("monitor") if isinstance(training, dict) else None, schedule.get("monitor") if isinstance(schedule, dict) else None]
    if any(isinstance(m, str) and m.startswith("val_") for m in monitors):
        return False
    return data.get("test") is not None and "validation" not in data and "validation_split" not in data


def values(raw: dict[str, Any], *, whole_file: bool) -> dict[str, Any]:
    """The recipe's raw sections for the raw spec ``raw``, its ``--set`` overrides applied (a fresh copy). Per-timestep
    tasks get neither the front-end, which shortens the sequence, nor the FCN and kernel branches, which reduce over
    time, and keep every timestep, which has a target; declared token or text input gets no kernel branch, which
    convolves real values; with ``preprocessing.padding: pre`` nothing pools (no front-end, an FCN branch at every
    timestep), as which timesteps a pool keeps would depend on the padding before each sequence. With ``whole_file``
    (:func:`trains_on_the_whole_file`, read on the spec as it trains), no validation split and
    ``training.monitor: loss``."""
    recipe = copy.deepcopy(RECOMMENDED)
    if raw.get("task", "classify") not in PER_SEQUENCE_TASKS:
        del recipe["model"]["frontend"], recipe["model"]["fcn"], recipe["model"]["kernels"], recipe["preprocessing"]
    else:
        if _preprocessing(raw, "input") in UNMEASURED_INPUTS:
            del recipe["model"]["kernels"]
        if _preprocessing(raw, "padding") == "pre":
            del recipe["model"]["frontend"]
            for block in recipe["model"]["fcn"]["blocks"]:
                block.pop("pool", None)
    if whole_file:
        recipe["data"] = {"validation_split": 0.0}
        recipe["training"]["monitor"] = "loss"
    return recipe


def summary() -> str:
    """The recipe in a phrase, from :data:`RECOMMENDED` (for the spec reference and the note of a run that uses it)."""
    model, training = RECOMMENDED["model"], RECOMMENDED["training"]
    shorten = RECOMMENDED["preprocessing"]["shorten"]
    return (
        f"an FCN branch and a random convolutional kernel branch beside an LSTM({model['layers'][0]['units']}), the LSTM reading a convolutional front-end's output and the FCN's "
        f"wider blocks their first block's, both max-pooled over {model['frontend']['blocks'][0]['pool']} timesteps, series longer than {shorten} timesteps resampled to {shorten}, "
        f"up to {training['epochs']} epochs in batches of {training['batch_size']}, early stopping after {training['early_stopping']['patience']} without improvement; "
        "with a test file and no validation settings, trained on the whole training file, keeping the epoch of lowest training loss"
    )


def merged_under(raw: dict[str, Any], recipe: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with the recipe's keys filled in where ``raw`` has none (mappings merged key by key; a list or a
    value the spec gives replaces the recipe's whole)."""
    out = dict(raw)
    for key, value in recipe.items():
        if key not in out:
            out[key] = copy.deepcopy(value)
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = merged_under(out[key], value)
    return out
