"""The flat parameter store: the per-layer arrays are views of one array, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import SGD, Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh, to_numpy
from xnn.nn.parameters import FlatParameters


def _net(backend, seed=3):
    return NeuralNetwork([Dense(5, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=seed,
                         backend=backend, dtype="float64")


def _flat_of(arrays):
    return np.concatenate([to_numpy(a).ravel() for a in arrays])


def test_no_parameters_before_the_first_forward_pass(backend):
    assert _net(backend).flat_parameters() is None


def test_packing_keeps_the_values_and_the_arrays_are_views(backend, rng):
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    before = _flat_of(net.params())
    flat = net.flat_parameters()
    assert flat.size == 6 * 5 + 5 + 5 * 3 + 3
    np.testing.assert_array_equal(to_numpy(flat.values), before)
    np.testing.assert_array_equal(_flat_of(net.params()), before)
    flat.values[...] = backend.asarray(np.arange(flat.size, dtype=np.float64))
    np.testing.assert_array_equal(_flat_of(net.params()), np.arange(flat.size))
    assert net.flat_parameters() is flat  # packed once


def test_gradients_are_written_into_the_flat_buffer(backend, rng):
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    net = _net(backend)
    net.train_batch(X, y)
    flat = net.flat_parameters()
    net.train_batch(2 * X, y)  # a different gradient, written in place
    np.testing.assert_array_equal(to_numpy(flat.grads), _flat_of(net.param_grads()))
    reference = _net(backend)
    reference.train_batch(2 * X, y)
    np.testing.assert_allclose(to_numpy(flat.grads), _flat_of(reference.param_grads()),
                               rtol=1e-12)


def test_repacked_after_the_layers_are_rebuilt(backend, rng):
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    net = _net(backend)
    optimizer = SGD(0.1)
    optimizer.net = net
    net.train_batch(X, y)
    optimizer.step()
    first = net.flat_parameters()
    net.reset_parameters()
    net.train_batch(X, y)
    second = net.flat_parameters()
    assert second is not first
    assert [op.param for op in second.operations] == list(net.params())
    np.testing.assert_array_equal(to_numpy(second.values), _flat_of(net.params()))


def test_rebinding_a_parameter_is_noticed(backend, rng):
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    flat = net.flat_parameters()
    op = net.layers[1].param_operations[0]
    op.param = backend.asarray(np.ones((5, 3)))
    repacked = net.flat_parameters()
    assert repacked is not flat
    np.testing.assert_array_equal(to_numpy(repacked.values)[35:50], np.ones(15))


def test_nothing_to_pack_is_an_error(backend):
    with pytest.raises(ValueError, match="no parameters"):
        FlatParameters([], backend)
