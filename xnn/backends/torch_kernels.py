"""PyTorch's fast paths: the hot loops as torch calls with ``out=`` and in-place methods.

``xp`` stays :mod:`array_api_compat.torch` (the reference's namespace); these overrides call
``torch`` itself, skipping the compatibility wrappers on the training path. Tests check every
one against :class:`~xnn.backends.kernels.Kernels`.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

from xnn.backends.kernels import Kernels
from xnn.backends.updates import NORM_EPS

__all__ = ["TorchKernels"]

Array = Any


class TorchKernels(Kernels):
    """torch tensors: BLAS into preallocated buffers, torch's log-softmax, in-place updates."""

    def __init__(self, xp: ModuleType, torch: ModuleType) -> None:
        super().__init__(xp)
        self.torch = torch

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        return a @ b if out is None else self.torch.matmul(a, b, out=out)

    def take_rows(self, x: Array, indices: Array, out: Array | None = None) -> Array:
        return self.torch.index_select(x, 0, indices, out=out)

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        return self.torch.sum(x, 0, keepdim=True, out=out)

    def softmax_cross_entropy(self, logits: Array, target: Array) -> tuple[Array, Array]:
        torch = self.torch
        log_softmax = torch.log_softmax(logits, 1)
        softmax = torch.exp(log_softmax)
        log_softmax.clamp_(min=torch.finfo(logits.dtype).min)  # finite (see Kernels)
        loss = torch.dot(target.reshape(-1), log_softmax.reshape(-1))
        return loss.mul_(-1.0 / logits.shape[0]), softmax

    def softmax_cross_entropy_grad(self, softmax: Array, target: Array) -> Array:
        return self.torch.sub(softmax, target).div_(softmax.shape[0])

    # -- optimizer updates over the flat parameter array, as torch.optim writes them ----------
    def _decayed(self, param: Array, grad: Array, weight_decay: float,
                 scratch2: Array | None) -> Array:
        """g + wd·θ in ``scratch2`` (or ``grad`` itself without weight decay)."""
        if not weight_decay:
            return grad
        return self.torch.add(grad, param, alpha=weight_decay, out=scratch2)

    def clip_norm(self, grad: Array, max_norm: float) -> Array:
        norm = self.torch.linalg.vector_norm(grad)
        grad.mul_(self.torch.clamp(max_norm / (norm + NORM_EPS), max=1.0))
        return norm

    def sgd_step(self, param: Array, grad: Array, lr: float, scratch: Array | None,
                 weight_decay: float = 0.0, scratch2: Array | None = None) -> None:
        param.sub_(self._decayed(param, grad, weight_decay, scratch2), alpha=lr)

    def momentum_step(self, param: Array, grad: Array, velocity: Array, lr: float,
                      momentum: float, scratch: Array | None, weight_decay: float = 0.0,
                      nesterov: bool = False, scratch2: Array | None = None) -> None:
        grad = self._decayed(param, grad, weight_decay, scratch2)
        velocity.mul_(momentum).add_(grad, alpha=lr)
        if nesterov:  # θ − (lr·g + μ·v)
            param.sub_(grad, alpha=lr).sub_(velocity, alpha=momentum)
        else:
            param.sub_(velocity)

    def adam_step(self, param: Array, grad: Array, m: Array, v: Array, lr: float,
                  betas: tuple[float, float], eps: float, step: int, weight_decay: float,
                  decoupled: bool, scratch: Array | None = None,
                  scratch2: Array | None = None) -> None:
        beta1, beta2 = betas
        if decoupled:
            param.mul_(1.0 - lr * weight_decay)
        else:
            grad = self._decayed(param, grad, weight_decay, scratch2)
        m.lerp_(grad, 1.0 - beta1)  # m + (1 − β₁)(g − m)
        v.mul_(beta2).addcmul_(grad, grad, value=1.0 - beta2)
        c = math.sqrt(1.0 - beta2 ** step)  # lr·c/(1 − β₁ᵗ) · m/(√v + ε·c), as OutUpdates
        denom = self.torch.sqrt(v, out=scratch).add_(eps * c)
        param.addcdiv_(m, denom, value=-lr * c / (1.0 - beta1 ** step))

    def rmsprop_step(self, param: Array, grad: Array, square_avg: Array, buffer: Array | None,
                     lr: float, alpha: float, eps: float, momentum: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        grad = self._decayed(param, grad, weight_decay, scratch2)
        square_avg.mul_(alpha).addcmul_(grad, grad, value=1.0 - alpha)
        avg = self.torch.sqrt(square_avg, out=scratch).add_(eps)
        if buffer is None:
            param.addcdiv_(grad, avg, value=-lr)
        else:
            buffer.mul_(momentum).addcdiv_(grad, avg)
            param.sub_(buffer, alpha=lr)

    def adagrad_step(self, param: Array, grad: Array, total: Array, lr: float, eps: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        grad = self._decayed(param, grad, weight_decay, scratch2)
        total.addcmul_(grad, grad)
        param.addcdiv_(grad, self.torch.sqrt(total, out=scratch).add_(eps), value=-lr)
