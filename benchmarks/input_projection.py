"""Does computing the LSTM's input projection outside the time loop pay on this CPU?

An LSTM step computes ``x_t @ W + h @ R``. The input half does not depend on the
previous step, so all timesteps can be projected in one large product before the
loop, leaving only ``h @ R`` inside it. This script times one training step
(forward and backward of a plain LSTM, batch 32) both ways, on JAX (``lax.scan``)
and TensorFlow (``tf.scan``), for three shapes: 1 feature (benchmark 1's data),
12 features with 128 units (Japanese Vowels) and 128 features (an embedding).
A ratio above 1 means the projection outside the loop is slower.

    uv run python benchmarks/input_projection.py [--repeats 20]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

import numpy as np
from common import row

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SHAPES = [(300, 1, 32), (29, 12, 128), (100, 128, 128)]  # (timesteps, features, units)
BATCH = 32


def timed(step: Callable[[], object], repeats: int) -> float:
    """Median seconds per call, after one warm-up call (tracing, compiling)."""
    step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def jax_steps(timesteps: int, features: int, units: int) -> dict[str, Callable[[], object]]:
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(BATCH, timesteps, features)), jnp.float32)  # (batch, timesteps, features)
    w = jnp.asarray(rng.normal(size=(features, 4 * units)) * 0.1, jnp.float32)
    r = jnp.asarray(rng.normal(size=(units, 4 * units)) * 0.1, jnp.float32)

    def cell(h: jax.Array, c: jax.Array, z: jax.Array) -> tuple[jax.Array, jax.Array]:
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        return jax.nn.sigmoid(o) * jnp.tanh(c), c

    def loss(w: jax.Array, r: jax.Array, outside: bool) -> jax.Array:
        xs = jnp.swapaxes(x, 0, 1)  # (timesteps, batch, features)
        inputs = xs @ w if outside else xs  # outside: (timesteps, batch, 4 * units), one product

        def step(carry: tuple[jax.Array, jax.Array], z: jax.Array) -> tuple[tuple[jax.Array, jax.Array], None]:
            h, c = carry
            return cell(h, c, (z if outside else z @ w) + h @ r), None

        (h, _), _ = jax.lax.scan(step, (jnp.zeros((BATCH, units)), jnp.zeros((BATCH, units))), inputs)
        return jnp.sum(h)

    grads = {name: jax.jit(jax.grad(lambda w, r, o=outside: loss(w, r, o), argnums=(0, 1))) for name, outside in (("inside", False), ("outside", True))}
    return {name: (lambda g=g: jax.block_until_ready(g(w, r))) for name, g in grads.items()}


def tf_steps(timesteps: int, features: int, units: int) -> dict[str, Callable[[], object]]:
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(BATCH, timesteps, features)), tf.float32)  # (batch, timesteps, features)
    w = tf.Variable(tf.constant(rng.normal(size=(features, 4 * units)) * 0.1, tf.float32))
    r = tf.Variable(tf.constant(rng.normal(size=(units, 4 * units)) * 0.1, tf.float32))

    def cell(h: tf.Tensor, c: tf.Tensor, z: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        i, f, g, o = tf.split(z, 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        return tf.sigmoid(o) * tf.tanh(c), c

    def make(outside: bool) -> Callable[[], object]:
        @tf.function
        def step() -> object:
            with tf.GradientTape() as tape:
                xs = tf.transpose(x, [1, 0, 2])  # (timesteps, batch, features)
                inputs = tf.einsum("tbf,fg->tbg", xs, w) if outside else xs
                h, _ = tf.scan(lambda carry, z: cell(carry[0], carry[1], (z if outside else z @ w) + carry[0] @ r), inputs, initializer=(tf.zeros((BATCH, units)), tf.zeros((BATCH, units))))
                loss = tf.reduce_sum(h[-1])
            return tape.gradient(loss, [w, r])

        return step

    return {"inside": make(False), "outside": make(True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    print(f"one training step of a plain LSTM, batch {BATCH}; ratio = projection outside the loop / inside")
    ratios = []
    for backend, steps_for in (("jax", jax_steps), ("tensorflow", tf_steps)):
        for timesteps, features, units in SHAPES:
            steps = steps_for(timesteps, features, units)
            inside, outside = (timed(steps[name], args.repeats) for name in ("inside", "outside"))
            ratios.append(f"{backend} {timesteps}x{features}, {units} units: {outside / inside:.2f}")
            print(f"{backend:10s} timesteps {timesteps:3d}, features {features:3d}, units {units:3d}: inside {inside * 1000:6.1f} ms, outside {outside * 1000:6.1f} ms, ratio {outside / inside:.2f}")
    shapes = ", ".join(f"{t}x{f} with {u} units" for t, f, u in SHAPES)
    comparison = f"one LSTM training step (batch {BATCH}; timesteps x features {shapes}), input projection outside vs inside the loop"
    print(row("input_projection.py", comparison, "time outside / inside: " + "; ".join(ratios), "below 1 where it pays"))


if __name__ == "__main__":
    main()
