"""Tests written for surviving mutants of ``xnn.nn.store`` (docs/mutation/xnn.nn.store.md)."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import ParameterStore


def test_a_parameter_of_the_wrong_shape_is_named_a_parameter(backend):
    store = ParameterStore(backend, "float64", {"0.W": (2, 3), "0.B": (1, 3)},
                           buffer_shapes={"0.count": (3,)})
    arrays = {"0.W": np.zeros((3, 2)), "0.B": np.zeros((1, 3)), "0.count": np.zeros(3)}
    with pytest.raises(ValueError) as caught:
        store.load_state_dict(arrays)
    assert str(caught.value) == "parameter '0.W' has shape (3, 2), expected (2, 3)"


def test_float64_host_arrays_load_into_a_float32_store(backend):
    # the store casts what it is given to its own dtype (array_api_strict refuses to write
    # float64 into float32 without that cast)
    store = ParameterStore(backend, "float32", {"0.W": (2, 2)}, buffer_shapes={"0.n": (2,)})
    W, n = np.array([[0.1, 0.2], [0.3, 1 / 3]]), np.array([1e-3, 2.5])
    store.load_state_dict({"0.W": W, "0.n": n})
    np.testing.assert_array_equal(backend.to_numpy(store.value("0.W")), W.astype(np.float32))
    np.testing.assert_array_equal(backend.to_numpy(store.buffer("0.n")), n.astype(np.float32))


def test_integer_host_arrays_load_into_a_float64_store(backend):
    store = ParameterStore(backend, "float64", {"0.W": (2, 2)})
    store.load_state_dict({"0.W": np.array([[1, 2], [3, 4]])})
    np.testing.assert_array_equal(backend.to_numpy(store.values), [1.0, 2.0, 3.0, 4.0])


def test_a_float64_host_snapshot_restores_a_float32_store(backend):
    store = ParameterStore(backend, "float32", {"0.W": (3,)}, buffer_shapes={"0.n": (1,)})
    values, buffers = np.array([0.1, 0.2, 1 / 3]), np.array([7.25])
    store.restore({"values": values, "buffers": buffers})
    np.testing.assert_array_equal(backend.to_numpy(store.values), values.astype(np.float32))
    np.testing.assert_array_equal(backend.to_numpy(store.buffers), [7.25])


def test_the_repr_of_a_store_without_buffers(backend):
    store = ParameterStore(backend, "float32", {"0.W": (2, 3), "0.B": (1, 3)})
    assert repr(store) == f"ParameterStore(2 arrays, 9 values, {backend.name}, float32)"
