"""The one backend fixture: every test that takes ``backend`` runs on each available backend."""

from __future__ import annotations

import numpy as np
import pytest

from xnn.backends import Backend, get_backend
from xnn.tools.testing import backend_params


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> Backend:
    """numpy, array_api_strict (device1) and cupy (marked ``gpu``; skipped when unusable)."""
    return get_backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed host generator for test data."""
    return np.random.default_rng(20190119)
