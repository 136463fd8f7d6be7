"""CuPy on the current CUDA device, with generic or fused kernels."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend
from xnn.backends.kernels import OutKernels

__all__ = ["CuPyBackend"]


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
        return self.xp.asarray(x if dtype is None else x.astype(dtype, copy=False))

    def _to_host(self, x: Any) -> np.ndarray:
        return self.xp.asnumpy(x)
