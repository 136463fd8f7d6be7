"""What every backend is: an array module, a device, its kernels, and counted copies in and out."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar, cast

import numpy as np

from xnn.backends.dtypes import resolve_dtype
from xnn.backends.kernels import Kernels

__all__ = ["Backend", "activated", "host_array", "on_device"]

Method = TypeVar("Method", bound=Callable[..., Any])


class Backend:
    """An array module plus where its arrays live: ``xp``, ``device``, ``kernels``, copies.

    Two backends are equal when they run the same library on the same device with the same
    kernels (``key``), so moving a model between differently configured backends is a move.
    """

    name: str = ""  # what get_backend takes to make it: "numpy", "torch:cuda:0", "cupy:1"
    library: str = ""  # the array library: "numpy", "cupy", "array_api_strict" or "torch"
    on_host: bool = False  # whether its arrays are host memory (NumPy, torch on the CPU)

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
        return self.library, str(self.device), type(self.kernels).__name__

    def activate(self) -> contextlib.AbstractContextManager[Any]:
        """A context in which this backend's arrays are computed on (CuPy on a chosen device:
        that device made current); nothing to do for the others."""
        return contextlib.nullcontext()

    def synchronize(self) -> None:
        """Wait for the work queued on this backend's device (nothing to wait for on a CPU)."""

    def check_dtype(self, dtype: Any) -> None:
        """Raise ``ValueError`` when this backend cannot hold ``dtype`` (a float dtype name)."""
        resolve_dtype(dtype)

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
            return self.cast(x, dtype)
        host = host_array(x)
        if dtype is None and host.dtype.kind == "f":
            dtype = self.dtype(host.dtype.name)
        self.host_to_device += 1
        if dtype is not None and self.itemsize(dtype) < host.dtype.itemsize:
            self.host_to_device_bytes += host.size * self.itemsize(dtype)
            return self._from_host(host, dtype)  # cast on the host
        self.host_to_device_bytes += host.nbytes
        return self.cast(self._from_host(host, None), dtype)

    def cast(self, x: Any, dtype: Any) -> Any:
        """``x`` in ``dtype``: ``x`` itself when it already is (or ``dtype`` is None)."""
        return x if dtype is None or x.dtype == dtype else self.astype(x, dtype)

    def from_dlpack(self, x: Any) -> Any:
        """``x``, an array of any DLPack library on this backend's device, as an array of this
        backend sharing its memory (no copy); ``ValueError`` when that would need a copy."""
        if self.owns(x):
            return x
        try:
            array = self._from_dlpack(_detached(x))
        except (BufferError, RuntimeError, TypeError, ValueError, AttributeError) as exc:
            array, reason = None, f" ({type(exc).__name__}: {exc})"
        else:
            reason = f" (it is on {getattr(array, 'device', '?')})"
        if array is None or not self.owns(array):
            raise ValueError(
                f"{type(x).__module__}.{type(x).__name__} cannot become an array of "
                f"{self.name!r} on {self.device} without a copy{reason}; copy it explicitly "
                "(xnn.to_numpy(x), tensor.to(device)) or move the model"
            )
        return array

    def _from_dlpack(self, x: Any) -> Any:
        return self.xp.from_dlpack(x)

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


def activated(method: Method) -> Method:
    """Run ``method`` inside its model's :meth:`Backend.activate` (``cupy:N``: device N made
    current). The model is ``self`` or ``self.net`` (a trainer's, an optimizer's)."""
    @functools.wraps(method)
    def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        backend = getattr(getattr(self, "net", self), "backend", None)
        if backend is None:
            return method(self, *args, **kwargs)
        with backend.activate():
            return method(self, *args, **kwargs)
    return cast(Method, run)


def on_device(x: Any) -> bool:
    """Whether ``x`` is an array of a device library (CuPy, array-api-strict, a torch tensor
    off the CPU), not host data."""
    module = type(x).__module__
    if module.startswith("torch"):
        return getattr(x, "device", None) is not None and x.device.type != "cpu"
    return module.startswith(("cupy", "array_api_strict"))


def host_array(x: Any) -> np.ndarray:
    """``x`` as a C-contiguous NumPy array; refuses device arrays instead of copying them.

    A torch CPU tensor is read in place through DLPack (detached if it requires grad).
    """
    module = type(x).__module__
    if on_device(x):
        device = getattr(x, "device", "another device")
        raise TypeError(
            f"expected host data or an array of the model's backend, got {module}."
            f"{type(x).__name__} on {device}; move it with xnn.to_numpy(x) or model.to(...) "
            "first: xnn never copies from a device silently"
        )
    if module.startswith("torch"):
        x = np.from_dlpack(_detached(x))
    return np.asarray(x, order="C")  # not ascontiguousarray, which makes a scalar 1-D


def _detached(x: Any) -> Any:
    """A torch tensor without its autograd history (torch refuses to export or view one that
    requires grad); any other array as it is."""
    return x.detach() if type(x).__module__.startswith("torch") else x
