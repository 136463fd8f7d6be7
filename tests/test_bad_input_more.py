"""The bad-input sweep's findings in the model and its maths, each refused with a clear error."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    SGD,
    Dense,
    MeanSquaredError,
    NeuralNetwork,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    WeightMultiply,
    to_numpy,
)
from xnn.data.preprocessing import accuracy


def test_one_layer_in_two_networks_is_refused():
    shared = Dense(4, Tanh())
    first = NeuralNetwork([shared, Dense(2)], SoftmaxCrossEntropy(), dtype="float32")
    with pytest.raises(ValueError, match="already belongs to another NeuralNetwork"):
        NeuralNetwork([shared, Dense(2)], SoftmaxCrossEntropy(), dtype="float64")
    assert first.layers[0] is shared  # the first one is untouched
    del first
    import gc

    gc.collect()
    NeuralNetwork([shared, Dense(2)], SoftmaxCrossEntropy())  # its network is gone: fine


@pytest.mark.parametrize("targets", [np.array([0, 1, 1, 0]), np.array([0, 0, 0, 0]),
                                     np.array([2, 5, 7, 1])])
def test_integer_targets_are_values_for_mse(backend, targets):
    net = NeuralNetwork([Dense(1)], MeanSquaredError(), backend=backend, dtype="float64")
    y = net.as_targets(targets, 4)
    np.testing.assert_array_equal(to_numpy(y), targets.reshape(-1, 1).astype(float))


def test_one_value_per_row_for_several_outputs_is_refused_for_mse():
    net = NeuralNetwork([Dense(3)], MeanSquaredError())
    with pytest.raises(ValueError, match="one-hot encode"):
        net.as_targets(np.array([0, 2, 1]), 3)


@pytest.mark.parametrize("rows", [[[0.5, 0.6, 0.0]], [[1.5, -0.5, 0.0]], [[2.0, 0.0, 0.0]]],
                         ids=["sum-above-1", "negative", "not-one-hot"])
def test_invalid_probability_rows_are_refused_for_cross_entropy(backend, rows):
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), backend=backend)
    with pytest.raises(ValueError, match="probability row"):
        net.as_targets(np.array(rows), 1)


def test_soft_labels_that_are_distributions_are_accepted(backend):
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), backend=backend, dtype="float64")
    soft = np.array([[0.8, 0.1, 0.1], [0.0, 0.5, 0.5]])
    np.testing.assert_array_equal(to_numpy(net.as_targets(soft, 2)), soft)


def test_float_labels_for_cross_entropy_are_refused():
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy())
    with pytest.raises(ValueError, match="integer class labels"):
        net.as_targets(np.array([0.0, 2.0]), 2)


def test_backward_before_forward_says_what_to_call(backend):
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), backend=backend)
    with pytest.raises(RuntimeError, match=r"call model\.forward"):
        net.backward(backend.asarray(np.ones((2, 3), dtype=np.float32)))
    with pytest.raises(RuntimeError, match=r"call loss.forward\(prediction, target\) first"):
        SoftmaxCrossEntropy().backward()
    with pytest.raises(RuntimeError, match="call forward"):
        WeightMultiply(np.ones((2, 2))).backward(np.ones((1, 2)))
    with pytest.raises(RuntimeError, match="call forward"):
        Tanh().backward(np.ones((1, 2)))


def test_small_ones():
    with pytest.raises(ValueError, match="got None"):
        NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), dtype=None)
    with pytest.raises(TypeError, match="normalize must be True or False"):
        MeanSquaredError(normalize="no")
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), dtype="float64")
    X = np.eye(3)
    Trainer(net, SGD(0.5), log=lambda line: None).fit(X, np.arange(3), X, np.arange(3),
                                                      epochs=20, eval_every=20, batch_size=3)
    with pytest.raises(ValueError, match="truncated"):
        accuracy(net, X, np.array([0.0, 1.0, 2.0]))
    assert accuracy(net, X, np.arange(3)) == accuracy(net, X, np.eye(3)) == 1.0
