"""Checkpoints: the exact messages a user reads, hand-built archives at the size checks' bounds,
Fortran-ordered members, and what old or unusual files load as.

Each test kills one or more surviving mutants of ``xnn.nn.checkpoint`` (see
docs/mutation/xnn.nn.checkpoint.md). Archives are built by hand with ``zipfile`` and
``np.lib.format``; sizes in a zip's central directory are forged where a bound is tested.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer, to_numpy
from xnn.nn.checkpoint import CheckpointError, read_arrays


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=True)
    return buffer.getvalue()


def _npy_claiming(shape: tuple[int, ...], data: bytes) -> bytes:
    """A version 1.0 ``.npy`` of little-endian float32 whose header declares ``shape``."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": "<f4", "fortran_order": False, "shape": shape})
    return buffer.getvalue() + data


def _archive(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", method) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _forge(path: Path, member: str, **sizes: int) -> None:
    """Overwrite ``compress_size`` / ``file_size`` of ``member`` in the central directory."""
    raw = bytearray(path.read_bytes())
    name = member.encode()
    entry = raw.index(b"PK\x01\x02")
    while raw[entry + 46: entry + 46 + len(name)] != name:
        entry = raw.index(b"PK\x01\x02", entry + 4)
    for field, value in sizes.items():
        offset = {"compress_size": 20, "file_size": 24}[field]
        raw[entry + offset: entry + offset + 4] = value.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def _unreadable(path: Path, reason: str) -> str:
    return f"{path} is not a readable xnn checkpoint: {reason}"


def _error(path: Path) -> str:
    with pytest.raises(CheckpointError) as info:
        read_arrays(path)
    return str(info.value)


SIX = np.arange(6, dtype="<f4")
HEADER = len(_npy(SIX)) - SIX.nbytes  # of SIX's .npy member (128 bytes in NumPy 1 and 2)


# --- read_arrays / _read_member / _npy_header --------------------------------------------------

def test_a_member_that_is_not_npy_is_named(tmp_path):
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy(SIX), "readme.txt": b"hello"})
    assert _error(path) == _unreadable(path, "member 'readme.txt' is not an .npy array")


def test_an_unsupported_compression_is_named(tmp_path):
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy(SIX)}, zipfile.ZIP_BZIP2)
    assert _error(path) == _unreadable(
        path, "member 'a.npy' uses an unsupported compression (method 12; expected stored or "
              "deflated)")


def test_a_stored_member_claiming_more_than_it_stores_is_refused_by_size(tmp_path):
    """Stored: the recorded size must equal the stored size, even when both fit the file."""
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy(SIX)})
    stored = len(_npy(SIX))
    _forge(path, "a.npy", file_size=stored + 1)
    size = path.stat().st_size
    assert _error(path) == _unreadable(
        path, f"member 'a.npy' claims {stored + 1} bytes, more than the {size}-byte file can hold")


def test_a_stored_member_as_large_as_the_file_is_left_to_the_header_check(tmp_path):
    """Sizes equal to the file's are not "more than the file can hold": the header check
    (24 bytes declared, the file's size less the header recorded) is what refuses it."""
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy(SIX)})
    size = path.stat().st_size
    _forge(path, "a.npy", compress_size=size, file_size=size)
    assert _error(path) == _unreadable(
        path, "member 'a.npy': its header declares shape (6,) of float32 (24 bytes), but it "
              f"holds {size - HEADER} bytes of data")


def test_a_deflated_member_recorded_as_large_as_the_file_still_loads(tmp_path):
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy(SIX)}, zipfile.ZIP_DEFLATED)
    _forge(path, "a.npy", compress_size=path.stat().st_size)
    np.testing.assert_array_equal(read_arrays(path)["a"], SIX)


def test_deflate_bound_is_1032_per_compressed_byte_plus_1024(tmp_path):
    """A deflated member may claim up to 1032 × its compressed size + 1024 bytes: at the bound
    the header check speaks (the sizes disagree), one byte over the size check does."""
    for claimed_over in (0, 1):
        path = _archive(tmp_path / f"m{claimed_over}.npz", {"a.npy": _npy(SIX)},
                        zipfile.ZIP_DEFLATED)
        with zipfile.ZipFile(path) as archive:
            compressed = archive.getinfo("a.npy").compress_size
        claimed = 1032 * compressed + 1024 + claimed_over
        _forge(path, "a.npy", file_size=claimed)
        if claimed_over:
            expected = (f"member 'a.npy' claims {claimed} bytes, more than the "
                        f"{path.stat().st_size}-byte file can hold")
        else:
            expected = (f"member 'a.npy': its header declares shape (6,) of float32 (24 bytes), "
                        f"but it holds {claimed - HEADER} bytes of data")
        assert _error(path) == _unreadable(path, expected)


def test_a_header_that_disagrees_with_the_data_names_both_sizes(tmp_path):
    path = _archive(tmp_path / "m.npz", {"a.npy": _npy_claiming((7,), SIX.tobytes())})
    assert _error(path) == _unreadable(
        path, "member 'a.npy': its header declares shape (7,) of float32 (28 bytes), but it "
              "holds 24 bytes of data")


def test_a_member_whose_data_ends_early_is_truncated(tmp_path):
    """Header (7,) and recorded size agree, but the deflate stream (CRC intact) ends 4 bytes
    short: the read comes up short."""
    raw = _npy_claiming((7,), SIX.tobytes())
    path = _archive(tmp_path / "m.npz", {"a.npy": raw}, zipfile.ZIP_DEFLATED)
    _forge(path, "a.npy", file_size=len(raw) + 4)
    assert _error(path) == _unreadable(path, "member 'a.npy' is truncated")


def test_an_npy_format_3_member_is_named_with_its_version(tmp_path):
    path = _archive(tmp_path / "m.npz", {"a.npy": b"\x93NUMPY\x03\x00" + b"\x00" * 120})
    assert _error(path) == _unreadable(
        path, "member 'a.npy' is .npy format 3.0; expected 1.0 or 2.0")


def test_an_object_member_is_named_and_never_unpickled(tmp_path):
    objects = np.array([{"a": 1}], dtype=object)
    path = _archive(tmp_path / "m.npz", {"config.npy": _npy(objects)})
    assert _error(path) == _unreadable(
        path, "member 'config.npy' holds Python objects (pickles are never loaded)")


@pytest.mark.parametrize("method", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_fortran_ordered_members_keep_their_values(tmp_path, method):
    """An ``.npy`` written in Fortran order (``np.savez`` of a transposed array does so) reads
    back as the same matrix, not its bytes re-read in C order."""
    matrix = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    fortran = np.asfortranarray(matrix)
    assert b"'fortran_order': True" in _npy(fortran)
    path = _archive(tmp_path / "m.npz", {"f.npy": _npy(fortran), "c.npy": _npy(matrix)}, method)
    arrays = read_arrays(path)
    np.testing.assert_array_equal(arrays["f"], [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(arrays["c"], [[1, 2, 3], [4, 5, 6]])


# --- read_checkpoint ---------------------------------------------------------------------------

def _saved(tmp_path, **network):
    net = NeuralNetwork([Dense(4, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=5, **network)
    net.forward(np.ones((2, 6), np.float32), inference=True)
    path = tmp_path / "m.npz"
    net.save(path)
    return net, path


def _rewrite(path, **changes):
    with np.load(path, allow_pickle=False) as archive:
        contents = {name: archive[name] for name in archive.files}
    contents.update(changes)
    np.savez(path, **{k: v for k, v in contents.items() if v is not None})


def _config(path):
    with np.load(path, allow_pickle=False) as archive:
        return json.loads(str(archive["config"]))


def _load_error(path) -> str:
    with pytest.raises(CheckpointError) as info:
        NeuralNetwork.load(path)
    return str(info.value)


def test_another_format_names_both_readable_formats(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite(path, format=np.array("something-else"))
    assert _load_error(path) == f"{path} is not an xnn-checkpoint-1 or xnn-checkpoint-2 file"


def test_parameters_of_another_dtype_are_named_parameters(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite(path, param_0=np.zeros((6, 4), np.float64))
    assert _load_error(path) == f"{path}: parameters of dtype float64, config says float32"


def test_parameters_with_nan_are_named_parameters(tmp_path):
    _, path = _saved(tmp_path)
    _rewrite(path, param_1=np.full((1, 4), np.nan, np.float32))
    assert _load_error(path) == f"{path}: parameters contain NaN or inf"


def test_an_unknown_layer_type_is_named(tmp_path):
    _, path = _saved(tmp_path)
    config = _config(path)
    config["layers"][0]["type"] = "Conv"
    _rewrite(path, config=np.array(json.dumps(config)))
    assert _load_error(path) == (
        f"{path} has an invalid configuration: ValueError(\"unknown layer type 'Conv'\")")


def test_a_file_without_streams_loads_with_independent_streams(tmp_path):
    """Files written before ``streams`` existed have no such key: the default applies."""
    net, path = _saved(tmp_path)
    config = _config(path)
    del config["streams"]
    _rewrite(path, config=np.array(json.dumps(config)))
    loaded = NeuralNetwork.load(path)
    assert loaded.streams == "independent"
    np.testing.assert_array_equal(loaded.state_dict()["0.W"], net.state_dict()["0.W"])


def test_book_streams_are_saved_and_loaded(tmp_path):
    _, path = _saved(tmp_path, streams="book")
    assert _config(path)["streams"] == "book"
    assert NeuralNetwork.load(path).streams == "book"


def test_an_unbuilt_batch_norm_model_round_trips(tmp_path):
    """Saved before its first forward pass: no parameters, no buffers, and none expected."""
    net = NeuralNetwork([Dense(4, Tanh(), batch_norm=True), Dense(3)], SoftmaxCrossEntropy(),
                        seed=2)
    net.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as archive:
        assert sorted(archive.files) == ["config", "format"]
    loaded = NeuralNetwork.load(tmp_path / "m.npz")
    assert not loaded.built and loaded.layers[0].batch_norm


def test_a_zero_running_variance_loads(rng, tmp_path):
    """A feature constant over every batch has variance 0: legitimate, unlike a negative one."""
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    net = NeuralNetwork([Dense(8, Tanh(), batch_norm=True), Dense(3)], SoftmaxCrossEntropy(),
                        seed=11)
    Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=1, eval_every=5, verbose=False)
    path = tmp_path / "m.npz"
    net.save(path)
    variance = np.ones((1, 8), np.float32)
    variance[0, 3] = 0.0
    _rewrite(path, **{"buffer/0.running_var": variance})
    loaded = NeuralNetwork.load(path)
    np.testing.assert_array_equal(loaded.state_dict()["0.running_var"], variance)
    assert np.all(np.isfinite(to_numpy(loaded.forward(X, inference=True))))


# --- write_checkpoint: what cannot be saved ----------------------------------------------------

def test_a_layer_that_is_not_exactly_dense_cannot_be_saved(tmp_path):
    class MyDense(Dense):
        pass

    net = NeuralNetwork([MyDense(3)], SoftmaxCrossEntropy(), seed=0)
    with pytest.raises(TypeError, match=r"^cannot save layer .+: only Dense layers are supported$"):
        net.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_an_unregistered_activation_lists_the_registered_ones(tmp_path):
    class MyTanh(Tanh):
        pass

    net = NeuralNetwork([Dense(3, MyTanh())], SoftmaxCrossEntropy(), seed=0)
    with pytest.raises(TypeError) as info:
        net.save(tmp_path / "m.npz")
    names = re.fullmatch(r"cannot save activation .+: only registered activations \((.+)\) can "
                         r"be saved", str(info.value)).group(1).split(", ")
    assert {"LeakyReLU", "ReLU", "ReLU6", "Sigmoid", "Tanh", "Linear"} <= set(names)
    assert names == sorted(names)
