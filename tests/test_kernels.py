"""Every fast kernel equals the generic reference on the same inputs, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from xnn.backends.kernels import Kernels
from xnn.tools.testing import assert_backend_close


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return request.param


def _arrays(backend, rng, dtype, *shapes):
    return [backend.asarray(rng.standard_normal(s), backend.dtype(dtype)) for s in shapes]


def _copies(backend, *arrays):
    return [backend.copy(a) for a in arrays]


def test_matmul_into_a_buffer(backend, rng, dtype):
    a, b, buffer = _arrays(backend, rng, dtype, (7, 5), (7, 3), (5, 3))
    reference = Kernels(backend.xp).matmul(a.T, b)
    out = backend.kernels.matmul(a.T, b, out=buffer)
    assert_backend_close(out, reference)


def test_take_rows_into_a_buffer(backend, rng, dtype):
    x, buffer = _arrays(backend, rng, dtype, (6, 4), (6, 4))
    indices = backend.asarray(rng.permutation(6))
    assert_backend_close(backend.kernels.take_rows(x, indices, out=buffer),
                         Kernels(backend.xp).take_rows(x, indices))


def test_sgd_step(backend, rng, dtype):
    param, grad, scratch = _arrays(backend, rng, dtype, (4, 3), (4, 3), (4, 3))
    expected = backend.copy(param)
    Kernels(backend.xp).sgd_step(expected, grad, 0.1, None)
    backend.kernels.sgd_step(param, grad, 0.1, scratch)
    assert_backend_close(param, expected)


def test_momentum_step(backend, rng, dtype):
    param, grad, velocity, scratch = _arrays(backend, rng, dtype, *[(4, 3)] * 4)
    expected, expected_velocity = _copies(backend, param, velocity)
    for _ in range(3):
        Kernels(backend.xp).momentum_step(expected, grad, expected_velocity, 0.1, 0.9, None)
        backend.kernels.momentum_step(param, grad, velocity, 0.1, 0.9, scratch)
    assert_backend_close(param, expected)
    assert_backend_close(velocity, expected_velocity)


def test_softmax_cross_entropy_grad(backend, rng, dtype):
    logits, = _arrays(backend, rng, dtype, (5, 4))
    xp = backend.xp
    softmax = xp.exp(logits) / xp.sum(xp.exp(logits), axis=1, keepdims=True)
    target = backend.asarray(np.eye(4)[[0, 1, 2, 3, 0]], backend.dtype(dtype))
    assert_backend_close(backend.kernels.softmax_cross_entropy_grad(softmax, target),
                         Kernels(xp).softmax_cross_entropy_grad(softmax, target))


def _fused_cupy():
    """CuPy's fused kernels and the generic reference on CuPy arrays (skips without a GPU)."""
    from xnn.backends import BackendUnavailableError, get_backend

    try:
        backend = get_backend("cupy")
    except BackendUnavailableError as exc:
        pytest.skip(f"backend 'cupy' unavailable: {exc}")
    from xnn.backends.cupy_kernels import CuPyFusedKernels

    return backend, CuPyFusedKernels(backend.xp), Kernels(backend.xp)


@pytest.mark.gpu
def test_cupy_fused_updates_match_the_reference(rng, dtype):
    """The fused CuPy kernels (opt-in: XNN_CUPY_FUSED=1) against the generic path, on a GPU."""
    backend, fused, reference = _fused_cupy()
    param, grad, velocity = _arrays(backend, rng, dtype, *[(40, 30)] * 3)
    expected, expected_velocity = _copies(backend, param, velocity)
    for _ in range(3):
        reference.momentum_step(expected, grad, expected_velocity, 0.1, 0.9, None)
        fused.momentum_step(param, grad, velocity, 0.1, 0.9, None)
        reference.sgd_step(expected, grad, 0.05, None)
        fused.sgd_step(param, grad, 0.05, None)
    assert_backend_close(param, expected)
    assert_backend_close(velocity, expected_velocity)


@pytest.mark.gpu
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_cupy_fused_softmax_cross_entropy_matches_the_reference(rng, dtype, scale):
    backend, fused, reference = _fused_cupy()
    logits = backend.asarray(scale * rng.standard_normal((9, 10)), backend.dtype(dtype))
    target = backend.asarray(rng.dirichlet(np.ones(10), size=9), backend.dtype(dtype))
    loss, softmax = fused.softmax_cross_entropy(logits, target)
    expected_loss, expected_softmax = reference.softmax_cross_entropy(logits, target)
    assert_backend_close(softmax, expected_softmax)
    np.testing.assert_allclose(float(loss), float(expected_loss),
                               rtol=1e-5 if dtype == "float32" else 1e-12)
    assert_backend_close(fused.softmax_cross_entropy_grad(softmax, target),
                         reference.softmax_cross_entropy_grad(softmax, target))


@pytest.mark.gpu
@pytest.mark.parametrize("dropout", [None, "mask", "inference"])
@pytest.mark.parametrize("kind", ["linear", "tanh", "sigmoid", "relu"])
def test_cupy_fused_bias_activation_matches_the_reference(rng, dtype, kind, dropout):
    from xnn import Linear, ReLU, Sigmoid, Tanh

    activation = {"linear": Linear, "tanh": Tanh, "sigmoid": Sigmoid, "relu": ReLU}[kind]()
    backend, fused, reference = _fused_cupy()
    z, bias, dy = _arrays(backend, rng, dtype, (8, 5), (1, 5), (8, 5))
    scale = {None: None, "inference": 0.8,
             "mask": backend.asarray(rng.random((8, 5)) < 0.8, backend.dtype(dtype))}[dropout]
    y = fused.bias_activation(z, bias, activation, scale)
    assert_backend_close(y, reference.bias_activation(z, bias, activation, scale))
    assert_backend_close(fused.activation_grad(dy, y, activation, scale),
                         reference.activation_grad(dy, y, activation, scale))


def test_sum_rows_into_a_buffer(backend, rng, dtype):
    x, buffer = _arrays(backend, rng, dtype, (7, 5), (1, 5))
    assert_backend_close(backend.kernels.sum_rows(x, out=buffer), Kernels(backend.xp).sum_rows(x))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_cross_entropy(backend, rng, dtype, scale):
    """Loss and softmax, for soft targets and for logits far beyond exp's range."""
    logits = backend.asarray(scale * rng.standard_normal((6, 5)), backend.dtype(dtype))
    target = backend.asarray(rng.dirichlet(np.ones(5), size=6), backend.dtype(dtype))
    loss, softmax = backend.kernels.softmax_cross_entropy(logits, target)
    expected_loss, expected_softmax = Kernels(backend.xp).softmax_cross_entropy(logits, target)
    assert_backend_close(softmax, expected_softmax)
    np.testing.assert_allclose(float(loss), float(expected_loss),
                               rtol=1e-5 if dtype == "float32" else 1e-12)


ALL_ACTIVATIONS = ["Linear", "Tanh", "Sigmoid", "ReLU", "LeakyReLU", "ReLU6"]


@pytest.mark.parametrize("dropout", [None, "mask", "inference"])
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_bias_activation_and_its_gradient(backend, rng, dtype, name, dropout):
    import xnn

    activation = getattr(xnn, name)()
    z, bias, dy = _arrays(backend, rng, dtype, (6, 4), (1, 4), (6, 4))
    z = 4 * z  # both sides of ReLU6's upper kink
    scale = {None: None, "inference": 0.8,
             "mask": backend.asarray(rng.random((6, 4)) < 0.7, backend.dtype(dtype))}[dropout]
    reference = Kernels(backend.xp)
    y = backend.kernels.bias_activation(z, bias, activation, scale)
    assert_backend_close(y, reference.bias_activation(z, bias, activation, scale))
    assert_backend_close(backend.kernels.activation_grad(dy, y, activation, scale),
                         reference.activation_grad(dy, y, activation, scale))
