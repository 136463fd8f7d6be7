"""Elementwise activations, each defined once: its forward, its derivative and its CUDA form.

An activation class gives, side by side:

- :meth:`~Activation.apply` f(x) and :meth:`~Activation.derivative` dy·f′ read off y = f(x),
  in plain ``xp`` (the reference every backend can run);
- optionally :meth:`~Activation.derivative_into`, the same derivative with ``out=`` buffers
  (NumPy, CuPy);
- ``cuda_forward`` and ``cuda_derivative``, the same two as CUDA C expressions of ``s`` (the
  input), ``dy`` and ``y``, with ``T`` the float type and ``{name}`` for a hyper-parameter of
  :meth:`~Activation.config`. CuPy's fused kernels are made from them.

``class Tanh(Activation, name="tanh")`` registers the class under ``name`` in
:data:`ACTIVATIONS`, which checkpoints and the fused kernels read; a registered activation must
have all three forms (a test checks that they agree). A subclass that is not registered itself
runs its own ``apply``/``derivative`` as written and is never fused.
"""

from __future__ import annotations

from typing import Any, ClassVar

from xnn.nn.operations import Array, Operation

__all__ = ["ACTIVATIONS", "Activation", "LeakyReLU", "Linear", "ReLU", "ReLU6", "Sigmoid",
           "Tanh"]

ACTIVATIONS: dict[str, type[Activation]] = {}  # registered name → class


class Activation(Operation):
    """y = f(x) elementwise, with dx = dy·f′(x) written as a function of dy and y."""

    name: ClassVar[str | None] = None
    cuda_forward: ClassVar[str] = ""
    cuda_derivative: ClassVar[str] = ""

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if name is None:
            return
        if name in ACTIVATIONS:
            raise ValueError(f"activation name {name!r} is taken by {ACTIVATIONS[name]!r}")
        if not (cls.cuda_forward and cls.cuda_derivative):
            raise TypeError(f"{cls.__name__} must define cuda_forward and cuda_derivative")
        cls.name = name
        ACTIVATIONS[name] = cls

    def apply(self, xp: Any, x: Array) -> Array:
        """f(x)."""
        raise NotImplementedError

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        """dy·f′(x), from dy and y = f(x)."""
        raise NotImplementedError

    def derivative_into(self, xp: Any, output_grad: Array, output: Array) -> Array:
        """:meth:`derivative` into a new buffer with ``out=`` (NumPy, CuPy); same values."""
        return self.derivative(xp, output_grad, output)

    def config(self) -> dict[str, float]:
        """The constructor's hyper-parameters (saved in checkpoints, used in CUDA forms)."""
        return {}

    @property
    def registered(self) -> bool:
        """Whether this object's exact class is the one registered under its name."""
        return self.name is not None and ACTIVATIONS.get(self.name) is type(self)

    def cuda_expressions(self) -> tuple[str, str]:
        """(f(s), dy·f′ from y) in CUDA C, with this object's hyper-parameters filled in."""
        values = {key: repr(float(value)) for key, value in self.config().items()}
        return self.cuda_forward.format(**values), self.cuda_derivative.format(**values)

    def _output(self, inference: bool) -> Array:
        return self.apply(self._kernels(self.input_).xp, self.input_)

    def _input_grad(self, output_grad: Array) -> Array:
        return self._kernels(output_grad).activation_grad(output_grad, self.output, self)

    def __repr__(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in self.config().items())
        return f"{type(self).__name__}({args})"


class Sigmoid(Activation, name="sigmoid"):
    """y = 1 / (1 + e^−x), computed as (1 + tanh(x/2)) / 2 so it never overflows; dx = dy·y(1−y)."""

    cuda_forward = "(T)0.5 * (tanh((T)0.5 * s) + (T)1)"
    cuda_derivative = "dy * y * ((T)1 - y)"

    def apply(self, xp: Any, x: Array) -> Array:
        return 0.5 * (xp.tanh(0.5 * x) + 1.0)

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        return output_grad * output * (1.0 - output)

    def derivative_into(self, xp: Any, output_grad: Array, output: Array) -> Array:
        grad = xp.subtract(1.0, output)
        xp.multiply(grad, output, out=grad)
        return xp.multiply(output_grad, grad, out=grad)


class Tanh(Activation, name="tanh"):
    """y = tanh(x); dx = dy·(1 − y²)."""

    cuda_forward = "tanh(s)"
    cuda_derivative = "dy * ((T)1 - y * y)"

    def apply(self, xp: Any, x: Array) -> Array:
        return xp.tanh(x)

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        return output_grad * (1.0 - output * output)

    def derivative_into(self, xp: Any, output_grad: Array, output: Array) -> Array:
        grad = xp.multiply(output, output)
        xp.subtract(1.0, grad, out=grad)
        return xp.multiply(output_grad, grad, out=grad)


class Linear(Activation, name="linear"):
    """y = x; dx = dy."""

    cuda_forward = "s"
    cuda_derivative = "dy"

    def apply(self, xp: Any, x: Array) -> Array:
        return x

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        return output_grad


class LeakyReLU(Activation, name="leaky_relu"):
    """y = x for x > 0, else αx; dx = dy for x > 0, else α·dy (y > 0 exactly when x > 0)."""

    cuda_forward = "s > (T)0 ? s : (T)({alpha}) * s"
    cuda_derivative = "y > (T)0 ? dy : (T)({alpha}) * dy"

    def __init__(self, alpha: float = 0.01) -> None:
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"alpha must be in [0, 1), got {alpha!r}")
        self.alpha = float(alpha)

    def config(self) -> dict[str, float]:
        return {"alpha": self.alpha}

    def apply(self, xp: Any, x: Array) -> Array:
        return xp.where(x > 0, x, self.alpha * x)

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        return xp.where(output > 0, output_grad, self.alpha * output_grad)


class ReLU(LeakyReLU, name="relu"):
    """y = max(x, 0); dx = dy where x > 0, else 0.

    The book built the backward mask from the clipped output (always true), so negative
    inputs leaked their gradient; here the mask is y > 0, which holds exactly when x > 0.
    """

    cuda_forward = "s > (T)0 ? s : (T)0"
    cuda_derivative = "y > (T)0 ? dy : (T)0"

    def __init__(self) -> None:
        super().__init__(alpha=0.0)

    def config(self) -> dict[str, float]:
        return {}

    def apply(self, xp: Any, x: Array) -> Array:
        return xp.clip(x, 0.0, None)


class ReLU6(Activation, name="relu6"):
    """y = min(max(x, 0), 6); dx = dy where 0 < x < 6 (equivalently 0 < y < 6), else 0."""

    cuda_forward = "s > (T)0 ? (s < (T)6 ? s : (T)6) : (T)0"
    cuda_derivative = "(y > (T)0 && y < (T)6) ? dy : (T)0"

    def apply(self, xp: Any, x: Array) -> Array:
        return xp.clip(x, 0.0, 6.0)

    def derivative(self, xp: Any, output_grad: Array, output: Array) -> Array:
        return xp.where((output > 0) & (output < 6), output_grad, 0.0)
