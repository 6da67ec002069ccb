"""Latency and start-up: time to the first training step, `predict` latency for one sample, throughput for 10,000.

First training step: a fresh process trains experiments/smoke.yaml through the
core API (`prepare`, then `fit` with a progress hook that stops training at the
end of the first batch), as `seqcli train` does; wall time from just before the
process is started to the end of that batch, with the process's own timestamps
for the breakdown. Baselines: `python -c pass` and `import tensorflow` in fresh
processes.

Prediction uses a run trained here for one epoch on benchmark 2's data (8
timesteps x 16 features, LSTM(32), batch 32). One sample: the core API loads the
run once, then `predict` on one sequence is timed repeatedly (median), against a
bare `model.predict` and a direct `model(x)` call on the same array; the CLI,
`seqcli predict RUN one.npy`, is timed end to end in fresh processes. Throughput:
10,000 sequences in one .npz file through `predict_file` (reading, checking,
preprocessing, batching, predicting), against a bare `model.predict` on the same
array, and through the CLI writing a CSV. The CLI's marginal rate leaves out its
fixed cost: 10,000 / (time for 10,000 - time for one). Peak RSS: in-process
parts report this process's while they ran (TensorFlow's runtime included),
fresh processes their own.

    uv run python benchmarks/latency.py [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import ROOT, bytecode_warning, fixed_data, peak_rss_mib, reset_peak_rss, row, run_child, seqcli_train

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SMOKE = ROOT / "experiments" / "smoke.yaml"
IMPORT_TF = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'; import tensorflow"


class FirstBatchDone(Exception):
    """Raised by :class:`FirstBatch` to stop training after one batch."""


class FirstBatch:
    """A seqcli progress hook that records when the first batch ends and stops training there."""

    batch_updates = True

    def __init__(self) -> None:
        self.at = 0.0

    def on_train_begin(self, epochs: int, steps: int, first_epoch: int) -> None:
        pass

    def on_batch_end(self, step: int, logs: dict[str, float]) -> None:
        self.at = time.time()
        raise FirstBatchDone

    def on_epoch_end(self, epoch: int, logs: dict[str, float], best: bool) -> None:
        pass

    def on_train_end(self) -> None:
        pass


def first_step_child(since: float, output_dir: str) -> dict[str, float]:
    """Seconds since ``since`` (the parent's clock before starting this process) at each milestone up to the first batch's end."""
    imported = time.time()
    from seqcli import train as core
    from seqcli.spec import load_spec

    spec = load_spec(SMOKE, [f"output.dir={output_dir}"])
    prepared = core.prepare(spec)  # loads the data, imports TensorFlow, builds the model
    ready = time.time()
    hook = FirstBatch()
    with contextlib.suppress(FirstBatchDone):
        core.fit(prepared, hook)
    return {"Python and NumPy up": imported - since, "data and model ready": ready - since, "first batch done": hook.at - since}


def median_run(command: list[str], repeat: int) -> tuple[float, float]:
    """Median wall seconds and highest peak RSS (MiB) of ``command`` over ``repeat`` fresh processes."""
    runs = [run_child(command)[:2] for _ in range(repeat)]
    return statistics.median(s for s, _ in runs), max(r for _, r in runs)


def timed(call: Any, repeat: int) -> float:
    """Median seconds of ``call()`` over ``repeat`` calls, after two warm-up calls."""
    call(), call()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2, help="Fresh processes per command line measured.")
    parser.add_argument("--first-step-child", nargs=2, metavar=("SINCE", "OUTPUT_DIR"), help=argparse.SUPPRESS)  # internal
    args = parser.parse_args()
    if args.first_step_child:
        print(json.dumps(first_step_child(float(args.first_step_child[0]), args.first_step_child[1])))
        return
    if warning := bytecode_warning():
        print(warning)
    py = sys.executable
    lines = []
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        # 1. Start-up and time to the first training step.
        floor, floor_rss = median_run([py, "-c", "pass"], args.repeat)
        tf_import, tf_rss = median_run([py, "-c", IMPORT_TF], args.repeat)
        steps, step_rss = [], 0.0
        for _ in range(args.repeat):
            _, rss, out = run_child([py, __file__, "--first-step-child", repr(time.time()), str(tmp / "smoke-runs")])
            steps.append(json.loads(out))
            step_rss = max(step_rss, rss)
        first = {key: statistics.median(s[key] for s in steps) for key in steps[0]}
        print(f"start-up (median of {args.repeat} fresh processes):")
        print(f"  python -c pass                      {floor:7.2f} s   peak RSS {floor_rss:5.0f} MiB")
        print(f"  import tensorflow                   {tf_import:7.2f} s   peak RSS {tf_rss:5.0f} MiB")
        print(f"  train smoke.yaml to the end of its first batch: {first['first batch done']:.2f} s ({first['first batch done'] / tf_import:.2f}x `import tensorflow`); peak RSS {step_rss:.0f} MiB")
        print("    breakdown: " + ", ".join(f"{milestone} {seconds:.2f} s" for milestone, seconds in first.items()))
        lines.append(f"first training step {first['first batch done']:.1f} s ({first['first batch done'] / tf_import:.2f}x `import tensorflow`, {tf_import:.1f} s)")

        # 2. One sample.
        from seqcli import predict
        from seqcli.data import SequenceData
        from seqcli.sequences import Sequences

        x, y = fixed_data(4000, seed=0)
        seqcli_train((x, y), None, units=32, batch_size=32, epochs=1, lr=0.001, run_dir=tmp / "runs")
        run = next((tmp / "runs").glob("*/*/run.json")).parent
        start = time.perf_counter()
        loaded = predict.load_run(run)
        load_seconds = time.perf_counter() - start
        sample = x[:1]  # (batch=1, timesteps=8, features=16)
        one = SequenceData(Sequences.from_arrays([sample[0]]), None, "one sample", "npy", str(sample[0].shape), ["the sequence"])
        core_one = timed(lambda: predict.predict(loaded, one), 30)
        bare_one = timed(lambda: loaded.model.predict(sample, verbose=0), 30)
        call_one = timed(lambda: loaded.model(sample, training=False), 30)
        np.save(tmp / "one.npy", sample[0])
        cli_one, cli_one_rss = median_run([py, "-m", "seqcli", "predict", str(run), str(tmp / "one.npy"), "--quiet"], args.repeat)
        print(f"one sample, benchmark 2's model (load_run once: {load_seconds:.2f} s):")
        print(f"  seqcli predict (core)         {core_one * 1e3:7.1f} ms   {core_one / bare_one:.2f}x model.predict ({bare_one * 1e3:.1f} ms), model(x) {call_one * 1e3:.1f} ms")
        print(f"  seqcli predict RUN one.npy    {cli_one:7.2f} s    {cli_one / tf_import:.2f}x `import tensorflow`; peak RSS {cli_one_rss:.0f} MiB")
        lines.append(f"one-sample predict {core_one * 1e3:.1f} ms in the core API ({core_one / bare_one:.2f}x `model.predict`), {cli_one:.1f} s through the CLI")

        # 3. Throughput for 10,000 sequences.
        many_x, many_y = fixed_data(10_000, seed=2)
        many = tmp / "many.npz"
        np.savez(many, x=many_x, y=many_y)
        reset_peak_rss()
        core_many = timed(lambda: predict.predict_file(loaded, many), args.repeat)
        core_rss = peak_rss_mib()
        core_read = timed(lambda: predict.read_input(loaded, many), args.repeat)
        reset_peak_rss()
        bare_many = timed(lambda: loaded.model.predict(many_x, batch_size=32, verbose=0), args.repeat)
        bare_rss = peak_rss_mib()
        cli_many, cli_many_rss = median_run([py, "-m", "seqcli", "predict", str(run), str(many), "-o", str(tmp / "many.csv"), "--force", "--quiet"], args.repeat)
        n = len(many_x)
        print(f"{n:,} sequences in one .npz file:")
        print(f"  seqcli predict_file (core)    {n / core_many:8.0f} sequences/s   {bare_many / core_many:.2f}x model.predict's rate ({n / bare_many:.0f}/s)")
        print(f"    {core_many:.2f} s, of which reading and checking the file {core_read:.2f} s; model.predict {bare_many:.2f} s")
        print(f"    peak RSS {core_rss:.0f} MiB (model.predict: {bare_rss:.0f} MiB)")
        print(f"  seqcli predict RUN FILE -o    {n / cli_many:8.0f} sequences/s   ({cli_many:.2f} s; marginal {n / (cli_many - cli_one):.0f}/s after the fixed cost); peak RSS {cli_many_rss:.0f} MiB")
        lines.append(f"{n:,} sequences: {n / core_many:.0f}/s in the core API ({bare_many / core_many:.2f}x `model.predict`'s rate), {n / cli_many:.0f}/s through the CLI")
        lines.append(f"peak RSS {step_rss:.0f} MiB training, {core_rss:.0f} MiB predicting 10,000 (core), {cli_many_rss:.0f} MiB (CLI)")
    print(
        row(
            "latency.py",
            "time to the first training step (smoke.yaml, fresh process); `predict` for one sample and for 10,000 (benchmark 2's model, 8 x 16), "
            "core API and CLI, vs `import tensorflow` and a bare `model.predict`",
            "; ".join(lines),
            "none set (reported)",
        )
    )


if __name__ == "__main__":
    main()
