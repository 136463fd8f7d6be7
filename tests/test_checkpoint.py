"""Checkpoints round-trip across backends; bad files fail clearly and nothing is half-written."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xnn import (
    Dense,
    LeakyReLU,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)
from xnn.nn.checkpoint import CheckpointError
from xnn.tools.testing import assert_backend_close, backend_tolerance


def _trained(backend, rng, dtype="float32"):
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    net = NeuralNetwork([Dense(8, LeakyReLU(0.05), dropout=0.9, weight_init="glorot"),
                         Dense(3, Tanh())], SoftmaxCrossEntropy(eps=1e-7), seed=11,
                        backend=backend, dtype=dtype)
    Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=2, eval_every=5, verbose=False)
    return net, X


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_onto_every_backend(backend, rng, tmp_path, dtype):
    net, X = _trained("numpy", rng, dtype)
    path = tmp_path / "model.npz"
    net.save(path)
    loaded = NeuralNetwork.load(path, backend=backend)
    assert loaded.backend == backend and loaded.dtype == dtype and loaded.seed == 11
    assert repr(loaded).replace(backend.name, "numpy") == repr(net)
    for ours, theirs in zip(loaded.params(), net.params(), strict=True):  # copied: exact
        assert_backend_close(ours, backend.asarray(to_numpy(theirs)), rtol=0, atol=0)
    expected = to_numpy(net.forward(X, inference=True))  # computed: exact on NumPy's kernels
    np.testing.assert_allclose(to_numpy(loaded.forward(X, inference=True)), expected,
                               **backend_tolerance(backend, dtype))


def test_saved_on_another_backend_loads_on_numpy(backend, rng, tmp_path):
    net, X = _trained(backend, rng)
    net.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz", backend="numpy")
    for ours, theirs in zip(loaded.params(), net.params(), strict=True):  # copied: exact
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))
    np.testing.assert_allclose(to_numpy(loaded.forward(X, inference=True)),
                               to_numpy(net.forward(X, inference=True)),
                               **backend_tolerance(backend, "float32"))


def test_unbuilt_model_round_trips(tmp_path):
    net = NeuralNetwork([Dense(4)], MeanSquaredError(normalize=True), seed=0)
    net.save(tmp_path / "m.npz")
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert not loaded.built and loaded.loss.normalize


def test_the_file_holds_no_pickles(rng, tmp_path):
    net, _ = _trained("numpy", rng)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert {a.dtype.kind for a in map(archive.__getitem__, archive.files)} <= {"U", "f"}


def test_a_failed_write_leaves_the_old_file(rng, tmp_path, monkeypatch):
    net, _ = _trained("numpy", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    before = path.read_bytes()

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken)
    with pytest.raises(OSError, match="disk full"):
        net.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    contents.update(changes)
    np.savez(path, **{k: v for k, v in contents.items() if v is not None})


@pytest.mark.parametrize(
    ("damage", "match"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:200]), "not a readable xnn checkpoint"),
        (lambda p: p.write_bytes(b"garbage"), "not a readable xnn checkpoint"),
        (lambda p: _rewrite(p, format=np.array("something-else")), "is not an xnn-checkpoint"),
        (lambda p: _rewrite(p, config=np.array("{not json")), "invalid configuration"),
        (lambda p: _rewrite(p, param_3=None), "invalid configuration"),
        (lambda p: _rewrite(p, param_0=np.zeros((5, 8), np.float32)), r"expected \(6, 8\)"),
        (lambda p: _rewrite(p, param_0=np.zeros((6, 8), np.float64)), "dtype float64"),
        (lambda p: _rewrite(p, param_1=np.full((1, 8), np.nan, np.float32)), "NaN"),
        (lambda p: _rewrite(p, config=np.array(json.dumps({"layers": [{"type": "Conv"}]}))),
         "invalid configuration"),
    ],
    ids=["truncated", "garbage", "format", "json", "missing-param", "shape", "dtype", "nan",
         "layer-type"],
)
def test_bad_checkpoints_fail_clearly(rng, tmp_path, damage, match):
    net, _ = _trained("numpy", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    damage(path)
    with pytest.raises(CheckpointError, match=match):
        NeuralNetwork.load(path)


def test_pickled_object_arrays_are_refused(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, format=np.array("xnn-checkpoint-1"), config=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError):
        NeuralNetwork.load(path)
    assert zipfile.is_zipfile(path)


def test_a_checkpoint_written_before_the_redesign_still_loads(backend):
    """Written by xnn 0.1.0 as it was before the parameter store (tests/data): four
    activations, dropout, Glorot, book streams, float64; the same outputs on every backend."""
    data = Path(__file__).with_name("data")
    model = NeuralNetwork.load(data / "checkpoint-0.1.0.npz", backend=backend)
    assert [type(layer.activation).__name__ for layer in model.layers] == [
        "Tanh", "LeakyReLU", "ReLU6", "Sigmoid"]
    assert model.layers[1].activation.alpha == 0.2 and model.streams == "book"
    X = np.load(data / "checkpoint-0.1.0-input.npy")
    expected = np.load(data / "checkpoint-0.1.0-output.npy")
    np.testing.assert_allclose(to_numpy(model.forward(X, inference=True)), expected,
                               **backend_tolerance(backend, "float64", rtol=1e-12, atol=1e-14))
