"""``xnn.testing``, the public path of :mod:`xnn.tools.testing`: comparisons, gradients, parity."""

from xnn.tools.testing import (
    ParityReport,
    Tolerance,
    assert_backend_close,
    backend_params,
    backend_tolerance,
    check_parity,
    default_tolerances,
    numerical_gradient,
)

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
