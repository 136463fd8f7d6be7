"""The backend layer: the one place that knows NumPy, CuPy, array-api-strict and torch apart.

Everything else in xnn does its maths through a backend's ``xp`` and ``kernels``, written to
the subset of functions that NumPy 2, CuPy and the Array API standard share. Host↔device copies
go through :meth:`Backend.asarray` and :meth:`Backend.to_numpy`, which count them, so tests can
prove that training does not copy per batch. This package imports nothing else from xnn.
"""

from xnn.backends.base import Backend, activated, host_array, on_device
from xnn.backends.dtypes import DTYPES, resolve_dtype
from xnn.backends.kernels import Kernels
from xnn.backends.registry import (
    BACKEND_NAMES,
    DEVICE_NAMES,
    FUSED_VARIABLE,
    BackendUnavailableError,
    array_namespace,
    available_backends,
    backend_of,
    from_dlpack,
    get_backend,
    kernels_for,
    parse_backend_name,
    to_numpy,
)

__all__ = [
    "BACKEND_NAMES",
    "DEVICE_NAMES",
    "DTYPES",
    "FUSED_VARIABLE",
    "Backend",
    "BackendUnavailableError",
    "Kernels",
    "activated",
    "array_namespace",
    "available_backends",
    "backend_of",
    "from_dlpack",
    "get_backend",
    "host_array",
    "kernels_for",
    "on_device",
    "parse_backend_name",
    "resolve_dtype",
    "to_numpy",
]
