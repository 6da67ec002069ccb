"""seqcli vs the fastest PyTorch script a user would write for the same job on a CPU.

The PyTorch side is `nn.LSTM(batch_first=True)`, PyTorch's fused CPU LSTM kernel,
on batches of length-sorted sequences (ties in random order), each batch padded
to its longest sequence, the batch order shuffled every epoch; each sequence's
output is taken at its last real timestep (a gather at length - 1), then Linear,
CrossEntropy and Adam. It does not use `pack_padded_sequence`, which falls back
to a slow loop on a CPU. seqcli trains Masking -> LSTM -> softmax through its
core API, exactly as `seqcli train` does (epoch commits included).

Both sides see the same data, units, batch size, epochs and learning rate, on
benchmark 1's variable-length data (500 sequences, lengths 100..1300, 30 epochs,
learning rate 0.005) and benchmark 2's fixed-length data (4,000 x 8 x 16,
8 epochs, 0.001), each with a test set for the accuracy. For 30 epochs of the
variable-length data seqcli's ``backend: auto`` takes JAX (compiling its batch
shapes pays back); ``--variable-epochs 4`` shows the short run, on TensorFlow. PyTorch gets as many
threads as TensorFlow uses by default (the cores this process may run on).
Steady state is the median of the epochs after the first; the whole run (every
epoch, the first with its tracing and compiling) is reported too. seqcli starts
with an empty JAX compilation cache: the first repeat compiles every batch shape,
the later ones load the programs from the cache, as a rerun would. The two sides
alternate, ``--repeats`` times, starting with the other side each repeat; the
median ratio seqcli / PyTorch per steady-state epoch and its range are printed.

PyTorch is not a project dependency (the build PyPI serves by default is a
multi-GB CUDA one), so it runs in its own interpreter in a child process:

    python3 -m venv benchmarks/.venv-torch && benchmarks/.venv-torch/bin/pip install torch==2.13.0 numpy
    uv run python benchmarks/pytorch_peer.py [--repeats 5] [--torch-python PATH]

Each side runs in a fresh child process; its peak RSS is that process's
(TensorFlow's or PyTorch's runtime included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import Labelled, fixed_data, row, run_child, seqcli_train, steady, variable_data, verdict

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TORCH_PYTHON = Path(__file__).resolve().parent / ".venv-torch" / "bin" / "python"
INSTALL = "python3 -m venv benchmarks/.venv-torch && benchmarks/.venv-torch/bin/pip install torch==2.13.0 numpy"


def torch_side(file: Path, units: int, batch_size: int, epochs: int, lr: float, threads: int) -> dict[str, Any]:
    """Train the PyTorch model on the splits in ``file``; epoch times and test accuracy."""
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)

    def padded(data: Labelled) -> tuple[torch.Tensor, np.ndarray, torch.Tensor]:
        """``(samples, longest, features)`` zero-padded at the end, lengths, labels."""
        lengths = np.array([len(s) for s in data[0]])
        x = np.zeros((len(lengths), lengths.max(), data[0][0].shape[1]), np.float32)
        for i, sequence in enumerate(data[0]):
            x[i, : len(sequence)] = sequence
        return torch.from_numpy(x), lengths, torch.from_numpy(data[1]).long()

    def batches(lengths: np.ndarray, rng: np.random.Generator | None) -> list[np.ndarray]:
        """Row indices sorted by length (ties random when training), cut into batches; batch order shuffled when training."""
        ties = rng.random(len(lengths)) if rng is not None else np.arange(len(lengths))
        order = np.lexsort((ties, lengths))
        cut = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        return [cut[i] for i in rng.permutation(len(cut))] if rng is not None else cut

    train, test = read_split(file)
    x, lengths, y = padded(train)
    test_x, test_lengths, test_y = padded(test)
    lstm = torch.nn.LSTM(x.shape[2], units, batch_first=True)
    head = torch.nn.Linear(units, int(y.max()) + 1)
    optimizer = torch.optim.Adam([*lstm.parameters(), *head.parameters()], lr=lr)
    loss_fn = torch.nn.CrossEntropyLoss()

    def logits(x: torch.Tensor, lengths: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        width = int(lengths[rows].max())
        outputs, _ = lstm(x[torch.from_numpy(rows), :width])  # (batch, width, units)
        return head(outputs[torch.arange(len(rows)), torch.from_numpy(lengths[rows] - 1)])  # each sequence's last real timestep

    rng = np.random.default_rng(0)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for rows in batches(lengths, rng):
            optimizer.zero_grad()
            loss_fn(logits(x, lengths, rows), y[torch.from_numpy(rows)]).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    with torch.no_grad():
        correct = sum(int((logits(test_x, test_lengths, rows).argmax(1) == test_y[torch.from_numpy(rows)]).sum()) for rows in batches(test_lengths, None))
    return {"epoch": steady(times), "times": times, "accuracy": correct / len(test_lengths)}


def seqcli_side(file: Path, units: int, batch_size: int, epochs: int, lr: float) -> dict[str, Any]:
    """Train seqcli on the splits in ``file``; steady-state epoch seconds, its background commit's, test accuracy."""
    train, test = read_split(file)
    timing = seqcli_train(train, test, units=units, batch_size=batch_size, epochs=epochs, lr=lr)
    from seqcli.backend import import_keras

    backend = str(import_keras().backend.backend())
    return {"epoch": timing.epoch, "times": timing.times, "commit": timing.commit, "commits": timing.commits, "accuracy": timing.accuracy, "backend": backend}


def write_split(path: Path, train: Labelled, test: Labelled) -> None:
    """Both splits as ragged arrays: ``x`` (all timesteps concatenated), ``lengths``, ``y``; the test split prefixed ``test_``."""
    arrays = {}
    for prefix, (x, y) in (("", train), ("test_", test)):
        arrays.update({f"{prefix}x": np.concatenate(list(x)), f"{prefix}lengths": np.array([len(s) for s in x]), f"{prefix}y": y})
    np.savez(path, **arrays)


def read_split(path: Path) -> tuple[Labelled, Labelled]:
    """The splits :func:`write_split` wrote; equal-length sequences come back as one ``(samples, timesteps, features)`` array."""
    archive = np.load(path)

    def part(prefix: str) -> Labelled:
        lengths = archive[f"{prefix}lengths"]
        x = np.split(archive[f"{prefix}x"], np.cumsum(lengths)[:-1])
        return (np.stack(x) if len(set(lengths)) == 1 else x), archive[f"{prefix}y"]

    return part(""), part("test_")


def torch_ready(python: Path) -> bool:
    return python.exists() and subprocess.run([str(python), "-c", "import torch"], capture_output=True).returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--variable-epochs", type=int, default=30, help="Epochs on the variable-length data (default 30).")
    parser.add_argument("--torch-python", type=Path, default=TORCH_PYTHON, help=f"Python with torch installed (default {TORCH_PYTHON}).")
    parser.add_argument("--child", nargs=2, metavar=("SIDE", "FILE"), help=argparse.SUPPRESS)  # internal: run one side on FILE, print JSON
    parser.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--lr", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        side, file = args.child[0], Path(args.child[1])
        if side == "torch":
            print(json.dumps(torch_side(file, args.units, args.batch_size, args.epochs, args.lr, args.threads)))
        else:
            print(json.dumps(seqcli_side(file, args.units, args.batch_size, args.epochs, args.lr)))
        return
    if not torch_ready(args.torch_python):
        sys.exit(f"PyTorch not found at {args.torch_python}; install it with: {INSTALL}")
    threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # TensorFlow's default intra-op threads
    datasets = {
        "variable": (variable_data(500, seed=0), variable_data(200, seed=1), args.variable_epochs, 0.005),
        "fixed": (fixed_data(4000, seed=0), fixed_data(1000, seed=1), 8, 0.001),
    }
    print(f"LSTM({args.units}), batch {args.batch_size}; PyTorch with {threads} threads; {args.repeats} alternating repeats")
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in datasets}  # ratios and times, and the backend seqcli ran on
    with tempfile.TemporaryDirectory() as folder:
        os.environ["SEQCLI_CACHE_DIR"] = folder  # an empty JAX compilation cache: repeat 1 compiles, later repeats load from it
        for repeat in range(args.repeats):
            for name, (train, test, epochs, lr) in datasets.items():
                file = Path(folder) / f"{name}.npz"
                if not file.exists():
                    write_split(file, train, test)
                options = ["--units", str(args.units), "--batch-size", str(args.batch_size), "--epochs", str(epochs), "--lr", str(lr), "--threads", str(threads)]
                sides = {}
                for side in ("seqcli", "torch") if repeat % 2 == 0 else ("torch", "seqcli"):
                    python = sys.executable if side == "seqcli" else str(args.torch_python)
                    _, rss, out = run_child([python, __file__, "--child", side, str(file), *options])
                    sides[side] = {**json.loads(out), "rss": rss}
                ours, theirs = sides["seqcli"], sides["torch"]
                measured = {"ratio": ours["epoch"] / theirs["epoch"], "seqcli": ours["epoch"], "torch": theirs["epoch"]}
                measured |= {"seqcli_fastest": min(ours["times"][1:]), "torch_fastest": min(theirs["times"][1:]), "run_ratio": sum(ours["times"]) / sum(theirs["times"])}
                measured |= {"seqcli_first": ours["times"][0], "backend": ours["backend"]}
                measured |= {"seqcli_acc": ours["accuracy"], "torch_acc": theirs["accuracy"], "seqcli_rss": ours["rss"], "torch_rss": theirs["rss"]}
                results[name].append(measured)
                print(
                    f"repeat {repeat + 1} {name:8}: seqcli ({ours['backend']}) {ours['epoch']:.3f} s/epoch "
                    f"({ours['commits']} commits, each written in {ours['commit']:.3f} s on the commit thread meanwhile), "
                    f"PyTorch {theirs['epoch']:.3f} s/epoch -> {measured['ratio']:.2f}x; whole run {sum(ours['times']):.1f} vs {sum(theirs['times']):.1f} s "
                    f"({measured['run_ratio']:.2f}x; seqcli's first epoch {ours['times'][0]:.1f} s); "
                    f"test accuracy {ours['accuracy']:.3f} vs {theirs['accuracy']:.3f}; peak RSS {ours['rss']:.0f} vs {theirs['rss']:.0f} MiB"
                )
    summary, verdicts = [], []
    epochs_of = {name: spec[2] for name, spec in datasets.items()}
    for name, runs in results.items():
        ratios = [r["ratio"] for r in runs]
        mid, low, high = statistics.median(ratios), min(ratios), max(ratios)
        seqcli_rss, torch_rss = max(r["seqcli_rss"] for r in runs), max(r["torch_rss"] for r in runs)
        best = min(r["seqcli_fastest"] for r in runs) / min(r["torch_fastest"] for r in runs)  # the epochs least disturbed by other processes
        verdicts.append(verdict(mid, best, 1.25))
        accuracy = f"accuracy {statistics.median(r['seqcli_acc'] for r in runs):.3f} vs {statistics.median(r['torch_acc'] for r in runs):.3f}"
        whole = f"whole run {statistics.median(r['run_ratio'] for r in runs):.2f}x (seqcli's first epoch {statistics.median(r['seqcli_first'] for r in runs):.1f} s)"
        backends = "/".join(sorted({r["backend"] for r in runs}))
        print(
            f"{name}: seqcli ({backends}) / PyTorch per steady-state epoch: median {mid:.2f}x (range {low:.2f}-{high:.2f}; fastest epochs {best:.2f}x); "
            f"{whole}; {accuracy}; peak RSS {seqcli_rss:.0f} vs {torch_rss:.0f} MiB (target <= 1.25x)"
        )
        summary.append(
            f"{name}-length data, {epochs_of[name]} epochs, seqcli on {backends}: **{mid:.2f}x** (range {low:.2f}-{high:.2f}, fastest epochs {best:.2f}x; "
            f"{statistics.median(r['seqcli'] for r in runs):.2f} vs {statistics.median(r['torch'] for r in runs):.2f} s/epoch), {whole}, {accuracy}, peak RSS {seqcli_rss:.0f} vs {torch_rss:.0f} MiB"
        )
    overall = "not met" if "not met" in verdicts else next((v for v in verdicts if v != "met"), "met")
    print(
        row(
            "pytorch_peer.py",
            f"benchmark 1's and 2's data, LSTM({args.units}), batch {args.batch_size}, same epochs and learning rate, {args.repeats} alternating repeats; "
            f"seqcli vs PyTorch `nn.LSTM` on padded length-sorted batches ({threads} threads)",
            "seqcli / PyTorch per steady-state epoch: " + "; ".join(summary),
            f"at most 1.25x: **{overall}**",
        )
    )


if __name__ == "__main__":
    main()
