"""A restricted unpickler that rebuilds NumPy arrays and refuses every other global.

``pickle.load`` runs whatever callable a pickle names; this one admits only the few NumPy
constructors an array pickle uses (protocols 0-5, NumPy 1.x and 2.x module paths, and
Python 2 pickles read with ``encoding="latin1"``), so downloaded bytes cannot run code.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Callable
from typing import IO, Any

import numpy as np

try:  # NumPy >= 2 (and 1.26 aliases)
    from numpy._core.multiarray import _reconstruct, scalar
    from numpy._core.numeric import _frombuffer
except ImportError:  # pragma: no cover - NumPy < 1.26
    from numpy.core.multiarray import _reconstruct, scalar
    from numpy.core.numeric import _frombuffer

__all__ = ["RestrictedUnpickler", "load", "loads"]


def _encode_latin1(text: str, encoding: str = "utf-8") -> bytes:
    """``_codecs.encode`` as Python 3 protocol-0..2 pickles use it for bytes: latin-1 only."""
    name = encoding.lower().replace("-", "").replace("_", "") if isinstance(encoding, str) else ""
    if name not in {"latin1", "iso88591", "l1"}:
        raise pickle.UnpicklingError(f"refusing _codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _empty_bytes() -> bytes:
    """``bytes()`` as Python 3 protocol-0..2 pickles write an empty payload (no arguments)."""
    return b""


_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): _encode_latin1,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}
for _module in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_module}.multiarray", "_reconstruct")] = _reconstruct
    _ALLOWED[(f"{_module}.multiarray", "scalar")] = scalar
    _ALLOWED[(f"{_module}.numeric", "_frombuffer")] = _frombuffer


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` admits only NumPy array and dtype constructors."""

    def find_class(self, module: str, name: str) -> Any:
        """The allowed global ``module.name``, else UnpicklingError naming it."""
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to unpickle global {module}.{name}: only NumPy arrays are allowed"
            ) from None


def load(file: IO[bytes], *, encoding: str = "latin1") -> Any:
    """Unpickle one object from ``file`` with :class:`RestrictedUnpickler`."""
    return RestrictedUnpickler(file, encoding=encoding).load()


def loads(data: bytes, *, encoding: str = "latin1") -> Any:
    """Unpickle one object from ``data`` with :class:`RestrictedUnpickler`."""
    return load(io.BytesIO(data), encoding=encoding)
