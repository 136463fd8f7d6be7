"""NumPy on the CPU: copies in and out are free and not counted."""

from __future__ import annotations

from typing import Any

import numpy as np

from xnn.backends.base import Backend, host_array
from xnn.backends.kernels import NumPyKernels

__all__ = ["NumPyBackend"]


class NumPyBackend(Backend):
    """Plain NumPy: the default backend and every other's reference."""

    name = library = "numpy"
    on_host = True

    def __init__(self) -> None:
        super().__init__(np, NumPyKernels(np))

    @property
    def array_type(self) -> type:
        return np.ndarray

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        host = host_array(x)
        if dtype is None or host.dtype == dtype:
            return host
        return host.astype(dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.array(x, copy=True)  # a copy, as on every other backend
