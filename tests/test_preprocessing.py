"""one_hot, the book's standardisation and accuracy, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import Dense, Linear, MeanSquaredError, NeuralNetwork, to_numpy
from xnn.data.preprocessing import accuracy, one_hot, standardize
from xnn.tools.testing import assert_backend_close


def test_one_hot(backend):
    rows = one_hot(backend.asarray(np.array([2, 0, 1])), 3)
    assert_backend_close(rows, backend.asarray(np.eye(3, dtype=np.float32)[[2, 0, 1]]))
    with pytest.raises(ValueError, match=r"\[0, 2\]"):
        one_hot(backend.asarray(np.array([3])), 3)
    with pytest.raises(ValueError, match="1-D integer"):
        one_hot(backend.asarray(np.array([0.5])), 3)


def test_standardize_uses_the_training_statistics(backend, rng):
    train = rng.integers(0, 256, (50, 8)).astype(np.uint8)
    test = rng.integers(0, 256, (20, 8)).astype(np.uint8)
    X_train, X_test = standardize(backend.asarray(train), backend.asarray(test))
    mean, std = train.astype(np.float64).mean(), train.astype(np.float64).std()
    assert_backend_close(X_train, backend.asarray(((train - mean) / std).astype(np.float32)),
                         rtol=1e-5, atol=1e-5)
    assert_backend_close(X_test, backend.asarray(((test - mean) / std).astype(np.float32)),
                         rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="constant"):
        standardize(backend.asarray(np.ones((3, 2))), backend.asarray(np.ones((3, 2))))


def test_accuracy_counts_argmax_hits(backend):
    net = NeuralNetwork([Dense(3, Linear())], MeanSquaredError(), backend=backend,
                        dtype="float64")
    X = np.eye(3)[[0, 1, 2, 0, 1, 2, 2]]
    net.forward(X[:1])
    W, B = net.params()
    W[...] = backend.asarray(np.eye(3))
    B[...] = backend.asarray(np.zeros((1, 3)))
    labels = np.array([0, 1, 2, 1, 1, 0, 2])
    for chunk in (1, 3, 6, 7, 8192):  # one row, several chunks (a short last one), one
        assert accuracy(net, X, labels, chunk=chunk) == pytest.approx(5 / 7)
    assert accuracy(net, backend.asarray(X), backend.asarray(labels)) == pytest.approx(5 / 7)
    assert accuracy(net, X, np.eye(3)[labels], chunk=2) == pytest.approx(5 / 7)  # one-hot
    with pytest.raises(ValueError, match="chunk must be an integer >= 1"):
        accuracy(net, X, labels, chunk=0)
    assert to_numpy(net.forward(X)).shape == (7, 3)
