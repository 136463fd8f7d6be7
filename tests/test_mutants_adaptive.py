"""Adam's and RMSProp's documented defaults, and RMSProp's own learning rate, on one step from
a known parameter: Adam's first step is lr·g/(|g| + ε); RMSProp's is lr·g/(√((1−α)g²) + ε)."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import get_backend, to_numpy
from xnn.nn.store import ParameterStore
from xnn.train.adaptive import Adam, RMSProp

THETA = np.array([1.0, -2.0, 3.0])
GRAD = np.array([2.0, -0.5, 0.25])


def one_step(optimizer):
    """θ after one update of ``optimizer`` at its own learning rate, from THETA with GRAD."""
    backend = get_backend("numpy")
    store = ParameterStore(backend, "float64", {"p": THETA.shape})
    store.values[...] = THETA
    store.grads[...] = GRAD
    state = optimizer.init(store)
    state.step += 1
    optimizer.update(state, store, optimizer.initial_lr)
    return to_numpy(store.values)


def test_adam_defaults_to_lr_0_001():
    """The first step moves each parameter by lr = 0.001 against its gradient's sign."""
    expected = THETA - 0.001 * GRAD / (np.abs(GRAD) + 1e-8)
    np.testing.assert_allclose(one_step(Adam()), expected, rtol=1e-12)


def test_rmsprop_defaults_to_lr_0_01_alpha_0_99_eps_1e_8_no_weight_decay():
    """√((1 − 0.99)·g²) = 0.1|g|: each parameter moves by 0.01 / 0.1 = 0.1 (θ plays no part)."""
    expected = THETA - 0.01 * GRAD / (0.1 * np.abs(GRAD) + 1e-8)
    np.testing.assert_allclose(one_step(RMSProp()), expected, rtol=1e-12)
    assert expected == pytest.approx(THETA - 0.1 * np.sign(GRAD), rel=1e-6)


@pytest.mark.parametrize("lr", [0.05, 0.002])
def test_rmsprop_steps_at_the_given_lr(lr):
    expected = THETA - lr * GRAD / (0.1 * np.abs(GRAD) + 1e-8)
    np.testing.assert_allclose(one_step(RMSProp(lr)), expected, rtol=1e-12)
