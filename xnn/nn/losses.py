"""Losses: ``forward(prediction, target)`` gives a 0-d array, ``backward()`` its gradient."""

from __future__ import annotations

from typing import Any

from xnn.backends import Kernels, kernels_for
from xnn.core.validation import check_number, check_same_shape
from xnn.nn.operations import Array

__all__ = ["Loss", "MeanSquaredError", "SoftmaxCrossEntropy"]


class Loss:
    """A scalar loss of a batch of predictions, averaged over rows."""

    prediction: Array
    target: Array
    classifies = False  # whether targets are classes (labels, probability rows) or values
    kernels: Kernels | None = None  # set by the network that owns the loss; None on its own

    def bind(self, kernels: Kernels | None) -> None:
        """Run on ``kernels`` from now on (``None``: those of each call's prediction)."""
        self.kernels = kernels

    def _kernels(self, x: Array) -> Kernels:
        return self.kernels if self.kernels is not None else kernels_for(x)

    # the kernels and the last batch's arrays: rebound or recomputed, never pickled
    _transient = ("kernels", "prediction", "target", "softmax", "_error", "_normalized",
                  "_row_sums")

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def forward(self, prediction: Array, target: Array) -> Array:
        """The loss as a 0-d array of the prediction's backend (no host sync)."""
        check_same_shape(prediction, target, "target")
        self.prediction, self.target = prediction, target
        return self._output()

    def backward(self) -> Array:
        """∂loss/∂prediction, of the prediction's shape."""
        if "prediction" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}.backward() before forward: call "
                               "loss.forward(prediction, target) first")
        input_grad = self._input_grad()
        check_same_shape(self.prediction, input_grad, "loss gradient")
        return input_grad

    def _output(self) -> Array:
        raise NotImplementedError

    def _input_grad(self) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class MeanSquaredError(Loss):
    """L = Σ (p − y)² / N, summed over outputs and averaged over the N rows (the book's MSE).

    ``normalize=True`` first divides each row of p by its sum. The book's gradient ignored
    that division; here it is differentiated too.
    """

    def __init__(self, normalize: bool = False) -> None:
        if isinstance(normalize, str) or normalize not in (True, False):
            raise TypeError(f"normalize must be True or False, got {normalize!r}")
        self.normalize = bool(normalize)

    def _output(self) -> Array:
        xp = self._kernels(self.prediction).xp
        p = self.prediction
        if self.normalize:
            self._row_sums = xp.sum(p, axis=1, keepdims=True)
            p = p / self._row_sums
        self._normalized = p
        self._error = p - self.target
        return xp.sum(self._error * self._error) / p.shape[0]

    def _input_grad(self) -> Array:
        grad = (2.0 / self.prediction.shape[0]) * self._error
        if not self.normalize:
            return grad
        # q = p / s with s = Σ_j p_j:  ∂L/∂p_k = (g_k − Σ_j g_j q_j) / s
        xp = self._kernels(grad).xp
        along_q = xp.sum(grad * self._normalized, axis=1, keepdims=True)
        return (grad - along_q) / self._row_sums

    def __repr__(self) -> str:
        return f"MeanSquaredError(normalize={self.normalize})"


class SoftmaxCrossEntropy(Loss):
    """L = −Σ y·log softmax(z) / N, via log-sum-exp (finite for any finite z); dz = (softmax − y)/N.

    The book clipped the softmax to [eps, 1 − eps] and added a −(1 − y)·log(1 − p) term that its
    gradient ignored. This loss and its gradient agree exactly; ``eps`` is kept for the book's
    signature and is not needed by the stable formulation.
    """

    classifies = True

    def __init__(self, eps: float = 1e-9) -> None:
        self.eps = check_number(eps, "eps", low=0.0, high=1.0, high_open=True)

    def _output(self) -> Array:
        kernels = self._kernels(self.prediction)
        loss, self.softmax = kernels.softmax_cross_entropy(self.prediction, self.target)
        return loss

    def _input_grad(self) -> Array:
        return self._kernels(self.softmax).softmax_cross_entropy_grad(self.softmax, self.target)
