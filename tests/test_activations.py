"""Every registered activation: its forms exist and agree, near and beyond its kinks.

The CUDA forms are compiled and compared on the CPU in ``tests/test_cuda_sources.py`` (which
covers every registered activation); here: the ``xp`` derivative against finite differences of
``apply``, the ``out=`` derivative against the plain one, and checkpoints by name.
"""

from __future__ import annotations

import numpy as np
import pytest

from xnn import Activation, Dense, LeakyReLU, NeuralNetwork, SoftmaxCrossEntropy, Tanh
from xnn.nn.activations import ACTIVATIONS

NAMES = sorted(ACTIVATIONS)
# around each kink (0 for the ReLUs, 6 for ReLU6), far out, and ordinary values
POINTS = np.array([-50.0, -6.001, -1.3, -1e-3, 1e-3, 0.4, 2.0, 5.999, 6.001, 7.5, 50.0])


def test_every_registered_activation_has_its_three_forms():
    for name, cls in ACTIVATIONS.items():
        assert cls.name == name
        assert cls.apply is not Activation.apply and cls.derivative is not Activation.derivative
        assert cls.cuda_forward and cls.cuda_derivative
        forward, derivative = cls().cuda_expressions()
        assert "s" in forward and "dy" in derivative and "{" not in forward + derivative


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_finite_differences(backend, name):
    activation = ACTIVATIONS[name]()
    xp, h = backend.xp, 1e-6
    x = backend.asarray(POINTS)
    dy = backend.asarray(np.linspace(-2.0, 3.0, POINTS.size))
    y = activation.apply(xp, x)
    slope = (np.asarray(backend.to_numpy(activation.apply(xp, x + h)))
             - backend.to_numpy(activation.apply(xp, x - h))) / (2 * h)
    expected = backend.to_numpy(dy) * slope
    np.testing.assert_allclose(backend.to_numpy(activation.derivative(xp, dy, y)), expected,
                               rtol=1e-6, atol=1e-8)
    if backend.name in ("numpy", "cupy"):  # the out= form: only where out= exists
        np.testing.assert_allclose(backend.to_numpy(activation.derivative_into(xp, dy, y)),
                                   backend.to_numpy(activation.derivative(xp, dy, y)),
                                   rtol=1e-15, atol=0)


def test_leaky_relu_keeps_its_slope_in_every_form():
    activation = LeakyReLU(0.2)
    forward, derivative = activation.cuda_expressions()
    assert "0.2" in forward and "0.2" in derivative
    x = np.array([-3.0, 2.0])
    np.testing.assert_allclose(activation.apply(np, x), [-0.6, 2.0], rtol=1e-15)


@pytest.mark.parametrize("name", NAMES)
def test_every_registered_activation_survives_a_checkpoint(tmp_path, name):
    activation = ACTIVATIONS[name]()
    net = NeuralNetwork([Dense(3, activation), Dense(2)], SoftmaxCrossEntropy())
    net.forward(np.ones((1, 4)))
    net.save(tmp_path / "model.npz")
    loaded = NeuralNetwork.load(tmp_path / "model.npz")
    assert type(loaded.layers[0].activation) is type(activation)
    assert loaded.layers[0].activation.config() == activation.config()


def test_an_unregistered_activation_cannot_be_saved(tmp_path):
    class Doubled(Tanh):
        pass

    net = NeuralNetwork([Dense(3, Doubled())], SoftmaxCrossEntropy())
    with pytest.raises(TypeError, match="only registered activations"):
        net.save(tmp_path / "model.npz")


def test_names_are_unique_and_forms_are_required():
    with pytest.raises(ValueError, match="taken"):
        class Again(Activation, name="tanh"):
            cuda_forward, cuda_derivative = "s", "dy"
    with pytest.raises(TypeError, match="cuda_forward"):
        class Incomplete(Activation, name="incomplete"):
            pass
    assert "incomplete" not in ACTIVATIONS


# exactly at the kinks, and far beyond them, where finite differences cannot judge the slope
KINKS = np.array([-1e6, -6.0, -1e-3, 0.0, 1e-3, 5.999, 6.0, 6.001, 1e6])
_ALPHA = 0.01
SLOPES = {  # f′ as each class documents it (at a kink: the side named in its docstring)
    "linear": [1, 1, 1, 1, 1, 1, 1, 1, 1],
    "relu": [0, 0, 0, 0, 1, 1, 1, 1, 1],  # dx = dy where x > 0
    "leaky_relu": [_ALPHA] * 4 + [1] * 5,  # α·dy where x ≤ 0
    "relu6": [0, 0, 0, 0, 1, 1, 0, 0, 0],  # dx = dy where 0 < x < 6
    "sigmoid": None, "tanh": None,  # smooth: y·(1 − y) and 1 − y², 0 far out
}
VALUES = {
    "relu": np.maximum(KINKS, 0.0), "leaky_relu": np.where(KINKS > 0, KINKS, _ALPHA * KINKS),
    "relu6": np.clip(KINKS, 0.0, 6.0), "linear": KINKS,
}


def test_every_registered_activation_has_its_kinks_written_down():
    assert set(SLOPES) == set(ACTIVATIONS)


@pytest.mark.parametrize("name", NAMES)
def test_forward_and_derivative_at_and_beyond_the_kinks(backend, name):
    activation = ACTIVATIONS[name]()
    xp = backend.xp
    x = backend.asarray(KINKS)
    dy = backend.asarray(np.linspace(1.0, 3.0, KINKS.size))  # no zero: a mask shows
    y = activation.apply(xp, x)
    grad = backend.to_numpy(activation.derivative(xp, dy, y))
    if SLOPES[name] is None:  # saturated far out: the slope vanishes, no NaN from overflow
        assert np.isfinite(backend.to_numpy(y)).all()
        np.testing.assert_array_equal(grad[[0, -1]], 0.0)
        assert (grad[1:-1] > 0).all()
    else:
        np.testing.assert_array_equal(backend.to_numpy(y), VALUES[name])
        np.testing.assert_allclose(grad, backend.to_numpy(dy) * np.array(SLOPES[name]),
                                   rtol=1e-15, atol=0)
    if backend.name in ("numpy", "cupy"):
        np.testing.assert_allclose(backend.to_numpy(activation.derivative_into(xp, dy, y)),
                                   grad, rtol=1e-15, atol=0)
