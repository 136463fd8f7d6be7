"""Every operation, layer and loss: analytic gradients against float64 central differences."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    BiasAdd,
    Dense,
    Dropout,
    LeakyReLU,
    Linear,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    ReLU6,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    WeightMultiply,
    to_numpy,
)
from xnn.core.random import BernoulliStream
from xnn.tools.testing import assert_backend_close, numerical_gradient

RTOL, ATOL = 1e-6, 1e-8  # central differences with h = 1e-6 in float64


def _inputs(rng, shape=(4, 5)):
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] += 0.1  # keep clear of the kinks of ReLU-like functions
    return x


def _check_input_grad(backend, make_op, x_host, rng):
    """dL/dx for L = Σ op(x)·G, analytic (backward) vs numerical."""
    G = rng.standard_normal(make_op().forward(backend.asarray(x_host)).shape)
    op = make_op()
    op.forward(backend.asarray(x_host))
    analytic = op.backward(backend.asarray(G))

    def loss(x):
        return float(np.sum(to_numpy(make_op().forward(backend.asarray(x))) * G))

    expected = numerical_gradient(loss, x_host)
    assert_backend_close(analytic, backend.asarray(expected), rtol=RTOL, atol=ATOL)


ACTIVATIONS = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "linear": Linear,
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(alpha=0.1),
    "relu6": ReLU6,
}


@pytest.mark.parametrize("name", ACTIVATIONS)
def test_activation_gradient(backend, rng, name):
    x = 4 * _inputs(rng)  # spans both sides of ReLU6's upper kink
    _check_input_grad(backend, ACTIVATIONS[name], x, rng)


@pytest.mark.parametrize(("operation", "param_shape", "output_width"),
                         [(WeightMultiply, (3, 2), 2), (BiasAdd, (1, 3), 3)],
                         ids=["weight_multiply", "bias_add"])
def test_param_operation_gradients(backend, rng, operation, param_shape, output_width):
    """dL/dx and dL/dθ for L = Σ op(x; θ)·G."""
    x, param = _inputs(rng, (4, 3)), rng.standard_normal(param_shape)
    _check_input_grad(backend, lambda: operation(backend.asarray(param)), x, rng)
    G = rng.standard_normal((4, output_width))
    op = operation(backend.asarray(param))
    op.forward(backend.asarray(x))
    op.backward(backend.asarray(G))

    def loss(value):
        return float(np.sum(to_numpy(operation(backend.asarray(value)).forward(
            backend.asarray(x))) * G))

    expected = numerical_gradient(loss, param)
    assert_backend_close(op.param_grad, backend.asarray(expected), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("inference", [False, True], ids=["train", "inference"])
def test_dropout_gradient(backend, rng, inference):
    x = _inputs(rng)

    def make():
        op = Dropout(0.7)
        op.masks = BernoulliStream(np.random.default_rng(3), 0.7, backend, "float64")
        op.forward = _fixed_mode(op.forward, inference)
        return op

    _check_input_grad(backend, make, x, rng)


def _fixed_mode(forward, inference):
    return lambda x, _inference=False: forward(x, inference)


LOSSES = {
    "mse": lambda: MeanSquaredError(),
    "mse_normalized": lambda: MeanSquaredError(normalize=True),
    "softmax_cross_entropy": lambda: SoftmaxCrossEntropy(),
}


@pytest.mark.parametrize("name", LOSSES)
def test_loss_gradient(backend, rng, name):
    prediction = rng.uniform(0.2, 1.0, (5, 4)) if name == "mse_normalized" else 3 * _inputs(
        rng, (5, 4))
    target = np.eye(4)[rng.integers(0, 4, 5)]
    loss = LOSSES[name]()
    loss.forward(backend.asarray(prediction), backend.asarray(target))
    analytic = loss.backward()
    expected = numerical_gradient(
        lambda p: float(LOSSES[name]().forward(backend.asarray(p), backend.asarray(target))),
        prediction,
    )
    assert_backend_close(analytic, backend.asarray(expected), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("batch_norm", [False, True], ids=["bias", "batch_norm"])
@pytest.mark.parametrize("dropout", [1.0, 0.6])
def test_network_parameter_gradients(backend, rng, dropout, batch_norm):
    """Every parameter of a two-layer network, through the loss (dropout masks held fixed;
    with batch norm W, γ, β in training mode, the batch's statistics). The gradients checked
    are the store's, which the optimizers read, not only those the operations hold."""
    X = rng.standard_normal((6, 4))
    y = rng.integers(0, 3, 6)

    def build():
        layers = [Dense(5, Tanh(), dropout=dropout, batch_norm=batch_norm), Dense(3, Sigmoid())]
        return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=7, backend=backend,
                             dtype="float64")

    net = build()
    net.train_batch(X, y)
    params = [to_numpy(p) for p in net.params()]
    names = list(net.store.names())
    assert len(names) == len(params)
    for index, analytic in enumerate(net.store.grad(name) for name in names):

        def loss(value, index=index):
            probe = build()
            probe.forward(X[:1], inference=True)  # build (no masks drawn), then set params
            for i, param in enumerate(probe.params()):
                param[...] = backend.asarray(value if i == index else params[i])
            return float(probe.train_batch(X, y))

        expected = numerical_gradient(loss, params[index])
        assert_backend_close(analytic, backend.asarray(expected), rtol=1e-5, atol=1e-8)
