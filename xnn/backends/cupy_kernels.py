"""CuPy's fused kernels: each hot loop of a training step as one CUDA elementwise kernel.

The sources are plain data (:mod:`xnn.backends.cuda_sources`), compiled on the CPU by a test
without a GPU; on a GPU, ``tests/test_kernels.py`` checks these kernels themselves.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from xnn.backends.cuda_sources import SOURCES, ElementwiseSource, activation_sources
from xnn.backends.kernels import OutKernels

__all__ = ["CuPyFusedKernels"]

Array = Any


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

    def sgd_step(self, param: Array, grad: Array, lr: float, scratch: Array | None,
                 weight_decay: float = 0.0, scratch2: Array | None = None) -> None:
        self._kernels["sgd_step"](grad, lr, weight_decay, param)

    def momentum_step(self, param: Array, grad: Array, velocity: Array, lr: float,
                      momentum: float, scratch: Array | None, weight_decay: float = 0.0,
                      nesterov: bool = False, scratch2: Array | None = None) -> None:
        self._kernels["momentum_step"](grad, lr, momentum, weight_decay, float(nesterov),
                                       param, velocity)

    def adam_step(self, param: Array, grad: Array, m: Array, v: Array, lr: float,
                  betas: tuple[float, float], eps: float, step: int, weight_decay: float,
                  decoupled: bool, scratch: Array | None = None,
                  scratch2: Array | None = None) -> None:
        beta1, beta2 = betas
        self._kernels["adam_step"](grad, lr, beta1, beta2, eps, 1.0 - beta1 ** step,
                                   math.sqrt(1.0 - beta2 ** step), weight_decay,
                                   float(decoupled), param, m, v)

    def rmsprop_step(self, param: Array, grad: Array, square_avg: Array, buffer: Array | None,
                     lr: float, alpha: float, eps: float, momentum: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        if buffer is None:
            self._kernels["rmsprop_step"](grad, lr, alpha, eps, weight_decay, param, square_avg)
        else:
            self._kernels["rmsprop_momentum_step"](grad, lr, alpha, eps, momentum, weight_decay,
                                                   param, square_avg, buffer)

    def adagrad_step(self, param: Array, grad: Array, total: Array, lr: float, eps: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        self._kernels["adagrad_step"](grad, lr, eps, weight_decay, param, total)

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
