"""Test helpers for xnn and its users: backend-aware comparison, numerical gradients, parity."""

from __future__ import annotations

import os
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
from xnn.tools.parity import TOLERANCES, ParityReport, Tolerance, check_parity

__all__ = [
    "ParityReport",
    "Tolerance",
    "assert_backend_close",
    "backend_params",
    "backend_tolerance",
    "check_parity",
    "default_tolerances",
    "numerical_gradient",
]

# (rtol, atol) per dtype: tight enough to catch a wrong formula, loose enough for summation order
_TOLERANCES = {"float32": (1e-5, 1e-6), "float64": (1e-12, 1e-14)}


def default_tolerances(dtype: Any) -> tuple[float, float]:
    """``(rtol, atol)`` for comparing single operations in ``dtype``."""
    return _TOLERANCES.get(_dtype_name(dtype), (0.0, 0.0))


# backends that run NumPy's own kernels: the same arithmetic, in the same order, as NumPy
_NUMPY_KERNELS = frozenset({"numpy", "array_api_strict"})


def backend_tolerance(backend: str | Backend, dtype: Any, steps: int = 1, *,
                      rtol: float = 0.0, atol: float = 0.0) -> dict[str, float]:
    """``dict(rtol=..., atol=...)`` for comparing ``backend``'s results after ``steps`` steps
    with NumPy's (or with a reference computed in floating point on the host).

    Backends whose kernels are NumPy's (numpy, array_api_strict) get ``rtol`` and ``atol`` as
    given, exact by default: they do NumPy's arithmetic in NumPy's order, so a test keeps
    catching everything it catches today. Any other backend (cupy) gets at least the parity
    tolerance of :data:`xnn.tools.parity.TOLERANCES`, ``per_step × steps`` (float64: 1e-10,
    float32: 1e-5 per step), relative and absolute alike: CUDA's ``tanh``/``exp``/``log`` are
    not correctly rounded, its compiler contracts ``a·b + c`` into one FMA, and cuBLAS and
    CuPy's reductions sum in another order, so even one operation may differ from NumPy in its
    last bits, and the differences grow step by step during training. The absolute part
    matches the parity check's measure, ``max|a − r| / max|r|``, for values of order one;
    pass a larger ``atol`` for larger values. Dtypes without a parity tolerance (integers)
    get ``rtol`` and ``atol`` as given on every backend.
    Use it for cross-backend values only: masks, batch order, copies and the same computation
    run twice on one backend stay exact on every backend. ``backend`` is a name (it need not
    be installed) or a :class:`~xnn.backends.Backend`.
    """
    if isinstance(backend, str):
        name = get_backend(backend).name if backend == "auto" else backend
    else:
        name = backend.name
    tolerance = TOLERANCES.get(_dtype_name(dtype))
    if name in _NUMPY_KERNELS or tolerance is None:
        return {"rtol": rtol, "atol": atol}
    allowed = tolerance.allowed(steps)
    return {"rtol": max(rtol, allowed), "atol": max(atol, allowed)}


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
    """``pytest.param`` per backend (those of :data:`BACKEND_NAMES` and ``torch:cuda``), with
    ``gpu`` marks and skips that say why. ``$XNN_TEST_BACKENDS`` (comma-separated names, e.g.
    ``numpy,array_api_strict``) skips the others without probing them (so without importing
    torch or CuPy)."""
    import pytest

    selected = os.environ.get("XNN_TEST_BACKENDS")
    params = []
    for name in (*BACKEND_NAMES, "torch:cuda"):
        marks = [pytest.mark.gpu] if name in ("cupy", "torch:cuda") else []
        if selected is not None and name not in selected.split(","):
            marks.append(pytest.mark.skip(reason=f"{name}: not in $XNN_TEST_BACKENDS"))
            params.append(pytest.param(name, id=name, marks=marks))
            continue
        try:
            get_backend(name)
        except BackendUnavailableError as exc:
            marks.append(pytest.mark.skip(reason=_skip_reason(name, exc)))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


# how to install each optional backend, short enough for pytest's ``-ra`` summary
_INSTALL = {"cupy": "pip install -e '.[cuda12]'", "array_api_strict": "pip install -e '.[test]'",
            "torch": "pip install -e '.[torch]'", "torch:cuda": "a CUDA build of torch"}


def _skip_reason(name: str, exc: BackendUnavailableError) -> str:
    """One short line: ``cupy: not installed (pip install -e '.[cuda12]')``, or the first clause
    of the error (``cupy: CuPy is installed but no CUDA device is usable``)."""
    if isinstance(exc.__cause__, ImportError):
        return f"{name}: not installed ({_INSTALL.get(name, f'pip install {name}')})"
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    first = first.split(": ")[0].split("; ")[0].split(" (")[0].rstrip(".")
    return f"{name}: {first}"


def _dtype_name(dtype: Any) -> str:
    if isinstance(dtype, str):
        return dtype
    if isinstance(dtype, type) and issubclass(dtype, np.generic):  # np.float32 and the like
        return np.dtype(dtype).name
    name = getattr(dtype, "name", None)
    if name is None:  # array-api-strict dtypes have no name; their repr ends with it
        name = repr(dtype).rpartition(".")[2]
    return str(name)

