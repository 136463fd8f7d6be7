"""The argument checks of ``xnn.core.validation``: every row block, every bound."""

from __future__ import annotations

import numpy as np
import pytest

from xnn.core.validation import (
    check_finite,
    check_matrix,
    check_number,
    check_positive_int,
    check_same_shape,
)


@pytest.mark.parametrize("rows_per_check", [1, 2, 3, 7, 4096])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_check_finite_finds_a_bad_value_in_any_row_block(backend, rows_per_check, bad):
    for row in range(7):  # first block, middle blocks, last (short) block
        for column in (0, 2):
            x = np.ones((7, 3))
            x[row, column] = bad
            with pytest.raises(ValueError, match=r"^X contains NaN or inf values$"):
                check_finite(backend.asarray(x), "X", rows_per_check=rows_per_check)
    check_finite(backend.asarray(np.ones((7, 3))), "X", rows_per_check=rows_per_check)


@pytest.mark.parametrize("shape", [(5,), (5, 2, 3)])
def test_check_finite_on_other_ranks(backend, shape):
    x = np.zeros(shape)
    check_finite(backend.asarray(x), "y", rows_per_check=2)
    x.reshape(-1)[-1] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        check_finite(backend.asarray(x), "y", rows_per_check=2)
    x.reshape(-1)[-1], x.reshape(-1)[0] = 0.0, np.inf
    with pytest.raises(ValueError, match="y contains NaN"):
        check_finite(backend.asarray(x), "y", rows_per_check=2)


def test_check_finite_accepts_no_rows(backend):
    check_finite(backend.asarray(np.ones((0, 3))), "X")


@pytest.mark.parametrize("value", [1, 7, np.int64(3)])
def test_check_positive_int_accepts(value):
    assert check_positive_int(value, "n") == int(value)
    assert type(check_positive_int(value, "n")) is int


@pytest.mark.parametrize("value", [0, -1, 1.0, True, "2", None])
def test_check_positive_int_refuses(value):
    with pytest.raises(ValueError, match=rf"^n must be an integer >= 1, got {value!r}$"):
        check_positive_int(value, "n")


@pytest.mark.parametrize(("value", "bounds", "ok"), [
    (0.5, {}, True),
    (float("nan"), {}, False),
    (True, {}, False),
    ("1", {}, False),
    (0.0, {"low": 0.0}, True),
    (0.0, {"low": 0.0, "low_open": True}, False),
    (1e-12, {"low": 0.0, "low_open": True}, True),
    (-1e-12, {"low": 0.0}, False),
    (1.0, {"high": 1.0}, True),
    (1.0, {"high": 1.0, "high_open": True}, False),
    (1.0 - 1e-12, {"high": 1.0, "high_open": True}, True),
    (1.0 + 1e-12, {"high": 1.0}, False),
    (2, {"low": 0.0, "high": 3.0}, True),
])
def test_check_number_bounds(value, bounds, ok):
    if ok:
        assert check_number(value, "x", **bounds) == float(value)
        assert type(check_number(value, "x", **bounds)) is float
    else:
        with pytest.raises(ValueError, match=r"^x must be a number in "):
            check_number(value, "x", **bounds)


@pytest.mark.parametrize(("bounds", "text"), [
    ({}, "[-inf, inf]"),
    ({"low": 0.0, "low_open": True}, "(0.0, inf]"),
    ({"low": 0.0, "high": 1.0, "high_open": True}, "[0.0, 1.0)"),
    ({"high": 2.0}, "[-inf, 2.0]"),
])
def test_check_number_names_its_bounds(bounds, text):
    with pytest.raises(ValueError) as error:
        check_number(float("nan"), "rate", **bounds)
    assert str(error.value) == f"rate must be a number in {text}, got nan"


def test_check_matrix_and_same_shape(backend):
    check_matrix(backend.asarray(np.ones((2, 3))), "X")
    with pytest.raises(ValueError, match=r"^X must be 2-D \(rows, features\), got shape \(3,\)$"):
        check_matrix(backend.asarray(np.ones(3)), "X")
    check_same_shape(np.ones((2, 3)), np.zeros((2, 3)), "grad")
    with pytest.raises(ValueError, match=r"^grad has shape \(3, 2\), expected \(2, 3\)$"):
        check_same_shape(np.ones((2, 3)), np.zeros((3, 2)), "grad")
