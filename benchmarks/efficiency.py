"""Compute efficiency of seqcli's training: useful FLOP/s against the machine's matrix-multiply rate.

Useful FLOPs are those spent on real (unpadded) timesteps. Per sample and real
timestep, an LSTM's forward pass does 4 gates x units outputs x (features +
units) inputs multiply-adds, that is ``2 * 4 * units * (features + units)``
FLOPs; training (forward + backward) counts as 3x the forward pass. Biases,
activations and the softmax layer are left out, and so is all work on padding.
The achieved rate is one epoch's useful FLOPs divided by seqcli's steady-state
epoch time (training steps and epoch commit), on benchmark 1's variable-length
data and benchmark 2's fixed-length data with their epochs and learning rates.

The machine's dense float32 matrix-multiply rate is measured in the same run,
best of three tries: NumPy at the LSTM's per-timestep product size,
``(batch, units) @ (units, 4 * units)``, and NumPy and TensorFlow at 2048 x 2048.
Efficiency is the achieved rate over the best large-product rate (the machine's
peak as far as this run can tell); the small-product rate shows how much of that
peak products of an LSTM's size can reach at all.

Each data set trains in a fresh process, on the backend seqcli's ``backend: auto``
picks for its training (4 or 8 epochs: TensorFlow with bucketing, JAX for fixed widths), or ``--backend``.

    uv run python benchmarks/efficiency.py [--units 32] [--backend auto|jax|tensorflow]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from common import add_backend_option, choose_backend, fixed_data, lstm_train_flops, real_timesteps, row, run_child, seqcli_train, variable_data

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def numpy_rate(m: int, k: int, n: int, seconds: float = 0.5) -> float:
    """FLOP/s of float32 ``(m, k) @ (k, n)`` in NumPy, best of three tries of about ``seconds`` each."""
    rng = np.random.default_rng(0)
    a, b = rng.random((m, k), dtype=np.float32), rng.random((k, n), dtype=np.float32)
    best = 0.0
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            a @ b
            count += 1
        best = max(best, 2 * m * k * n * count / elapsed)
    return best


def tensorflow_rate(size: int, repeat: int = 5) -> float:
    """FLOP/s of float32 ``(size, size) @ (size, size)`` in TensorFlow, best of three tries."""
    import tensorflow as tf

    a = tf.random.uniform((size, size))
    b = tf.random.uniform((size, size))
    tf.matmul(a, b).numpy()  # warm-up
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            c = tf.matmul(a, b)
        c.numpy()
        best = max(best, 2 * size**3 * repeat / (time.perf_counter() - start))
    return best


DATASETS = {"variable": (lambda: variable_data(500, seed=0), 4, 0.005), "fixed": (lambda: fixed_data(4000, seed=0), 8, 0.001)}  # data, epochs, lr


def one_data_set(name: str, args: argparse.Namespace) -> dict[str, float | str]:
    """Train seqcli on one data set in this process; its useful FLOP/s."""
    make, epochs, lr = DATASETS[name]
    train = make()
    backend = choose_backend(args.backend, train, units=args.units, epochs=epochs, batch_size=args.batch_size)
    timing = seqcli_train(train, None, units=args.units, batch_size=args.batch_size, epochs=epochs, lr=lr)
    features = train[0][0].shape[-1]
    flops = lstm_train_flops(real_timesteps(train[0]), features, args.units)
    line = (
        f"seqcli, {name}-length data ({backend}): {real_timesteps(train[0]):,} real timesteps x {features} feature{'s' if features > 1 else ''} per epoch = {flops / 1e9:.2f} GFLOP "
        f"in {timing.epoch:.2f} s -> {flops / timing.epoch / 1e9:.2f} GFLOP/s"
    )
    return {"rate": flops / timing.epoch, "backend": backend, "line": line}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--only", choices=sorted(DATASETS), help=argparse.SUPPRESS)  # internal: one data set, JSON on stdout
    add_backend_option(parser)
    args = parser.parse_args()
    if args.only:
        print(json.dumps(one_data_set(args.only, args)))
        return
    units, batch = args.units, args.batch_size
    options = ["--units", str(units), "--batch-size", str(batch), "--backend", args.backend]
    achieved = {}
    for name in DATASETS:
        _, rss, out = run_child([sys.executable, __file__, "--only", name, *options])
        result = json.loads(out)
        print(f"{result['line']}; peak RSS {rss:.0f} MiB")
        achieved[f"{name}-length data ({result['backend']})"] = result["rate"]
    small = numpy_rate(batch, units, 4 * units)
    large = {"NumPy": numpy_rate(2048, 2048, 2048), "TensorFlow": tensorflow_rate(2048)}
    peak = max(large.values())
    print(f"matmul float32, NumPy (batch {batch}, units {units}) @ ({units}, {4 * units}): {small / 1e9:6.1f} GFLOP/s")
    for library, rate in large.items():
        print(f"matmul float32, {library} 2048 x 2048 @ 2048 x 2048: {rate / 1e9:6.1f} GFLOP/s")
    parts = []
    for name, rate in achieved.items():
        print(f"efficiency, {name}: {rate / peak:.1%} of the large-product rate, {rate / small:.1%} of the LSTM-size-product rate")
        parts.append(f"{name} **{rate / peak:.1%}** ({rate / 1e9:.2f} GFLOP/s; {rate / small:.0%} of the LSTM-size product rate)")
    print(
        row(
            "efficiency.py",
            f"seqcli's useful training FLOP/s (real timesteps only; 3 x 2 x 4 x units x (features + units) per timestep), LSTM({units}), batch {batch}, "
            "vs the float32 matmul rate measured in the same run",
            "; ".join(parts) + f"; machine: {peak / 1e9:.0f} GFLOP/s at 2048², {small / 1e9:.1f} GFLOP/s at ({batch}, {units}) @ ({units}, {4 * units})",
            "none set (reported)",
        )
    )


if __name__ == "__main__":
    main()
