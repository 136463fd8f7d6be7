"""The parameter store: one flat array of values and one of gradients, per model, named slots."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    SGD,
    Dense,
    NeuralNetwork,
    ParameterStore,
    SoftmaxCrossEntropy,
    Tanh,
    get_backend,
    to_numpy,
)


def _net(backend, seed=3):
    return NeuralNetwork([Dense(5, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=seed,
                         backend=backend, dtype="float64")


def _flat_of(arrays):
    return np.concatenate([to_numpy(a).ravel() for a in arrays])


def test_no_store_before_the_first_forward_pass(backend):
    net = _net(backend)
    assert net.store is None and not net.built and list(net.params()) == []


def test_the_layers_parameters_are_views_of_the_store(backend, rng):
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    store = net.store
    assert list(store.names()) == ["0.W", "0.B", "1.W", "1.B"]
    assert store.size == 6 * 5 + 5 + 5 * 3 + 3
    assert store.backend is net.backend and store.kernels is net.backend.kernels
    np.testing.assert_array_equal(to_numpy(store.values), _flat_of(net.params()))
    store.values[...] = backend.asarray(np.arange(store.size, dtype=np.float64))
    np.testing.assert_array_equal(_flat_of(net.params()), np.arange(store.size))
    net.forward(rng.standard_normal((4, 6)))
    assert net.store is store  # made once


def test_gradients_are_written_into_the_store(backend, rng):
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    net = _net(backend)
    net.train_batch(X, y)
    store = net.store
    net.train_batch(2 * X, y)  # a different gradient, written in place
    np.testing.assert_array_equal(to_numpy(store.grads), _flat_of(net.param_grads()))
    reference = _net(backend)
    reference.train_batch(2 * X, y)
    np.testing.assert_allclose(to_numpy(store.grads), _flat_of(reference.param_grads()),
                               rtol=1e-12)


def test_reset_makes_a_new_store_and_the_optimizer_starts_over(backend, rng):
    X, y = rng.standard_normal((4, 6)), rng.integers(0, 3, 4)
    net = _net(backend)
    optimizer = SGD(0.1)
    optimizer.net = net
    net.train_batch(X, y)
    optimizer.step()
    first = net.store
    net.reset_parameters()
    assert net.store is None
    net.train_batch(X, y)
    second = net.store
    assert second is not first and second.lineage is not first.lineage
    np.testing.assert_array_equal(to_numpy(second.values), _flat_of(net.params()))
    optimizer.step()
    assert optimizer.state.step == 1  # a fresh state for the new parameters


def test_assigning_a_parameter_writes_into_the_store(backend, rng):
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    store = net.store
    op = net.layers[1].param_operations[0]
    op.param = backend.asarray(np.ones((5, 3)))
    assert net.store is store
    np.testing.assert_array_equal(to_numpy(store.values)[35:50], np.ones(15))
    with pytest.raises(ValueError, match="shape"):
        op.param = backend.asarray(np.ones((3, 5)))


def test_state_dict_round_trip(backend, rng):
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    saved = net.state_dict()
    assert {name: a.shape for name, a in saved.items()} == {
        "0.W": (6, 5), "0.B": (1, 5), "1.W": (5, 3), "1.B": (1, 3)}
    other = _net(backend, seed=9)
    other.load_state_dict(saved)  # builds it
    np.testing.assert_array_equal(_flat_of(other.params()), _flat_of(net.params()))
    with pytest.raises(ValueError, match="do not match"):
        other.load_state_dict({"0.W": saved["0.W"]})
    with pytest.raises(ValueError, match="shape"):
        other.load_state_dict({**saved, "1.B": np.zeros((1, 4))})


def test_moving_keeps_the_lineage(backend, rng):
    store = ParameterStore(backend, "float64", {"a": (2, 3), "b": (1, 3)})
    store.values[...] = backend.asarray(np.arange(9.0))
    moved = store.to(backend)
    assert moved.lineage is store.lineage and moved is not store
    np.testing.assert_array_equal(to_numpy(moved.values), np.arange(9.0))
    np.testing.assert_array_equal(to_numpy(moved.grads), np.zeros(9))


def test_nothing_to_store_is_an_error(backend):
    with pytest.raises(ValueError, match="no parameters"):
        ParameterStore(backend, "float32", {})


def _buffered(backend):
    store = ParameterStore(backend, "float64", {"0.W": (2, 3), "0.B": (1, 3)},
                           buffer_shapes={"0.mean": (1, 3), "0.count": (2,)})
    store.values[...] = backend.asarray(np.arange(9.0))
    store.buffers[...] = backend.asarray(np.arange(5.0) + 100)
    return store


def test_buffers_have_named_slots_of_their_own(backend):
    store = _buffered(backend)
    assert list(store.names()) == ["0.W", "0.B"] and list(store.buffer_slots) == [
        "0.mean", "0.count"]
    assert store.size == 9 and tuple(store.buffers.shape) == (5,)
    np.testing.assert_array_equal(to_numpy(store.buffer("0.count")), [103.0, 104.0])
    store.buffer("0.mean")[...] = backend.asarray(np.full((1, 3), -1.0))  # a view
    np.testing.assert_array_equal(to_numpy(store.buffers), [-1, -1, -1, 103, 104])
    assert "2 buffers" in repr(store)
    with pytest.raises(ValueError, match=r"buffer_shapes names \['0\.B'\]"):
        ParameterStore(backend, "float64", {"0.B": (1, 3)}, buffer_shapes={"0.B": (1, 3)})


def test_buffers_travel_with_state_dict_and_to(backend):
    store = _buffered(backend)
    saved = store.state_dict()
    assert list(saved) == ["0.W", "0.B", "0.mean", "0.count"]
    np.testing.assert_array_equal(saved["0.count"], [103.0, 104.0])
    other = ParameterStore(backend, "float64", {"0.W": (2, 3), "0.B": (1, 3)},
                           buffer_shapes={"0.mean": (1, 3), "0.count": (2,)})
    other.load_state_dict(saved)
    np.testing.assert_array_equal(to_numpy(other.buffers), to_numpy(store.buffers))
    with pytest.raises(ValueError, match=r"\['0\.count'\] do not match"):
        other.load_state_dict({k: v for k, v in saved.items() if k != "0.count"})
    with pytest.raises(ValueError, match=r"buffer '0\.count' has shape"):
        other.load_state_dict({**saved, "0.count": np.zeros(3)})
    moved = store.to(backend)
    np.testing.assert_array_equal(to_numpy(moved.buffers), to_numpy(store.buffers))
    assert set(store.buffer_state_dict()) == {"0.mean", "0.count"}


def test_snapshot_and_restore_cover_values_and_buffers(backend):
    store = _buffered(backend)
    snapshot = store.snapshot()
    values, buffers = to_numpy(store.values), to_numpy(store.buffers)
    store.values[...] = backend.asarray(np.zeros(9))
    store.buffers[...] = backend.asarray(np.zeros(5))
    np.testing.assert_array_equal(to_numpy(snapshot["values"]), values)  # a copy
    store.restore(snapshot)
    np.testing.assert_array_equal(to_numpy(store.values), values)
    np.testing.assert_array_equal(to_numpy(store.buffers), buffers)
    store.restore({"values": np.ones(9), "buffers": np.ones(5)})  # host arrays too
    np.testing.assert_array_equal(to_numpy(store.buffers), np.ones(5))
    with pytest.raises(ValueError, match=r"snapshot\['buffers'\] has shape \(4,\)"):
        store.restore({"values": np.ones(9), "buffers": np.ones(4)})
    np.testing.assert_array_equal(to_numpy(store.values), np.ones(9))  # nothing written


def test_a_store_without_buffers_copies_nothing_for_them(rng):
    backend = get_backend("array_api_strict")
    net = _net(backend)
    net.forward(rng.standard_normal((4, 6)))
    before = backend.device_to_host
    assert set(net.state_dict()) == {"0.W", "0.B", "1.W", "1.B"}
    assert backend.device_to_host == before + 1
    assert tuple(net.store.buffers.shape) == (0,)
    net.store.restore(net.store.snapshot())
