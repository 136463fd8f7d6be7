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
