"""The hot loops of training, each a generic reference plus a faster path per backend.

:class:`Kernels` is written in plain ``xp`` expressions that any Array API namespace runs; it is
the reference. :class:`OutKernels` (NumPy, CuPy) computes the same values into preallocated
buffers with ``out=``, so a training step allocates no large temporaries. Tests check that
every fast path equals the reference.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from xnn.backends.updates import OutUpdates, ReferenceUpdates

__all__ = ["Kernels", "NumPyKernels", "OutKernels"]

Array = Any


class Kernels(ReferenceUpdates):
    """Reference implementations in plain ``xp``; results are copied into ``out`` when given,
    and ``scratch`` buffers are ignored."""

    fuses_activations = False  # whether a Dense runs bias + activation (+ dropout) as one kernel

    def __init__(self, xp: ModuleType) -> None:
        self.xp = xp

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        """a @ b (written into ``out`` and returned when ``out`` is given)."""
        return _into(a @ b, out)

    def take_rows(self, x: Array, indices: Array, out: Array | None = None) -> Array:
        """x[indices] along the first axis."""
        return _into(self.xp.take(x, indices, axis=0), out)

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        """Σ over rows, keeping a leading axis of 1: (n, m) → (1, m)."""
        return _into(self.xp.sum(x, axis=0, keepdims=True), out)

    def softmax_cross_entropy(self, logits: Array, target: Array) -> tuple[Array, Array]:
        """(L, softmax(z)) with L = −Σ y·log softmax(z) / N, via log-sum-exp; L is 0-d.

        log softmax is held at −(the dtype's largest number) where it underflows to −∞ (logits
        further apart than the dtype's range), so L stays finite for finite logits: a zero
        target there adds 0, not 0·∞ = NaN.
        """
        xp = self.xp
        shifted = logits - xp.max(logits, axis=1, keepdims=True)
        exp = xp.exp(shifted)
        sums = xp.sum(exp, axis=1, keepdims=True)
        log_softmax = xp.maximum(shifted - xp.log(sums), xp.finfo(logits.dtype).min)
        loss = -xp.sum(target * log_softmax) / logits.shape[0]
        return loss, exp / sums

    def softmax_cross_entropy_grad(self, softmax: Array, target: Array) -> Array:
        """(softmax − y)/N as a new array."""
        return (softmax - target) / softmax.shape[0]

    def bias_activation(self, z: Array, bias: Array, activation: Any,
                        scale: Array | float | None = None) -> Array:
        """f(z + b) for an activation f (:class:`xnn.nn.activations.Activation`), times
        ``scale`` (a dropout mask, or ``keep_prob`` at inference) when given; one pass where
        fused."""
        output = activation.apply(self.xp, z + bias)
        return output if scale is None else output * scale

    def activation_grad(self, output_grad: Array, output: Array, activation: Any,
                        scale: Array | float | None = None) -> Array:
        """dy·f′ from dy and the output y of :meth:`bias_activation` with the same ``scale``.

        A 0/1 mask m: f′ read off y = f·m where m = 1, and m·dy is 0 where it is not (so this
        equals dropout's backward followed by the activation's). A number p: f = y / p.
        """
        xp = self.xp
        if scale is None:
            return activation.derivative(xp, output_grad, output)
        if isinstance(scale, float):
            return activation.derivative(xp, output_grad * scale, output / scale)
        return activation.derivative(xp, output_grad * scale, output)


def _into(result: Array, out: Array | None) -> Array:
    """``result``, copied into ``out`` when one is given (the caller keeps that buffer)."""
    if out is None:
        return result
    out[...] = result
    return out


class OutKernels(OutUpdates, Kernels):
    """NumPy/CuPy: the same values written into buffers with ``out=``, no large temporaries."""

    def matmul(self, a: Array, b: Array, out: Array | None = None) -> Array:
        return self.xp.matmul(a, b, out=out)

    def take_rows(self, x: Array, indices: Array, out: Array | None = None) -> Array:
        return self.xp.take(x, indices, axis=0, out=out)

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        return self.xp.sum(x, axis=0, keepdims=True, out=out)

    def softmax_cross_entropy_grad(self, softmax: Array, target: Array) -> Array:
        grad = self.xp.subtract(softmax, target)
        return self.xp.divide(grad, softmax.shape[0], out=grad)

    def activation_grad(self, output_grad: Array, output: Array, activation: Any,
                        scale: Array | float | None = None) -> Array:
        if scale is None:  # the activation's own ``out=`` form, one buffer
            return activation.derivative_into(self.xp, output_grad, output)
        return super().activation_grad(output_grad, output, activation, scale)


class NumPyKernels(OutKernels):
    """NumPy specifics: ``take`` buffers ``out`` unless given a ``mode`` (our indices are valid),
    ``ufunc.reduce`` skips the Python wrappers around ``np.sum``/``np.max``, and the loss's
    sum of products is a BLAS dot product."""

    def take_rows(self, x: Array, indices: Array, out: Array | None = None) -> Array:
        return x.take(indices, axis=0, out=out, mode="clip")

    def sum_rows(self, x: Array, out: Array | None = None) -> Array:
        return self.xp.add.reduce(x, axis=0, keepdims=True, out=out)  # skips np.sum's wrapper

    def softmax_cross_entropy(self, logits: Array, target: Array) -> tuple[Array, Array]:
        np = self.xp  # each step in place, and Σ y·log softmax as one BLAS dot product
        shifted = np.subtract(logits, np.maximum.reduce(logits, axis=1, keepdims=True))
        softmax = np.exp(shifted)
        sums = np.add.reduce(softmax, axis=1, keepdims=True)
        np.divide(softmax, sums, out=softmax)
        np.subtract(shifted, np.log(sums, out=sums), out=shifted)  # log softmax
        np.maximum(shifted, np.finfo(shifted.dtype).min, out=shifted)  # finite (see Kernels)
        return np.vdot(target, shifted) * (-1.0 / logits.shape[0]), softmax
