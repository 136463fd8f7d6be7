"""CuPy 13 and host→device copies, checked on the CPU.

CuPy 13 (which the ``cuda12`` extra accepts) has no ``cupy.astype``, refuses
``asarray(copy=...)``, and its ``matmul(out=)`` returns a new view of ``out`` rather than
``out`` itself. NumPy dressed that way, run through the real :class:`CuPyBackend`, trains the
same model as NumPy does.
"""

from __future__ import annotations

import types

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer, to_numpy
from xnn.backends.cupy_backend import CuPyBackend
from xnn.core.inputs import as_features, as_targets


class CuPy13(types.ModuleType):
    """NumPy with CuPy 13's differences (the ones xnn could trip on)."""

    ndarray = np.ndarray
    cuda = types.SimpleNamespace(Device=lambda: "stand-in device 0")

    def __init__(self) -> None:
        super().__init__("cupy")
        self.matmul_calls = 0

    def __getattr__(self, name: str):
        if name == "astype":
            raise AttributeError("module 'cupy' has no attribute 'astype' (CuPy < 14)")
        return getattr(np, name)

    def asarray(self, a, dtype=None, order=None):  # no copy= before CuPy 14
        return np.asarray(a, dtype=dtype, order=order)

    def matmul(self, a, b, out=None):
        self.matmul_calls += 1
        result = np.matmul(a, b, out=out)
        return result if out is None else result[...]  # a new view of out, not out

    def asnumpy(self, a):
        return np.array(a, copy=True)


@pytest.fixture
def cupy13():
    return CuPyBackend(CuPy13())


def _fit(backend, X, y):
    net = NeuralNetwork([Dense(8, Tanh(), dropout=0.8), Dense(3)], SoftmaxCrossEntropy(),
                        seed=3, backend=backend, dtype="float64")
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9), log=lambda line: None)
    trainer.fit(X, y, X, y, epochs=4, eval_every=1, batch_size=10)  # early stopping copies
    return net


def test_training_on_cupy13_equals_numpy(cupy13, rng):
    X, y = rng.standard_normal((60, 5)), rng.integers(0, 3, 60)
    net = _fit(cupy13, X, y)
    assert cupy13.xp.matmul_calls > 0  # the out= path ran
    store = net.store
    net.forward(X)
    assert net.store is store  # the store never depends on what matmul returns
    reference = _fit("numpy", X, y)
    for ours, theirs in zip(net.params(), reference.params(), strict=True):
        np.testing.assert_allclose(to_numpy(ours), to_numpy(theirs), rtol=1e-12, atol=1e-13)


def test_labels_and_narrowing_on_cupy13(cupy13, rng):
    X = rng.standard_normal((6, 4))
    features = as_features(X, cupy13, "float32", None)
    assert features.dtype == np.float32
    targets = as_targets(np.array([0, 2, 1, 0, 1, 2]), cupy13, "float32", 3, 6)
    assert targets.dtype == np.float32 and targets.sum() == 6
    assert cupy13.copy(features) is not features


def test_float64_data_crosses_at_the_models_float32(backend, rng):
    if backend.on_host:
        pytest.skip(f"{backend.name}'s data stays on the host: nothing crosses")
    X, y = rng.standard_normal((40, 7)), rng.integers(0, 3, 40)
    before = backend.host_to_device_bytes
    features = as_features(X, backend, "float32", None)
    assert backend.host_to_device_bytes - before == X.size * 4  # cast on the host
    assert backend.kind(features) == "f" and features.shape == X.shape
    np.testing.assert_array_equal(to_numpy(features), X.astype(np.float32))
    before = backend.host_to_device_bytes
    as_features(X.astype(np.uint8), backend, "float32", None)
    assert backend.host_to_device_bytes - before == X.size  # bytes cross, cast on the device
    before = backend.host_to_device_bytes
    as_targets(y, backend, "float32", 3, 40)
    assert backend.host_to_device_bytes - before == y.nbytes  # labels cross as integers


def test_large_host_data_is_cast_in_blocks(monkeypatch, rng):
    from xnn.backends import cupy_backend

    monkeypatch.setattr(cupy_backend, "CAST_BLOCK_BYTES", 200)
    xp = CuPy13()
    copies = []
    xp.asarray = lambda a, dtype=None, order=None: copies.append(a.nbytes) or np.asarray(a)
    X = rng.standard_normal((13, 5))
    moved = CuPyBackend(xp)._from_host(X, np.float32)  # the stand-in's arrays are host arrays
    assert moved.dtype == np.float32
    np.testing.assert_array_equal(moved, X.astype(np.float32))
    assert sum(copies) == X.size * 4 and len(copies) == 3  # 5 float64 rows (200 B) a block


def test_backends_differ_by_their_kernels_and_to_moves_between_them(rng):
    """``to()`` compares library, device and kernels: generic CuPy → fused CuPy is a move."""
    xp = CuPy13()
    xp.ElementwiseKernel = lambda *source: (lambda *args: None)  # compiled lazily on a GPU
    generic, fused = CuPyBackend(xp), CuPyBackend(xp, fused=True)
    assert generic != fused and generic == CuPyBackend(xp) and hash(generic) != hash(fused)
    net = NeuralNetwork([Dense(4, Tanh()), Dense(2)], SoftmaxCrossEntropy(), backend=generic)
    net.forward(rng.standard_normal((3, 5)))
    before = [to_numpy(p) for p in net.params()]
    assert net.to(fused) is net and net.backend is fused and net.store.backend is fused
    assert [type(op).__name__ for op in net.layers[0].operations] == [
        "WeightMultiply", "BiasActivation"]
    for moved, kept in zip(net.params(), before, strict=True):
        np.testing.assert_array_equal(to_numpy(moved), kept)
