"""Argument checks that fail early with a message naming the argument and what was expected."""

from __future__ import annotations

import numbers
from typing import Any

from xnn.backends import array_namespace
from xnn.core.batches import row_blocks

__all__ = [
    "check_finite",
    "check_matrix",
    "check_number",
    "check_positive_int",
    "check_same_shape",
]


def check_positive_int(value: Any, name: str) -> int:
    """``value`` as an int >= 1, else ValueError."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    return int(value)


def check_number(value: Any, name: str, *, low: float | None = None, high: float | None = None,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a float within the given bounds (closed unless ``*_open``), else ValueError."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        left = "(" if low_open else "["
        right = ")" if high_open else "]"
        bounds = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high}{right}"
        raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")
    return float(value)


def check_matrix(x: Any, name: str) -> None:
    """``x`` must be a 2-D array (rows × features)."""
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, features), got shape {tuple(x.shape)}")


def check_finite(x: Any, name: str, rows_per_check: int = 4096) -> None:
    """``x`` must hold no NaN or inf (one host sync: call at the edges, never per batch).

    Checking in blocks of rows keeps the temporary mask small, so a ``fit`` on large data does
    not need an extra copy's worth of memory for it.
    """
    xp = array_namespace(x)
    if x.ndim < 2:
        x = xp.reshape(x, (-1, 1))
    finite = None
    for rows in row_blocks(x.shape[0], rows_per_check):
        block = xp.all(xp.isfinite(x[rows, ...]))
        finite = block if finite is None else finite & block
    if finite is not None and not bool(finite):
        raise ValueError(f"{name} contains NaN or inf values")


def check_same_shape(reference: Any, candidate: Any, name: str) -> None:
    """``candidate`` must have ``reference``'s shape (the book's ``assert_same_shape``)."""
    if candidate.shape != reference.shape:
        raise ValueError(
            f"{name} has shape {tuple(candidate.shape)}, expected {tuple(reference.shape)}"
        )
