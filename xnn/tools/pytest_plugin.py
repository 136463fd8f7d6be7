"""pytest plugin: the ``xnn_backend`` fixture runs a test once per xnn backend.

Loaded by pytest wherever xnn is installed (entry point ``pytest11`` named ``xnn``; ``-p no:xnn``
turns it off); from a checkout that is not installed, enable it with ``-p xnn.pytest_plugin``::

    def test_my_model(xnn_backend):
        net = NeuralNetwork([Dense(10)], SoftmaxCrossEntropy(), backend=xnn_backend)

Each test gets one parameter per backend (ids ``numpy``, ``cupy``, ``array_api_strict``,
``torch``, ``torch:cuda``); a backend this machine cannot run is skipped with the reason (the
missing package or device), and ``cupy`` and ``torch:cuda`` carry the ``gpu`` mark, so
``-m gpu``, ``-m "not gpu"`` and ``-k cupy`` select.
Backends are probed only when a collected test asks for the fixture, and nothing of xnn beyond
this module is imported before then: the plugin costs nothing in pytest sessions that do not
use it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from xnn.backends import Backend

__all__ = ["xnn_backend"]

FIXTURE = "xnn_backend"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``gpu`` mark, so ``--strict-markers`` suites accept it."""
    config.addinivalue_line("markers", "gpu: needs CuPy and a CUDA device (xnn)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Parametrize every test that uses ``xnn_backend`` over the backends, with skips."""
    if FIXTURE not in metafunc.fixturenames or _parametrized_by_test(metafunc):
        return
    from xnn.tools.testing import backend_params

    metafunc.parametrize(FIXTURE, backend_params(), indirect=True)


@pytest.fixture
def xnn_backend(request: pytest.FixtureRequest) -> Backend:
    """The backend of this parameter: ``numpy``, ``cupy``, ``array_api_strict``, ``torch`` or
    ``torch:cuda``."""
    name = getattr(request, "param", None)
    if name is None:  # requested dynamically (getfixturevalue), so never parametrized
        pytest.fail(f"{FIXTURE} must be an argument of the test (or of a fixture it uses) to "
                    "be parametrized over the backends", pytrace=False)
    from xnn.backends import get_backend

    return get_backend(name)


def _parametrized_by_test(metafunc: pytest.Metafunc) -> bool:
    """Whether the test parametrizes ``xnn_backend`` itself (e.g. to pin one backend)."""
    for mark in metafunc.definition.iter_markers("parametrize"):
        names = mark.args[0] if mark.args else mark.kwargs.get("argnames", ())
        if isinstance(names, str):
            names = [name.strip() for name in names.split(",")]
        if FIXTURE in names:
            return True
    return False
