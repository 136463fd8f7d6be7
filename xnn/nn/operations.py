"""Operations: the book's building blocks, each a forward ``x → y`` and a backward ``dy → dx``."""

from __future__ import annotations

from typing import Any

from xnn.backends import kernels_of
from xnn.core.validation import check_same_shape

__all__ = ["BiasAdd", "Operation", "ParamOperation", "WeightMultiply"]

Array = Any  # an array of the model's backend


class Operation:
    """A differentiable step: ``forward`` keeps its input, ``backward`` returns the input grad."""

    input_: Array
    output: Array

    def forward(self, input_: Array, inference: bool = False) -> Array:
        """y = f(x); ``inference`` switches train-only behaviour (dropout) off."""
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: Array) -> Array:
        """dx = dy · ∂f/∂x, with the book's shape checks on both sides."""
        check_same_shape(self.output, output_grad, "output_grad")
        input_grad = self._input_grad(output_grad)
        check_same_shape(self.input_, input_grad, "input_grad")
        return input_grad

    def _output(self, inference: bool) -> Array:
        raise NotImplementedError

    def _input_grad(self, output_grad: Array) -> Array:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ParamOperation(Operation):
    """An operation with a parameter; ``backward`` also fills ``param_grad``.

    ``input_grad_needed = False`` (set on a network's first layer) skips computing ``dx``,
    which nobody reads there; ``backward`` then returns ``None``.
    """

    param_grad: Array

    def __init__(self, param: Array) -> None:
        self.param = param
        self.input_grad_needed = True

    def backward(self, output_grad: Array) -> Array | None:
        check_same_shape(self.output, output_grad, "output_grad")
        self.param_grad = self._param_grad(output_grad)
        check_same_shape(self.param, self.param_grad, "param_grad")
        if not self.input_grad_needed:
            return None
        input_grad = self._input_grad(output_grad)
        check_same_shape(self.input_, input_grad, "input_grad")
        return input_grad

    def _param_grad(self, output_grad: Array) -> Array:
        raise NotImplementedError

    def _buffer(self) -> Array | None:
        """Last step's gradient array, to be overwritten (it has the parameter's shape)."""
        buffer = getattr(self, "param_grad", None)
        if buffer is None or buffer.dtype != self.param.dtype:
            return None
        return buffer

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param of shape {tuple(self.param.shape)})"


class WeightMultiply(ParamOperation):
    """y = x @ W for x of shape (batch, n_in) and W of shape (n_in, n_out)."""

    def _output(self, inference: bool) -> Array:
        return self.input_ @ self.param

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad @ self.param.T

    def _param_grad(self, output_grad: Array) -> Array:
        return kernels_of(output_grad).matmul(self.input_.T, output_grad, out=self._buffer())


class BiasAdd(ParamOperation):
    """y = x + B for B of shape (1, n)."""

    def __init__(self, B: Array) -> None:
        if B.ndim != 2 or B.shape[0] != 1:
            raise ValueError(f"bias must have shape (1, n), got {tuple(B.shape)}")
        super().__init__(B)

    def _output(self, inference: bool) -> Array:
        return self.input_ + self.param

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad

    def _param_grad(self, output_grad: Array) -> Array:
        return kernels_of(output_grad).sum_rows(output_grad, out=self._buffer())
