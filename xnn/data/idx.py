"""The IDX file format of the MNIST files (http://yann.lecun.com/exdb/mnist/), gzipped or not.

Layout: two zero bytes, a type code, the number of dimensions ``n``, then ``n`` big-endian
uint32 sizes, then the values in C order, big-endian.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["idx_sha256", "read_idx", "read_images_and_labels", "write_idx"]

_GZIP_MAGIC = b"\x1f\x8b"
_CODE_TO_DTYPE = {
    0x08: np.dtype("u1"),
    0x09: np.dtype("i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_KIND_SIZE_TO_CODE = {(dt.kind, dt.itemsize): code for code, dt in _CODE_TO_DTYPE.items()}


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """The array in the IDX file at ``path`` (gzip detected by content), in native byte order."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt or truncated gzip stream ({error})") from error
    if len(raw) < 4 or raw[:2] != b"\x00\x00":
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'})")
    code, ndim = raw[2], raw[3]
    if code not in _CODE_TO_DTYPE:
        raise ValueError(f"{path}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise ValueError(f"{path}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header ({len(raw)} of {header} bytes)")
    shape = struct.unpack(f">{ndim}I", raw[4:header])
    dtype = _CODE_TO_DTYPE[code]
    expected = math.prod(shape) * dtype.itemsize
    actual = len(raw) - header
    if actual < expected:
        raise ValueError(f"{path}: truncated IDX payload ({actual} of {expected} bytes "
                         f"for shape {shape})")
    if actual > expected:
        raise ValueError(f"{path}: {actual - expected} unexpected bytes after the IDX payload "
                         f"for shape {shape}")
    x = np.frombuffer(raw, dtype=dtype, count=math.prod(shape), offset=header).reshape(shape)
    return x.astype(dtype.newbyteorder("="))


def read_images_and_labels(images_file: str | os.PathLike[str],
                           labels_file: str | os.PathLike[str]) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-style (n, 28, 28) uint8 images and n uint8 labels as (n, 784) uint8 and (n,) int64.

    ValueError names the file when either is malformed or they do not match.
    """
    x, y = read_idx(images_file), read_idx(labels_file)
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28):
        raise ValueError(f"{images_file}: expected (n, 28, 28) uint8, got {x.shape} {x.dtype}")
    if y.dtype != np.uint8 or y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise ValueError(f"{labels_file}: expected ({x.shape[0]},) uint8 to match "
                         f"{Path(images_file).name}, got {y.shape} {y.dtype}")
    return x.reshape(x.shape[0], 784), y.astype(np.int64)


def write_idx(path: str | os.PathLike[str], array: np.ndarray) -> None:
    """Write ``array`` as an IDX file, gzip-compressed when ``path`` ends in ``.gz``."""
    path = Path(path)
    header, payload = _encode(array)
    data = header + payload.tobytes()
    if path.name.endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)


def idx_sha256(array: np.ndarray) -> str:
    """The SHA-256 of the uncompressed IDX file holding ``array`` (as ``sha256sum`` prints it)."""
    header, payload = _encode(array)
    digest = hashlib.sha256(header)
    digest.update(payload.reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _encode(array: np.ndarray) -> tuple[bytes, np.ndarray]:
    """The IDX header for ``array`` and its values, C-contiguous and big-endian."""
    x = np.asarray(array)
    code = _KIND_SIZE_TO_CODE.get((x.dtype.kind, x.dtype.itemsize))
    if code is None:
        raise ValueError(f"IDX cannot store dtype {x.dtype} (uint8, int8, int16, int32, "
                         "float32 or float64 only)")
    if not 1 <= x.ndim <= 255:
        raise ValueError(f"IDX needs 1 to 255 dimensions, got {x.ndim}")
    if any(d >= 2**32 for d in x.shape):
        raise ValueError(f"IDX dimensions must fit in uint32, got shape {x.shape}")
    header = bytes([0, 0, code, x.ndim]) + struct.pack(f">{x.ndim}I", *x.shape)
    return header, np.ascontiguousarray(x, dtype=_CODE_TO_DTYPE[code])
