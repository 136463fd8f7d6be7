"""PyTorch tensors as a backend: names, devices, copies, DLPack, autograd, parity, the commands.

Every other test already runs on ``torch`` through the ``backend`` fixture; these are the
things only torch has: a device in the name, tensors that require grad, a CPU backend that
shares NumPy's memory, MPS without float64.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch: not installed (pip install -e '.[torch]')")
pytest.importorskip("array_api_compat", reason="torch: array-api-compat not installed")

import xnn  # noqa: E402
from xnn import (  # noqa: E402
    Dense,
    Linear,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)
from xnn.backends import (  # noqa: E402
    BackendUnavailableError,
    get_backend,
    parse_backend_name,
    registry,
)
from xnn.backends.torch_backend import TorchBackend  # noqa: E402
from xnn.tools.parity import check_parity  # noqa: E402


def model(backend="torch", dtype="float64", keep=0.8, seed=3):
    return NeuralNetwork([Dense(16, Tanh(), weight_init="glorot", dropout=keep),
                          Dense(3, Linear(), weight_init="glorot")],
                         SoftmaxCrossEntropy(), seed=seed, backend=backend, dtype=dtype)


@pytest.fixture
def data(rng):
    return rng.standard_normal((96, 12)), rng.integers(0, 3, 96)


def fit(net, X, y, **kwargs):
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9), log=lambda line: None)
    return trainer.fit(X, y, X[:32], y[:32], epochs=3, eval_every=1, batch_size=16, seed=7,
                       verbose=0, **kwargs)


# -- names ------------------------------------------------------------------------------------
@pytest.mark.parametrize(("name", "parsed"), [
    ("torch", ("torch", None)), ("torch:cpu", ("torch", None)), ("torch:cuda", ("torch", "cuda")),
    ("torch:cuda:1", ("torch", "cuda:1")), ("torch:mps", ("torch", "mps")),
    ("cupy", ("cupy", None)), ("cupy:2", ("cupy", "2")), ("numpy", ("numpy", None)),
])
def test_backend_names_parse(name, parsed):
    assert parse_backend_name(name) == parsed


@pytest.mark.parametrize("name", ["torch:tpu", "torch:cuda:x", "torch:mps:0", "cupy:gpu",
                                  "numpy:0", "jax", ""])
def test_unknown_names_list_the_known_ones(name):
    with pytest.raises(ValueError, match=r"known backends are .*'torch'.*'torch:cuda:N'"):
        get_backend(name)


def test_torch_is_the_cpu_and_lists_as_available():
    backend = get_backend("torch")
    assert backend is get_backend("torch:cpu") and backend.name == "torch"
    assert backend.library == "torch" and backend.on_host and str(backend.device) == "cpu"
    assert "torch" in xnn.available_backends()
    assert backend == TorchBackend(torch, backend.xp, "cpu")  # equal by library and device


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_torch_cuda_without_a_gpu_says_why():
    with pytest.raises(BackendUnavailableError, match=r"no usable CUDA device.*backend='torch'"):
        get_backend("torch:cuda:0")
    assert "torch:cuda" not in xnn.available_backends()
    assert get_backend("auto").name in ("numpy", "cupy")  # auto: CuPy, then torch CUDA, NumPy


def test_missing_torch_is_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch → ImportError
    monkeypatch.setattr(registry, "_CACHE", {})
    with pytest.raises(BackendUnavailableError, match=r"pip install 'xnn-dlfs\[torch\]'"):
        get_backend("torch")
    assert "torch" not in xnn.available_backends()


def test_importing_xnn_and_training_on_numpy_never_imports_torch():
    code = ("import sys, numpy as np, xnn\n"
            "net = xnn.NeuralNetwork([xnn.Dense(3)], xnn.MeanSquaredError(), seed=1)\n"
            "xnn.Trainer(net, xnn.SGD(0.1)).fit(np.ones((8, 2)), np.ones((8, 3)), epochs=1,"
            " verbose=0)\n"
            "print(sorted(m for m in ('torch', 'array_api_compat') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "[]"


def test_mps_refuses_float64_naming_the_reason():
    mps = TorchBackend(torch, get_backend("torch").xp, "mps")  # made, never used, on any OS
    assert mps.name == "torch:mps"
    mps.check_dtype("float32")
    with pytest.raises(ValueError, match=r"float64.*torch:mps.*no 64-bit floating point"):
        model(backend=mps, dtype="float64")


# -- copies, devices, DLPack --------------------------------------------------------------------
def test_numpy_data_is_shared_on_the_cpu_not_copied(rng):
    backend = get_backend("torch")
    X = rng.standard_normal((5, 4)).astype(np.float32)
    before = backend.host_to_device
    tensor = backend.asarray(X)
    assert tensor.data_ptr() == X.ctypes.data and backend.host_to_device == before
    assert xnn.from_dlpack(X, "torch").data_ptr() == X.ctypes.data
    cast = backend.asarray(X, backend.dtype("float64"))  # a cast is a new array, on the host
    assert cast.dtype == torch.float64 and backend.host_to_device == before


def test_a_fit_on_the_cpu_copies_nothing_and_results_hand_back_without_copies(data):
    X, y = data
    net = model()
    fit(net, X, y)
    assert net.backend.host_to_device == 0
    out = net.forward(X, inference=True)
    assert isinstance(out, torch.Tensor) and not out.requires_grad
    assert torch.from_dlpack(out).data_ptr() == out.data_ptr()
    numpy_out = model(backend="numpy").forward(X, inference=True)
    assert torch.from_dlpack(numpy_out).data_ptr() == numpy_out.ctypes.data


def test_a_tensor_on_another_device_is_refused_naming_both(data):
    _, y = data
    meta = torch.empty((96, 12), device="meta", dtype=torch.float64)
    with pytest.raises(ValueError, match="torch tensor on meta, but the model is on 'torch'"):
        fit(model(), meta, y)
    with pytest.raises(ValueError, match="on meta, but the model is on 'torch' \\(cpu\\)"):
        xnn.from_dlpack(meta, "torch")
    with pytest.raises(TypeError, match=r"torch.Tensor on meta"):
        model(backend="numpy").forward(meta)


@pytest.mark.parametrize("backend", ["torch", "numpy"])
def test_tensors_that_require_grad_are_read_and_never_modified(backend, data):
    X, y = data
    plain = fit(model(backend), X, y)
    features = torch.tensor(X, requires_grad=True)
    kept = features.detach().clone()
    history = fit(model(backend), features, torch.tensor(y))
    assert [r["val_loss"] for r in history.records] == [r["val_loss"] for r in plain.records]
    assert torch.equal(features.detach(), kept) and features.grad is None
    assert model(backend).predict(features).shape == (96, 3)


def test_a_torch_cpu_tensor_is_read_by_a_numpy_model_in_place(data):
    X, _ = data
    features = torch.tensor(X)
    backend = get_backend("numpy")
    assert backend.asarray(features).ctypes.data == features.data_ptr()  # no copy
    assert xnn.from_dlpack(features, "numpy").ctypes.data == features.data_ptr()


def test_no_tensor_the_model_makes_requires_grad(data):
    X, y = data
    net = model()
    fit(net, X, y)
    assert not any(p.requires_grad for p in net.params())
    assert not net.store.values.requires_grad and not net.store.grads.requires_grad


# -- moving, saving, parity ---------------------------------------------------------------------
def test_checkpoints_cross_between_torch_and_numpy(data, tmp_path):
    X, y = data
    net = model()
    fit(net, X, y)
    net.save(tmp_path / "torch.npz")
    on_numpy = NeuralNetwork.load(tmp_path / "torch.npz", backend="numpy")
    saved = [to_numpy(p) for p in net.params()]
    for loaded, value in zip(on_numpy.params(), saved, strict=True):
        np.testing.assert_array_equal(loaded, value)  # the very numbers
    expected = to_numpy(net.forward(X, inference=True))  # another BLAS: not bit for bit
    np.testing.assert_allclose(on_numpy.forward(X, inference=True), expected, rtol=1e-12)
    on_numpy.save(tmp_path / "numpy.npz")
    back = NeuralNetwork.load(tmp_path / "numpy.npz", backend="torch")
    assert isinstance(back.forward(X, inference=True), torch.Tensor)
    np.testing.assert_array_equal(to_numpy(back.forward(X, inference=True)), expected)


def test_to_moves_between_numpy_and_torch(data):
    X, y = data
    net = model(backend="numpy")
    fit(net, X, y)
    expected = net.forward(X, inference=True)
    net.to("torch")
    assert net.backend.name == "torch" and isinstance(next(net.params()), torch.Tensor)
    np.testing.assert_allclose(to_numpy(net.forward(X, inference=True)), expected, rtol=1e-12)
    fit(net, X, y)  # and it trains there
    net.to("numpy")
    assert isinstance(next(net.params()), np.ndarray)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_numpy_and_torch_agree_over_100_steps(rng, dtype):
    X, y = rng.standard_normal((600, 30)), rng.integers(0, 10, 600)
    def build(backend, dtype):
        net = NeuralNetwork([Dense(32, Tanh(), weight_init="glorot", dropout=0.8),
                             Dense(10, Linear(), weight_init="glorot")], SoftmaxCrossEntropy(),
                            seed=5, backend=backend, dtype=dtype)
        return net, SGDMomentum(0.1, momentum=0.9)

    report = check_parity(build, X, y, ("numpy", "torch"), steps=100, dtype=dtype,
                          batch_size=60, seed=9)
    assert report.passed, report.format()
    (comparison,) = report.comparisons
    worst = max(d.max_rel for d in comparison.params)
    assert worst <= (1e-10 if dtype == "float64" else 1e-3)


def test_a_planted_divergence_on_torch_names_its_step_and_parameter(rng):
    X, y = rng.standard_normal((90, 20)), rng.integers(0, 3, 90)

    class Planted(SGDMomentum):
        taken = 0

        def step(self):
            super().step()
            self.taken += 1
            if self.net.backend.name == "torch" and self.taken == 4:
                list(self.net.params())[2][0, 0] *= 1 + 1e-6

    def make(backend, dtype):
        return model(backend, dtype, keep=1.0), Planted(0.1, momentum=0.9)

    report = check_parity(make, X, y, ("numpy", "torch"), steps=8, batch_size=16, seed=5)
    divergence = report.comparisons[0].divergence
    assert not report.passed and (divergence.step, divergence.name) == (4, "layers[1].W")


# -- the commands -----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("model_name", ["chapter", "deep"])
def test_parity_command_numpy_torch(capsys, model_name, dtype):
    from xnn.tools.parity_command import main

    assert main(["numpy", "torch", "--model", model_name, "--dtype", dtype, "--steps", "20",
                 "--rows", "300"]) == 0
    assert f"PASS: numpy vs torch in {dtype}" in capsys.readouterr().out


def test_chapter4_runs_on_torch(tmp_path, monkeypatch, capsys):
    from conftest import write_tiny_mnist

    from xnn.tools.cli import main

    directory = write_tiny_mnist(tmp_path / "idx")
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XNN_OFFLINE", "1")
    assert main(["chapter4", "momentum", "--epochs", "2", "--data", str(directory),
                 "--results", str(tmp_path / "results"), "--backend", "torch",
                 "--no-progress"]) == 0
    assert "torch float32" in capsys.readouterr().out
    assert main(["chapter4", "momentum", "--backend", "torch:mps", "--dtype", "float64"]) in (2, 3)


# -- the fast paths against the reference, in every layout and with every option --------------
def _tensor(rng, shape, dtype, layout="C"):
    values = torch.tensor(rng.standard_normal(shape), dtype=dtype)
    if layout == "strided":  # a transposed view: neither C- nor F-contiguous for 2-D
        values = values.T.contiguous().T if values.ndim == 2 else values.repeat(2)[::2]
        assert values.ndim == 1 or not values.is_contiguous()
    return values


@pytest.mark.parametrize("layout", ["C", "strided"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_torch_kernels_equal_the_reference(rng, dtype, layout):
    from xnn.backends import Kernels

    backend = get_backend("torch")
    fast, reference = backend.kernels, Kernels(backend.xp)
    tolerance = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {
        "rtol": 1e-5, "atol": 1e-6}
    a, b = _tensor(rng, (7, 5), dtype, layout), _tensor(rng, (5, 3), dtype, layout)
    out = torch.empty((7, 3), dtype=dtype)
    assert fast.matmul(a, b, out=out) is out
    torch.testing.assert_close(out, reference.matmul(a, b), **tolerance)
    rows = torch.tensor([4, 0, 4, 6])
    torch.testing.assert_close(fast.take_rows(a, rows, out=torch.empty((4, 5), dtype=dtype)),
                               reference.take_rows(a, rows), **tolerance)
    torch.testing.assert_close(fast.sum_rows(a, out=torch.empty((1, 5), dtype=dtype)),
                               reference.sum_rows(a), **tolerance)
    target = torch.tensor(rng.dirichlet(np.ones(5), size=7), dtype=dtype)
    for logits in (a, a * 1e4):  # and logits far apart: log softmax held finite
        loss, softmax = fast.softmax_cross_entropy(logits, target)
        expected_loss, expected_softmax = reference.softmax_cross_entropy(logits, target)
        assert torch.isfinite(loss) and loss.shape == ()
        torch.testing.assert_close(loss, expected_loss, **tolerance)
        torch.testing.assert_close(softmax, expected_softmax, **tolerance)
        torch.testing.assert_close(fast.softmax_cross_entropy_grad(softmax, target),
                                   reference.softmax_cross_entropy_grad(softmax, target),
                                   **tolerance)


UPDATES = {
    "sgd": lambda k, p, g, s, o: k.sgd_step(p, g, 0.1, o[0], s["wd"], o[1]),
    "momentum": lambda k, p, g, s, o: k.momentum_step(p, g, s["a"], 0.1, 0.9, o[0], s["wd"],
                                                      s["nesterov"], o[1]),
    "adam": lambda k, p, g, s, o: k.adam_step(p, g, s["a"], s["b"], 1e-2, (0.9, 0.999), 1e-8,
                                              s["t"], s["wd"], s["decoupled"], o[0], o[1]),
    "rmsprop": lambda k, p, g, s, o: k.rmsprop_step(p, g, s["a"], s["b"] if s["nesterov"]
                                                    else None, 1e-2, 0.99, 1e-8, 0.9, s["wd"],
                                                    o[0], o[1]),
    "adagrad": lambda k, p, g, s, o: k.adagrad_step(p, g, s["a"], 1e-2, 1e-10, s["wd"], o[0],
                                                    o[1]),
}


@pytest.mark.parametrize("variant", [
    {"wd": 0.0, "nesterov": False, "decoupled": False},
    {"wd": 0.01, "nesterov": True, "decoupled": False},
    {"wd": 0.01, "nesterov": False, "decoupled": True},
], ids=["plain", "decay-nesterov", "decoupled"])
@pytest.mark.parametrize("rule", UPDATES)
def test_torch_updates_equal_the_reference(rng, rule, variant):
    from xnn.backends import Kernels

    backend = get_backend("torch")
    states = []
    for kernels in (backend.kernels, Kernels(backend.xp)):
        param = torch.tensor(rng.standard_normal(50) if not states else states[0][2])
        state = {**variant, "a": torch.zeros(50, dtype=torch.float64),
                 "b": torch.zeros(50, dtype=torch.float64)}
        start = param.clone()
        gradients = np.random.default_rng(1).standard_normal((5, 50))
        for t, grad in enumerate(gradients, start=1):
            state["t"] = t
            grad = torch.tensor(grad)
            kept = grad.clone()
            UPDATES[rule](kernels, param, grad, state,
                          (torch.empty(50, dtype=torch.float64),
                           torch.empty(50, dtype=torch.float64)))
            assert torch.equal(grad, kept)  # the gradient is read, never written
        states.append((param, state, start.numpy()))
    (fast, fast_state, _), (slow, slow_state, _) = states
    torch.testing.assert_close(fast, slow, rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fast_state["a"], slow_state["a"], rtol=1e-12, atol=1e-14)
    torch.testing.assert_close(fast_state["b"], slow_state["b"], rtol=1e-12, atol=1e-14)


def test_torch_clip_norm_equals_the_reference(rng):
    from xnn.backends import Kernels

    backend = get_backend("torch")
    for max_norm in (0.5, 1e6):  # clipped, and left alone
        grad = torch.tensor(rng.standard_normal(40))
        expected = grad.clone()
        norm = backend.kernels.clip_norm(grad, max_norm)
        expected_norm = Kernels(backend.xp).clip_norm(expected, max_norm)
        torch.testing.assert_close(norm, expected_norm, rtol=1e-12, atol=0)
        torch.testing.assert_close(grad, expected, rtol=1e-12, atol=1e-15)


def test_the_torch_example_runs(monkeypatch, capsys):
    import runpy
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "torch_interop.py"
    monkeypatch.setattr(sys, "argv", [str(example)])
    runpy.run_path(str(example), run_name="__main__")
    out = capsys.readouterr().out
    assert "X.grad is None" in out
    worst = float(out.rsplit("difference ", 1)[1])
    assert worst < 1e-10  # float64, 100 steps: rounding only
