"""Checkpoints round-trip across backends; bad files fail clearly and nothing is half-written."""

from __future__ import annotations

import io
import json
import os
import stat
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
from xnn.train.checkpoints import read_training_checkpoint


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


def test_an_npy_file_is_a_checkpoint_error_not_a_type_error(tmp_path):
    path = tmp_path / "weights.npy"
    np.save(path, np.zeros((3, 4), np.float32))
    with pytest.raises(CheckpointError, match=r"weights\.npy is not a readable xnn checkpoint"):
        NeuralNetwork.load(path)


def _with_member(path, name, raw):
    """Rewrite the archive at ``path`` with member ``name`` replaced by ``raw`` (stored)."""
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    members[name] = raw
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members.items():
            archive.writestr(member, data)


def _npy_header(shape, descr="<f4"):
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


@pytest.mark.parametrize("shape", [(1 << 40,), (1 << 20, 1 << 20), (2, 9)],
                         ids=["4TiB", "4TiB-2d", "too-few-bytes"])
def test_a_member_header_claiming_more_than_the_file_is_refused_before_allocating(
        rng, tmp_path, shape):
    net, _ = _trained("numpy", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    _with_member(path, "param_0.npy", _npy_header(shape) + b"\0" * 64)
    with pytest.raises(CheckpointError, match=r"param_0\.npy.*header declares shape"):
        NeuralNetwork.load(path)


def test_a_member_claiming_more_than_deflate_can_hold_is_refused(rng, tmp_path):
    net, _ = _trained("numpy", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    with zipfile.ZipFile(path) as archive:
        members = {info.filename: archive.read(info) for info in archive.infolist()}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    assert NeuralNetwork.load(path).built  # np.savez_compressed-style files load
    raw = bytearray(path.read_bytes())
    entry = raw.index(b"PK\x01\x02")  # param_0's central directory entry: its name at +46
    while raw[entry + 46: entry + 57] != b"param_0.npy":
        entry = raw.index(b"PK\x01\x02", entry + 4)
    raw[entry + 24: entry + 28] = (0xFFFFFFFE).to_bytes(4, "little")  # uncompressed size
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match=r"param_0\.npy.*claims 4294967294 bytes"):
        NeuralNetwork.load(path)


def test_resaving_keeps_mode_and_symlink(rng, tmp_path):
    net, _ = _trained("numpy", rng)
    target = tmp_path / "store" / "m.npz"
    target.parent.mkdir()
    net.save(target)
    os.chmod(target, 0o600)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    net.save(link)
    assert link.is_symlink() and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert NeuralNetwork.load(link).built


def _trained_bn(rng):
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    net = NeuralNetwork([Dense(8, Tanh(), batch_norm=True, weight_init="he"), Dense(3)],
                        SoftmaxCrossEntropy(), seed=11)
    Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=2, eval_every=5, verbose=False)
    return net, X


def test_batch_norm_is_saved_with_its_buffers(rng, tmp_path):
    net, X = _trained_bn(rng)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert str(archive["format"]) == "xnn-checkpoint-2"
        assert json.loads(str(archive["config"]))["layers"][0]["batch_norm"] is True
        assert {"param_0", "param_4", "buffer/0.running_mean", "buffer/0.running_var"} <= set(
            archive.files) and "param_5" not in archive.files
        np.testing.assert_array_equal(archive["buffer/0.running_var"],
                                      net.state_dict()["0.running_var"])
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert loaded.layers[0].batch_norm and not loaded.layers[1].batch_norm
    np.testing.assert_array_equal(to_numpy(loaded.forward(X, inference=True)),
                                  to_numpy(net.forward(X, inference=True)))


def test_a_format_1_file_still_loads(rng, tmp_path):
    """What this version wrote before buffers: ``xnn-checkpoint-1``, no ``batch_norm`` key."""
    net, X = _trained("numpy", rng)
    path = tmp_path / "m.npz"
    net.save(path)
    with np.load(path, allow_pickle=False) as archive:
        config = json.loads(str(archive["config"]))
    for layer in config["layers"]:
        del layer["batch_norm"]
    _rewrite(path, format=np.array("xnn-checkpoint-1"), config=np.array(json.dumps(config)))
    loaded = NeuralNetwork.load(path)
    np.testing.assert_array_equal(to_numpy(loaded.forward(X, inference=True)),
                                  to_numpy(net.forward(X, inference=True)))


@pytest.mark.parametrize(
    ("change", "match"),
    [({"buffer/0.running_mean": None}, "invalid configuration"),
     ({"buffer/0.running_var": np.ones((1, 7), np.float32)}, r"expected \(1, 8\)"),
     ({"buffer/0.running_var": np.ones((1, 8), np.float64)}, "buffers of dtype float64"),
     ({"buffer/0.running_mean": np.full((1, 8), np.inf, np.float32)}, "buffers contain NaN"),
     ({"buffer/0.running_var": -np.ones((1, 8), np.float32)}, "running variance is negative")],
    ids=["missing", "shape", "dtype", "inf", "negative"])
def test_bad_buffers_fail_clearly(rng, tmp_path, change, match):
    net, _ = _trained_bn(rng)
    path = tmp_path / "m.npz"
    net.save(path)
    _rewrite(path, **change)
    with pytest.raises(CheckpointError, match=match):
        NeuralNetwork.load(path)


def test_a_training_checkpoint_from_before_buffers_still_resumes(rng, tmp_path):
    """Its ``best_params`` is the flat values alone (no ``best_buffers`` member)."""
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)

    def fit(**kwargs):
        net = NeuralNetwork([Dense(8, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=11)
        Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=4, eval_every=1, verbose=False,
                                           early_stopping=False, **kwargs)
        return [to_numpy(p) for p in net.params()]

    straight = fit(checkpoint=tmp_path / "run.npz",
                   on_epoch=lambda r: r["epoch"] == 2 and _copy(tmp_path, "run.npz", "e2.npz"))
    _rewrite(tmp_path / "e2.npz", best_buffers=None)
    state, _ = read_training_checkpoint(tmp_path / "e2.npz")
    assert state.best_params["values"].shape == (8 * 6 + 8 + 3 * 8 + 3,)
    assert state.best_params["buffers"].shape == (0,)
    for ours, theirs in zip(fit(resume=tmp_path / "e2.npz"), straight, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def _copy(folder, source, target):
    (folder / target).write_bytes((folder / source).read_bytes())
