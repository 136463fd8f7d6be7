"""Operations: the book's building blocks, each a forward ``x → y`` and a backward ``dy → dx``.

Inside a model an operation is handed its backend's kernels when it is built (``kernels``), and
a parameter operation its parameter and gradient as views of the model's
:class:`~xnn.nn.store.ParameterStore`. Used on its own, an operation finds the kernels of its
input's backend at each call and owns its arrays.
"""

from __future__ import annotations

from typing import Any

from xnn.backends import Kernels, array_namespace, kernels_for
from xnn.core.validation import check_same_shape

__all__ = ["BiasAdd", "Operation", "ParamOperation", "WeightMultiply"]

Array = Any  # an array of the model's backend


class Operation:
    """A differentiable step: ``forward`` keeps its input, ``backward`` returns the input grad."""

    input_: Array
    output: Array
    kernels: Kernels | None = None  # set by the layer that builds it; None on its own

    def forward(self, input_: Array, inference: bool = False) -> Array:
        """y = f(x); ``inference`` switches train-only behaviour (dropout) off."""
        self.input_ = input_
        self.output = self._output(inference)
        return self.output

    def backward(self, output_grad: Array) -> Array:
        """dx = dy · ∂f/∂x, with the book's shape checks on both sides."""
        check_same_shape(self._forwarded(), output_grad, "output_grad")
        input_grad = self._input_grad(output_grad)
        check_same_shape(self.input_, input_grad, "input_grad")
        return input_grad

    def _forwarded(self) -> Array:
        """The last forward pass's output; an error saying what to call first if none."""
        try:
            return self.output
        except AttributeError:
            raise RuntimeError(f"{type(self).__name__}.backward() before forward: call "
                               "forward(x) first") from None

    def bind(self, kernels: Kernels | None) -> None:
        """Run on ``kernels`` from now on (``None``: those of each call's input)."""
        self.kernels = kernels

    def _kernels(self, x: Array) -> Kernels:
        """The bound kernels, or, for an operation used on its own, those of ``x``."""
        return self.kernels if self.kernels is not None else kernels_for(x)

    def _output(self, inference: bool) -> Array:
        raise NotImplementedError

    def _input_grad(self, output_grad: Array) -> Array:
        raise NotImplementedError

    _transient = ("kernels", "input_", "output")  # rebound or recomputed; never pickled

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._transient}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class ParamOperation(Operation):
    """An operation with a parameter; ``backward`` also writes ``param_grad`` (in place).

    ``param`` and ``param_grad`` are fixed arrays for the operation's life (in a model, views of
    its store): assigning ``op.param = values`` copies the values into it. ``input_grad_needed
    = False`` (set on a network's first layer) skips computing ``dx``, which nobody reads there;
    ``backward`` then returns ``None``.
    """

    def __init__(self, param: Array, param_grad: Array | None = None,
                 kernels: Kernels | None = None) -> None:
        if param_grad is None:
            param_grad = array_namespace(param).zeros_like(param)
        check_same_shape(param, param_grad, "param_grad")
        self._param, self.param_grad, self.kernels = param, param_grad, kernels
        self.input_grad_needed = True

    @property
    def param(self) -> Array:
        """The parameter (in a model: a view of the store's flat values)."""
        return self._param

    @param.setter
    def param(self, values: Array) -> None:
        check_same_shape(self._param, values, "param")
        self._param[...] = values

    def backward(self, output_grad: Array) -> Array | None:
        check_same_shape(self._forwarded(), output_grad, "output_grad")
        self._write_param_grad(output_grad)
        if not self.input_grad_needed:
            return None
        input_grad = self._input_grad(output_grad)
        check_same_shape(self.input_, input_grad, "input_grad")
        return input_grad

    def _write_param_grad(self, output_grad: Array) -> None:
        """∂L/∂param into :attr:`param_grad`."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(param of shape {tuple(self.param.shape)})"


class WeightMultiply(ParamOperation):
    """y = x @ W for x of shape (batch, n_in) and W of shape (n_in, n_out)."""

    def _output(self, inference: bool) -> Array:
        return self.input_ @ self.param

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad @ self.param.T

    def _write_param_grad(self, output_grad: Array) -> None:
        self._kernels(output_grad).matmul(self.input_.T, output_grad, out=self.param_grad)


class BiasAdd(ParamOperation):
    """y = x + B for B of shape (1, n)."""

    def __init__(self, B: Array, param_grad: Array | None = None,
                 kernels: Kernels | None = None) -> None:
        if B.ndim != 2 or B.shape[0] != 1:
            raise ValueError(f"bias must have shape (1, n), got {tuple(B.shape)}")
        super().__init__(B, param_grad, kernels)

    def _output(self, inference: bool) -> Array:
        return self.input_ + self.param

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad

    def _write_param_grad(self, output_grad: Array) -> None:
        self._kernels(output_grad).sum_rows(output_grad, out=self.param_grad)
