"""The one backend fixture: every test that takes ``backend`` runs on each available backend."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from xnn.backends import Backend, get_backend
from xnn.tools.testing import backend_params

# scripts/mutation.sh: mutmut runs each mutant's tests in mutants/, where it keeps every test's
# clean duration; read once here, in the fork server, before the mutants' processes fork from it
_STATS = Path("mutmut-stats.json")
_CLEAN_DURATIONS = json.loads(_STATS.read_text())["duration_by_test"] if _STATS.is_file() else {}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under mutmut, run a mutant's tests fastest first: it is killed at its first failure (-x)."""
    if _CLEAN_DURATIONS and "__mutmut_" in os.environ.get("MUTANT_UNDER_TEST", ""):
        items.sort(key=lambda item: _CLEAN_DURATIONS.get(item.nodeid, 0.0))


@pytest.fixture(params=backend_params())
def backend(request: pytest.FixtureRequest) -> Backend:
    """numpy, array_api_strict (device1) and cupy (marked ``gpu``; skipped when unusable)."""
    return get_backend(request.param)


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed host generator for test data."""
    return np.random.default_rng(20190119)


def write_tiny_mnist(directory):
    """Four IDX files of 600 + 100 learnable 28×28 images (class prototypes plus noise)."""
    from xnn.data import write_idx

    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, (10, 28, 28))
    directory.mkdir(parents=True, exist_ok=True)
    for prefix, rows in (("train", 600), ("t10k", 100)):
        labels = rng.integers(0, 10, rows).astype(np.uint8)
        noise = rng.integers(-40, 40, (rows, 28, 28))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
    return directory

