"""scikit-learn estimators on xnn: ``MLPClassifier`` and ``MLPRegressor`` (public as
:mod:`xnn.sklearn`; needs scikit-learn >= 1.6: ``pip install scikit-learn``).

Each ``fit`` builds a :class:`~xnn.NeuralNetwork` of ``Dense`` layers (hidden ones of
``hidden_layer_sizes`` with ``activation`` and ``dropout``, then a linear output layer) and
trains it with xnn's :class:`~xnn.Trainer`: softmax cross-entropy for the classifier, mean
squared error on standardised targets for the regressor. Without ``validation_fraction`` the
whole of ``X`` trains, nothing is held out to evaluate and nothing stops early; with it, that
share of the rows (chosen by ``random_state``) is held out, evaluated every ``eval_every``
epochs, and early stopping (the book's rule) keeps the best evaluated parameters. Predictions
come back as NumPy arrays whatever the backend.

scikit-learn's ``check_estimator`` passes in full for both on the numpy and array_api_strict
backends, in float32 and float64 (``tests/test_sklearn.py`` runs it on every backend available);
:data:`EXPECTED_FAILED_CHECKS` is empty. Two checks
are skipped by scikit-learn itself unless their conditions hold: the pandas input check (needs
pandas) and the Array API input check (needs ``SCIPY_ARRAY_API=1``); both pass when they run.
Predictions go through the network in fixed blocks of rows, so a sample's prediction does not
depend on the others in the call (``check_methods_subset_invariance`` fails without that in
float32: BLAS rounds a one-row product differently from a many-row one).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as exc:  # pragma: no cover - exercised without scikit-learn
    raise ImportError("xnn.sklearn needs scikit-learn >= 1.6: pip install scikit-learn (or, in "
                      "the xnn checkout, pip install -e '.[sklearn]')") from exc

from xnn.backends import to_numpy
from xnn.core.batches import row_blocks
from xnn.nn.activations import ACTIVATIONS
from xnn.nn.layers import Dense
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from xnn.nn.network import NeuralNetwork
from xnn.train.adaptive import Adam
from xnn.train.optimizers import SGD, Optimizer, SGDMomentum
from xnn.train.trainer import Trainer

__all__ = ["EXPECTED_FAILED_CHECKS", "MLPClassifier", "MLPRegressor"]

# scikit-learn's names for activations, beside xnn's own ("tanh", "sigmoid", "relu", ...)
_ALIASES = {"identity": "linear", "logistic": "sigmoid"}
_OPTIMIZERS = ("sgd", "momentum", "adam")
_BLOCK = 256  # rows per forward pass when predicting

# check_estimator's checks these estimators do not pass (check name → why): none
EXPECTED_FAILED_CHECKS: dict[str, str] = {}


class _XnnMLP(BaseEstimator):
    """What both estimators share: the parameters, building the network, fitting, predicting."""

    _default_lr = 0.1  # for "sgd" and "momentum" when learning_rate is None

    def __init__(self, hidden_layer_sizes: tuple[int, ...] = (89,), activation: str = "tanh",
                 dropout: float = 1.0, weight_init: str = "glorot", optimizer: str = "momentum",
                 learning_rate: float | None = None, momentum: float = 0.9, epochs: int = 20,
                 batch_size: int = 60, eval_every: int = 10, validation_fraction: float = 0.0,
                 random_state: Any = None, backend: Any = None, dtype: str = "float32",
                 verbose: int = 0) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dropout = dropout
        self.weight_init = weight_init
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.momentum = momentum
        self.epochs = epochs
        self.batch_size = batch_size
        self.eval_every = eval_every
        self.validation_fraction = validation_fraction
        self.random_state = random_state
        self.backend = backend
        self.dtype = dtype
        self.verbose = verbose

    # -- what the subclasses say ------------------------------------------------------------
    def _loss(self) -> Loss:
        raise NotImplementedError

    def _targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        """The targets as the network trains on them, and the number of outputs."""
        raise NotImplementedError

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X: Any, y: Any) -> _XnnMLP:
        """Train a fresh network on ``X`` and ``y``; returns the estimator."""
        X, y = validate_data(self, X, y, dtype=(np.float64, np.float32), reset=True,
                              **self._y_options())
        targets, n_outputs = self._targets(y)
        seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        model = NeuralNetwork(self._layers(n_outputs), self._loss(), seed=seed,
                              backend=self.backend, dtype=self.dtype)
        train, validation = self._split(X.shape[0], seed)
        X_val, y_val = (None, None) if validation is None else \
            (X[validation], targets[validation])  # nothing held out: no evaluation
        trainer = Trainer(model, self._optimizer())
        self.history_ = trainer.fit(
            X[train], targets[train], X_val, y_val, epochs=_positive(self.epochs, "epochs"),
            eval_every=_positive(self.eval_every, "eval_every"),
            batch_size=_positive(self.batch_size, "batch_size"), seed=seed,
            early_stopping=validation is not None, verbose=min(int(self.verbose), 2))
        self.model_ = model
        self.n_iter_ = len(self.history_.records)
        self.loss_curve_ = [record["train_loss"] for record in self.history_.records]
        return self

    def _y_options(self) -> dict[str, Any]:
        return {}

    def _layers(self, n_outputs: int) -> list[Dense]:
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        name = _ALIASES.get(self.activation, self.activation)
        if name not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted({*ACTIVATIONS, *_ALIASES})}, "
                             f"got {self.activation!r}")
        hidden = [Dense(int(n), ACTIVATIONS[name](), dropout=self.dropout,
                        weight_init=self.weight_init) for n in sizes]
        return [*hidden, Dense(n_outputs, weight_init=self.weight_init)]

    def _optimizer(self) -> Optimizer:
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {_OPTIMIZERS}, got {self.optimizer!r}")
        lr = self.learning_rate
        if self.optimizer == "adam":
            return Adam(0.001 if lr is None else lr)
        lr = self._default_lr if lr is None else lr
        return SGD(lr) if self.optimizer == "sgd" else SGDMomentum(lr, momentum=self.momentum)

    def _split(self, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Training rows and held-out rows (``None``: no validation set)."""
        fraction = self.validation_fraction
        if not isinstance(fraction, numbers.Real) or not 0.0 <= fraction < 1.0:
            raise ValueError(f"validation_fraction must be in [0, 1), got {fraction!r}")
        held_out = math.ceil(fraction * rows)
        if held_out == 0:
            return np.arange(rows), None
        if held_out == rows:
            raise ValueError(f"validation_fraction={fraction} leaves no training rows of "
                             f"n_samples = {rows}")
        order = np.random.default_rng(seed).permutation(rows)
        return np.sort(order[:-held_out]), np.sort(order[-held_out:])

    # -- predicting -------------------------------------------------------------------------
    def _forward(self, X: Any) -> np.ndarray:
        """The network's outputs for ``X`` on the host, in float64 (inference mode).

        The rows go through the network in blocks of exactly :data:`_BLOCK` (the last one
        padded with zeros), so that a sample's prediction never depends on how many others
        come with it: BLAS picks its kernels, and so its rounding, by the shape of a product.
        """
        check_is_fitted(self, "model_")
        X = validate_data(self, X, dtype=(np.float64, np.float32), reset=False)
        outputs = []
        for rows in row_blocks(X.shape[0], _BLOCK):
            block = X[rows]
            if block.shape[0] < _BLOCK:
                block = np.concatenate([block, np.zeros((_BLOCK - block.shape[0], X.shape[1]),
                                                        block.dtype)])
            out = to_numpy(self.model_.forward(block, inference=True))
            outputs.append(out[: rows.stop - rows.start])
        return np.concatenate(outputs).astype(np.float64, copy=False)


class MLPClassifier(ClassifierMixin, _XnnMLP):
    """A multi-layer perceptron classifier trained by xnn (softmax cross-entropy).

    Parameters: ``hidden_layer_sizes=(89,)`` (the book's hidden layer), ``activation="tanh"``
    (an xnn activation name, or scikit-learn's ``"identity"``/``"logistic"``), ``dropout=1.0``
    (the probability of *keeping* a hidden unit, as in the book), ``weight_init="glorot"``,
    ``optimizer="momentum"`` (``"sgd"``, ``"momentum"`` or ``"adam"``), ``learning_rate=None``
    (0.1, or 0.001 for Adam), ``momentum=0.9``, ``epochs=20``, ``batch_size=60``,
    ``eval_every=10``, ``validation_fraction=0.0`` (> 0: hold out that share and stop early),
    ``random_state=None``, ``backend=None`` (``$XNN_BACKEND``, else numpy; any xnn backend),
    ``dtype="float32"``, ``verbose=0`` (1: the book's lines, 2: a line per epoch).

    After ``fit``: ``classes_``, ``n_features_in_``, ``model_`` (the trained
    :class:`~xnn.NeuralNetwork`), ``history_``, ``n_iter_`` (epochs run), ``loss_curve_``.
    """

    def _loss(self) -> Loss:
        return SoftmaxCrossEntropy()

    def _targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        check_classification_targets(y)
        self.classes_, labels = np.unique(y, return_inverse=True)
        return labels.astype(np.int64), max(len(self.classes_), 2)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one row per sample, columns in the order of ``classes_``."""
        check_is_fitted(self, "model_")
        logits = self._forward(X)[:, : len(self.classes_)]
        logits -= logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        probabilities /= probabilities.sum(axis=1, keepdims=True)
        return probabilities

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class of each sample."""
        check_is_fitted(self, "model_")
        return self.classes_[np.argmax(self._forward(X)[:, : len(self.classes_)], axis=1)]


class MLPRegressor(RegressorMixin, _XnnMLP):
    """A multi-layer perceptron regressor trained by xnn (mean squared error, linear output).

    The parameters and fitted attributes are :class:`MLPClassifier`'s (without ``classes_``);
    ``y`` may have one column or several. The network learns each column of ``y`` standardised
    (mean 0, standard deviation 1; so the learning rate suits any scale of ``y``), and
    ``predict`` answers in ``y``'s own units. ``learning_rate=None`` is 0.01 for ``"sgd"`` and
    ``"momentum"`` (a squared error's gradients are steeper than cross-entropy's), 0.001 for
    ``"adam"``.
    """

    _default_lr = 0.01

    def _loss(self) -> Loss:
        return MeanSquaredError()

    def _y_options(self) -> dict[str, Any]:
        return {"multi_output": True, "y_numeric": True}

    def _targets(self, y: np.ndarray) -> tuple[np.ndarray, int]:
        self._one_column = y.ndim == 1  # predict returns the shape fit was given
        y = (y.reshape(-1, 1) if y.ndim == 1 else y).astype(np.float64)
        self._y_mean = y.mean(axis=0)  # the network learns standardised targets
        self._y_scale = y.std(axis=0)
        self._y_scale[self._y_scale == 0] = 1.0
        return (y - self._y_mean) / self._y_scale, y.shape[1]

    def predict(self, X: Any) -> np.ndarray:
        """The predicted values: shape (n_samples,) for a 1-D ``y``, else (n_samples, n)."""
        check_is_fitted(self, "model_")
        outputs = self._forward(X) * self._y_scale + self._y_mean
        return outputs[:, 0] if self._one_column else outputs

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)
