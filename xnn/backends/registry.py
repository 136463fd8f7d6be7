"""Choosing a backend by name, and finding the backend of an array (outside the training path).

A model resolves its backend once, when it is built (or moved); its operations are handed that
backend's kernels then, so nothing in a training step looks anything up by array type.
:func:`backend_of` and :func:`kernels_for` serve host-side helpers and operations used on their
own, outside a model.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend
from xnn.backends.kernels import Kernels

__all__ = [
    "BACKEND_NAMES",
    "BackendUnavailableError",
    "array_namespace",
    "available_backends",
    "backend_of",
    "get_backend",
    "kernels_for",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict")
FUSED_VARIABLE = "XNN_CUPY_FUSED"  # "1": CuPy's fused kernels (opt-in until GPU-verified)


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run on this machine (missing package or device)."""


_CACHE: dict[tuple[str, bool], Backend] = {}


def get_backend(name: str | Backend | None = None, *, fused: bool | None = None) -> Backend:
    """The backend called ``name``; ``None`` means ``$XNN_BACKEND``, else ``"numpy"``.

    ``"auto"`` picks CuPy when a CUDA device is usable, else NumPy. ``fused`` selects CuPy's
    fused kernels (default: ``$XNN_CUPY_FUSED == "1"``, read at each call). A ``Backend`` is
    returned as it is.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get("XNN_BACKEND") or "numpy"
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    if name == "auto":
        name = "cupy" if "cupy" in available_backends() else "numpy"
    if name not in BACKEND_NAMES:
        known = ", ".join(repr(n) for n in (*BACKEND_NAMES, "auto"))
        raise ValueError(f"unknown backend {name!r}; known backends are {known}")
    if fused is None:
        fused = os.environ.get(FUSED_VARIABLE) == "1"
    key = (name, bool(fused) and name == "cupy")
    if key not in _CACHE:
        _CACHE[key] = _make_backend(*key)
    return _CACHE[key]


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine, in :data:`BACKEND_NAMES` order."""
    names = []
    for name in BACKEND_NAMES:
        try:
            get_backend(name)
        except BackendUnavailableError:
            continue
        names.append(name)
    return names


def _make_backend(name: str, fused: bool) -> Backend:
    if name == "numpy":
        from xnn.backends.numpy_backend import NumPyBackend

        return NumPyBackend()
    if name == "cupy":
        from xnn.backends.cupy_backend import CuPyBackend

        return CuPyBackend(_import_cupy(), fused)
    from xnn.backends.strict_backend import StrictBackend

    strict = _import_optional(
        "array_api_strict",
        "pip install array-api-strict (or, in the xnn checkout: pip install -e '.[test]')"
    )
    return StrictBackend(strict)


def _import_optional(module: str, how: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend needs the package {module!r}, which is not installed ({exc}); "
            f"install it with: {how}"
        ) from exc


def _import_cupy() -> ModuleType:
    cupy = _import_optional(
        "cupy",
        "pip install -e '.[cuda12]' or -e '.[cuda13]' in the xnn checkout, matching your CUDA "
        "driver (from PyPI: pip install 'xnn-dlfs[cuda12]')",
    )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver/runtime missing or broken
        raise BackendUnavailableError(
            f"CuPy is installed but no CUDA device is usable: {exc}. "
            "Check the NVIDIA driver (nvidia-smi) or use backend='numpy'."
        ) from exc
    if count < 1:
        raise BackendUnavailableError(
            "CuPy is installed but no CUDA device was found; use backend='numpy'."
        )
    _probe_cupy(cupy)
    return cupy


def _probe_cupy(cupy: ModuleType) -> None:
    """Run one elementwise kernel and one matmul, so a missing NVRTC or CUDA toolkit is one
    clear error here instead of a failure in every later operation."""
    try:
        x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
        total = float((cupy.tanh(x) * 2 + 1).sum()) + float((x @ x.T).sum())
    except Exception as exc:
        raise BackendUnavailableError(
            f"CuPy found a CUDA device but cannot run kernels on it ({type(exc).__name__}: "
            f"{exc}); check that the CUDA toolkit/NVRTC matches the cupy-cuda package"
        ) from exc
    if total != total:  # NaN: a broken device or library
        raise BackendUnavailableError("CuPy's probe computed NaN on the CUDA device")


# -- arrays of any backend (host-side helpers; never in the training path) ------------------
def array_namespace(x: Any) -> ModuleType:
    """The array module (``numpy``, ``cupy`` or ``array_api_strict``) that ``x`` belongs to."""
    if isinstance(x, np.ndarray):
        return np
    module = type(x).__module__.partition(".")[0]
    if module in ("numpy", "cupy", "array_api_strict"):
        return importlib.import_module(module)
    raise TypeError(f"expected an array of NumPy, CuPy or array-api-strict, got {type(x)!r}")


def backend_of(x: Any) -> Backend:
    """The backend whose array ``x`` is."""
    return get_backend(array_namespace(x).__name__)


def kernels_for(x: Any) -> Kernels:
    """The kernels for arrays like ``x``: for operations used on their own, outside a model."""
    return backend_of(x).kernels


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array of any backend (or of host data), owned by the caller."""
    if isinstance(x, np.ndarray | np.generic | float | int | list | tuple):
        return np.array(x, copy=True)
    return backend_of(x).to_numpy(x)
