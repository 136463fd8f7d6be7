"""array-api-strict on its non-default device: the CPU stand-in for a GPU."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend
from xnn.backends.kernels import Kernels

__all__ = ["StrictBackend"]


class StrictBackend(Backend):
    """Like CuPy it refuses implicit conversion to NumPy and mixing arrays of two devices; it
    has only the standard's functions, so it runs the reference kernels."""

    name = library = "array_api_strict"

    def __init__(self, strict: ModuleType) -> None:
        super().__init__(strict, Kernels(strict), strict.Device("device1"))

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

    def copy(self, x: Any) -> Any:
        return self.xp.asarray(x, copy=True)

    def astype(self, x: Any, dtype: Any) -> Any:
        return self.xp.astype(x, dtype)

    def arange(self, n: int) -> Any:
        return self.xp.arange(n, device=self.device)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        return self.xp.zeros(shape, dtype=dtype, device=self.device)

    def itemsize(self, dtype: Any) -> int:
        xp = self.xp
        if xp.isdtype(dtype, "bool"):
            return 1
        info = xp.finfo(dtype) if xp.isdtype(dtype, "real floating") else xp.iinfo(dtype)
        return info.bits // 8

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
