"""Data preparation and metrics, on whatever backend the arrays live on."""

from __future__ import annotations

from typing import Any, Protocol

from xnn.backends import Backend, backend_of, get_backend, resolve_dtype
from xnn.core.batches import row_blocks
from xnn.core.inputs import one_hot_rows
from xnn.core.validation import check_positive_int

__all__ = ["accuracy", "one_hot", "standardize"]

_CHUNK = 8192  # rows per forward pass in ``accuracy``


class Classifier(Protocol):
    """What :func:`accuracy` needs of a model (a :class:`xnn.NeuralNetwork` has it)."""

    backend: Backend

    def as_features(self, X: Any) -> Any: ...

    def forward_batch(self, X: Any, inference: bool = False) -> Any: ...


def one_hot(labels: Any, num_classes: int, dtype: Any = "float32") -> Any:
    """Rows e_{label}: (n,) integer labels in [0, num_classes) → (n, num_classes) floats."""
    backend = backend_of(labels) if not isinstance(labels, list | tuple) else get_backend("numpy")
    labels = backend.asarray(labels)
    if labels.ndim != 1 or backend.kind(labels) not in "iu":
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} of shape "
                         f"{tuple(labels.shape)}")
    return one_hot_rows(labels, num_classes, backend, resolve_dtype(dtype))


def standardize(X_train: Any, X_test: Any, dtype: Any = "float32") -> tuple[Any, Any]:
    """(X − μ)/σ for both sets, with the scalar μ and σ of the training set (the book's scaling)."""
    backend = backend_of(X_train)
    if backend_of(X_test) != backend:
        raise ValueError("X_train and X_test must live on the same backend")
    float_dtype = backend.dtype(dtype)
    train, test = backend.astype(X_train, float_dtype), backend.astype(X_test, float_dtype)
    xp = backend.xp
    mean, std = xp.mean(train), xp.std(train)
    if not bool(std > 0):
        raise ValueError("X_train is constant: its standard deviation is 0")
    for X in (train, test):
        X -= mean
        X /= std
    return train, test


def accuracy(model: Classifier, X: Any, labels: Any, chunk: int = _CHUNK) -> float:
    """Fraction of rows whose largest output is the label (inference mode, one host sync).

    ``labels``: integer class labels of shape (rows,), or one-hot rows (their argmax is the
    label), as ``fit`` takes them. Float labels are refused rather than truncated. ``chunk``:
    how many rows go through the model at a time.
    """
    chunk = check_positive_int(chunk, "chunk")
    X = model.as_features(X)
    backend = model.backend
    xp = backend.xp
    labels = backend.asarray(labels)
    if labels.ndim == 2 and labels.shape[0] == X.shape[0]:
        labels = xp.argmax(labels, axis=1)
    elif labels.ndim != 1 or labels.shape[0] != X.shape[0]:
        raise ValueError(f"labels must have shape ({X.shape[0]},) (class labels) or "
                         f"({X.shape[0]}, classes) (one-hot rows), got {tuple(labels.shape)}")
    elif backend.kind(labels) not in "iu":
        raise ValueError(f"labels must be integer class labels, got dtype {labels.dtype} "
                         "(which would be truncated)")
    correct = None
    for rows in row_blocks(X.shape[0], chunk):
        predicted = xp.argmax(model.forward_batch(X[rows, ...], inference=True), axis=1)
        same = predicted == backend.astype(labels[rows], predicted.dtype)
        hits = xp.sum(backend.astype(same, xp.int64))
        correct = hits if correct is None else correct + hits
    return int(correct) / X.shape[0]
