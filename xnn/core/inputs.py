"""User data at the edges: checked once, moved to the model's backend once."""

from __future__ import annotations

from typing import Any

from xnn.backends import Backend, host_array, on_device
from xnn.core.validation import check_finite, check_matrix

__all__ = ["as_features", "as_targets", "one_hot_rows"]


def as_features(X: Any, backend: Backend, dtype: str, n_features: int | None,
                name: str = "X", check_values: bool = True) -> Any:
    """``X`` as a (rows, features) array of ``backend`` in ``dtype``.

    ``n_features`` (when the model is already built) must match. ``check_values`` also
    refuses NaN and inf (one host sync).
    """
    X = _arrive(X, backend, dtype)
    check_matrix(X, name)
    if backend.kind(X) not in "fiub":
        raise ValueError(f"{name} must hold numbers, got dtype {X.dtype}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features per row, expected {n_features} (the width the "
            "model was built for, or of X_train)"
        )
    X = backend.asarray(X, backend.dtype(dtype))
    if check_values:
        check_finite(X, name)
    return X


def as_targets(y: Any, backend: Backend, dtype: str, n_outputs: int, n_rows: int,
               name: str = "y", classes: bool = True) -> Any:
    """``y`` as a (rows, outputs) array of ``backend``.

    ``classes=True`` (a classification loss): integer class labels of shape (rows,) become
    one-hot rows, and rows of shape (rows, n_outputs) must be probabilities (non-negative,
    summing to 1: one-hot or soft labels). ``classes=False`` (a regression loss such as MSE):
    targets are values, of shape (rows, n_outputs), or (rows,) for a single output, integers
    included.
    """
    y = _arrive(y, backend, dtype)
    xp = backend.xp
    if y.ndim == 0 or y.ndim > 2 or y.shape[0] != n_rows:
        raise ValueError(
            f"{name} must have one row per row of X ({n_rows}), got shape {tuple(y.shape)}"
        )
    kind = backend.kind(y)
    if kind not in "fiub":
        raise ValueError(f"{name} must hold numbers, got dtype {y.dtype}")
    if y.ndim == 1 and classes:
        if kind not in "iu":
            raise ValueError(
                f"{name} of shape {tuple(y.shape)} holds fractions: give integer class labels "
                f"or rows of shape (rows, {n_outputs})"
            )
        return one_hot_rows(y, n_outputs, backend, dtype, name)
    if y.ndim == 1:
        if n_outputs != 1:
            raise ValueError(
                f"{name} of shape {tuple(y.shape)} gives one value per row, but the model has "
                f"{n_outputs} outputs: give targets of shape (rows, {n_outputs}) (class labels: "
                "one-hot encode them with xnn.preprocessing.one_hot)"
            )
        y = xp.reshape(y, (-1, 1))
    if y.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must have {n_outputs} columns (one per output neuron), got shape "
            f"{tuple(y.shape)}"
        )
    y = backend.asarray(y, backend.dtype(dtype))
    check_finite(y, name)
    if classes:
        check_probability_rows(y, backend, name)
    return y


def check_probability_rows(y: Any, backend: Backend, name: str) -> None:
    """Each row of ``y`` must be a distribution: entries ≥ 0 summing to 1 (one host sync).

    |Σ y − 1| may reach 1e-4 (float32; 1e-9 in float64) for soft labels rounded by the user,
    plus n·eps for the rounding of a sum of n entries: a fixed bound, not one that grows with
    the number of classes (n × 1e-4 let an all-zero row of 10,000 classes through)."""
    xp = backend.xp
    tolerance = 1e-4 if backend.itemsize(y.dtype) < 8 else 1e-9
    bound = tolerance + y.shape[1] * float(xp.finfo(y.dtype).eps)
    off = xp.abs(xp.sum(y, axis=1) - 1.0) > bound
    if bool(xp.any(y < 0) | xp.any(off)):
        raise ValueError(
            f"{name} must hold one probability row per sample for a classification loss "
            "(entries >= 0 summing to 1: one-hot or soft labels); got rows with negative "
            "entries or sums other than 1 (regression targets need a regression loss such as "
            "MeanSquaredError)"
        )


def _arrive(x: Any, backend: Backend, dtype: str) -> Any:
    """``x`` on ``backend``; host floats cross already cast to the model's ``dtype`` when that
    is narrower (float64 data for a float32 model: half the bytes, no float64 device copy)."""
    if backend.owns(x) or on_device(x):
        return backend.asarray(x)
    host = host_array(x)
    return backend.asarray(host, backend.dtype(dtype) if host.dtype.kind == "f" else None)


def one_hot_rows(labels: Any, n_classes: int, backend: Backend, dtype: str,
                 name: str = "labels") -> Any:
    """(n,) integer labels of ``backend`` → (n, n_classes) rows e_label, range-checked."""
    xp = backend.xp
    if labels.shape[0] and not bool(xp.all((labels >= 0) & (labels < n_classes))):
        low, high = int(xp.min(labels)), int(xp.max(labels))
        raise ValueError(
            f"{name} holds class labels in [{low}, {high}], expected labels in "
            f"[0, {n_classes - 1}] for {n_classes} classes"
        )
    classes = xp.reshape(backend.arange(n_classes), (1, -1))
    return backend.astype(xp.reshape(labels, (-1, 1)) == classes, backend.dtype(dtype))
