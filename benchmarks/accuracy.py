"""seqcli's accuracy against the peers practitioners use on the same data, in one run (issue #14).

For each shared UCR set (``../shared/data/ucr/``: ArrowHead, GunPoint, OSULeaf, ACSF1) seqcli trains the *minimal
spec* a new user writes (``data.train`` and ``data.test``, nothing else), so the figures are those of seqcli's default
recipe. The same goes for three sets held out from choosing the recipe's first version (BasicMotions,
ItalyPowerDemand, PickupGestureWiimoteZ, from aeon's installed package data), which check that it generalizes; they
were measured for every change since, so they informed the later choices too. JapaneseVowels and
the text example (``experiments/japanese_vowels.yaml``, ``experiments/stdlib_lines.yaml``) train their shipped specs.
Each spec is trained through the CLI in a fresh process, once per seed (``--seeds 3``: seeds 0, 1, 2), and its test
accuracy is the median over the seeds (of the ensemble's, when the spec trains one). ACSF1 (1,460 timesteps) is also
trained as the minimal spec was before the recipe (``recipe: plain``, an LSTM(64) on every timestep, 30 epochs), for
the epoch time on long series before and after in the same run; that row has no peer.

The peers, each fitted on the whole training file and scored on the test file, in a child process:

- aeon's ``MiniRocketClassifier`` (series zero-padded to the longest, as in the shared reference table), for the time
  series, fitted once per seed as seqcli is (``random_state`` 0, 1, 2 for ``--seeds 3``): MiniRocket draws its
  biases from random training sequences, so its accuracy moves with the seed too, and the gap is taken between the
  two medians. aeon is seqcli's optional ``baseline`` group: ``uv sync --group baseline``. Its numba compilation
  (about 20 s in a fresh process) is done on a few sequences first and not counted.
- for text, a character n-gram logistic regression (scikit-learn, which aeon brings): TF-IDF of 1- to 4-grams of
  characters, ``LogisticRegression(C=10)``.

Printed side by side: accuracy, wall time to train (seqcli: the run's ``train_seconds``, median over seeds; peers:
the fit, MiniRocket's median over seeds), the gap to the best peer, the ratio of seqcli's training time to the
peer's, and seqcli's steady epoch time.

    uv run --group baseline python benchmarks/accuracy.py [--seeds 3] [--only GunPoint,ACSF1] [--set KEY=VALUE ...] [--json out.json]

``--set`` passes overrides to every seqcli training but the ``recipe: plain`` row's (to measure an alternative recipe
the same way).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
UCR = ROOT.parent / "shared" / "data" / "ucr"


@dataclass(frozen=True)
class DataSet:
    name: str
    spec: Path | None  # a shipped spec; None: the minimal spec on ``train``/``test``
    train: Path
    test: Path
    peer: str  # "minirocket", "ngram" or "none"
    overrides: tuple[str, ...] = ()  # --set for this set's trainings, instead of the command line's


# Sets that played no part in choosing the recipe's first version, to check that it generalizes (measured for every
# change since, so no longer strictly held out): aeon's own copies of UCR/UEA sets
# (in its installed package, which the benchmark needs for MiniRocket anyway). Multivariate (6 channels, 100 steps),
# very short (24 steps), and of varying length (29 to 361 steps).
HELD_OUT = ("BasicMotions", "ItalyPowerDemand", "PickupGestureWiimoteZ")
# The long set (1,460 timesteps) whose minimal spec is also trained as it was before the recipe (`recipe: plain`, an
# LSTM(64) reading every timestep), for the epoch time before and after in the same run (`--only ACSF1` runs both).
BEFORE = "ACSF1"


def aeon_data() -> Path | None:
    """aeon's bundled data folder, found without importing aeon; None when it is not installed."""
    spec = importlib.util.find_spec("aeon")
    return Path(spec.origin).parent / "datasets" / "data" if spec and spec.origin else None


def data_sets() -> list[DataSet]:
    ucr = [DataSet(name, None, UCR / f"{name}_TRAIN.ts", UCR / f"{name}_TEST.ts", "minirocket") for name in ("ArrowHead", "GunPoint", "OSULeaf", "ACSF1")]
    before = DataSet(f"{BEFORE} before the recipe (recipe: plain)", None, UCR / f"{BEFORE}_TRAIN.ts", UCR / f"{BEFORE}_TEST.ts", "none", ("recipe=plain",))
    bundled = aeon_data()
    held_out = [DataSet(f"{name} (held out)", None, bundled / name / f"{name}_TRAIN.ts", bundled / name / f"{name}_TEST.ts", "minirocket") for name in HELD_OUT] if bundled else []
    vowels = ROOT / "data" / "japanese_vowels"
    text = ROOT / "data" / "stdlib_lines"
    return [
        *ucr,
        before,
        *held_out,
        DataSet("JapaneseVowels", ROOT / "experiments" / "japanese_vowels.yaml", vowels / "JapaneseVowels_TRAIN.ts", vowels / "JapaneseVowels_TEST.ts", "minirocket"),
        DataSet("stdlib_lines (text)", ROOT / "experiments" / "stdlib_lines.yaml", text / "train.csv", text / "test.csv", "ngram"),
    ]


@dataclass
class SeqcliResult:
    accuracies: list[float] = field(default_factory=list)
    ensemble: list[float] = field(default_factory=list)  # the ensemble's test accuracy per seed, when the recipe trains one
    seconds: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return statistics.median(self.ensemble or self.accuracies)


def train(data: DataSet, seed: int, out: Path, overrides: list[str]) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """Train ``data``'s spec (written to ``out`` when minimal) with ``seed``; the run's metrics.json, run.json and history."""
    spec = data.spec
    if spec is None:
        spec = out / f"{data.name}.yaml"
        spec.write_text(f"data:\n  train: {data.train}\n  test: {data.test}\n")
    runs = out / f"runs-{seed}"
    sets = [arg for item in [f"seed={seed}", f"output.dir={runs}", *overrides] for arg in ("--set", item)]
    done = subprocess.run([sys.executable, "-m", "seqcli", "train", str(spec), "--quiet", *sets], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"seqcli train {spec} (seed {seed}) failed:\n{done.stderr}")
    (run,) = (folder for folder in runs.glob("*/*") if folder.is_dir())
    history = json.loads((run / "history.json").read_text())
    return json.loads((run / "metrics.json").read_text()), json.loads((run / "run.json").read_text()), history if isinstance(history, list) else history["epochs"]


def seqcli_result(data: DataSet, seeds: int, overrides: list[str]) -> SeqcliResult:
    result = SeqcliResult()
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(seeds):
            metrics, info, history = train(data, seed, Path(folder), overrides)
            members = metrics.get("members") or []
            if members:  # an ensemble: its own figure, and each member's
                result.ensemble.append(metrics["test"]["accuracy"])
                result.accuracies.extend(member["test"]["accuracy"] for member in members)
            else:
                result.accuracies.append(metrics["test"]["accuracy"])
            result.seconds.append(info["train_seconds"])
            result.epochs.append(len(history))
            times = [row["seconds"] for row in history]
            result.epoch_seconds.append(statistics.median(times[1:]) if len(times) > 1 else times[0])
            which = f" (ensemble of {len(members)})" if members else ""
            score = metrics["test"]["accuracy"]
            print(f"  {data.name} seed {seed}: test accuracy{which} {score:.4f}, {len(history)} epochs, {info['train_seconds']:.0f} s", file=sys.stderr, flush=True)
    return result


MINIROCKET = """
import json, sys, time
import numpy as np
from aeon.classification.convolution_based import MiniRocketClassifier
data = np.load(sys.argv[1])
x_train, y_train, x_test, y_test = (data[k] for k in ("x_train", "y_train", "x_test", "y_test"))
warm = np.concatenate([np.flatnonzero(y_train == label)[:2] for label in np.unique(y_train)[:4]])
MiniRocketClassifier(random_state=0).fit(x_train[warm], y_train[warm])  # numba compilation, not counted
accuracies, seconds = [], []
for seed in range(int(sys.argv[2])):
    started = time.perf_counter()
    model = MiniRocketClassifier(random_state=seed).fit(x_train, y_train)
    seconds.append(time.perf_counter() - started)
    accuracies.append(float(np.mean(model.predict(x_test) == y_test)))
print(json.dumps({"accuracy": float(np.median(accuracies)), "seconds": float(np.median(seconds)), "per_seed": accuracies}))
"""

NGRAM = """
import csv, json, sys, time
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
def read(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]
(x_train, y_train), (x_test, y_test) = read(sys.argv[1]), read(sys.argv[2])
started = time.perf_counter()
model = make_pipeline(TfidfVectorizer(analyzer="char", ngram_range=(1, 4), lowercase=False, sublinear_tf=True), LogisticRegression(C=10, max_iter=2000))
model.fit(x_train, y_train)
seconds = time.perf_counter() - started
print(json.dumps({"accuracy": sum(p == t for p, t in zip(model.predict(x_test), y_test)) / len(y_test), "seconds": seconds}))
"""


def _padded(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A .ts file as aeon takes it: ``(samples, channels, timesteps)`` zero-padded to the longest, and the labels."""
    from seqcli.data import load
    from seqcli.spec import DataFile, DataSpec

    loaded = load(DataFile(path=str(path)), DataSpec(train=DataFile(path=str(path))))
    sequences = loaded.sequences
    x = np.zeros((len(sequences), sequences.cell_shape[0], max(len(s) for s in sequences)), dtype=np.float64)
    for i, cells in enumerate(sequences):
        x[i, :, : len(cells)] = cells.T
    return x, np.asarray(loaded.labels).astype(str)


def peer(data: DataSet, folder: Path, seeds: int) -> dict[str, Any] | str:
    """The peer's test accuracy and fit seconds (medians over ``seeds`` fits, and each fit's accuracy, for the seeded
    MiniRocket; one fit of the deterministic n-gram model), or why it could not run."""
    if data.peer == "none":
        return "-"
    if data.peer == "ngram":
        args = ["-c", NGRAM, str(data.train), str(data.test)]
        missing = "scikit-learn is not installed: uv sync --group baseline"
    else:
        arrays = folder / f"{data.name}.npz"
        (x_train, y_train), (x_test, y_test) = _padded(data.train), _padded(data.test)
        width = max(x_train.shape[2], x_test.shape[2])
        x_train, x_test = (np.pad(x, ((0, 0), (0, 0), (0, width - x.shape[2]))) for x in (x_train, x_test))
        np.savez(arrays, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
        args = ["-c", MINIROCKET, str(arrays), str(seeds)]
        missing = "aeon is not installed: uv sync --group baseline"
    done = subprocess.run([sys.executable, *args], capture_output=True, text=True)
    if done.returncode != 0:
        return missing if "ModuleNotFoundError" in done.stderr else f"failed: {done.stderr.strip().splitlines()[-1]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


PEER_NAMES = {"minirocket": "MiniRocket", "ngram": "char n-gram LR", "none": "no peer"}


def table_row(data: DataSet, ours: SeqcliResult, other: dict[str, Any] | str) -> list[str]:
    """One data set's printed row: seqcli's accuracies and times beside the peer's, the gap and the time ratio."""
    seconds = statistics.median(ours.seconds)
    start = [data.name, " ".join(f"{a:.3f}" for a in ours.accuracies), f"{statistics.median(ours.accuracies):.3f}", f"{ours.accuracy:.3f}" if ours.ensemble else "-"]
    end = [f"{statistics.median(ours.epochs):.0f}", f"{statistics.median(ours.epoch_seconds):.3f}"]
    if isinstance(other, str):
        return [*start, f"{PEER_NAMES[data.peer]}: {other}" if data.peer != "none" else other, "", "", f"{seconds:.0f}", "", *end]
    spread = f" ({' '.join(f'{a:.3f}' for a in other['per_seed'])})" if len(other.get("per_seed", [])) > 1 else ""
    peer_columns = [f"{PEER_NAMES[data.peer]} {other['accuracy']:.3f}{spread}", f"{ours.accuracy - other['accuracy']:+.3f}", f"{other['seconds']:.1f}"]
    return [*start, *peer_columns, f"{seconds:.0f}", f"{seconds / other['seconds']:.0f}x", *end]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 for each seqcli training and MiniRocket fit")
    parser.add_argument("--only", default="", help="comma-separated data-set names (prefixes), default: all")
    parser.add_argument("--set", action="append", default=[], dest="overrides", metavar="KEY=VALUE", help="an override for every seqcli training")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    chosen = [d for d in data_sets() if not args.only or any(d.name.startswith(name) for name in args.only.split(","))]
    started = time.perf_counter()
    rows, figures = [], []
    with tempfile.TemporaryDirectory() as folder:
        for data in chosen:
            print(f"{data.name}: {PEER_NAMES[data.peer]} ...", file=sys.stderr, flush=True)
            other = peer(data, Path(folder), args.seeds)
            ours = seqcli_result(data, args.seeds, list(data.overrides) or args.overrides)
            figures.append({"data_set": data.name, "seqcli": ours.__dict__ | {"accuracy": ours.accuracy}, "peer": PEER_NAMES[data.peer], "peer_result": other})
            rows.append(table_row(data, ours, other))
    header = ["data set", "seqcli test accuracy per seed", "median", "ensemble", "best peer", "gap", "peer fit s", "seqcli train s", "time ratio", "epochs", "epoch s"]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\n{len(chosen)} data sets, seeds 0-{args.seeds - 1}{', overrides: ' + ' '.join(args.overrides) if args.overrides else ''}; {time.perf_counter() - started:.0f} s in all")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
