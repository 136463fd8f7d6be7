"""Every fast kernel equals the generic reference on the same inputs, on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from xnn.backends.kernels import Kernels, NumPyKernels, OutKernels
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


# -- every fast kernel on C-ordered, Fortran-ordered and strided arrays (NumPy's own paths) ----
LAYOUTS = ["C", "F", "strided"]
FAST = {"NumPyKernels": NumPyKernels, "OutKernels": OutKernels}
NUMPY_REFERENCE = Kernels(np)


def _layout(a: np.ndarray, layout: str) -> np.ndarray:
    """The values of ``a`` in one memory layout: C order, Fortran order, or a strided view (a
    transposed one for 2-D: neither C- nor F-contiguous; every other element for 1-D)."""
    if layout == "C":
        return np.ascontiguousarray(a)
    if layout == "F":
        return np.asfortranarray(a)
    if a.ndim == 1:
        holder = np.zeros(2 * a.size, dtype=a.dtype)
        holder[::2] = a
        return holder[::2]
    holder = np.zeros((3 * a.shape[1], 2 * a.shape[0]), dtype=a.dtype)
    holder[::3, ::2] = a.T
    view = holder[::3, ::2].T
    assert not (view.flags.c_contiguous or view.flags.f_contiguous)
    return view


def _values(rng, dtype, *shapes):
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-6} if dtype == "float32" else {"rtol": 1e-12, "atol": 1e-14}


@pytest.fixture(params=FAST)
def fast(request):
    return FAST[request.param](np)


@pytest.mark.parametrize("logits_layout", LAYOUTS)
@pytest.mark.parametrize("target_layout", LAYOUTS)
def test_softmax_cross_entropy_in_every_layout(fast, rng, dtype, logits_layout, target_layout):
    logits, = _values(rng, dtype, (6, 5))
    target = rng.dirichlet(np.ones(5), size=6).astype(dtype)
    expected_loss, expected_softmax = NUMPY_REFERENCE.softmax_cross_entropy(logits, target)
    loss, softmax = fast.softmax_cross_entropy(_layout(logits, logits_layout),
                                               _layout(target, target_layout))
    np.testing.assert_allclose(float(loss), float(expected_loss), **_tolerance(dtype))
    np.testing.assert_allclose(softmax, expected_softmax, **_tolerance(dtype))
    grad = fast.softmax_cross_entropy_grad(_layout(expected_softmax, logits_layout),
                                           _layout(target, target_layout))
    np.testing.assert_allclose(
        grad, NUMPY_REFERENCE.softmax_cross_entropy_grad(expected_softmax, target),
        **_tolerance(dtype))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_public_loss_in_every_layout(rng, layout):
    """Through ``SoftmaxCrossEntropy.forward``/``backward`` on the NumPy backend."""
    from xnn import SoftmaxCrossEntropy

    logits = rng.standard_normal((7, 4))
    target = np.eye(4)[rng.integers(0, 4, 7)]
    expected_loss, expected_softmax = NUMPY_REFERENCE.softmax_cross_entropy(logits, target)
    loss = SoftmaxCrossEntropy()
    assert float(loss.forward(_layout(logits, layout), _layout(target, layout))) == (
        pytest.approx(float(expected_loss), rel=1e-12))
    np.testing.assert_allclose(
        loss.backward(), NUMPY_REFERENCE.softmax_cross_entropy_grad(expected_softmax, target),
        rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("a_layout", LAYOUTS)
@pytest.mark.parametrize("out_layout", LAYOUTS)
def test_matmul_take_rows_and_sum_rows_in_every_layout(fast, rng, dtype, a_layout, out_layout):
    a, b = _values(rng, dtype, (7, 5), (5, 3))
    out = _layout(np.zeros((7, 3), dtype=dtype), out_layout)
    result = fast.matmul(_layout(a, a_layout), _layout(b, a_layout), out=out)
    assert result is out
    np.testing.assert_allclose(out, NUMPY_REFERENCE.matmul(a, b), **_tolerance(dtype))
    indices = rng.permutation(7)[:5]
    rows = _layout(np.zeros((5, 5), dtype=dtype), out_layout)
    fast.take_rows(_layout(a, a_layout), indices, out=rows)
    np.testing.assert_array_equal(rows, NUMPY_REFERENCE.take_rows(a, indices))
    total = _layout(np.zeros((1, 5), dtype=dtype), out_layout)
    fast.sum_rows(_layout(a, a_layout), out=total)
    np.testing.assert_allclose(total, NUMPY_REFERENCE.sum_rows(a), **_tolerance(dtype))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("name", ALL_ACTIVATIONS)
def test_activation_kernels_in_every_layout(fast, rng, dtype, layout, name):
    import xnn

    activation = getattr(xnn, name)()
    z, bias, dy = _values(rng, dtype, (6, 4), (1, 4), (6, 4))
    z = 4 * z
    mask = (rng.random((6, 4)) < 0.7).astype(dtype)
    for scale in (None, mask, 0.8):
        laid = scale if not isinstance(scale, np.ndarray) else _layout(scale, layout)
        y = fast.bias_activation(_layout(z, layout), bias, activation, laid)
        expected_y = NUMPY_REFERENCE.bias_activation(z, bias, activation, scale)
        np.testing.assert_allclose(y, expected_y, **_tolerance(dtype))
        np.testing.assert_allclose(
            fast.activation_grad(_layout(dy, layout), _layout(expected_y, layout), activation,
                                 laid),
            NUMPY_REFERENCE.activation_grad(dy, expected_y, activation, scale),
            **_tolerance(dtype))


UPDATES = {  # name → (state arrays besides param, the call with (kernels, param, grad, states))
    "sgd": (0, lambda k, p, g, s, wd, flag, w: k.sgd_step(p, g, 0.05, w[0], wd, w[1])),
    "momentum": (1, lambda k, p, g, s, wd, flag, w: k.momentum_step(
        p, g, s[0], 0.05, 0.8, w[0], wd, flag, w[1])),
    "adam": (2, lambda k, p, g, s, wd, flag, w: [k.adam_step(
        p, g, s[0], s[1], 0.01, (0.8, 0.95), 1e-3, step, wd, flag, w[0], w[1])
        for step in (1, 2)]),
    "rmsprop": (2, lambda k, p, g, s, wd, flag, w: k.rmsprop_step(
        p, g, s[0], s[1] if flag else None, 0.01, 0.9, 1e-3, 0.7, wd, w[0], w[1])),
    "adagrad": (1, lambda k, p, g, s, wd, flag, w: k.adagrad_step(
        p, g, s[0], 0.05, 1e-3, wd, w[0], w[1])),
}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("wd", "flag"), [(0.0, False), (0.03, True)],
                         ids=["plain", "decay+nesterov/decoupled/momentum"])
@pytest.mark.parametrize("rule", UPDATES)
def test_updates_in_every_layout(fast, rng, dtype, layout, rule, wd, flag):
    """Each update rule on parameters, gradients and state that are strided views (the 1-D
    arrays of a store are contiguous, but nothing in a rule may rely on it) or 2-D arrays."""
    n_states, update = UPDATES[rule]
    shape = (5, 4) if layout == "F" else (20,)
    param, grad = _values(rng, dtype, shape, shape)
    states = [np.abs(s) for s in _values(rng, dtype, *[shape] * n_states)]
    expected = [param.copy(), *(s.copy() for s in states)]
    laid = [_layout(a, layout) for a in (param, *states)]
    work = [np.zeros(shape, dtype=dtype), np.zeros(shape, dtype=dtype)]
    for _ in range(2):
        update(NUMPY_REFERENCE, expected[0], grad, expected[1:], wd, flag, [None, None])
        update(fast, laid[0], _layout(grad, layout), laid[1:], wd, flag, work)
    for ours, theirs in zip(laid, expected, strict=True):
        np.testing.assert_allclose(ours, theirs, **_tolerance(dtype))


@pytest.mark.parametrize("layout", ["C", "strided"])
@pytest.mark.parametrize("max_norm", [0.5, 100.0])
def test_clip_norm_in_every_layout(fast, rng, dtype, layout, max_norm):
    grad, = _values(rng, dtype, (30,))
    expected = grad.copy()
    expected_norm = NUMPY_REFERENCE.clip_norm(expected, max_norm)
    laid = _layout(grad, layout)
    norm = fast.clip_norm(laid, max_norm)
    np.testing.assert_allclose(float(norm), float(expected_norm), **_tolerance(dtype))
    np.testing.assert_allclose(laid, expected, **_tolerance(dtype))


# -- the out= forms keep their promise: no large temporaries --------------------------------
def _peak_bytes(call) -> int:
    """The most memory NumPy held at once during ``call()``, beyond what it held before."""
    import tracemalloc

    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(("wd", "flag"), [(0.0, False), (0.03, True)],
                         ids=["plain", "decay+nesterov/decoupled/momentum"])
@pytest.mark.parametrize("rule", UPDATES)
def test_an_out_update_allocates_nothing(fast, rule, wd, flag):
    """``scratch`` (and ``scratch2`` with weight decay) are all the work memory a step needs."""
    n_states, update = UPDATES[rule]
    size = 50_000
    param, grad, *states = (np.full(size, 0.5) for _ in range(2 + n_states))
    work = [np.zeros(size), np.zeros(size)]
    update(fast, param, grad, states, wd, flag, work)  # warm up
    assert _peak_bytes(lambda: update(fast, param, grad, states, wd, flag, work)) < (
        param.nbytes // 10)


def test_clip_norm_allocates_nothing(fast):
    grad = np.full(50_000, 0.5)
    assert _peak_bytes(lambda: fast.clip_norm(grad, 1.0)) < grad.nbytes // 10


@pytest.mark.parametrize("name", ["Tanh", "Sigmoid", "Linear"])  # those with derivative_into
def test_an_activation_gradient_needs_one_buffer(fast, name):
    import xnn

    activation = getattr(xnn, name)()
    dy, y = np.full((500, 100), 0.3), np.full((500, 100), 0.2)
    assert _peak_bytes(lambda: fast.activation_grad(dy, y, activation)) < 1.1 * dy.nbytes


def test_the_loss_gradient_needs_one_buffer(fast):
    softmax, target = np.full((500, 100), 0.01), np.zeros((500, 100))
    assert _peak_bytes(lambda: fast.softmax_cross_entropy_grad(softmax, target)) < (
        1.1 * softmax.nbytes)


def test_numpys_loss_needs_two_buffers():
    """NumPyKernels.softmax_cross_entropy: the shifted logits (then log softmax) and softmax
    (the reference holds five such arrays on the way)."""
    logits, target = np.full((500, 100), 0.01), np.zeros((500, 100))
    peak = _peak_bytes(lambda: NumPyKernels(np).softmax_cross_entropy(logits, target))
    assert peak < 2.5 * logits.nbytes


def test_the_reference_writes_into_the_buffer_it_is_given(rng):
    x, = _values(rng, "float64", (6, 4))
    indices = np.array([5, 0, 3])
    for call, expected in ((lambda out: NUMPY_REFERENCE.take_rows(x, indices, out=out), x[indices]),
                           (lambda out: NUMPY_REFERENCE.matmul(x[:3], x[:4].T, out=out),
                            x[:3] @ x[:4].T)):
        out = np.zeros(expected.shape)
        assert call(out) is out
        np.testing.assert_allclose(out, expected, rtol=1e-15)
    out = np.zeros((1, 4))
    assert NUMPY_REFERENCE.sum_rows(x, out=out) is out
    np.testing.assert_allclose(out, x.sum(axis=0, keepdims=True), rtol=1e-15)


def test_numpys_take_rows_writes_straight_into_its_buffer():
    """``take`` with ``mode`` set writes into ``out`` without a buffered copy of it."""
    x, out = np.ones((2000, 50)), np.empty((1000, 50))
    indices = np.arange(0, 2000, 2)
    assert _peak_bytes(lambda: NumPyKernels(np).take_rows(x, indices, out=out)) < out.nbytes // 10
