"""The experiments of Chapter 4 on MNIST, each by name, with the book's accuracy beside ours.

All use batch 60, seed 20190119, eval_every 10, a hidden ``Dense(89)`` and an output
``Dense(10)``, for 50 epochs, unless the table says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from xnn.backends import Backend
from xnn.data.preprocessing import standardize
from xnn.nn.activations import Linear, ReLU, Sigmoid, Tanh
from xnn.nn.layers import Dense
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Operation
from xnn.train.adaptive import Adam, AdamW
from xnn.train.optimizers import SGD, Optimizer, SGDMomentum
from xnn.train.schedules import CosineDecay

__all__ = ["BEYOND_NAMES", "BOOK_NAMES", "BOOK_SEED", "DEFAULT_NAMES", "EXPERIMENTS",
           "Experiment", "Result", "load_chapter_data"]

BOOK_SEED = 20190119
DEFAULT_NAMES = ("dropout", "deep")


@dataclass(frozen=True)
class Experiment:
    """One row of a table: a model, a loss, an optimizer and the accuracy to compare with.

    ``book_accuracy`` is the book's printed accuracy for the chapter's rows; for the rows beyond
    the book it is PyTorch's on the same network (``reference`` says which), or ``None``.
    """

    name: str
    description: str
    book_accuracy: float | None  # percent
    layers: Callable[[], list[Dense]]
    loss: Callable[[], Loss]
    optimizer: Callable[[], Optimizer]
    epochs: int = 50
    reference: str = "book"  # what book_accuracy is: "book", or "PyTorch" beyond the book

    def build(self, backend: str | Backend, dtype: str, seed: int,
              streams: str = "independent") -> tuple[NeuralNetwork, Optimizer]:
        """A fresh model and optimizer for this experiment."""
        model = NeuralNetwork(self.layers(), self.loss(), seed=seed, backend=backend, dtype=dtype,
                              streams=streams)
        return model, self.optimizer()


def _two_layers(hidden: Callable[[], Operation], output: Callable[[], Operation],
                weight_init: str = "standard", dropout: float = 1.0) -> Callable[[], list[Dense]]:
    return lambda: [Dense(89, hidden(), dropout=dropout, weight_init=weight_init),
                    Dense(10, output(), weight_init=weight_init)]


def _deep(dropout: float) -> Callable[[], list[Dense]]:
    return lambda: [Dense(178, Tanh(), dropout=dropout, weight_init="glorot"),
                    Dense(46, Tanh(), dropout=dropout, weight_init="glorot"),
                    Dense(10, Linear(), weight_init="glorot")]


def _sgd() -> Optimizer:
    return SGD(0.1)


def _momentum() -> Optimizer:
    return SGDMomentum(0.1, momentum=0.9)


def _linear_decay() -> Optimizer:
    return SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear")


def _exponential_decay() -> Optimizer:
    return SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")


_TABLE = [
    Experiment("mse-sigmoid", "Sigmoid → Sigmoid, MSE, SGD(0.1)", 89.98,
               _two_layers(Sigmoid, Sigmoid), MeanSquaredError, _sgd),
    Experiment("mse", "Tanh → Sigmoid, MSE, SGD(0.1)", 72.58,
               _two_layers(Tanh, Sigmoid), MeanSquaredError, _sgd),
    Experiment("sce-sigmoid", "Sigmoid → Linear, SCE, SGD(0.1)", 92.14,
               _two_layers(Sigmoid, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("sce-relu", "ReLU → Linear, SCE, SGD(0.1); the book's 76.38% is from its "
               "ReLU bug, which xnn fixes", 76.38,
               _two_layers(ReLU, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("sce", "Tanh → Linear, SCE, SGD(0.1)", 91.01,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("momentum", "Tanh → Linear, SCE, SGDMomentum(0.1, 0.9)", 95.51,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _momentum),
    Experiment("linear-decay", "momentum, lr 0.15 → 0.05 linear", 95.91,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _linear_decay),
    Experiment("exp-decay", "momentum, lr 0.2 → 0.05 exponential", 96.06,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("glorot-linear", "linear-decay + Glorot", 96.71,
               _two_layers(Tanh, Linear, "glorot"), SoftmaxCrossEntropy, _linear_decay),
    Experiment("glorot-exp", "exp-decay + Glorot", 96.71,
               _two_layers(Tanh, Linear, "glorot"), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("dropout", "glorot-exp + dropout 0.8 on the hidden layer", 96.95,
               _two_layers(Tanh, Linear, "glorot", 0.8), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("deep", "178 Tanh (dropout 0.8) → 46 Tanh (dropout 0.8) → 10, Glorot, exp-decay",
               97.15, _deep(0.8), SoftmaxCrossEntropy, _exponential_decay, epochs=100),
    Experiment("deep-no-dropout", "deep without dropout", 96.52,
               _deep(1.0), SoftmaxCrossEntropy, _exponential_decay, epochs=100),
]
BOOK_NAMES = tuple(e.name for e in _TABLE)


def _deep_beyond(activation: Callable[[], Operation], weight_init: str = "glorot",
                 batch_norm: bool = False) -> Callable[[], list[Dense]]:
    """The chapter's deep architecture (178, 46, dropout 0.8) with newer parts."""
    return lambda: [Dense(178, activation(), dropout=0.8, weight_init=weight_init,
                          batch_norm=batch_norm),
                    Dense(46, activation(), dropout=0.8, weight_init=weight_init,
                          batch_norm=batch_norm),
                    Dense(10, Linear(), weight_init=weight_init)]


_BEYOND = [  # the deep network, batch 60, 20 epochs; reference: PyTorch, mean of two seeds
    Experiment("adam", "deep, Adam(1e-3)", 97.725, _deep_beyond(Tanh), SoftmaxCrossEntropy,
               lambda: Adam(1e-3), epochs=20, reference="PyTorch"),
    Experiment("adamw-cosine", "deep, AdamW(2e-3, weight decay 1e-2), cosine decay to 0",
               97.885, _deep_beyond(Tanh), SoftmaxCrossEntropy,
               lambda: AdamW(2e-3, weight_decay=1e-2, schedule=CosineDecay()), epochs=20,
               reference="PyTorch"),
    Experiment("batchnorm", "deep with batch norm before each Tanh, Adam(1e-3)", None,
               _deep_beyond(Tanh, batch_norm=True), SoftmaxCrossEntropy,
               lambda: Adam(1e-3), epochs=20, reference="PyTorch"),
    Experiment("he-relu", "deep with ReLU and He initialisation, Adam(1e-3)", None,
               _deep_beyond(ReLU, weight_init="he"), SoftmaxCrossEntropy,
               lambda: Adam(1e-3), epochs=20, reference="PyTorch"),
]
BEYOND_NAMES = tuple(e.name for e in _BEYOND)
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in (*_TABLE, *_BEYOND)}


@dataclass
class Result:
    """What one experiment reached."""

    name: str
    book_accuracy: float | None  # or PyTorch's, beyond the book (None: not measured)
    accuracy: float  # percent on the 10,000 test images
    best_val_loss: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float  # median over the epochs run
    backend: str
    dtype: str
    streams: str = "independent"
    val_losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def difference(self) -> float | None:
        """Percentage points above (+) or below (−) the reference (``None`` without one)."""
        return None if self.book_accuracy is None else self.accuracy - self.book_accuracy


def load_chapter_data(path: str | None = None, dtype: str = "float32",
                      limit: int | None = None) -> tuple[np.ndarray, ...]:
    """MNIST standardised as in the book: (X_train, y_train, X_test, y_test), labels as ints."""
    from xnn.data import load_mnist

    X_train, y_train, X_test, y_test = load_mnist(path=path)
    if limit is not None:
        X_train, y_train = X_train[:limit], y_train[:limit]
        X_test, y_test = X_test[: max(limit // 6, 1)], y_test[: max(limit // 6, 1)]
    X_train, X_test = standardize(X_train, X_test, dtype)
    return X_train, y_train, X_test, y_test
