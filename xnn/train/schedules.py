"""Learning-rate schedules: callables ``epoch -> lr`` over a run of ``epochs`` epochs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["DECAY_TYPES", "Constant", "ExponentialDecay", "LinearDecay", "make_schedule"]

DECAY_TYPES = (None, "linear", "exponential")


@dataclass(frozen=True)
class Constant:
    """lr_k = lr."""

    lr: float

    def __call__(self, epoch: int) -> float:
        return self.lr


@dataclass(frozen=True)
class LinearDecay:
    """lr_k = lr − k·(lr − final_lr)/(N − 1): the last of N epochs trains at ``final_lr``."""

    lr: float
    final_lr: float
    epochs: int

    def __call__(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.lr
        return self.lr - epoch * (self.lr - self.final_lr) / (self.epochs - 1)


@dataclass(frozen=True)
class ExponentialDecay:
    """lr_k = lr·(final_lr/lr)^(k/(N − 1)): the last of N epochs trains at ``final_lr``."""

    lr: float
    final_lr: float
    epochs: int

    def __call__(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.lr
        return self.lr * (self.final_lr / self.lr) ** (epoch / (self.epochs - 1))


def make_schedule(lr: float, final_lr: float, decay_type: str | None, epochs: int):
    """The schedule the book's ``decay_type`` names, for a run of ``epochs`` epochs."""
    if decay_type is None:
        return Constant(lr)
    if decay_type == "linear":
        return LinearDecay(lr, final_lr, epochs)
    if decay_type == "exponential":
        return ExponentialDecay(lr, final_lr, epochs)
    raise ValueError(f"decay_type must be one of {DECAY_TYPES}, got {decay_type!r}")
