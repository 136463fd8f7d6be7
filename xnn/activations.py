"""Elementwise activations: operations without parameters."""

from __future__ import annotations

from xnn.backend import array_namespace
from xnn.operations import Array, Operation

__all__ = ["LeakyReLU", "Linear", "ReLU", "ReLU6", "Sigmoid", "Tanh"]


class Sigmoid(Operation):
    """y = 1 / (1 + e^−x), computed as (1 + tanh(x/2)) / 2 so it never overflows; dx = dy·y(1−y)."""

    def _output(self, inference: bool) -> Array:
        xp = array_namespace(self.input_)
        return 0.5 * (xp.tanh(0.5 * self.input_) + 1.0)

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad * self.output * (1.0 - self.output)


class Tanh(Operation):
    """y = tanh(x); dx = dy·(1 − y²)."""

    def _output(self, inference: bool) -> Array:
        return array_namespace(self.input_).tanh(self.input_)

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad * (1.0 - self.output * self.output)


class Linear(Operation):
    """y = x; dx = dy."""

    def _output(self, inference: bool) -> Array:
        return self.input_

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad


class LeakyReLU(Operation):
    """y = x for x > 0, else αx; dx = dy for x > 0, else α·dy."""

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def _output(self, inference: bool) -> Array:
        xp = array_namespace(self.input_)
        return xp.where(self.input_ > 0, self.input_, self.alpha * self.input_)

    def _input_grad(self, output_grad: Array) -> Array:
        xp = array_namespace(output_grad)
        return xp.where(self.input_ > 0, output_grad, self.alpha * output_grad)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


class ReLU(LeakyReLU):
    """y = max(x, 0); dx = dy where x > 0, else 0.

    The book built the backward mask from the clipped output (always true), so negative
    inputs leaked their gradient; here the mask is ``x > 0``.
    """

    def __init__(self) -> None:
        super().__init__(alpha=0.0)

    def _output(self, inference: bool) -> Array:
        return array_namespace(self.input_).clip(self.input_, 0.0, None)

    def __repr__(self) -> str:
        return "ReLU()"


class ReLU6(Operation):
    """y = min(max(x, 0), 6); dx = dy where 0 < x < 6, else 0."""

    def _output(self, inference: bool) -> Array:
        return array_namespace(self.input_).clip(self.input_, 0.0, 6.0)

    def _input_grad(self, output_grad: Array) -> Array:
        xp = array_namespace(output_grad)
        inside = (self.input_ > 0) & (self.input_ < 6)
        return xp.where(inside, output_grad, 0.0)
