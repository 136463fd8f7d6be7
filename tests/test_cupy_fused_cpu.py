"""CuPyFusedKernels' host side on the CPU: which value goes to which kernel parameter.

``CuPyFusedKernels`` is run on a stand-in for the ``cupy`` module (``tests/cuda_cpu.py``): NumPy,
whose ``ElementwiseKernel`` executes the g++-compiled CUDA body with CuPy's calling convention.
Every method is compared with the reference ``Kernels(np)``, with hyper-parameters that differ
from one another, so a swapped or dropped argument fails here without a GPU.
"""

from __future__ import annotations

import numpy as np
import pytest
from cuda_cpu import CTYPES, CompileError, StandInCuPy, compile_sources, compiler

from xnn import LeakyReLU, Tanh
from xnn.backends.cuda_sources import SOURCES, activation_sources
from xnn.backends.cupy_kernels import CuPyFusedKernels
from xnn.backends.kernels import Kernels
from xnn.nn.activations import ACTIVATIONS

INSTANCES = {**{name: cls() for name, cls in ACTIVATIONS.items()},
             "leaky_relu_0.2": LeakyReLU(0.2)}
ALL_SOURCES = dict(SOURCES)
for _key, _activation in INSTANCES.items():
    _forward, _backward = activation_sources(_activation)
    ALL_SOURCES[f"bias_{_key.replace('.', '_')}"] = _forward
    ALL_SOURCES[f"grad_{_key.replace('.', '_')}"] = _backward
REFERENCE = Kernels(np)


@pytest.fixture(scope="module")
def cupy():
    """The stand-in ``cupy`` module, with every kernel body compiled for float and double."""
    if compiler() is None:
        pytest.skip("no C++ compiler (g++) to compile the CUDA kernel bodies on the CPU")
    libraries = {}
    for ctype, dtype in CTYPES.items():
        try:
            libraries[np.dtype(dtype)] = compile_sources(ALL_SOURCES, ctype)
        except CompileError as error:
            pytest.fail(f"the CUDA kernel bodies do not compile as C++:\n{error}")
    return StandInCuPy(ALL_SOURCES, libraries)


@pytest.fixture
def fused(cupy):
    return CuPyFusedKernels(cupy)


@pytest.fixture(params=["float32", "float64"])
def dtype(request):
    return np.dtype(request.param)


def _close(dtype):
    return {"rtol": 2e-5, "atol": 1e-6} if dtype == np.float32 else {"rtol": 1e-12,
                                                                      "atol": 1e-14}


def _arrays(rng, dtype, *shapes, positive=False):
    arrays = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    return [np.abs(a) + dtype.type(0.1) for a in arrays] if positive else arrays


def _check_steps(fused, step, arrays, dtype):
    """Run ``step(kernels, *arrays)`` three times on copies for the fused kernels and for the
    reference, and compare every array (parameters and optimizer state)."""
    ours, theirs = [a.copy() for a in arrays], [a.copy() for a in arrays]
    for _ in range(3):
        step(fused, *ours)
        step(REFERENCE, *theirs)
    for index, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        np.testing.assert_allclose(a, b, **_close(dtype), err_msg=f"array {index}")
    assert not np.array_equal(ours[0], arrays[0])  # the step did something


def test_the_stand_in_builds_every_optimizer_kernel_at_once(cupy, fused):
    assert set(cupy.built) >= {source.name for source in SOURCES.values()}


@pytest.mark.parametrize("wd", [0.0, 0.03])
def test_sgd_step(fused, rng, dtype, wd):
    grad, = _arrays(rng, dtype, 40)
    _check_steps(fused, lambda k, p: k.sgd_step(p, grad, 0.05, None, wd), _arrays(
        rng, dtype, 40), dtype)


@pytest.mark.parametrize(("wd", "nesterov"), [(0.0, False), (0.03, False), (0.0, True),
                                              (0.03, True)])
def test_momentum_step(fused, rng, dtype, wd, nesterov):
    grad, = _arrays(rng, dtype, 40)
    _check_steps(fused, lambda k, p, v: k.momentum_step(p, grad, v, 0.05, 0.8, None, wd,
                                                        nesterov),
                 _arrays(rng, dtype, 40, 40), dtype)


@pytest.mark.parametrize(("wd", "decoupled"), [(0.0, False), (0.03, False), (0.03, True)])
def test_adam_step(fused, rng, dtype, wd, decoupled):
    grad, = _arrays(rng, dtype, 40)
    ours = _arrays(rng, dtype, 40) + _arrays(rng, dtype, 40, 40, positive=True)
    theirs = [a.copy() for a in ours]
    for step in (1, 2, 3):  # the bias corrections change with the step
        for kernels, (param, m, v) in ((fused, ours), (REFERENCE, theirs)):
            kernels.adam_step(param, grad, m, v, 0.02, (0.8, 0.95), 1e-3, step, wd, decoupled)
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a, b, **_close(dtype))


@pytest.mark.parametrize("momentum", [0.0, 0.7])
@pytest.mark.parametrize("wd", [0.0, 0.03])
def test_rmsprop_step(fused, rng, dtype, momentum, wd):
    grad, = _arrays(rng, dtype, 40)

    def step(k, p, square_avg, buffer):
        k.rmsprop_step(p, grad, square_avg, buffer if momentum else None, 0.02, 0.9, 1e-3,
                       momentum, wd)

    arrays = _arrays(rng, dtype, 40) + _arrays(rng, dtype, 40, 40, positive=True)
    _check_steps(fused, step, arrays, dtype)


@pytest.mark.parametrize("wd", [0.0, 0.03])
def test_adagrad_step(fused, rng, dtype, wd):
    grad, = _arrays(rng, dtype, 40)
    arrays = _arrays(rng, dtype, 40) + _arrays(rng, dtype, 40, positive=True)
    _check_steps(fused, lambda k, p, total: k.adagrad_step(p, grad, total, 0.05, 1e-3, wd),
                 arrays, dtype)


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_softmax_cross_entropy(fused, rng, dtype, layout, scale):
    logits = (scale * rng.standard_normal((9, 5))).astype(dtype)
    target = rng.dirichlet(np.ones(5), size=9).astype(dtype)
    order = np.asfortranarray if layout == "F" else np.ascontiguousarray
    loss, softmax = fused.softmax_cross_entropy(order(logits), order(target))
    expected_loss, expected_softmax = REFERENCE.softmax_cross_entropy(logits, target)
    np.testing.assert_allclose(float(loss), float(expected_loss), rtol=_close(dtype)["rtol"])
    np.testing.assert_allclose(softmax, expected_softmax, **_close(dtype))
    np.testing.assert_allclose(fused.softmax_cross_entropy_grad(softmax, order(target)),
                               REFERENCE.softmax_cross_entropy_grad(softmax, target),
                               **_close(dtype))


KINKS = np.array([-50.0, -6.0, -1e-3, 0.0, 1e-3, 2.5, 5.999, 6.0, 6.001, 50.0])


@pytest.mark.parametrize("dropout", [None, "mask", "inference"])
@pytest.mark.parametrize("kind", INSTANCES)
def test_bias_activation_and_its_gradient(fused, rng, dtype, kind, dropout):
    """On the kinks exactly (zero bias), then on random values with a bias."""
    activation = INSTANCES[kind]
    z = np.vstack([KINKS, 4 * rng.standard_normal((5, KINKS.size))]).astype(dtype)
    dy, = _arrays(rng, dtype, z.shape)
    scale = {None: None, "inference": 0.8,
             "mask": (rng.random(z.shape) < 0.7).astype(dtype)}[dropout]
    for bias in (np.zeros((1, KINKS.size), dtype=dtype), *_arrays(rng, dtype, (1, KINKS.size))):
        y = fused.bias_activation(z, bias, activation, scale)
        expected_y = REFERENCE.bias_activation(z, bias, activation, scale)
        assert y.dtype == dtype and y.shape == z.shape
        np.testing.assert_allclose(y, expected_y, **_close(dtype))
        dx = fused.activation_grad(dy, expected_y, activation, scale)
        np.testing.assert_allclose(
            dx, REFERENCE.activation_grad(dy, expected_y, activation, scale), **_close(dtype))


def test_an_unregistered_activation_takes_the_generic_route(fused, rng):
    class Doubled(LeakyReLU):  # not registered itself: its own maths, never a kernel
        def apply(self, xp, x):
            return 2 * super().apply(xp, x)

    z, bias, dy = _arrays(rng, np.dtype("float64"), (4, 3), (1, 3), (4, 3))
    built = list(fused.xp.built)
    y = fused.bias_activation(z, bias, Doubled())
    np.testing.assert_allclose(y, REFERENCE.bias_activation(z, bias, Doubled()))
    np.testing.assert_allclose(fused.activation_grad(dy, y, Doubled()),
                               REFERENCE.activation_grad(dy, y, Doubled()))
    assert fused.xp.built == built  # no kernel was made for it


def test_the_defaults_are_the_references(fused, rng):
    """Weight decay 0 and the book's momentum unless asked otherwise."""
    dtype = np.dtype("float64")
    grad, = _arrays(rng, dtype, 20)
    _check_steps(fused, lambda k, p: k.sgd_step(p, grad, 0.05, None), _arrays(rng, dtype, 20),
                 dtype)
    _check_steps(fused, lambda k, p, v: k.momentum_step(p, grad, v, 0.05, 0.8, None),
                 _arrays(rng, dtype, 20, 20), dtype)


@pytest.mark.parametrize(("scale", "kind", "fused_kernels"), [
    (None, "tanh", ["xnn_bias_tanh", "xnn_tanh_grad"]),
    ("mask", "relu6", ["xnn_bias_relu6", "xnn_relu6_grad"]),
    (0.8, "sigmoid", ["xnn_bias_sigmoid"]),  # backward after inference: the generic route
    (None, "linear", ["xnn_bias_linear"]),  # the gradient is dy itself
    ("mask", "linear", ["xnn_bias_linear", "xnn_linear_grad"]),
])
def test_each_call_takes_its_kernel(cupy, fused, rng, scale, kind, fused_kernels):
    activation = ACTIVATIONS[kind]()
    z, bias, dy = _arrays(rng, np.dtype("float64"), (4, 3), (1, 3), (4, 3))
    scale = (rng.random((4, 3)) < 0.5).astype(np.float64) if scale == "mask" else scale
    del cupy.calls[:]
    y = fused.bias_activation(z, bias, activation, scale)
    dx = fused.activation_grad(dy, y, activation, scale)
    assert cupy.calls == fused_kernels
    np.testing.assert_allclose(dx, REFERENCE.activation_grad(dy, y, activation, scale),
                               rtol=1e-12)
    del cupy.calls[:]
    fused.softmax_cross_entropy_grad(*_arrays(rng, np.dtype("float64"), (4, 3), (4, 3)))
    fused.sgd_step(*_arrays(rng, np.dtype("float64"), 5, 5), 0.1, None)
    assert cupy.calls == ["xnn_sce_grad", "xnn_sgd_step"]


def test_kernels_are_made_once_per_activation_form(cupy, fused, rng):
    z, bias = _arrays(rng, np.dtype("float64"), (4, 3), (1, 3))
    before = len(cupy.built)
    for activation in (Tanh(), Tanh(), LeakyReLU(0.2), LeakyReLU(0.2), LeakyReLU()):
        fused.bias_activation(z, bias, activation)
    assert cupy.built[before:] == ["xnn_bias_tanh", "xnn_tanh_grad", "xnn_bias_leaky_relu",
                                   "xnn_leaky_relu_grad", "xnn_bias_leaky_relu",
                                   "xnn_leaky_relu_grad"]


def test_an_object_that_is_not_an_activation_takes_the_generic_route(cupy, fused, rng):
    class Halve:  # apply and derivative, nothing else
        def apply(self, xp, x):
            return x / 2

        def derivative(self, xp, output_grad, output):
            return output_grad / 2

        derivative_into = derivative

    z, bias, dy = _arrays(rng, np.dtype("float64"), (4, 3), (1, 3), (4, 3))
    del cupy.calls[:]
    np.testing.assert_allclose(fused.bias_activation(z, bias, Halve()), (z + bias) / 2)
    np.testing.assert_allclose(fused.activation_grad(dy, z, Halve()), dy / 2)
    assert cupy.calls == []
