"""predict and predict_classes: inference mode, in chunks, agreeing with a whole forward pass."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh, to_numpy


def _net(backend):
    net = NeuralNetwork([Dense(6, Tanh(), dropout=0.5), Dense(3)], SoftmaxCrossEntropy(),
                        backend=backend, dtype="float64", seed=3)
    net.forward(np.zeros((1, 4)))
    return net


def test_predict_is_inference_mode_in_chunks(backend, rng):
    net = _net(backend)
    X = rng.standard_normal((23, 4))
    whole = to_numpy(net.forward(X, inference=True))
    for chunk in (1, 5, 23, 100):
        np.testing.assert_allclose(to_numpy(net.predict(X, chunk=chunk)), whole, rtol=1e-12)
    assert not np.allclose(to_numpy(net.forward(X)), whole)  # forward: the book's training mode
    np.testing.assert_array_equal(to_numpy(net.predict_classes(X, chunk=4)),
                                  np.argmax(whole, axis=1))


def test_predict_of_no_rows_and_bad_chunks(backend):
    net = _net(backend)
    assert to_numpy(net.predict(np.zeros((0, 4)))).shape == (0, 3)
    with pytest.raises(ValueError, match="chunk"):
        net.predict(np.zeros((2, 4)), chunk=0)
    with pytest.raises(ValueError, match="features per row"):
        net.predict(np.zeros((2, 5)))
