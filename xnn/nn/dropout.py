"""Dropout, as in the book: keep each unit with probability ``keep_prob`` while training."""

from __future__ import annotations

from xnn.core.random import MaskStream
from xnn.core.validation import check_number
from xnn.nn.operations import Array, Operation

__all__ = ["Dropout"]


class Dropout(Operation):
    """Training: y = x·m with m ~ Bernoulli(keep_prob); inference: y = x·keep_prob.

    Both modes give the same expected activation. The mask stream is attached by the layer
    that owns the dropout (see :class:`xnn.NeuralNetwork`), so one seed gives one sequence of
    masks on every backend.
    """

    def __init__(self, keep_prob: float = 0.8) -> None:
        self.keep_prob = check_number(
            keep_prob, "keep_prob (0.8 keeps 80%)", low=0.0, high=1.0, low_open=True
        )
        self.masks: MaskStream | None = None
        self.mask: Array = None

    def scale(self, shape: tuple[int, ...], inference: bool) -> Array | float:
        """What this step multiplies by: the next mask while training, else ``keep_prob``."""
        if inference:
            self.mask = None
            return self.keep_prob
        if self.masks is None:
            raise RuntimeError("Dropout has no mask stream; use it inside a NeuralNetwork layer")
        self.mask = self.masks.take(shape)
        return self.mask

    _transient = (*Operation._transient, "masks", "mask")  # the network gives the stream

    def _output(self, inference: bool) -> Array:
        return self.input_ * self.scale(tuple(self.input_.shape), inference)

    def _input_grad(self, output_grad: Array) -> Array:
        if self.mask is None:
            return output_grad * self.keep_prob
        return output_grad * self.mask

    def __repr__(self) -> str:
        return f"Dropout(keep_prob={self.keep_prob})"
