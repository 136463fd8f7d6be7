"""CuPy's fused kernels: each hot loop of a training step as one CUDA elementwise kernel.

The sources are plain data (:data:`SOURCES`), so a test can also compile every body as C++ on
the CPU and check its arithmetic against the generic ``xp`` reference without a GPU
(``tests/test_cuda_sources.py``); on a GPU, ``tests/test_kernels.py`` checks the kernels
themselves. Inside a body, ``i`` is the element's index and ``T`` the arrays' float type.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

from xnn.backends.kernels import OutKernels

__all__ = [
    "SOURCES",
    "CuPyFusedKernels",
    "ElementwiseSource",
    "activation_grad_source",
    "activation_sources",
    "bias_activation_source",
]

Array = Any


@dataclass(frozen=True)
class ElementwiseSource:
    """The arguments of a ``cupy.ElementwiseKernel``: parameters in and out, and the body."""

    name: str
    in_params: str
    out_params: str
    body: str


def bias_activation_source(name: str, expression: str) -> ElementwiseSource:
    """y = f(z + b)·m for f given as a CUDA expression of s = z + b; m: a dropout mask,
    keep_prob at inference, or 1."""
    return ElementwiseSource(f"xnn_bias_{name}", "T z, T b, T m", "T y",
                             f"const T s = z + b; y = ({expression}) * m;")


def activation_grad_source(name: str, expression: str) -> ElementwiseSource:
    """dx = m·dy·f′ for dy·f′ given as a CUDA expression of dy and y; m: the same 0/1 dropout
    mask as forward, or 1."""
    return ElementwiseSource(f"xnn_{name}_grad", "T dy, T y, T m", "T dx",
                             f"dx = m * ({expression});")


def activation_sources(activation: Any) -> tuple[ElementwiseSource, ElementwiseSource]:
    """The forward and backward kernels of a registered activation, from its CUDA forms."""
    forward, derivative = activation.cuda_expressions()
    name = activation.name
    return bias_activation_source(name, forward), activation_grad_source(name, derivative)


SOURCES: dict[str, ElementwiseSource] = {
    "sgd_step": ElementwiseSource("xnn_sgd_step", "T grad, T lr", "T param",
                                  "param -= lr * grad;"),
    "momentum_step": ElementwiseSource(
        "xnn_momentum_step", "T grad, T lr, T momentum", "T param, T velocity",
        "velocity = momentum * velocity + lr * grad; param -= velocity;"),
    "softmax_cross_entropy_grad": ElementwiseSource(
        "xnn_sce_grad", "T softmax, T target, T rows", "T grad",
        "grad = (softmax - target) / rows;"),
    # one thread per row: its softmax and its share −Σ y·log softmax / N of the loss
    "softmax_cross_entropy_rows": ElementwiseSource(
        "xnn_sce_rows", "raw T logits, raw T target, int32 classes, T rows",
        "T row_loss, raw T softmax",
        """
        const ptrdiff_t first = (ptrdiff_t)i * classes;
        T top = logits[first];
        for (int j = 1; j < classes; ++j) {
            top = logits[first + j] > top ? logits[first + j] : top;
        }
        T total = 0;
        for (int j = 0; j < classes; ++j) {
            const T e = exp(logits[first + j] - top);
            softmax[first + j] = e;
            total += e;
        }
        const T log_total = log(total);
        const T lowest = -(T)(sizeof(T) == 4 ? 3.4028234663852886e38 : 1.7976931348623157e308);
        T loss = 0;
        for (int j = 0; j < classes; ++j) {
            softmax[first + j] /= total;
            const T log_softmax = logits[first + j] - top - log_total;
            loss -= target[first + j] * (log_softmax < lowest ? lowest : log_softmax);
        }
        row_loss = loss / rows;
        """),
}


class CuPyFusedKernels(OutKernels):
    """CuPy: optimizer updates, softmax cross-entropy, bias + activation (+ dropout) and their
    backward each as one kernel, where the generic path launches two to eleven.

    Opt-in (``XNN_CUPY_FUSED=1``) until checked on a GPU (see docs/gpu.md).
    """

    fuses_activations = True

    def __init__(self, xp: ModuleType) -> None:
        super().__init__(xp)
        self._kernels = {key: self._compile(source) for key, source in SOURCES.items()}
        self._activation_kernels: dict[tuple[str, str], tuple[Any, Any]] = {}

    def _compile(self, source: ElementwiseSource) -> Any:
        """A ``cupy.ElementwiseKernel`` (compiled by CuPy on its first call, then cached)."""
        return self.xp.ElementwiseKernel(source.in_params, source.out_params, source.body,
                                         source.name)

    def _for_activation(self, activation: Any) -> tuple[Any, Any] | None:
        """The (forward, backward) kernels of a registered activation; None for another."""
        if not getattr(activation, "registered", False):
            return None
        key = activation.cuda_expressions()
        kernels = self._activation_kernels.get(key)
        if kernels is None:
            forward, backward = activation_sources(activation)
            kernels = self._activation_kernels[key] = (self._compile(forward),
                                                       self._compile(backward))
        return kernels

    def sgd_step(self, param: Array, grad: Array, lr: float, scratch: Array | None) -> None:
        self._kernels["sgd_step"](grad, lr, param)

    def momentum_step(self, param: Array, grad: Array, velocity: Array, lr: float,
                      momentum: float, scratch: Array | None) -> None:
        self._kernels["momentum_step"](grad, lr, momentum, param, velocity)

    def softmax_cross_entropy(self, logits: Array, target: Array) -> tuple[Array, Array]:
        xp = self.xp
        logits, target = xp.ascontiguousarray(logits), xp.ascontiguousarray(target)
        rows, classes = logits.shape
        row_loss = xp.empty((rows,), dtype=logits.dtype)
        softmax = xp.empty_like(logits)
        self._kernels["softmax_cross_entropy_rows"](logits, target, classes, float(rows),
                                                    row_loss, softmax)
        return xp.sum(row_loss), softmax

    def softmax_cross_entropy_grad(self, softmax: Array, target: Array) -> Array:
        return self._kernels["softmax_cross_entropy_grad"](softmax, target,
                                                           float(softmax.shape[0]))

    def bias_activation(self, z: Array, bias: Array, activation: Any,
                        scale: Array | float | None = None) -> Array:
        kernels = self._for_activation(activation)
        if kernels is None:  # an activation without CUDA forms
            return super().bias_activation(z, bias, activation, scale)
        return kernels[0](z, bias, 1.0 if scale is None else scale)

    def activation_grad(self, output_grad: Array, output: Array, activation: Any,
                        scale: Array | float | None = None) -> Array:
        kernels = self._for_activation(activation)
        if (kernels is None or isinstance(scale, float)  # no kernel; backward after inference
                or (scale is None and activation.name == "linear")):  # dy itself
            return super().activation_grad(output_grad, output, activation, scale)
        return kernels[1](output_grad, output, 1.0 if scale is None else scale)
