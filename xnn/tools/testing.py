"""Test helpers for xnn and its users: backend-aware comparison, numerical gradients, parity."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from xnn.backends import (
    BACKEND_NAMES,
    Backend,
    BackendUnavailableError,
    backend_of,
    get_backend,
    to_numpy,
)
from xnn.tools.parity import ParityReport, Tolerance, check_parity

__all__ = [
    "ParityReport",
    "Tolerance",
    "assert_backend_close",
    "backend_params",
    "check_parity",
    "default_tolerances",
    "numerical_gradient",
]

# (rtol, atol) per dtype: tight enough to catch a wrong formula, loose enough for summation order
_TOLERANCES = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-14)}


def default_tolerances(dtype: Any) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing single operations in ``dtype``."""
    return _TOLERANCES.get(_dtype_name(dtype), (0.0, 0.0))


def assert_backend_close(actual: Any, expected: Any, *, backend: str | Backend | None = None,
                         rtol: float | None = None, atol: float | None = None) -> None:
    """Assert ``actual`` lives on ``backend`` (default: ``expected``'s) and equals ``expected``.

    Checks, in order: backend and device, dtype, shape, then values on the host with
    tolerances from the dtype unless given. A silent fallback to NumPy therefore fails.
    """
    want = get_backend(backend) if backend is not None else backend_of(expected)
    try:
        got = backend_of(actual)
    except TypeError:
        message = f"expected an array of backend {want.name!r}, got {actual!r}"
        raise AssertionError(message) from None
    assert got == want, f"array lives on backend {got.name!r}, expected {want.name!r}"
    assert want.owns(actual), f"array is not on the {want.name!r} device {want.device!r}"
    actual_dtype, expected_dtype = _dtype_name(actual.dtype), _dtype_name(expected.dtype)
    assert actual_dtype == expected_dtype, f"dtype {actual_dtype}, expected {expected_dtype}"
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"shape {tuple(actual.shape)}, expected {tuple(expected.shape)}"
    )
    default_rtol, default_atol = default_tolerances(actual_dtype)
    np.testing.assert_allclose(
        to_numpy(actual), to_numpy(expected),
        rtol=default_rtol if rtol is None else rtol,
        atol=default_atol if atol is None else atol,
    )


def numerical_gradient(f: Callable[[np.ndarray], float], x: np.ndarray,
                       h: float = 1e-6) -> np.ndarray:
    """∂f/∂x by central differences (f(x + h) − f(x − h)) / 2h, entry by entry, in float64."""
    x = np.array(x, dtype=np.float64)
    grad = np.empty_like(x)
    for index in np.ndindex(x.shape):
        saved = x[index]
        x[index] = saved + h
        above = f(x.copy())
        x[index] = saved - h
        below = f(x.copy())
        x[index] = saved
        grad[index] = (above - below) / (2 * h)
    return grad


def backend_params() -> list[Any]:
    """``pytest.param`` per backend name, with ``gpu`` marks and skips that say why."""
    import pytest

    params = []
    for name in BACKEND_NAMES:
        marks = [pytest.mark.gpu] if name == "cupy" else []
        try:
            get_backend(name)
        except BackendUnavailableError as exc:
            marks.append(pytest.mark.skip(reason=f"backend {name!r} unavailable: {exc}"))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    name = getattr(dtype, "name", None)
    if name is None:  # array-api-strict dtypes have no name; their repr ends with it
        name = repr(dtype).rpartition(".")[2]
    return str(name)

