"""Backend selection, clear errors for unusable backends, and moving models between backends."""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

import xnn
from xnn import (
    BackendUnavailableError,
    Dense,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    available_backends,
    get_backend,
    to_numpy,
)
from xnn.backends import registry
from xnn.tools.testing import assert_backend_close, backend_tolerance


def test_unknown_backend_lists_the_known_names():
    with pytest.raises(ValueError, match="'numpy', 'cupy', 'array_api_strict', 'torch', "
                                         "'torch:cuda', 'torch:mps', 'auto'"):
        NeuralNetwork([Dense(2)], MeanSquaredError(), backend="tensorflow")


def test_environment_variable_picks_the_default(monkeypatch):
    monkeypatch.setenv("XNN_BACKEND", "array_api_strict")
    assert NeuralNetwork([Dense(2)], MeanSquaredError()).backend.name == "array_api_strict"
    monkeypatch.delenv("XNN_BACKEND")
    assert NeuralNetwork([Dense(2)], MeanSquaredError()).backend.name == "numpy"


def test_available_backends_on_this_machine():
    names = available_backends()
    assert names[0] == "numpy" and "array_api_strict" in names
    expected_auto = next((n for n in ("cupy", "torch:cuda") if n in names), "numpy")
    assert get_backend("auto") == get_backend(expected_auto)


def _fresh_cupy(monkeypatch, module):
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", module)


def test_cupy_not_installed_says_how_to_install(monkeypatch):
    _fresh_cupy(monkeypatch, None)  # a None entry makes `import cupy` raise ImportError
    with pytest.raises(BackendUnavailableError, match=r"not installed.*xnn-dlfs\[cuda12\]"):
        NeuralNetwork([Dense(2)], MeanSquaredError(), backend="cupy")
    assert "cupy" not in available_backends()


def test_cupy_without_a_device_says_so(monkeypatch):
    def no_device():
        raise RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected")

    fake = types.SimpleNamespace(cuda=types.SimpleNamespace(
        runtime=types.SimpleNamespace(getDeviceCount=no_device)))
    _fresh_cupy(monkeypatch, fake)
    with pytest.raises(BackendUnavailableError, match="no CUDA device is usable"):
        NeuralNetwork([Dense(2)], MeanSquaredError(), backend="cupy")


def test_import_xnn_does_not_import_cupy():
    code = "import sys, xnn; print('cupy' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


def test_device_arrays_are_refused_by_another_backend():
    strict = get_backend("array_api_strict")
    x = strict.asarray(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"xnn.to_numpy\(x\)"):
        get_backend("numpy").asarray(x)
    with pytest.raises(RuntimeError):  # the stand-in refuses implicit conversion, as CuPy does
        np.asarray(x)


def test_to_numpy_returns_an_owned_host_copy(backend):
    x = backend.asarray(np.arange(6.0).reshape(2, 3))
    host = to_numpy(x)
    assert isinstance(host, np.ndarray)
    host[0, 0] = 99.0
    assert to_numpy(x)[0, 0] == 0.0


def test_forward_accepts_host_and_backend_arrays(backend, rng):
    X = rng.standard_normal((5, 4))
    net = NeuralNetwork([Dense(3, Tanh())], MeanSquaredError(), backend=backend)
    from_host = net.forward(X)
    assert_backend_close(net.forward(backend.asarray(X)), from_host)
    assert_backend_close(from_host, backend.asarray(to_numpy(from_host)), backend=backend)


def test_assert_backend_close_catches_a_silent_fallback_to_numpy():
    strict = get_backend("array_api_strict")
    expected = strict.asarray(np.ones(3))
    with pytest.raises(AssertionError, match="backend 'numpy', expected 'array_api_strict'"):
        assert_backend_close(np.ones(3), expected)
    with pytest.raises(AssertionError, match="dtype float32, expected float64"):
        assert_backend_close(strict.asarray(np.ones(3, dtype=np.float32)), expected)


def test_model_moves_between_backends_with_optimizer_state(backend, rng):
    X, y = rng.standard_normal((30, 4)), rng.integers(0, 3, 30)

    def trained_then_continued(move_to):
        net = NeuralNetwork([Dense(6, Tanh(), dropout=0.8), Dense(3)], SoftmaxCrossEntropy(),
                            seed=2, dtype="float64")
        optimizer = SGDMomentum(0.1, momentum=0.9)
        trainer = Trainer(net, optimizer)
        trainer.fit(X, y, X, y, epochs=2, eval_every=10, batch_size=8, verbose=False)
        before = [to_numpy(a) for a in [*net.params(), optimizer.velocity]]
        assert net.to(move_to) is net
        for array in [*net.params(), *net.param_grads(), optimizer.velocity]:
            assert get_backend(move_to).owns(array)
        for copied, original in zip([*net.params(), optimizer.velocity], before, strict=True):
            np.testing.assert_array_equal(to_numpy(copied), original)  # a copy: exact
        trainer.fit(X, y, X, y, epochs=2, eval_every=10, batch_size=8, restart=False,
                    verbose=False)
        return [to_numpy(p) for p in net.params()]

    steps = 2 * 4  # on the target backend: 2 epochs of 30 rows in batches of 8
    tolerance = backend_tolerance(backend, "float64", steps, rtol=1e-12)
    for moved, stayed in zip(trained_then_continued(backend), trained_then_continued("numpy"),
                             strict=True):
        np.testing.assert_allclose(moved, stayed, **tolerance)


def test_dtype_accepts_numpy_dtypes(backend):
    net = NeuralNetwork([Dense(2)], MeanSquaredError(), backend=backend, dtype=np.float64)
    assert net.dtype == "float64"
    out = net.forward(np.ones((1, 3), dtype=np.float32))
    assert_backend_close(out, backend.asarray(to_numpy(out), backend.dtype("float64")))


def test_public_names():
    assert sorted(xnn.__all__) == sorted(set(xnn.__all__))
    for name in xnn.__all__:
        assert hasattr(xnn, name), name
    public = {n for n in dir(xnn) if not n.startswith("_") and n[0].isupper()}
    assert public <= set(xnn.__all__), public - set(xnn.__all__)


def test_assert_backend_close_tolerances_follow_the_dtype(backend):
    one = backend.asarray(np.ones(3, dtype=np.float32))
    assert_backend_close(backend.asarray(np.full(3, 1 + 2e-7, np.float32)), one)  # ~1 ulp
    with pytest.raises(AssertionError):
        assert_backend_close(backend.asarray(np.full(3, 1.001, np.float32)), one)
    exact = backend.asarray(np.ones(3))
    with pytest.raises(AssertionError):
        assert_backend_close(backend.asarray(np.full(3, 1 + 1e-9)), exact)


def test_backend_tolerance_is_exact_only_where_the_kernels_are_numpys():
    for name in ("numpy", "array_api_strict"):
        assert backend_tolerance(name, "float64") == {"rtol": 0.0, "atol": 0.0}
        assert backend_tolerance(get_backend(name), np.float32, 50) == {"rtol": 0.0, "atol": 0.0}
        assert backend_tolerance(name, "float64", 9, rtol=1e-12) == {"rtol": 1e-12, "atol": 0.0}
    # cupy need not be installed: a name is enough
    assert backend_tolerance("cupy", "float64") == {"rtol": 1e-10, "atol": 1e-10}
    assert backend_tolerance("cupy", np.float32) == {"rtol": 1e-5, "atol": 1e-5}
    assert backend_tolerance("cupy", "float64", 28) == pytest.approx({"rtol": 2.8e-9,
                                                                      "atol": 2.8e-9})
    assert backend_tolerance("cupy", "float64", rtol=1e-6, atol=1e-12) == {"rtol": 1e-6,
                                                                            "atol": 1e-10}
    assert backend_tolerance("cupy", "int64") == {"rtol": 0.0, "atol": 0.0}  # integers: exact


def test_xnn_test_backends_skips_the_others_without_probing_them(monkeypatch):
    from xnn.tools.testing import backend_params

    monkeypatch.setenv("XNN_TEST_BACKENDS", "numpy,array_api_strict")
    probed = []
    monkeypatch.setattr("xnn.tools.testing.get_backend", lambda name: probed.append(name))
    params = {p.id: [m.kwargs.get("reason") for m in p.marks if m.name == "skip"]
              for p in backend_params()}
    assert probed == ["numpy", "array_api_strict"]
    assert params["numpy"] == [] and params["array_api_strict"] == []
    assert params["torch"] == ["torch: not in $XNN_TEST_BACKENDS"]
    assert params["cupy"] == ["cupy: not in $XNN_TEST_BACKENDS"]
