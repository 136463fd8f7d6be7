"""CuPy on the current CUDA device, with generic or fused kernels."""

from __future__ import annotations

import contextlib
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend
from xnn.backends.kernels import OutKernels

__all__ = ["CAST_BLOCK_BYTES", "CuPyBackend"]

CAST_BLOCK_BYTES = 64 << 20  # host data cast before copying, this much at a time


class CuPyBackend(Backend):
    """CuPy; ``fused=True`` runs the hot loops as single CUDA kernels (opt-in until a GPU has
    verified them, see docs/gpu.md). Works with CuPy 13 and 14: only method forms of
    ``astype``/``copy`` are used."""

    name = library = "cupy"

    def __init__(self, cupy: ModuleType, fused: bool = False, device: int | None = None) -> None:
        if fused:
            from xnn.backends.cupy_kernels import CuPyFusedKernels

            kernels: OutKernels = CuPyFusedKernels(cupy)
        else:
            kernels = OutKernels(cupy)
        # None: the device current now, which stays as CUDA makes it current; N: pinned to N
        super().__init__(cupy, kernels, cupy.cuda.Device() if device is None
                         else cupy.cuda.Device(device))
        self.fused = fused
        self.pinned = device is not None
        if self.pinned:
            self.name = f"cupy:{device}"

    def activate(self) -> Any:
        """``cupy:N``: device N as CuPy's current one for the ``with`` block (CuPy runs a
        kernel on the current device, and refuses arrays of another)."""
        return self.device if self.pinned else contextlib.nullcontext()

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        with self.activate():
            return self.xp.zeros(shape, dtype=dtype)

    def arange(self, n: int) -> Any:
        with self.activate():
            return self.xp.arange(n)

    @property
    def array_type(self) -> type:
        return self.xp.ndarray

    def synchronize(self) -> None:
        self.device.synchronize()

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.xp.ndarray) and (not self.pinned or
                                                   x.device.id == self.device.id)

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Like :meth:`Backend.asarray`, plus (``cupy:N``) a CuPy array of another device is
        refused, naming both, and a torch CUDA tensor of this device is taken through DLPack
        without a copy."""
        if isinstance(x, self.xp.ndarray) and not self.owns(x):
            raise ValueError(
                f"the array is on CUDA device {x.device.id}, but the model is on {self.name!r} "
                f"(device {self.device.id}); move one of them first: xnn never copies silently"
            )
        if type(x).__module__.startswith("torch") and x.device.type == "cuda":
            x = self.from_dlpack(x)  # no copy; a tensor of another GPU: a clear error
        return super().asarray(x, dtype)

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
        with self.activate():
            return self._from_host_here(x, dtype)

    def _from_host_here(self, x: np.ndarray, dtype: Any) -> Any:
        if dtype is None or x.dtype == dtype:
            return self.xp.asarray(x)
        if x.ndim == 0 or x.nbytes <= CAST_BLOCK_BYTES:
            return self.xp.asarray(x.astype(dtype))
        out = self.xp.empty(x.shape, dtype=dtype)  # cast on the host a block of rows at a time
        rows = max(1, CAST_BLOCK_BYTES // max(1, x[0].nbytes))
        for start in range(0, x.shape[0], rows):
            out[start:start + rows] = self.xp.asarray(x[start:start + rows].astype(dtype))
        return out

    def _to_host(self, x: Any) -> np.ndarray:
        return self.xp.asnumpy(x)
