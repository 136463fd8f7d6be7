"""JAX on the same models and data: a jitted step per batch, or a whole epoch in one lax.scan.

The maths is xnn's: Glorot-normal W and B, ``x @ W + B``, Tanh, the book's dropout (multiply by
a Bernoulli(keep) mask while training), softmax cross-entropy averaged over the batch, and the
book's SGD momentum (v ← μv + lr·g; θ ← θ − v), in float32. Batches are the rows of a fresh
random permutation per epoch, gathered from the data already on the device, the last one
partial, as in xnn's trainer.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from xnn.tools.bench.pytorch import on_gpu
from xnn.tools.bench.workloads import FEATURES, LR, MOMENTUM, Data, LayerSpec, Runner

__all__ = ["init_params", "jax_device", "jax_epoch", "jax_jit_training", "jax_scan_training",
           "jax_step", "load_jax"]

State = tuple[Any, Any, Any, Any]  # (params, velocity, PRNG key, summed loss × rows)


def load_jax() -> tuple[ModuleType | None, str]:
    """JAX, or ``None`` and the reason it is skipped (told not to take most of a GPU's memory)."""
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # CuPy shares the GPU
    try:
        import jax
    except ImportError as exc:
        return None, f"JAX is not installed ({exc}); pip install jax"
    return jax, ""


def jax_device(jax: ModuleType | None, backend: str, why_not: str) -> tuple[Any | None, str]:
    """The JAX device matching ``backend`` (its CPU, or a GPU for CuPy), or ``None`` and why."""
    if jax is None:
        return None, why_not
    platform = "gpu" if on_gpu(backend) else "cpu"
    try:
        return jax.devices(platform)[0], ""
    except RuntimeError:
        return None, f"this JAX ({jax.__version__}) has no {platform.upper()} device here"


def init_params(layers: tuple[LayerSpec, ...], seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, B) per layer drawn from N(0, 2/(n_in + n_out)) in float32: xnn's Glorot init."""
    rng, params, width = np.random.default_rng(seed), [], FEATURES
    for spec in layers:
        scale = np.float32((2.0 / (width + spec.neurons)) ** 0.5)
        params.append(tuple(rng.standard_normal(shape, dtype=np.float32) * scale
                            for shape in ((width, spec.neurons), (1, spec.neurons))))
        width = spec.neurons
    return params


def jax_step(jax: ModuleType, layers: tuple[LayerSpec, ...]) -> Callable[..., State]:
    """The pure training step ``(state, X, y, rows) -> state`` on the rows ``rows`` of (X, y)."""
    jnp = jax.numpy

    def loss(params: Any, X: Any, y: Any, key: Any) -> Any:
        for (W, B), spec in zip(params, layers, strict=True):
            X = X @ W + B
            if spec.tanh:
                X = jnp.tanh(X)
            if spec.keep_prob < 1.0:
                key, sub = jax.random.split(key)
                X = X * jax.random.bernoulli(sub, spec.keep_prob, X.shape).astype(X.dtype)
        log_p = jax.nn.log_softmax(X, axis=1)
        return -jnp.mean(jnp.take_along_axis(log_p, y[:, None], axis=1))

    def step(state: State, X: Any, y: Any, rows: Any) -> State:
        params, velocity, key, total = state
        key, sub = jax.random.split(key)
        value, grads = jax.value_and_grad(loss)(params, X[rows], y[rows], sub)
        velocity = jax.tree_util.tree_map(lambda v, g: MOMENTUM * v + LR * g, velocity, grads)
        params = jax.tree_util.tree_map(lambda p, v: p - v, params, velocity)
        return params, velocity, key, total + value * rows.shape[0]

    return step


def jax_epoch(jax: ModuleType, layers: tuple[LayerSpec, ...],
              batch_size: int) -> Callable[..., State]:
    """The pure epoch ``(state, X, y, order) -> state``: full batches in a scan, then the rest."""
    step = jax_step(jax, layers)

    def epoch(state: State, X: Any, y: Any, order: Any) -> State:
        full = order.shape[0] // batch_size * batch_size
        if full:
            batches = order[:full].reshape(-1, batch_size)
            state, _ = jax.lax.scan(lambda s, rows: (step(s, X, y, rows), None), state, batches)
        if full < order.shape[0]:
            state = step(state, X, y, order[full:])
        return state

    return epoch


def jax_jit_training(jax: ModuleType, device: Any, layers: tuple[LayerSpec, ...], data: Data,
                     batch_size: int, seed: int) -> tuple[Runner, float]:
    """An epoch of one ``jax.jit`` step call per batch; and the seconds the compiles took.

    Compile time: the first call with each batch shape (tracing, XLA compile, one step).
    """
    step = jax.jit(jax_step(jax, layers), donate_argnums=0)
    X, y, fresh = _on_device(jax, device, layers, data, seed)
    rows, shuffle = X.shape[0], np.random.default_rng(seed).permutation
    start = time.perf_counter()
    for size in sorted({min(batch_size, rows), rows % batch_size} - {0}):
        float(step(fresh(), X, y, np.arange(size, dtype=np.int32))[3])  # waits for it
    compile_seconds = time.perf_counter() - start

    def run() -> dict[str, float]:
        state = fresh()
        begin = time.perf_counter()
        order = shuffle(rows).astype(np.int32)
        for first in range(0, rows, batch_size):
            state = step(state, X, y, order[first:first + batch_size])
        float(state[3])  # the epoch's loss on the host: the one sync
        return {"epoch": time.perf_counter() - begin}

    return run, compile_seconds


def jax_scan_training(jax: ModuleType, device: Any, layers: tuple[LayerSpec, ...], data: Data,
                      batch_size: int, seed: int) -> tuple[Runner, float]:
    """An epoch as one call of a jitted ``lax.scan`` over the batches; and its compile seconds.

    Compile time: ``jit(...).lower(...).compile()`` ahead of time, so no epoch is in it.
    """
    X, y, fresh = _on_device(jax, device, layers, data, seed)
    rows, shuffle = X.shape[0], np.random.default_rng(seed).permutation
    epoch = jax.jit(jax_epoch(jax, layers, batch_size), donate_argnums=0)
    start = time.perf_counter()
    compiled = epoch.lower(fresh(), X, y, np.arange(rows, dtype=np.int32)).compile()
    compile_seconds = time.perf_counter() - start

    def run() -> dict[str, float]:
        state = fresh()
        begin = time.perf_counter()
        order = jax.device_put(shuffle(rows).astype(np.int32), device)
        float(compiled(state, X, y, order)[3])
        return {"epoch": time.perf_counter() - begin}

    return run, compile_seconds


def _on_device(jax: ModuleType, device: Any, layers: tuple[LayerSpec, ...], data: Data,
               seed: int) -> tuple[Any, Any, Callable[[], State]]:
    """X and int32 labels on ``device``, and a maker of fresh states (initial weights, v = 0)."""
    X = jax.device_put(data.X, device)
    y = jax.device_put(data.y.astype(np.int32), device)
    params = init_params(layers, seed)
    velocity = [tuple(np.zeros_like(p) for p in layer) for layer in params]
    key = np.asarray(jax.random.PRNGKey(seed))  # host copies: each state gets new buffers
    state = (params, velocity, key, np.float32(0.0))
    return X, y, functools.partial(jax.device_put, state, device)
