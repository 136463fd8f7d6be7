"""CuPy on the current CUDA device, with generic or fused kernels."""

from __future__ import annotations

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

    name = "cupy"

    def __init__(self, cupy: ModuleType, fused: bool = False) -> None:
        if fused:
            from xnn.backends.cupy_kernels import CuPyFusedKernels

            kernels: OutKernels = CuPyFusedKernels(cupy)
        else:
            kernels = OutKernels(cupy)
        super().__init__(cupy, kernels, cupy.cuda.Device())
        self.fused = fused

    @property
    def array_type(self) -> type:
        return self.xp.ndarray

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
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
