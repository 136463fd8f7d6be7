"""Operations that do several of the book's steps in one pass, for backends that fuse them."""

from __future__ import annotations

from xnn.activations import Activation
from xnn.backend import kernels_of
from xnn.operations import Array, BiasAdd
from xnn.validation import check_same_shape

__all__ = ["BiasActivation"]


class BiasActivation(BiasAdd):
    """y = f(x + B) as one operation: ``BiasAdd`` then ``activation``, fused.

    Backward: dz = dy·f′ (from y), dB = Σ_rows dz, dx = dz. A :class:`~xnn.layers.Dense` uses
    it in place of the two operations when its backend's kernels fuse ``activation.kind``
    (CuPy: one kernel each way instead of two to four); it computes the same values.
    """

    def __init__(self, B: Array, activation: Activation) -> None:
        super().__init__(B)
        self.activation = activation

    def _output(self, inference: bool) -> Array:
        return kernels_of(self.input_).bias_activation(self.input_, self.param, self.activation)

    def backward(self, output_grad: Array) -> Array | None:
        check_same_shape(self.output, output_grad, "output_grad")
        kernels = kernels_of(output_grad)
        grad = kernels.activation_grad(output_grad, self.output, self.activation)
        self.param_grad = kernels.sum_rows(grad, out=self._buffer())
        return grad if self.input_grad_needed else None

    def __repr__(self) -> str:
        return f"BiasActivation({self.activation!r}, param of shape {tuple(self.param.shape)})"
