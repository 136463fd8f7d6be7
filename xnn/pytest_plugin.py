"""``-p xnn.pytest_plugin``: the short name of :mod:`xnn.tools.pytest_plugin` for checkouts."""

from xnn.tools.pytest_plugin import pytest_configure, pytest_generate_tests, xnn_backend

__all__ = ["pytest_configure", "pytest_generate_tests", "xnn_backend"]
