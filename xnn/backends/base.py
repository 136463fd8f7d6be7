"""What every backend is: an array module, a device, its kernels, and counted copies in and out."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.dtypes import resolve_dtype
from xnn.backends.kernels import Kernels

__all__ = ["Backend", "host_array", "on_device"]


class Backend:
    """An array module plus where its arrays live: ``xp``, ``device``, ``kernels``, copies.

    Two backends are equal when they run the same library on the same device with the same
    kernels (``key``), so moving a model between differently configured backends is a move.
    """

    name: str = ""

    def __init__(self, xp: ModuleType, kernels: Kernels, device: Any = None) -> None:
        self.xp = xp
        self.device = device
        self.kernels = kernels
        self.host_to_device = 0  # copies of host data onto this backend
        self.host_to_device_bytes = 0  # and their size
        self.device_to_host = 0  # copies of this backend's arrays back to the host

    @property
    def key(self) -> tuple[str, str, str]:
        """(library, device, kernels): what makes two backends interchangeable."""
        return self.name, str(self.device), type(self.kernels).__name__

    # -- conversions -----------------------------------------------------------------------
    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend, on its device."""
        return isinstance(x, self.array_type)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """``x`` (host data or an array of this backend) as an array of this backend.

        Host data crosses once, at the smaller of its own and ``dtype``'s width: float64 data
        for a float32 model is cast on the host (half the bytes, no device copy at float64);
        uint8 pixels cross as bytes and are cast on the device.
        """
        if self.owns(x):
            if dtype is None or x.dtype == dtype:
                return x
            return self.astype(x, dtype)
        host = host_array(x)
        if dtype is None and host.dtype.kind == "f":
            dtype = self.dtype(host.dtype.name)
        self.host_to_device += 1
        if dtype is not None and self.itemsize(dtype) < host.dtype.itemsize:
            self.host_to_device_bytes += host.size * self.itemsize(dtype)
            return self._from_host(host, dtype)  # cast on the host
        self.host_to_device_bytes += host.nbytes
        array = self._from_host(host, None)
        return array if dtype is None or array.dtype == dtype else self.astype(array, dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy an array of this backend to a NumPy array on the host."""
        self.device_to_host += 1
        return self._to_host(x)

    def copy(self, x: Any) -> Any:
        """A new array of this backend with the contents of ``x``."""
        return x.copy()  # NumPy and CuPy (13 and 14: ``asarray(copy=True)`` is 14 only)

    def astype(self, x: Any, dtype: Any) -> Any:
        """``x`` converted to ``dtype`` (a new array)."""
        return x.astype(dtype)  # the method: CuPy 13 has no ``cupy.astype``

    def arange(self, n: int) -> Any:
        """0, 1, …, n − 1 as an integer array on this backend's device."""
        return self.xp.arange(n)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        """A new array of zeros on this backend's device."""
        return self.xp.zeros(shape, dtype=dtype)

    def itemsize(self, dtype: Any) -> int:
        """Bytes per element of this backend's ``dtype`` (NumPy's and CuPy's are NumPy's)."""
        return np.dtype(dtype).itemsize

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

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
        raise NotImplementedError

    def _to_host(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        kernels = type(self.kernels).__name__
        return f"Backend({self.name!r}, device={self.device!r}, kernels={kernels})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Backend) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)


def on_device(x: Any) -> bool:
    """Whether ``x`` is an array of a device library (CuPy, array-api-strict), not host data."""
    return type(x).__module__.startswith(("cupy", "array_api_strict"))


def host_array(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array; refuses device arrays instead of copying them."""
    module = type(x).__module__
    if on_device(x):
        raise TypeError(
            f"expected host data or an array of the model's backend, got {module}."
            f"{type(x).__name__}; move it with xnn.to_numpy(x) or model.to(...) first"
        )
    return np.ascontiguousarray(x)
