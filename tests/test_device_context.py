"""Every public entry point computes inside its backend's ``activate()`` (``cupy:N``: CUDA
device N made current, since CuPy runs kernels on the current device and refuses arrays of
another). Checked on the CPU with a NumPy backend that records when it is active."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer
from xnn.backends.kernels import NumPyKernels
from xnn.backends.numpy_backend import NumPyBackend


class ActiveKernels(NumPyKernels):
    """NumPy's kernels that refuse to run outside their backend's ``activate()``."""

    def __init__(self, backend: PinnedBackend) -> None:
        super().__init__(np)
        self.backend = backend

    def matmul(self, a, b, out=None):
        assert self.backend.depth > 0, "a matrix product outside backend.activate()"
        return super().matmul(a, b, out)

    def momentum_step(self, *args, **kwargs):
        assert self.backend.depth > 0, "an optimizer update outside backend.activate()"
        return super().momentum_step(*args, **kwargs)


class PinnedBackend(NumPyBackend):
    """Stands for ``cupy:1``: its arrays may only be computed on while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.kernels = ActiveKernels(self)
        self.depth = 0

    @contextlib.contextmanager
    def activate(self):
        self.depth += 1
        try:
            yield
        finally:
            self.depth -= 1


@pytest.fixture
def pinned():
    return PinnedBackend()


def test_every_entry_point_runs_on_its_device(pinned, rng):
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    net = NeuralNetwork([Dense(8, Tanh(), dropout=0.8), Dense(3)], SoftmaxCrossEntropy(),
                        seed=1, backend=pinned)
    optimizer = SGDMomentum(0.1, momentum=0.9)
    trainer = Trainer(net, optimizer, log=lambda line: None)
    trainer.fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10, verbose=0)
    trainer.evaluate(X, y)
    net.forward(X)
    net.predict(X, chunk=16)
    net.predict_classes(X)
    net.train_batch(X[:10], y[:10])
    net.backward(net.loss.backward())
    optimizer.step()
    assert pinned.depth == 0


def test_outside_activate_the_stand_in_refuses(pinned):
    with pytest.raises(AssertionError, match=r"outside backend\.activate"):
        pinned.kernels.matmul(np.ones((2, 2)), np.ones((2, 2)))
