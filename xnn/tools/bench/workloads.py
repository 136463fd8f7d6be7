"""The benchmarked work: the two models, their data, and xnn and matmul-floor runners."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer
from xnn.backends import Backend
from xnn.core.random import Streams
from xnn.nn.store import ParameterStore

__all__ = [
    "MODELS",
    "Data",
    "LayerSpec",
    "Runner",
    "floor_inference",
    "floor_training",
    "make_data",
    "matmul_count",
    "xnn_inference",
    "xnn_model",
    "xnn_training",
]

FEATURES, CLASSES = 784, 10  # MNIST-shaped
LR, MOMENTUM = 0.1, 0.9
VAL_ROWS = 10  # the tiny validation set fit requires (never evaluated: eval_every > epochs)

Runner = Callable[[], dict[str, float]]  # one timed run → {metric: seconds}


@dataclass(frozen=True)
class LayerSpec:
    """One Dense layer: width, Tanh or linear, and the probability of keeping a unit."""

    neurons: int
    tanh: bool = False
    keep_prob: float = 1.0


MODELS: dict[str, tuple[LayerSpec, ...]] = {
    "chapter": (LayerSpec(89, tanh=True), LayerSpec(10)),
    "deep": (LayerSpec(178, True, 0.8), LayerSpec(46, True, 0.8), LayerSpec(10)),
}


@dataclass
class Data:
    """Host training data: float32 features of shape (rows, 784) and int64 labels 0..9."""

    X: np.ndarray
    y: np.ndarray


def make_data(rows: int, seed: int) -> Data:
    """Standard-normal features (MNIST after the book's standardising) and uniform labels."""
    rng = Streams(seed).generator(0)
    return Data(rng.standard_normal((rows, FEATURES), dtype=np.float32),
                rng.integers(0, CLASSES, rows))


def sync(backend: Backend) -> None:
    """Wait for queued device work (a no-op off the GPU)."""
    backend.synchronize()


# -- xnn -------------------------------------------------------------------------------------
def xnn_model(layers: tuple[LayerSpec, ...], backend: str, seed: int) -> NeuralNetwork:
    """The xnn network of ``layers``, with the book's Glorot initial weights."""
    dense = [Dense(spec.neurons, Tanh() if spec.tanh else None, dropout=spec.keep_prob,
                   weight_init="glorot") for spec in layers]
    return NeuralNetwork(dense, SoftmaxCrossEntropy(), seed=seed, backend=backend)


def xnn_trainer(layers: tuple[LayerSpec, ...], backend: str, seed: int) -> Trainer:
    """A trainer of a fresh model with SGD momentum 0.9 at lr 0.1."""
    return Trainer(xnn_model(layers, backend, seed), SGDMomentum(LR, momentum=MOMENTUM))


def fit_one_epoch(trainer: Trainer, X: Any, y: Any, batch_size: int, seed: int) -> float:
    """``fit`` one epoch from the model's seed, with no evaluation; the epoch's seconds."""
    history = trainer.fit(X, y, X[:VAL_ROWS, ...], y[:VAL_ROWS], epochs=1, eval_every=2,
                          batch_size=batch_size, seed=seed, verbose=False)
    return history.records[0]["seconds"]


def xnn_training(backend: Backend, layers: tuple[LayerSpec, ...], data: Data, batch_size: int,
                 seed: int) -> Runner:
    """One ``fit(epochs=1)`` per call: the epoch's seconds and the whole call's."""
    trainer = xnn_trainer(layers, backend.name, seed)
    X, y = backend.asarray(data.X), backend.asarray(data.y)  # on the device before the clock

    def run() -> dict[str, float]:
        start = time.perf_counter()
        epoch = fit_one_epoch(trainer, X, y, batch_size, seed)
        return {"epoch": epoch, "fit": time.perf_counter() - start}

    return run


def xnn_inference(backend: Backend, layers: tuple[LayerSpec, ...], X: np.ndarray, calls: int,
                  seed: int) -> Runner:
    """Mean seconds of ``net.forward(X, inference=True)``."""
    net = xnn_model(layers, backend.name, seed)
    X = backend.asarray(X)

    def run() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(calls):
            net.forward(X, inference=True)
        sync(backend)
        return {"call": (time.perf_counter() - start) / calls}

    return run


# -- the matmul floor ------------------------------------------------------------------------
def floor_weights(backend: Backend, layers: tuple[LayerSpec, ...], seed: int) -> list[Any]:
    """Glorot-scaled float32 weights of the model's shapes, on ``backend``."""
    rng, weights, width = Streams(seed).generator(1), [], FEATURES
    for spec in layers:
        scale = np.float32((2.0 / (width + spec.neurons)) ** 0.5)
        weights.append(backend.asarray(
            rng.standard_normal((width, spec.neurons), dtype=np.float32) * scale))
        width = spec.neurons
    return weights


def matmul_step(x: Any, weights: list[Any], grads: list[Any] | None = None,
                matmul: Any = None) -> None:
    """The products of one training step: a@W per layer, then dW = aᵀ@dy and dx = dy@Wᵀ.

    The first layer's dx is skipped, as in xnn: 5 products for the chapter model, 8 for deep.
    dW is written into ``grads`` with the backend's ``matmul`` kernel when given, else dropped.
    """
    activations = [x]
    for W in weights:
        activations.append(activations[-1] @ W)
    grad = activations[-1]
    for index in range(len(weights) - 1, -1, -1):
        if grads is None:
            activations[index].T @ grad  # dW: the product is the work timed
        else:
            (matmul or _matmul_into)(activations[index].T, grad, out=grads[index])
        if index:
            grad = grad @ weights[index].T


def _matmul_into(a: Any, b: Any, out: Any) -> None:
    """a @ b written into ``out`` (for backends without an ``out=`` matmul kernel at hand)."""
    out[...] = a @ b


def matmul_count(layers: tuple[LayerSpec, ...]) -> int:
    """Matrix products per training step in :func:`matmul_step`."""
    return 3 * len(layers) - 1


def floor_training(backend: Backend, layers: tuple[LayerSpec, ...], data: Data, batch_size: int,
                   seed: int, update: bool = False) -> Runner:
    """An epoch of the training step's matrix products alone, on consecutive batches.

    ``update=True`` adds the one thing no implementation can skip: the momentum update of the
    weights after each step (four passes over them, as xnn's NumPy path does), so the products
    of the next step read freshly written weights, as in real training.
    """
    X, weights = backend.asarray(data.X), floor_weights(backend, layers, seed)
    grads = None
    if update:  # the weights and their gradients as views of one flat store, as in xnn
        store = ParameterStore(backend, "float32",
                               {str(i): tuple(W.shape) for i, W in enumerate(weights)})
        store.load_state_dict({str(i): W for i, W in enumerate(weights)})
        weights = [store.value(str(i)) for i in range(len(weights))]
        grads = [store.grad(str(i)) for i in range(len(weights))]
        velocity = backend.zeros(store.values.shape, store.values.dtype)
        momentum_step = backend.kernels.momentum_step

    def run() -> dict[str, float]:
        start = time.perf_counter()
        for first in range(0, X.shape[0], batch_size):
            matmul_step(X[first:first + batch_size, ...], weights, grads,
                        backend.kernels.matmul)
            if update:  # a tiny rate: the weights move, the products stay finite
                momentum_step(store.values, store.grads, velocity, 1e-7, MOMENTUM,
                              store.scratch)
        sync(backend)
        return {"epoch": time.perf_counter() - start}

    return run


def floor_inference(backend: Backend, layers: tuple[LayerSpec, ...], X: np.ndarray, calls: int,
                    seed: int) -> Runner:
    """Mean seconds of the forward products alone (one a@W per layer)."""
    X, weights = backend.asarray(X), floor_weights(backend, layers, seed)

    def run() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(calls):
            a = X
            for W in weights:
                a = a @ W
        sync(backend)
        return {"call": (time.perf_counter() - start) / calls}

    return run
