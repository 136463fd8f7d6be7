"""Tests written for surviving mutants of ``xnn.core.inputs`` (docs/mutation/xnn.core.inputs.md).

Probability rows are accepted within 1e-4 per column (float32) or 1e-9 per column (float64)
of summing to 1: soft labels rounded to 4 (float32) or 9 (float64) decimals pass.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from xnn.core.inputs import as_targets

_MESSAGE = (
    "y must hold one probability row per sample for a classification loss (entries >= 0 "
    "summing to 1: one-hot or soft labels); got rows with negative entries or sums other "
    "than 1 (regression targets need a regression loss such as MeanSquaredError)"
)


def _rows(value, dtype):
    return np.full((2, 3), value, dtype=dtype)


def test_float32_soft_labels_rounded_to_4_decimals_are_accepted(backend):
    # float32(0.3333) * 3 misses 1 by about 1.0e-4: inside 3 columns * 1e-4, outside 3 * 1e-9
    # (a float64 tolerance) and outside 1e-4 / 3
    y = as_targets(_rows(0.3333, np.float32), backend, "float32", 3, 2)
    np.testing.assert_allclose(backend.to_numpy(y), np.full((2, 3), 0.3333), rtol=1e-6)


def test_float64_soft_labels_rounded_to_4_decimals_are_refused(backend):
    # 1e-4 off is far outside float64's 3 * 1e-9
    with pytest.raises(ValueError, match=re.escape(_MESSAGE)):
        as_targets(_rows(0.3333, np.float64), backend, "float64", 3, 2)


def test_float64_soft_labels_rounded_to_9_decimals_are_accepted(backend):
    # 0.333333333 * 3 misses 1 by 1e-9: inside 3 * 1e-9, outside 1e-9 / 3
    y = as_targets(_rows(0.333333333, np.float64), backend, "float64", 3, 2)
    np.testing.assert_array_equal(backend.to_numpy(y), np.full((2, 3), 0.333333333))


def test_the_probability_row_message_in_full(backend):
    y = np.array([[0.5, 0.5, 0.0], [0.9, 0.0, 0.0]])
    with pytest.raises(ValueError) as caught:
        as_targets(y, backend, "float64", 3, 2)
    assert str(caught.value) == _MESSAGE


@pytest.mark.parametrize(("columns", "row_sum"), [(10_000, 0.0), (625, 1.0625), (50, 1.01)])
def test_rows_far_from_a_distribution_are_refused_however_many_classes(columns, row_sum):
    """The bound on |Σ y − 1| does not grow with the number of classes (it once was n × 1e-4,
    which let an all-zero float32 row of 10,000 classes through)."""
    from xnn.backends import get_backend
    from xnn.core.inputs import check_probability_rows

    y = np.full((2, columns), 1.0 / columns, np.float32)
    y[1] *= np.float32(row_sum)
    with pytest.raises(ValueError, match="one probability row per sample"):
        check_probability_rows(y, get_backend("numpy"), "y")
    check_probability_rows(y[:1], get_backend("numpy"), "y")  # the first row is one


def test_one_hot_names_the_labels_out_of_range():
    from xnn.data.preprocessing import one_hot

    with pytest.raises(ValueError) as info:
        one_hot(np.array([0, 12, 3]), 10)
    assert str(info.value) == ("labels holds class labels in [0, 12], expected labels in "
                               "[0, 9] for 10 classes")


@pytest.mark.parametrize("shape", [(4, 3, 1), (4, 1, 1)])
def test_targets_of_three_dimensions_are_refused_in_words(backend, shape):
    y = np.zeros(shape)
    with pytest.raises(ValueError) as info:
        as_targets(y, backend, "float64", 3, 4, classes=False)
    assert str(info.value) == f"y must have one row per row of X (4), got shape {shape}"


def test_a_scalar_target_is_refused_in_words(backend):
    with pytest.raises(ValueError) as info:
        as_targets(backend.asarray(np.array(1.0)), backend, "float64", 1, 4, classes=False)
    assert str(info.value) == "y must have one row per row of X (4), got shape ()"


def test_targets_that_are_not_numbers_are_refused_in_words():
    from xnn.backends import get_backend

    with pytest.raises(ValueError) as info:
        as_targets(np.array(["a", "b"]), get_backend("numpy"), "float64", 1, 2, classes=False)
    assert str(info.value) == "y must hold numbers, got dtype <U1"


def test_one_value_per_row_for_several_outputs_points_to_one_hot(backend):
    with pytest.raises(ValueError) as info:
        as_targets(np.zeros(4), backend, "float64", 3, 4, classes=False)
    assert str(info.value) == (
        "y of shape (4,) gives one value per row, but the model has 3 outputs: give targets of "
        "shape (rows, 3) (class labels: one-hot encode them with xnn.preprocessing.one_hot)")


@pytest.mark.parametrize("given", ["float32", "int64"])
def test_regression_targets_take_the_models_dtype_even_on_its_backend(backend, given):
    """Targets already on the model's backend, as float32 or integers, become float64 for a
    float64 model (data from the host is cast on its way; these are cast here)."""
    y = backend.asarray(np.arange(4, dtype=given).reshape(4, 1))
    got = as_targets(y, backend, "float64", 1, 4, classes=False)
    assert got.dtype == backend.dtype("float64")
    np.testing.assert_array_equal(backend.to_numpy(got), np.arange(4.0).reshape(4, 1))


def test_features_messages_in_full():
    """as_features' default name is ``X``; strings and the wrong width are refused in words."""
    from xnn.backends import get_backend
    from xnn.core.inputs import as_features

    numpy = get_backend("numpy")
    with pytest.raises(ValueError) as info:
        as_features(np.array([["a", "b"]]), numpy, "float64", None)
    assert str(info.value) == "X must hold numbers, got dtype <U1"
    with pytest.raises(ValueError) as info:
        as_features(np.zeros((2, 3)), numpy, "float64", 4)
    assert str(info.value) == ("X has 3 features per row, expected 4 (the width the model was "
                               "built for, or of X_train)")



@pytest.mark.parametrize("given", ["float64", "float32"])
def test_fractional_class_labels_are_refused_alike_on_every_backend(backend, given):
    """The message names no dtype: host floats cross to a device already cast to the model's
    dtype, so a dtype named after the crossing would differ between backends."""
    with pytest.raises(ValueError) as info:
        as_targets(np.zeros(4, given), backend, "float32", 3, 4)
    assert str(info.value) == ("y of shape (4,) holds fractions: give integer class labels or "
                               "rows of shape (rows, 3)")


def test_an_array_of_the_stand_in_gpu_on_another_device_is_moved_and_counted():
    """array-api-strict data on its default device, for a model on the stand-in GPU's device:
    the backend moves it (one counted copy), as it does host data; it is not read as host
    data (which a device array refuses)."""
    pytest.importorskip("array_api_strict")
    from xnn.backends import get_backend
    from xnn.core.inputs import as_features

    strict = get_backend("array_api_strict")
    X = strict.xp.asarray(np.arange(6.0).reshape(2, 3))
    assert X.device != strict.device
    before = strict.host_to_device
    moved = as_features(X, strict, "float64", 3)
    assert strict.owns(moved) and strict.host_to_device == before + 1
    np.testing.assert_array_equal(strict.to_numpy(moved), np.arange(6.0).reshape(2, 3))
