"""Optimizer updates over the flat parameter array: a plain-``xp`` reference and ``out=`` forms.

Each rule reads the flat gradient array ``grad`` and writes ``param`` and its state arrays in
place, with the update rules of ``torch.optim`` (weight decay as L2 added to the gradient unless
``decoupled``). :class:`ReferenceUpdates` is written in the Array API's plain expressions;
:class:`OutUpdates` (NumPy, CuPy) computes the same values through ``scratch`` buffers with
``out=``, so a step allocates nothing. ``scratch`` is one work array the size of ``param``
(``scratch2`` a second one, used only with L2 weight decay).
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["OutUpdates", "ReferenceUpdates"]

Array = Any
NORM_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_: max_norm / (‖g‖ + 1e-6)


class ReferenceUpdates:
    """The rules in plain ``xp`` (any Array API namespace); work buffers are ignored."""

    xp: Any

    def clip_norm(self, grad: Array, max_norm: float) -> Array:
        """g ← g·min(1, max_norm/(‖g‖₂ + 1e-6)), in place; returns ‖g‖₂ (0-d, no host sync)."""
        xp = self.xp
        norm = xp.sqrt(xp.sum(grad * grad))
        grad *= xp.clip(max_norm / (norm + NORM_EPS), max=1.0)
        return norm

    def sgd_step(self, param: Array, grad: Array, lr: float, scratch: Array | None,
                 weight_decay: float = 0.0, scratch2: Array | None = None) -> None:
        """θ ← θ − lr·(g + wd·θ), in place."""
        if weight_decay:
            grad = grad + weight_decay * param
        param -= lr * grad

    def momentum_step(self, param: Array, grad: Array, velocity: Array, lr: float,
                      momentum: float, scratch: Array | None, weight_decay: float = 0.0,
                      nesterov: bool = False, scratch2: Array | None = None) -> None:
        """g ← g + wd·θ; v ← μ·v + lr·g; θ ← θ − v (Nesterov: θ ← θ − lr·g − μ·v)."""
        if weight_decay:
            grad = grad + weight_decay * param
        velocity *= momentum
        velocity += lr * grad
        if nesterov:
            param -= lr * grad + momentum * velocity
        else:
            param -= velocity

    def adam_step(self, param: Array, grad: Array, m: Array, v: Array, lr: float,
                  betas: tuple[float, float], eps: float, step: int, weight_decay: float,
                  decoupled: bool, scratch: Array | None = None,
                  scratch2: Array | None = None) -> None:
        """Adam (AdamW when ``decoupled``): m ← m + (1−β₁)(g − m); v ← β₂v + (1−β₂)g²;
        θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)."""
        beta1, beta2 = betas
        if decoupled:
            param *= 1.0 - lr * weight_decay
        elif weight_decay:
            grad = grad + weight_decay * param
        m += (1.0 - beta1) * (grad - m)
        v *= beta2
        v += (1.0 - beta2) * (grad * grad)
        denom = self.xp.sqrt(v) / math.sqrt(1.0 - beta2 ** step) + eps
        param -= (lr / (1.0 - beta1 ** step)) * (m / denom)

    def rmsprop_step(self, param: Array, grad: Array, square_avg: Array, buffer: Array | None,
                     lr: float, alpha: float, eps: float, momentum: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        """s ← αs + (1−α)g²; with momentum b ← μb + g/(√s + ε), θ ← θ − lr·b; else
        θ ← θ − lr·g/(√s + ε)."""
        if weight_decay:
            grad = grad + weight_decay * param
        square_avg *= alpha
        square_avg += (1.0 - alpha) * (grad * grad)
        avg = self.xp.sqrt(square_avg) + eps
        if buffer is None:
            param -= lr * (grad / avg)
        else:
            buffer *= momentum
            buffer += grad / avg
            param -= lr * buffer

    def adagrad_step(self, param: Array, grad: Array, total: Array, lr: float, eps: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        """Σ ← Σ + g²;  θ ← θ − lr·g/(√Σ + ε)."""
        if weight_decay:
            grad = grad + weight_decay * param
        total += grad * grad
        param -= lr * (grad / (self.xp.sqrt(total) + eps))


class OutUpdates(ReferenceUpdates):
    """The same rules through ``out=`` buffers (NumPy, CuPy): no temporaries per step."""

    def _decayed(self, param: Array, grad: Array, weight_decay: float,
                 scratch2: Array | None) -> Array:
        """g + wd·θ in ``scratch2`` (or ``grad`` itself without weight decay)."""
        if not weight_decay:
            return grad
        xp = self.xp
        xp.multiply(param, weight_decay, out=scratch2)
        return xp.add(grad, scratch2, out=scratch2)

    def clip_norm(self, grad: Array, max_norm: float) -> Array:
        xp = self.xp
        norm = xp.sqrt(xp.dot(grad, grad))  # one BLAS reduction
        xp.multiply(grad, xp.minimum(max_norm / (norm + NORM_EPS), 1.0), out=grad)
        return norm

    def sgd_step(self, param: Array, grad: Array, lr: float, scratch: Array | None,
                 weight_decay: float = 0.0, scratch2: Array | None = None) -> None:
        xp = self.xp
        grad = self._decayed(param, grad, weight_decay, scratch2)
        xp.multiply(grad, lr, out=scratch)
        xp.subtract(param, scratch, out=param)

    def momentum_step(self, param: Array, grad: Array, velocity: Array, lr: float,
                      momentum: float, scratch: Array | None, weight_decay: float = 0.0,
                      nesterov: bool = False, scratch2: Array | None = None) -> None:
        xp = self.xp
        grad = self._decayed(param, grad, weight_decay, scratch2)
        xp.multiply(velocity, momentum, out=velocity)
        xp.multiply(grad, lr, out=scratch)
        xp.add(velocity, scratch, out=velocity)
        if nesterov:  # θ − (lr·g + μ·v), lr·g still in scratch
            xp.subtract(param, scratch, out=param)
            xp.multiply(velocity, momentum, out=scratch)
            xp.subtract(param, scratch, out=param)
        else:
            xp.subtract(param, velocity, out=param)

    def adam_step(self, param: Array, grad: Array, m: Array, v: Array, lr: float,
                  betas: tuple[float, float], eps: float, step: int, weight_decay: float,
                  decoupled: bool, scratch: Array | None = None,
                  scratch2: Array | None = None) -> None:
        xp, (beta1, beta2) = self.xp, betas
        if decoupled:
            xp.multiply(param, 1.0 - lr * weight_decay, out=param)
        else:
            grad = self._decayed(param, grad, weight_decay, scratch2)
        xp.subtract(grad, m, out=scratch)  # m ← m + (1 − β₁)(g − m)
        xp.multiply(scratch, 1.0 - beta1, out=scratch)
        xp.add(m, scratch, out=m)
        xp.multiply(grad, grad, out=scratch)  # v ← β₂v + (1 − β₂)g²
        xp.multiply(scratch, 1.0 - beta2, out=scratch)
        xp.multiply(v, beta2, out=v)
        xp.add(v, scratch, out=v)
        # lr/(1 − β₁ᵗ)·m/(√v/c + ε) = (lr·c/(1 − β₁ᵗ))·m/(√v + ε·c), c = √(1 − β₂ᵗ): one pass less
        c = math.sqrt(1.0 - beta2 ** step)
        xp.sqrt(v, out=scratch)
        xp.add(scratch, eps * c, out=scratch)
        xp.divide(m, scratch, out=scratch)
        xp.multiply(scratch, lr * c / (1.0 - beta1 ** step), out=scratch)
        xp.subtract(param, scratch, out=param)

    def rmsprop_step(self, param: Array, grad: Array, square_avg: Array, buffer: Array | None,
                     lr: float, alpha: float, eps: float, momentum: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        xp = self.xp
        grad = self._decayed(param, grad, weight_decay, scratch2)
        xp.multiply(grad, grad, out=scratch)
        xp.multiply(scratch, 1.0 - alpha, out=scratch)
        xp.multiply(square_avg, alpha, out=square_avg)
        xp.add(square_avg, scratch, out=square_avg)
        xp.sqrt(square_avg, out=scratch)
        xp.add(scratch, eps, out=scratch)
        xp.divide(grad, scratch, out=scratch)  # g/(√s + ε)
        if buffer is None:
            xp.multiply(scratch, lr, out=scratch)
            xp.subtract(param, scratch, out=param)
            return
        xp.multiply(buffer, momentum, out=buffer)
        xp.add(buffer, scratch, out=buffer)
        xp.multiply(buffer, lr, out=scratch)
        xp.subtract(param, scratch, out=param)

    def adagrad_step(self, param: Array, grad: Array, total: Array, lr: float, eps: float,
                     weight_decay: float, scratch: Array | None = None,
                     scratch2: Array | None = None) -> None:
        xp = self.xp
        grad = self._decayed(param, grad, weight_decay, scratch2)
        xp.multiply(grad, grad, out=scratch)
        xp.add(total, scratch, out=total)
        xp.sqrt(total, out=scratch)
        xp.add(scratch, eps, out=scratch)
        xp.divide(grad, scratch, out=scratch)
        xp.multiply(scratch, lr, out=scratch)
        xp.subtract(param, scratch, out=param)
