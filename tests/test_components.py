"""Forward values of activations and losses against independent float64 formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnn import (
    Dense,
    LeakyReLU,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    ReLU6,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    to_numpy,
)
from xnn.tools.testing import assert_backend_close, backend_tolerance

REFERENCES = {
    Sigmoid: lambda x: np.array([[1 / (1 + math.exp(-v)) for v in row] for row in x]),
    Tanh: np.tanh,
    Linear: lambda x: x,
    ReLU: lambda x: np.where(x > 0, x, 0.0),
    ReLU6: lambda x: np.minimum(np.maximum(x, 0.0), 6.0),
}


@pytest.mark.parametrize("activation", list(REFERENCES), ids=lambda c: c.__name__)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_values(backend, rng, activation, dtype):
    x = 5 * rng.standard_normal((6, 7))
    y = activation().forward(backend.asarray(x, backend.dtype(dtype)))
    expected = backend.asarray(REFERENCES[activation](x), backend.dtype(dtype))
    tight = 1e-6 if dtype == "float32" else 1e-12  # CUDA's tanh is a few ulps off
    assert_backend_close(y, expected, **backend_tolerance(backend, dtype, rtol=tight, atol=1e-7))


def test_leaky_relu_values(backend):
    x = backend.asarray(np.array([[-2.0, 0.0, 3.0]]))
    assert_backend_close(LeakyReLU(0.1).forward(x), backend.asarray(np.array([[-0.2, 0.0, 3.0]])))


def test_relu_blocks_gradient_of_negative_inputs(backend):
    """The book's mask came from the clipped output (always true); here x < 0 gets no gradient."""
    relu = ReLU()
    relu.forward(backend.asarray(np.array([[-1.0, 2.0, -3.0, 4.0]])))
    dx = relu.backward(backend.asarray(np.ones((1, 4))))
    assert_backend_close(dx, backend.asarray(np.array([[0.0, 1.0, 0.0, 1.0]])))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sigmoid_and_softmax_are_finite_for_huge_inputs(backend, dtype):
    big = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 3.0]])
    x = backend.asarray(big, backend.dtype(dtype))
    s = to_numpy(Sigmoid().forward(x))
    np.testing.assert_allclose(s, [[1.0, 0.0, 0.5], [0.0, 1.0, 1 / (1 + math.exp(-3))]],
                               rtol=1e-6)
    loss = SoftmaxCrossEntropy()
    value = float(loss.forward(x, backend.asarray(np.eye(3)[[1, 0]], backend.dtype(dtype))))
    # −log softmax of the labelled logit = 1e4 − (−1e4)
    assert math.isfinite(value) and value == pytest.approx(2e4, rel=1e-6)
    assert np.all(np.isfinite(to_numpy(loss.backward())))


def test_softmax_cross_entropy_value(backend, rng):
    z = 3 * rng.standard_normal((8, 5))
    labels = rng.integers(0, 5, 8)
    y = np.eye(5)[labels]
    reference = -np.mean([math.log(math.exp(z[i, labels[i]]) / sum(math.exp(v) for v in z[i]))
                          for i in range(8)])
    value = SoftmaxCrossEntropy().forward(backend.asarray(z), backend.asarray(y))
    assert value.shape == ()
    np.testing.assert_allclose(float(value), reference,  # exp and log: not exact on CUDA
                               **backend_tolerance(backend, "float64", rtol=1e-12))


def test_mean_squared_error_is_the_books(backend, rng):
    """Squared error summed over outputs, averaged over rows."""
    p, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3))
    value = MeanSquaredError().forward(backend.asarray(p), backend.asarray(y))
    assert float(value) == pytest.approx(((p - y) ** 2).sum() / 6, rel=1e-12)
    q = np.abs(p) + 0.1
    normalized = MeanSquaredError(normalize=True).forward(backend.asarray(q), backend.asarray(y))
    expected = ((q / q.sum(axis=1, keepdims=True) - y) ** 2).sum() / 6
    assert float(normalized) == pytest.approx(expected, rel=1e-12)


def test_dense_forward_is_activation_of_affine_map(backend, rng):
    X = rng.standard_normal((5, 4))
    net = NeuralNetwork([Dense(3, Tanh())], MeanSquaredError(), backend=backend, dtype="float64")
    y = net.forward(X)
    W, B = (to_numpy(p) for p in net.params())
    assert_backend_close(y, backend.asarray(np.tanh(X @ W + B)),  # cuBLAS and CUDA's tanh
                         **backend_tolerance(backend, "float64", rtol=1e-12, atol=1e-14))


def test_glorot_and_standard_initial_scales(backend):
    """standard: N(0, 1); glorot: variance 2/(n_in + n_out) (the book used it as the std)."""
    X = np.zeros((1, 400))
    for init, variance in [("standard", 1.0), ("glorot", 2 / (400 + 300))]:
        net = NeuralNetwork([Dense(300, weight_init=init)], MeanSquaredError(), backend=backend)
        net.forward(X)
        W = to_numpy(next(net.params()))
        assert W.var() == pytest.approx(variance, rel=0.02)
        assert abs(W.mean()) < 0.01 * math.sqrt(variance)


def test_layers_do_not_share_activation_state():
    """A shared default or a shared instance must not tie two layers together."""
    assert Dense(3).activation is not Dense(3).activation
    tanh = Tanh()
    first, second = Dense(3, tanh), Dense(3, tanh)
    assert first.activation is not second.activation


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")  # NumPy says so
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_cross_entropy_is_finite_for_logits_beyond_the_dtypes_range(backend, dtype):
    """The docstring's promise: finite logits give a finite loss, even 1.2 × max apart."""
    big = 0.6 * float(np.finfo(dtype).max)
    logits = backend.asarray(np.array([[big, -big, 0.0], [0.0, 1.0, -big]], dtype=dtype))
    target = backend.asarray(np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype))
    loss = SoftmaxCrossEntropy()
    value = float(to_numpy(loss.forward(logits, target)))
    assert np.isfinite(value)
    np.testing.assert_allclose(value, np.log1p(np.exp(-1.0)) / 2, rtol=1e-6)  # row 1 adds 0
    assert np.isfinite(to_numpy(loss.backward())).all()
