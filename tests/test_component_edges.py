"""Components at their edges: representations, hyper-parameter bounds, registering an
activation, and messages that name the class and the argument (found by mutation testing)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from xnn import (
    BiasAdd,
    Dense,
    LeakyReLU,
    MeanSquaredError,
    NeuralNetwork,
    ReLU,
    ReLU6,
    Sigmoid,
    SoftmaxCrossEntropy,
    Tanh,
    WeightMultiply,
)
from xnn.nn.activations import ACTIVATIONS, Activation
from xnn.nn.losses import Loss
from xnn.nn.operations import Operation


def test_representations():
    assert repr(Tanh()) == "Tanh()" and repr(ReLU()) == "ReLU()" and repr(ReLU6()) == "ReLU6()"
    assert repr(LeakyReLU(0.2)) == "LeakyReLU(alpha=0.2)"
    assert repr(SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"
    assert repr(MeanSquaredError(normalize=True)) == "MeanSquaredError(normalize=True)"
    assert repr(WeightMultiply(np.ones((3, 2)))) == "WeightMultiply(param of shape (3, 2))"
    assert repr(BiasAdd(np.ones((1, 4)))) == "BiasAdd(param of shape (1, 4))"

    class Plain(Loss):
        pass

    class Square(Operation):
        pass

    class Scaled(Activation):  # an unregistered activation with two hyper-parameters
        def config(self):
            return {"a": 1.5, "b": 2.0}

    assert repr(Plain()) == "Plain()" and repr(Square()) == "Square()"
    assert repr(Scaled()) == "Scaled(a=1.5, b=2.0)"


@pytest.mark.parametrize("alpha", [1.0, 1.5, -1e-9])
def test_leaky_relu_slope_is_below_one(alpha):
    with pytest.raises(ValueError, match=rf"^alpha must be in \[0, 1\), got {alpha!r}$"):
        LeakyReLU(alpha)


@pytest.mark.parametrize("alpha", [0.0, 0.999])
def test_leaky_relu_slope_bounds_are_inclusive_below(alpha):
    assert LeakyReLU(alpha).alpha == alpha


@pytest.mark.parametrize("eps", [-1e-12, 1.0, float("nan")])
def test_cross_entropy_eps_is_in_zero_one(eps):
    with pytest.raises(ValueError, match=r"^eps must be a number in \[0\.0, 1\.0\), got "):
        SoftmaxCrossEntropy(eps=eps)
    assert SoftmaxCrossEntropy(eps=0.0).eps == 0.0


@pytest.mark.parametrize("normalize", ["yes", 2, None, 0.5])
def test_mse_normalize_is_a_boolean(normalize):
    with pytest.raises(TypeError, match=r"^normalize must be True or False"):
        MeanSquaredError(normalize=normalize)


@pytest.mark.parametrize("normalize", [True, False, 1, 0])
def test_mse_normalize_accepts_booleans(normalize):
    assert bool(MeanSquaredError(normalize=normalize).normalize) == bool(normalize)


def test_backward_before_forward_names_the_class():
    with pytest.raises(RuntimeError, match=r"^SoftmaxCrossEntropy\.backward\(\) before forward"):
        SoftmaxCrossEntropy().backward()
    with pytest.raises(RuntimeError, match=r"^Tanh\.backward\(\) before forward"):
        Tanh().backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match=r"^WeightMultiply\.backward\(\) before forward"):
        WeightMultiply(np.ones((2, 2))).backward(np.ones((1, 2)))


def test_a_loss_gradient_of_the_wrong_shape_is_refused():
    class Broken(MeanSquaredError):
        def _input_grad(self):
            return super()._input_grad()[:, :1]

    loss = Broken()
    loss.forward(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"^loss gradient has shape \(3, 1\), expected \(3, 2\)"):
        loss.backward()


def test_a_new_activation_registers_under_its_name():
    try:
        class Softsign(Activation, name="softsign_test"):
            cuda_forward = "s / ((T)1 + fabs(s))"
            cuda_derivative = "dy * ((T)1 - fabs(y)) * ((T)1 - fabs(y))"

            def apply(self, xp, x):
                return x / (1 + xp.abs(x))

            def derivative(self, xp, output_grad, output):
                return output_grad * (1 - xp.abs(output)) ** 2

        assert Softsign.name == "softsign_test" and ACTIVATIONS["softsign_test"] is Softsign
        assert Softsign().registered
        net = NeuralNetwork([Dense(2, Softsign())], MeanSquaredError())
        assert net.forward(np.ones((1, 3))).shape == (1, 2)
    finally:
        ACTIVATIONS.pop("softsign_test", None)


@pytest.mark.parametrize("forms", [{"cuda_forward": "s"}, {"cuda_derivative": "dy"}, {}])
def test_a_registered_activation_needs_both_cuda_forms(forms):
    with pytest.raises(TypeError, match="must define cuda_forward and cuda_derivative"):
        type("Half", (Activation,), dict(forms), name="half_test")
    assert "half_test" not in ACTIVATIONS


def test_an_unregistered_subclass_is_not_registered():
    class Doubled(Sigmoid):
        pass

    assert Doubled.name == "sigmoid" and not Doubled().registered and Sigmoid().registered
    assert ACTIVATIONS["sigmoid"] is Sigmoid


def test_a_loss_names_a_target_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"^target has shape \(3, 1\), expected \(3, 2\)$"):
        SoftmaxCrossEntropy().forward(np.ones((3, 2)), np.ones((3, 1)))


def test_a_bound_loss_runs_on_its_kernels():
    from xnn.backends.kernels import Kernels

    class Counting(Kernels):
        calls = 0

        def softmax_cross_entropy(self, logits, target):
            Counting.calls += 1
            return super().softmax_cross_entropy(logits, target)

    loss = SoftmaxCrossEntropy()
    loss.bind(Counting(np))
    loss.forward(np.ones((2, 3)), np.eye(3)[[0, 1]])
    assert Counting.calls == 1
    loss.bind(None)  # back to the kernels of each prediction
    loss.forward(np.ones((2, 3)), np.eye(3)[[0, 1]])
    assert Counting.calls == 1


def test_operations_name_the_array_of_the_wrong_shape():
    op = WeightMultiply(np.ones((3, 2)))
    op.forward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"^output_grad has shape \(4, 3\), expected \(4, 2\)$"):
        op.backward(np.ones((4, 3)))
    with pytest.raises(ValueError, match=r"^param_grad has shape \(2, 3\), expected \(3, 2\)$"):
        WeightMultiply(np.ones((3, 2)), np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"^param has shape \(2,\), expected \(3, 2\)$"):
        op.param = np.ones(2)
    tanh = Tanh()
    tanh.forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match=r"^output_grad has shape \(2, 1\), expected \(2, 2\)$"):
        tanh.backward(np.ones((2, 1)))


def test_an_input_gradient_of_the_wrong_shape_is_named():
    class Cut(Tanh):  # unregistered: its own (broken) maths
        def _input_grad(self, output_grad):
            return output_grad[:, :1]

    class CutWeights(WeightMultiply):
        def _input_grad(self, output_grad):
            return super()._input_grad(output_grad)[:, :1]

    for op, x in ((Cut(), np.ones((2, 2))), (CutWeights(np.ones((3, 2))), np.ones((2, 3)))):
        y = op.forward(x)
        with pytest.raises(ValueError, match=r"^input_grad has shape \(2, 1\), expected "):
            op.backward(np.ones_like(y))


@pytest.mark.parametrize("shape", [(3,), (2, 3), (1, 2, 3)])
def test_a_bias_is_one_row(shape):
    with pytest.raises(ValueError, match=rf"^bias must have shape \(1, n\), got "
                                         rf"{re.escape(str(shape))}$"):
        BiasAdd(np.ones(shape))


def test_operations_run_on_the_kernels_they_are_given():
    from xnn.backends.kernels import Kernels

    class Counting(Kernels):
        calls = 0

        def sum_rows(self, x, out=None):
            Counting.calls += 1
            return super().sum_rows(x, out)

        def matmul(self, a, b, out=None):
            Counting.calls += 1
            return super().matmul(a, b, out)

    bias = BiasAdd(np.zeros((1, 2)), kernels=Counting(np))
    bias.forward(np.ones((3, 2)))
    bias.backward(np.ones((3, 2)))
    np.testing.assert_array_equal(bias.param_grad, [[3.0, 3.0]])
    weights = WeightMultiply(np.ones((2, 2)))
    weights.bind(Counting(np))
    weights.forward(np.ones((3, 2)))
    weights.backward(np.ones((3, 2)))
    assert Counting.calls == 2
    weights.bind(None)
    weights.backward(np.ones((3, 2)))
    assert Counting.calls == 2
