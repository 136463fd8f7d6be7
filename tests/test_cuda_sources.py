"""The arithmetic of every CUDA kernel body, checked on the CPU without a GPU.

Each ``ElementwiseSource`` body is compiled as C++ (g++) inside the loop CuPy would run it in
(``tests/cuda_cpu.py``), for ``T`` = float and double, and its results are compared with the
generic ``xp`` reference. What this cannot check is CuPy's side (compiling with NVRTC,
broadcasting, type inference); ``tests/test_kernels.py`` does that on a GPU, and
``tests/test_cupy_fused_cpu.py`` checks the host side of ``CuPyFusedKernels`` (which value goes
to which parameter) on the CPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_cpu import CTYPES, CompileError, compile_sources, compiler
from cuda_cpu import call as _call_library

from xnn import LeakyReLU
from xnn.backends.cuda_sources import SOURCES, activation_sources
from xnn.backends.kernels import Kernels
from xnn.nn.activations import ACTIVATIONS

# every registered activation, plus one with a hyper-parameter other than its default
INSTANCES = {**{name: cls() for name, cls in ACTIVATIONS.items()},
             "leaky_relu_0.2": LeakyReLU(0.2)}
ACTIVATION_SOURCES = {}
for _key, _activation in INSTANCES.items():
    _forward, _backward = activation_sources(_activation)
    _suffix = _key.replace(".", "_")
    ACTIVATION_SOURCES[f"bias_{_suffix}"], ACTIVATION_SOURCES[f"{_suffix}_grad"] = (
        _forward, _backward)
REFERENCE = Kernels(np)


@pytest.fixture(scope="module", params=list(CTYPES))
def compiled(request):
    """Every source compiled for one ``T``: (library, NumPy dtype)."""
    if compiler() is None:
        pytest.skip("no C++ compiler (g++) to compile the CUDA kernel bodies on the CPU")
    ctype = request.param
    try:
        library = compile_sources({**SOURCES, **ACTIVATION_SOURCES}, ctype)
    except CompileError as error:
        pytest.fail(f"the CUDA kernel bodies do not compile as C++:\n{error}")
    return library, CTYPES[ctype]


def _call(compiled, key: str, n: int, *arguments) -> None:
    """Run kernel ``key`` over ``n`` elements; arrays are passed by pointer, and written."""
    _call_library(*compiled, key, n, *arguments)


def _close(compiled):
    return {"rtol": 2e-6, "atol": 1e-6} if compiled[1] == np.float32 else {"rtol": 1e-13,
                                                                          "atol": 1e-15}


def _arrays(compiled, rng, *shapes, scale=1.0):
    return [(scale * rng.standard_normal(shape)).astype(compiled[1]) for shape in shapes]


def test_every_source_is_checked_here():
    checked = {"sgd_step", "momentum_step", "softmax_cross_entropy_grad",
               "softmax_cross_entropy_rows", "adam_step", "rmsprop_step",
               "rmsprop_momentum_step", "adagrad_step"}
    assert checked == set(SOURCES)
    assert set(ACTIVATIONS) <= set(INSTANCES)  # every registered activation's two kernels


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_sgd_step(compiled, rng, wd):
    param, grad = _arrays(compiled, rng, 50, 50)
    expected = param.copy()
    REFERENCE.sgd_step(expected, grad, 0.1, None, wd)
    _call(compiled, "sgd_step", 50, grad, 0.1, wd, param)
    np.testing.assert_allclose(param, expected, **_close(compiled))


@pytest.mark.parametrize(("wd", "nesterov"), [(0.0, False), (0.05, False), (0.05, True)])
def test_momentum_step(compiled, rng, wd, nesterov):
    param, grad, velocity = _arrays(compiled, rng, 50, 50, 50)
    expected, expected_velocity = param.copy(), velocity.copy()
    for _ in range(3):
        REFERENCE.momentum_step(expected, grad, expected_velocity, 0.1, 0.9, None, wd, nesterov)
        _call(compiled, "momentum_step", 50, grad, 0.1, 0.9, wd, float(nesterov), param,
              velocity)
    np.testing.assert_allclose(param, expected, **_close(compiled))
    np.testing.assert_allclose(velocity, expected_velocity, **_close(compiled))


@pytest.mark.parametrize(("wd", "decoupled"), [(0.0, False), (0.1, False), (0.1, True)])
def test_adam_step(compiled, rng, wd, decoupled):
    param, grad, m = _arrays(compiled, rng, 50, 50, 50)
    v = np.abs(_arrays(compiled, rng, 50)[0])
    expected = [a.copy() for a in (param, m, v)]
    for step in (1, 2, 3):
        REFERENCE.adam_step(*expected[:1], grad, *expected[1:], 0.01, (0.9, 0.999), 1e-8,
                            step, wd, decoupled)
        _call(compiled, "adam_step", 50, grad, 0.01, 0.9, 0.999, 1e-8, 1 - 0.9 ** step,
              (1 - 0.999 ** step) ** 0.5, wd, float(decoupled), param, m, v)
    for ours, theirs in zip((param, m, v), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, **_close(compiled))


@pytest.mark.parametrize("momentum", [0.0, 0.8])
def test_rmsprop_step(compiled, rng, momentum):
    param, grad, buffer = _arrays(compiled, rng, 50, 50, 50)
    square_avg = np.abs(_arrays(compiled, rng, 50)[0])
    expected = [a.copy() for a in (param, square_avg, buffer)]
    for _ in range(3):
        REFERENCE.rmsprop_step(expected[0], grad, expected[1], expected[2] if momentum else None,
                               0.01, 0.9, 1e-8, momentum, 0.05)
        if momentum:
            _call(compiled, "rmsprop_momentum_step", 50, grad, 0.01, 0.9, 1e-8, momentum, 0.05,
                  param, square_avg, buffer)
        else:
            _call(compiled, "rmsprop_step", 50, grad, 0.01, 0.9, 1e-8, 0.05, param, square_avg)
    for ours, theirs in zip((param, square_avg, buffer), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, **_close(compiled))


def test_adagrad_step(compiled, rng):
    param, grad = _arrays(compiled, rng, 50, 50)
    total = np.abs(_arrays(compiled, rng, 50)[0])
    expected = [param.copy(), total.copy()]
    for _ in range(3):
        REFERENCE.adagrad_step(expected[0], grad, expected[1], 0.05, 1e-10, 0.05)
        _call(compiled, "adagrad_step", 50, grad, 0.05, 1e-10, 0.05, param, total)
    for ours, theirs in zip((param, total), expected, strict=True):
        np.testing.assert_allclose(ours, theirs, **_close(compiled))


def test_softmax_cross_entropy_grad(compiled, rng):
    softmax, target = _arrays(compiled, rng, (6, 4), (6, 4))
    grad = np.empty_like(softmax)
    _call(compiled, "softmax_cross_entropy_grad", grad.size, softmax, target, 6.0, grad)
    np.testing.assert_allclose(grad, REFERENCE.softmax_cross_entropy_grad(softmax, target),
                               **_close(compiled))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_cross_entropy_rows(compiled, rng, scale):
    """One thread per row: softmax and loss, soft targets, logits beyond exp's range."""
    logits, = _arrays(compiled, rng, (7, 5), scale=scale)
    target = rng.dirichlet(np.ones(5), size=7).astype(compiled[1])
    row_loss, softmax = np.empty(7, dtype=compiled[1]), np.empty_like(logits)
    _call(compiled, "softmax_cross_entropy_rows", 7, logits, target, 5, 7.0, row_loss, softmax)
    loss, expected_softmax = REFERENCE.softmax_cross_entropy(logits, target)
    np.testing.assert_allclose(softmax, expected_softmax, **_close(compiled))
    np.testing.assert_allclose(row_loss.sum(), loss, rtol=_close(compiled)["rtol"] * 10)


def _mask(compiled, rng, shape, dropout):
    """A 0/1 dropout mask, or all ones (what CuPy passes as the scalar 1 without dropout)."""
    if not dropout:
        return np.ones(shape, dtype=compiled[1])
    return (rng.random(shape) < 0.6).astype(compiled[1])


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("kind", INSTANCES)
def test_bias_activation(compiled, rng, kind, dropout):
    z, bias = _arrays(compiled, rng, (6, 4), (1, 4), scale=4.0)
    mask = _mask(compiled, rng, z.shape, dropout)
    broadcast_bias = np.ascontiguousarray(np.broadcast_to(bias, z.shape))  # CuPy's job
    y = np.empty_like(z)
    _call(compiled, f"bias_{kind.replace('.', '_')}", z.size, z, broadcast_bias, mask, y)
    expected = REFERENCE.bias_activation(z, bias, INSTANCES[kind], mask if dropout else None)
    np.testing.assert_allclose(y, expected, **_close(compiled))


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("kind", INSTANCES)
def test_activation_grad(compiled, rng, kind, dropout):
    activation = INSTANCES[kind]
    z, dy = _arrays(compiled, rng, (6, 4), (6, 4), scale=4.0)
    mask = _mask(compiled, rng, z.shape, dropout)
    y = activation.apply(np, z) * mask
    dx = np.empty_like(z)
    _call(compiled, f"{kind.replace('.', '_')}_grad", z.size, dy, y, mask, dx)
    expected = REFERENCE.activation_grad(dy, y, activation, mask if dropout else None)
    np.testing.assert_allclose(dx, expected, **_close(compiled))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_softmax_cross_entropy_rows_with_logits_beyond_the_dtypes_range(compiled):
    """Logits ± 0.6 × the largest number differ by more than it: the loss stays finite and
    matches the reference (zero targets add 0, not 0·∞)."""
    dtype = compiled[1]
    big = 0.6 * np.finfo(dtype).max
    logits = np.array([[big, -big, 0.0], [0.0, 1.0, -big]], dtype=dtype)
    target = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=dtype)
    row_loss, softmax = np.empty(2, dtype=dtype), np.empty_like(logits)
    _call(compiled, "softmax_cross_entropy_rows", 2, logits, target, 3, 2.0, row_loss, softmax)
    loss, expected_softmax = REFERENCE.softmax_cross_entropy(logits, target)
    assert np.isfinite(row_loss).all() and np.isfinite(loss)
    np.testing.assert_allclose(row_loss.sum(), loss, rtol=1e-6)
    np.testing.assert_allclose(softmax, expected_softmax, **_close(compiled))


# at and beyond the kinks: z + b lands exactly on 0 and 6, just beside them, and far out
KINK_Z = np.array([[-1e6, -6.0, -1e-3, -2.0, 1e-3, 5.999, 4.0, 6.001, 1e6]])
KINK_B = np.array([[0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 2.0, 0.0, 0.0]])  # s: ..., 0, ..., 6, ...


@pytest.mark.parametrize("dropout", [False, True], ids=["plain", "dropout"])
@pytest.mark.parametrize("kind", INSTANCES)
def test_activation_kernels_at_and_beyond_the_kinks(compiled, kind, dropout):
    activation, dtype = INSTANCES[kind], compiled[1]
    z, bias = KINK_Z.astype(dtype), KINK_B.astype(dtype)
    mask = (np.arange(z.size) % 3 != 1).astype(dtype).reshape(z.shape) if dropout else (
        np.ones_like(z))
    y = np.empty_like(z)
    _call(compiled, f"bias_{kind.replace('.', '_')}", z.size, z, bias, mask, y)
    np.testing.assert_allclose(
        y, REFERENCE.bias_activation(z, bias, activation, mask if dropout else None),
        **_close(compiled))
    dy, dx = np.linspace(1.0, 3.0, z.size).astype(dtype).reshape(z.shape), np.empty_like(z)
    _call(compiled, f"{kind.replace('.', '_')}_grad", z.size, dy, y, mask, dx)
    np.testing.assert_allclose(
        dx, REFERENCE.activation_grad(dy, y, activation, mask if dropout else None),
        **_close(compiled))
    if kind == "relu6":  # dy passes only where 0 < z + b < 6 (and the mask keeps the unit)
        inside = np.array([[0, 0, 0, 0, 1, 1, 0, 0, 0]], dtype=dtype)
        np.testing.assert_array_equal(dx, dy * inside * mask)
