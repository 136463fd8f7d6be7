"""The backend layer: the one place that knows NumPy, CuPy and array-api-strict apart.

Everything else in xnn does its maths through ``backend.xp`` (or ``array_namespace(x)``),
written to the subset of functions that NumPy 2, CuPy and the Array API standard share.
Host↔device copies go through :meth:`Backend.asarray` and :meth:`Backend.to_numpy`, which
count them, so tests can prove that training does not copy per batch.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.kernels import Kernels, NumPyKernels, OutKernels

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendUnavailableError",
    "array_namespace",
    "available_backends",
    "get_backend",
    "kernels_of",
    "resolve_dtype",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict")
_DTYPES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run on this machine (missing package or device)."""


class Backend:
    """An array module plus where its arrays live: ``xp``, ``device``, and the copies in and out."""

    name: str = ""

    kernels_type: type[Kernels] = Kernels  # the hot loops; NumPy and CuPy use ``out=``

    def __init__(self, xp: ModuleType, device: Any = None) -> None:
        self.xp = xp
        self.device = device
        self.kernels = self.kernels_type(xp)
        self.host_to_device = 0  # copies of host data onto this backend
        self.device_to_host = 0  # copies of this backend's arrays back to the host

    # -- conversions -----------------------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend, on its device."""
        return isinstance(x, self.array_type)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """``x`` (host data or an array of this backend) as an array of this backend."""
        if self.owns(x):
            if dtype is None or x.dtype == dtype:
                return x
            return self.xp.astype(x, dtype)
        host = _host_numpy_array(x)
        if dtype is None and host.dtype.kind == "f":
            dtype = self.dtype(host.dtype.name)
        self.host_to_device += 1
        return self._from_host(host, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy an array of this backend to a NumPy array on the host."""
        self.device_to_host += 1
        return self._to_host(x)

    def copy(self, x: Any) -> Any:
        """A new array of this backend with the contents of ``x``."""
        return self.xp.asarray(x, copy=True)

    def arange(self, n: int) -> Any:
        """0, 1, …, n − 1 as an integer array on this backend's device."""
        return self.xp.arange(n)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        """A new array of zeros on this backend's device."""
        return self.xp.zeros(shape, dtype=dtype)

    def kind(self, x: Any) -> str:
        """The NumPy kind letter of ``x``'s dtype: "f" float, "i"/"u" integer, "b" bool."""
        return x.dtype.kind

    def dtype(self, name: Any) -> Any:
        """This backend's floating dtype for ``name`` ("float32", "float64" or a NumPy dtype)."""
        return getattr(self.xp, resolve_dtype(name))

    # -- backend specifics -----------------------------------------------------------------
    @property
    def array_type(self) -> type:
        raise NotImplementedError

    def _from_host(self, x: Any, dtype: Any) -> Any:
        raise NotImplementedError

    def _to_host(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"Backend({self.name!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)


class NumPyBackend(Backend):
    """Plain NumPy on the CPU: copies in and out are free and not counted."""

    name = "numpy"
    kernels_type = NumPyKernels

    def __init__(self) -> None:
        super().__init__(np)

    @property
    def array_type(self) -> type:
        return np.ndarray

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        host = _host_numpy_array(x)
        if dtype is None or host.dtype == dtype:
            return host
        return host.astype(dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(x, copy=True)  # a copy, as on every other backend


class CuPyBackend(Backend):
    """CuPy on the current CUDA device."""

    name = "cupy"
    kernels_type = OutKernels

    def __init__(self, cupy: ModuleType) -> None:
        if os.environ.get("XNN_CUPY_FUSED") == "1":  # opt-in until verified on a GPU
            from xnn.backends.cupy_kernels import CuPyFusedKernels

            self.kernels_type = CuPyFusedKernels
        super().__init__(cupy, cupy.cuda.Device())

    @property
    def array_type(self) -> type:
        return self.xp.ndarray

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
        return self.xp.asarray(x if dtype is None else x.astype(dtype, copy=False))

    def _to_host(self, x: Any) -> np.ndarray:
        return self.xp.asnumpy(x)


class StrictBackend(Backend):
    """array-api-strict on its non-default device: the CPU stand-in for a GPU.

    Like CuPy it refuses implicit conversion to NumPy and mixing arrays of two devices.
    """

    name = "array_api_strict"

    def __init__(self, strict: ModuleType) -> None:
        super().__init__(strict, strict.Device("device1"))

    @property
    def array_type(self) -> type:
        return type(self.xp.asarray(0.0))

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.array_type) and x.device == self.device

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        if isinstance(x, self.array_type) and not self.owns(x):  # same library, another device
            self.host_to_device += 1
            return self.xp.asarray(x.to_device(self.device), dtype=dtype)
        return super().asarray(x, dtype)

    def arange(self, n: int) -> Any:
        return self.xp.arange(n, device=self.device)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        return self.xp.zeros(shape, dtype=dtype, device=self.device)

    def kind(self, x: Any) -> str:
        for kind, name in (("f", "real floating"), ("b", "bool"), ("u", "unsigned integer")):
            if self.xp.isdtype(x.dtype, name):
                return kind
        return "i" if self.xp.isdtype(x.dtype, "signed integer") else "?"

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
        return self.xp.asarray(x, dtype=dtype, device=self.device)

    def _to_host(self, x: Any) -> np.ndarray:
        cpu = self.xp.Device("CPU_DEVICE")
        return np.asarray(x.to_device(cpu))


def _host_numpy_array(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array; refuses device arrays instead of copying them."""
    if _is_foreign_device_array(x):
        raise TypeError(
            f"expected host data or an array of the model's backend, got {type(x).__module__}."
            f"{type(x).__name__}; move it with xnn.to_numpy(x) or model.to(...) first"
        )
    return np.ascontiguousarray(x)


def _is_foreign_device_array(x: Any) -> bool:
    module = type(x).__module__
    return module.startswith(("cupy", "array_api_strict"))


# -- selecting a backend -------------------------------------------------------------------
_CACHE: dict[str, Backend] = {}


def get_backend(name: str | Backend | None = None) -> Backend:
    """The backend called ``name``; ``None`` means ``$XNN_BACKEND``, else ``"numpy"``.

    ``"auto"`` picks CuPy when a CUDA device is usable, else NumPy.
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
    if name not in _CACHE:
        _CACHE[name] = _make_backend(name)
    return _CACHE[name]


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


def _make_backend(name: str) -> Backend:
    if name == "numpy":
        return NumPyBackend()
    if name == "cupy":
        return CuPyBackend(_import_cupy())
    strict = _import_optional(
        "array_api_strict", "pip install array-api-strict  (or: pip install 'xnn[test]')"
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
        "pip install 'xnn[cuda12]' or 'xnn[cuda13]' (matching your CUDA driver)",
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
    return cupy


def resolve_dtype(dtype: Any) -> str:
    """The name ("float32" or "float64") of a floating dtype given by name or NumPy dtype."""
    try:
        name = np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        name = str(dtype)
    if name not in _DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name


# -- arrays of any backend -----------------------------------------------------------------
def array_namespace(x: Any) -> ModuleType:
    """The array module (``numpy``, ``cupy`` or ``array_api_strict``) that ``x`` belongs to."""
    xp = _NAMESPACES.get(type(x))
    if xp is not None:
        return xp
    module = type(x).__module__.partition(".")[0]
    if module in ("numpy", "cupy", "array_api_strict"):
        xp = importlib.import_module(module)
        _NAMESPACES[type(x)] = xp
        return xp
    raise TypeError(f"expected an array of NumPy, CuPy or array-api-strict, got {type(x)!r}")


_NAMESPACES: dict[type, ModuleType] = {np.ndarray: np}


def backend_of(x: Any) -> Backend:
    """The backend whose array ``x`` is."""
    return get_backend(array_namespace(x).__name__)


def kernels_of(x: Any) -> Kernels:
    """The hot-loop implementations for arrays like ``x``."""
    kernels = _KERNELS.get(type(x))
    if kernels is None:
        kernels = _KERNELS[type(x)] = backend_of(x).kernels
    return kernels


_KERNELS: dict[type, Kernels] = {}


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array of any backend (or of host data), owned by the caller."""
    if isinstance(x, np.ndarray | np.generic | float | int | list | tuple):
        return np.array(x, copy=True)
    return backend_of(x).to_numpy(x)
