"""Elementwise activations: parameter-free operations whose derivative is read off the output."""

from __future__ import annotations

from xnn.backends import array_namespace, kernels_of
from xnn.nn.operations import Array, Operation

__all__ = ["Activation", "LeakyReLU", "Linear", "ReLU", "ReLU6", "Sigmoid", "Tanh"]


class Activation(Operation):
    """y = f(x) elementwise, with dx = dy·f′(x) written as a function of dy and y.

    Subclasses give :meth:`apply` and :meth:`derivative`; both are the reference that fast
    kernels are tested against. ``kind`` names the fused GPU kernels of this activation
    (``None``, the default of every subclass that does not set it: the activation runs as
    written here on every backend).
    """

    kind: str | None = None

    def __init_subclass__(cls, **kwargs: object) -> None:
        """A subclass that does not name its own ``kind`` has none: it may change the maths,
        and must not silently run its parent's fused kernel."""
        super().__init_subclass__(**kwargs)
        if "kind" not in cls.__dict__:
            cls.kind = None

    def apply(self, x: Array) -> Array:
        """f(x)."""
        raise NotImplementedError

    def derivative(self, output_grad: Array, output: Array) -> Array:
        """dy·f′(x), from dy and y = f(x)."""
        raise NotImplementedError

    def _output(self, inference: bool) -> Array:
        return self.apply(self.input_)

    def _input_grad(self, output_grad: Array) -> Array:
        return kernels_of(output_grad).activation_grad(output_grad, self.output, self)


class Sigmoid(Activation):
    """y = 1 / (1 + e^−x), computed as (1 + tanh(x/2)) / 2 so it never overflows; dx = dy·y(1−y)."""

    kind = "sigmoid"

    def apply(self, x: Array) -> Array:
        return 0.5 * (array_namespace(x).tanh(0.5 * x) + 1.0)

    def derivative(self, output_grad: Array, output: Array) -> Array:
        return output_grad * output * (1.0 - output)


class Tanh(Activation):
    """y = tanh(x); dx = dy·(1 − y²)."""

    kind = "tanh"

    def apply(self, x: Array) -> Array:
        return array_namespace(x).tanh(x)

    def derivative(self, output_grad: Array, output: Array) -> Array:
        return output_grad * (1.0 - output * output)


class Linear(Activation):
    """y = x; dx = dy."""

    kind = "linear"

    def apply(self, x: Array) -> Array:
        return x

    def derivative(self, output_grad: Array, output: Array) -> Array:
        return output_grad


class LeakyReLU(Activation):
    """y = x for x > 0, else αx; dx = dy for x > 0, else α·dy (y > 0 exactly when x > 0)."""

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def apply(self, x: Array) -> Array:
        return array_namespace(x).where(x > 0, x, self.alpha * x)

    def derivative(self, output_grad: Array, output: Array) -> Array:
        xp = array_namespace(output_grad)
        return xp.where(output > 0, output_grad, self.alpha * output_grad)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


class ReLU(LeakyReLU):
    """y = max(x, 0); dx = dy where x > 0, else 0.

    The book built the backward mask from the clipped output (always true), so negative
    inputs leaked their gradient; here the mask is y > 0, which holds exactly when x > 0.
    """

    kind = "relu"

    def __init__(self) -> None:
        super().__init__(alpha=0.0)

    def apply(self, x: Array) -> Array:
        return array_namespace(x).clip(x, 0.0, None)

    def __repr__(self) -> str:
        return "ReLU()"


class ReLU6(Activation):
    """y = min(max(x, 0), 6); dx = dy where 0 < x < 6 (equivalently 0 < y < 6), else 0."""

    def apply(self, x: Array) -> Array:
        return array_namespace(x).clip(x, 0.0, 6.0)

    def derivative(self, output_grad: Array, output: Array) -> Array:
        xp = array_namespace(output_grad)
        return xp.where((output > 0) & (output < 6), output_grad, 0.0)
