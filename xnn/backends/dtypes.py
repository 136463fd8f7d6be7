"""The floating dtypes a model may use, by name."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["DTYPES", "resolve_dtype"]

DTYPES = ("float32", "float64")


def resolve_dtype(dtype: Any) -> str:
    """The name ("float32" or "float64") of a floating dtype given by name or NumPy dtype."""
    if dtype is None:  # NumPy would read None as float64: say it instead
        raise ValueError("dtype must be 'float32' or 'float64', got None")
    try:
        name = np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        name = str(dtype)
    if name not in DTYPES:
        raise ValueError(f"dtype must be 'float32' or 'float64', got {dtype!r}")
    return name
