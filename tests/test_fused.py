"""Dense's fused bias + activation: the same numbers as BiasAdd then the activation.

On CuPy the fusion is done by CUDA kernels; here each backend is made to take the fused route
with the generic reference kernels, which checks the operation and its wiring everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    BiasActivation,
    BiasAdd,
    Dense,
    LeakyReLU,
    NeuralNetwork,
    ReLU,
    ReLU6,
    SGDMomentum,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)
from xnn.nn.activations import ACTIVATIONS as REGISTERED
from xnn.tools.testing import assert_backend_close, backend_tolerance, numerical_gradient

ACTIVATIONS = {"tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU, "linear": lambda: None,
               "leaky_relu": lambda: LeakyReLU(0.2), "relu6": ReLU6}


@pytest.fixture
def fusing(backend, monkeypatch):
    """``backend``, with its kernels claiming to fuse every registered activation."""
    monkeypatch.setattr(backend.kernels, "fuses_activations", True)
    return backend


def _net(backend, activation):
    layers = [Dense(6, activation(), dropout=0.8), Dense(3, Sigmoid())]
    return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=4, backend=backend,
                         dtype="float64")


def _train(net, rng):
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    Trainer(net, SGDMomentum(0.1, momentum=0.9)).fit(
        X, y, X, y, epochs=3, eval_every=3, batch_size=8, verbose=False)
    return [to_numpy(p) for p in net.params()]


def test_every_fusable_kind_is_tested():
    assert set(ACTIVATIONS) == set(REGISTERED)


@pytest.mark.parametrize("kind", ACTIVATIONS)
def test_fused_training_matches_the_separate_operations(backend, rng, kind, monkeypatch):
    activation = ACTIVATIONS[kind]
    monkeypatch.setattr(backend.kernels, "fuses_activations", False)  # even if CuPy fuses
    separate = _net(backend, activation)
    expected = _train(separate, np.random.default_rng(1))
    assert isinstance(separate.layers[0].operations[1], BiasAdd)
    assert not isinstance(separate.layers[0].operations[1], BiasActivation)
    monkeypatch.setattr(backend.kernels, "fuses_activations", True)
    fused = _net(backend, activation)
    got = _train(fused, np.random.default_rng(1))
    assert [type(op).__name__ for op in fused.layers[0].operations] == [
        "WeightMultiply", "BiasActivation"]  # the dropout is fused in too
    # CuPy's fused route is a CUDA kernel (FMA contraction), not the separate operations' code
    tolerance = backend_tolerance(backend, "float64", 3 * 5, rtol=1e-12, atol=1e-14)
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, **tolerance)


@pytest.mark.parametrize("kind", ["tanh", "sigmoid", "relu", "leaky_relu", "relu6"])
def test_bias_activation_gradients(fusing, rng, kind):
    backend = fusing
    x, bias = rng.standard_normal((4, 3)), rng.standard_normal((1, 3))
    x[np.abs(x + bias) < 1e-3] += 0.1  # clear of ReLU's kink at x + B = 0
    x[:, 0] += 7.0  # a column past ReLU6's kink at 6
    G = rng.standard_normal((4, 3))

    def op(b=bias):
        return BiasActivation(backend.asarray(b), ACTIVATIONS[kind]())

    fused = op()
    fused.forward(backend.asarray(x))
    input_grad = fused.backward(backend.asarray(G))
    expected_dx = numerical_gradient(
        lambda v: float(np.sum(to_numpy(op().forward(backend.asarray(v))) * G)), x)
    expected_dB = numerical_gradient(
        lambda b: float(np.sum(to_numpy(op(b).forward(backend.asarray(x))) * G)), bias)
    assert_backend_close(input_grad, backend.asarray(expected_dx), rtol=1e-6, atol=1e-8)
    assert_backend_close(fused.param_grad, backend.asarray(expected_dB), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("inference", [False, True], ids=["train", "inference"])
@pytest.mark.parametrize("kind", ["tanh", "sigmoid", "relu", "linear"])
def test_bias_activation_with_dropout_gradients(fusing, rng, kind, inference):
    """y = f(x + B)·m: the mask held fixed while training, keep_prob at inference."""
    from xnn import Dropout, Linear
    from xnn.core.random import BernoulliStream

    backend = fusing
    x, bias = rng.standard_normal((5, 4)), rng.standard_normal((1, 4))
    x[np.abs(x + bias) < 1e-3] += 0.1  # clear of ReLU's kink at x + B = 0
    G = rng.standard_normal((5, 4))
    make_activation = Linear if kind == "linear" else ACTIVATIONS[kind]

    def op(b=bias):
        dropout = Dropout(0.6)
        dropout.masks = BernoulliStream(np.random.default_rng(3), 0.6, backend, "float64")
        return BiasActivation(backend.asarray(b), make_activation(), dropout)

    def value(v, b=bias):
        return float(np.sum(to_numpy(op(b).forward(backend.asarray(v), inference)) * G))

    fused = op()
    y = fused.forward(backend.asarray(x), inference)
    if not inference:  # some units dropped, the rest kept as they are
        mask = to_numpy(fused.dropout.mask)
        assert 0 < mask.sum() < mask.size and set(np.unique(mask)) == {0.0, 1.0}
        assert np.all(to_numpy(y)[mask == 0] == 0)
    input_grad = fused.backward(backend.asarray(G))
    assert_backend_close(input_grad, backend.asarray(numerical_gradient(value, x)),
                         rtol=1e-6, atol=1e-8)
    expected_dB = numerical_gradient(lambda b: value(x, b), bias)
    assert_backend_close(fused.param_grad, backend.asarray(expected_dB), rtol=1e-6, atol=1e-8)


def test_custom_activations_are_not_fused(fusing):
    from xnn import Activation

    class Softsign(Activation):  # not registered: no CUDA forms
        def apply(self, xp, x):
            return x / (1 + xp.abs(x))

        def derivative(self, xp, output_grad, output):
            return output_grad * (1 - xp.abs(output)) ** 2

    net = NeuralNetwork([Dense(2, Softsign())], SoftmaxCrossEntropy(), backend=fusing)
    net.forward(np.ones((1, 3)))
    assert [type(op).__name__ for op in net.layers[0].operations] == [
        "WeightMultiply", "BiasAdd", "Softsign"]


def test_moving_a_model_rebuilds_its_operations_for_the_target(monkeypatch, rng):
    """numpy (no fusion) → a backend that fuses: the layers switch, training carries on."""
    pytest.importorskip("array_api_strict")
    from xnn import get_backend

    target = get_backend("array_api_strict")
    monkeypatch.setattr(target.kernels, "fuses_activations", True)
    X, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)

    def trained(move):
        net = _net("numpy", Tanh)
        trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9))
        trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=8, verbose=False)
        if move:
            net.to(target)
            assert [type(op).__name__ for op in net.layers[0].operations] == [
                "WeightMultiply", "BiasActivation"]
        trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=8, restart=False,
                    verbose=False)
        return [to_numpy(p) for p in net.params()]

    for moved, stayed in zip(trained(True), trained(False), strict=True):
        np.testing.assert_allclose(moved, stayed, rtol=1e-12, atol=1e-14)


def test_a_subclass_that_changes_the_maths_is_not_fused(fusing):
    class ScaledTanh(Tanh):
        def apply(self, xp, x):
            return 2 * super().apply(xp, x)

        def derivative(self, xp, output_grad, output):
            return super().derivative(xp, 2 * output_grad, output / 2)

    assert not ScaledTanh().registered and Tanh().registered and ReLU().registered
    net = NeuralNetwork([Dense(2, ScaledTanh())], SoftmaxCrossEntropy(), backend=fusing)
    net.forward(np.ones((1, 3)))
    assert [type(op).__name__ for op in net.layers[0].operations] == [
        "WeightMultiply", "BiasAdd", "ScaledTanh"]


def test_parity_names_the_fused_bias_b(fusing):
    from xnn.tools.parity import _param_diffs

    net = _net(fusing, Tanh)
    net.forward(np.ones((2, 5)))
    assert isinstance(net.layers[0].operations[1], BiasActivation)
    assert [d.name for d in _param_diffs(net)] == [
        "layers[0].W", "layers[0].B", "layers[1].W", "layers[1].B"]
