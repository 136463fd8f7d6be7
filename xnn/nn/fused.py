"""Operations that do several of the book's steps in one pass, for backends that fuse them."""

from __future__ import annotations

from xnn.backends import Kernels
from xnn.core.validation import check_same_shape
from xnn.nn.activations import Activation
from xnn.nn.dropout import Dropout
from xnn.nn.operations import Array, BiasAdd

__all__ = ["BiasActivation"]


class BiasActivation(BiasAdd):
    """y = f(x + B)·m as one operation: ``BiasAdd``, ``activation`` and ``dropout``, fused.

    m is the dropout's mask while training, ``keep_prob`` at inference, 1 without dropout.
    Backward: dz = m·dy·f′ (f′ read off y), dB = Σ_rows dz, dx = dz. A
    :class:`~xnn.nn.layers.Dense` uses it in place of the separate operations when its
    backend's kernels fuse (CuPy's fused kernels: one kernel each way instead of three to five);
    it computes the same values, and draws the same masks from the dropout's stream.
    """

    def __init__(self, B: Array, activation: Activation, dropout: Dropout | None = None,
                 param_grad: Array | None = None, kernels: Kernels | None = None) -> None:
        super().__init__(B, param_grad, kernels)
        self.activation = activation
        self.dropout = dropout
        self.scale: Array | float | None = None

    _transient = (*BiasAdd._transient, "scale")

    def _output(self, inference: bool) -> Array:
        x = self.input_
        if self.dropout is not None:
            self.scale = self.dropout.scale(tuple(x.shape), inference)
        return self._kernels(x).bias_activation(x, self.param, self.activation, self.scale)

    def backward(self, output_grad: Array) -> Array | None:
        check_same_shape(self._forwarded(), output_grad, "output_grad")
        kernels = self._kernels(output_grad)
        grad = kernels.activation_grad(output_grad, self.output, self.activation, self.scale)
        kernels.sum_rows(grad, out=self.param_grad)
        return grad if self.input_grad_needed else None

    def __repr__(self) -> str:
        dropout = "" if self.dropout is None else f", {self.dropout!r}"
        return (f"BiasActivation({self.activation!r}{dropout}, "
                f"param of shape {tuple(self.param.shape)})")
