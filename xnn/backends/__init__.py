"""The backend layer: the one place that knows NumPy, CuPy and array-api-strict apart."""

from xnn.backends.registry import (
    _CACHE,  # noqa: F401  (tests reset it)
    BACKEND_NAMES,
    Backend,
    BackendUnavailableError,
    array_namespace,
    available_backends,
    backend_of,
    get_backend,
    kernels_of,
    resolve_dtype,
    to_numpy,
)

__all__ = [
    "BACKEND_NAMES",
    "Backend",
    "BackendUnavailableError",
    "array_namespace",
    "available_backends",
    "backend_of",
    "get_backend",
    "kernels_of",
    "resolve_dtype",
    "to_numpy",
]
