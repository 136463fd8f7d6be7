"""CUDA elementwise kernel sources, as plain data: one per hot loop of a training step.

Inside a body, ``i`` is the element's index and ``T`` the arrays' float type. CuPy compiles them
(:mod:`xnn.backends.cupy_kernels`); ``tests/test_cuda_sources.py`` compiles every body as C++ on
the CPU and checks its arithmetic against the plain-``xp`` reference, without a GPU. The
activations' kernels are made from each registered activation's CUDA forms
(:func:`activation_sources`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["SOURCES", "ElementwiseSource", "activation_grad_source", "activation_sources",
           "bias_activation_source"]


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
    # the optimizers (torch.optim's rules; wd: L2 weight decay added to the gradient)
    "sgd_step": ElementwiseSource("xnn_sgd_step", "T grad, T lr, T wd", "T param",
                                  "param -= lr * (grad + wd * param);"),
    "momentum_step": ElementwiseSource(
        "xnn_momentum_step", "T grad, T lr, T momentum, T wd, T nesterov",
        "T param, T velocity",
        "const T g = grad + wd * param; velocity = momentum * velocity + lr * g;"
        " param -= nesterov != (T)0 ? lr * g + momentum * velocity : velocity;"),
    "adam_step": ElementwiseSource(
        "xnn_adam_step", "T grad, T lr, T beta1, T beta2, T eps, T bc1, T bc2_sqrt, T wd, "
        "T decoupled", "T param, T m, T v",
        """
        T g = grad;
        if (decoupled != (T)0) { param *= (T)1 - lr * wd; } else { g += wd * param; }
        m += ((T)1 - beta1) * (g - m);
        v = beta2 * v + ((T)1 - beta2) * (g * g);
        param -= (lr / bc1) * (m / (sqrt(v) / bc2_sqrt + eps));
        """),
    "rmsprop_step": ElementwiseSource(
        "xnn_rmsprop_step", "T grad, T lr, T alpha, T eps, T wd", "T param, T square_avg",
        "const T g = grad + wd * param;"
        " square_avg = alpha * square_avg + ((T)1 - alpha) * (g * g);"
        " param -= lr * (g / (sqrt(square_avg) + eps));"),
    "rmsprop_momentum_step": ElementwiseSource(
        "xnn_rmsprop_momentum_step", "T grad, T lr, T alpha, T eps, T momentum, T wd",
        "T param, T square_avg, T buffer",
        "const T g = grad + wd * param;"
        " square_avg = alpha * square_avg + ((T)1 - alpha) * (g * g);"
        " buffer = momentum * buffer + g / (sqrt(square_avg) + eps); param -= lr * buffer;"),
    "adagrad_step": ElementwiseSource(
        "xnn_adagrad_step", "T grad, T lr, T eps, T wd", "T param, T total",
        "const T g = grad + wd * param; total += g * g;"
        " param -= lr * (g / (sqrt(total) + eps));"),
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
