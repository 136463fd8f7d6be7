"""Learning-rate schedules: the rate of each epoch (or step) of a run, from the initial rate.

A schedule is made without the rate or the length of the run (``CosineDecay(final_lr=0.01)``)
and given both when a run starts: ``start(lr, epochs, steps_per_epoch)``. ``lr(epoch, step)``
is then the rate to use (``epoch`` and ``step`` 0-based; ``step`` within the epoch, read only
by schedules with ``per="step"``). ``ReduceLROnPlateau`` is driven by the evaluations
(``evaluated(val_loss)``) and keeps state (``state_dict``), which training checkpoints save.
The book's two decays end the run at ``final_lr``: the last epoch trains at it.
"""

from __future__ import annotations

import math
from typing import Any

from xnn.core.validation import check_number, check_positive_int

__all__ = ["DECAY_TYPES", "Constant", "CosineDecay", "ExponentialDecay", "LinearDecay",
           "ReduceLROnPlateau", "Schedule", "StepDecay", "book_schedule"]

DECAY_TYPES = (None, "linear", "exponential")
PER = ("epoch", "step")


class Schedule:
    """lr(epoch, step) for a run of ``epochs`` epochs of ``steps_per_epoch`` steps."""

    def __init__(self, per: str = "epoch") -> None:
        if per not in PER:
            raise ValueError(f"per must be one of {PER}, got {per!r}")
        self.per = per
        self.initial_lr, self.epochs, self.steps_per_epoch = 0.0, 1, 1

    def start(self, lr: float, epochs: int, steps_per_epoch: int = 1) -> None:
        """Begin a run at rate ``lr``."""
        self.initial_lr = lr
        self.epochs = check_positive_int(epochs, "epochs")
        self.steps_per_epoch = check_positive_int(steps_per_epoch, "steps_per_epoch")

    def lr(self, epoch: int, step: int = 0) -> float:
        """The rate of ``step`` of ``epoch``."""
        if self.per == "epoch":
            return self.at(epoch, self.epochs)
        return self.at(epoch * self.steps_per_epoch + step, self.epochs * self.steps_per_epoch)

    def at(self, k: int, n: int) -> float:
        """The rate of period ``k`` (an epoch or a step) of ``n``."""
        raise NotImplementedError

    def __call__(self, epoch: int) -> float:
        """The rate of ``epoch`` (the book's schedules were functions of the epoch)."""
        return self.lr(epoch, 0)

    def evaluated(self, val_loss: float) -> None:
        """Hear an evaluation's loss (only ``ReduceLROnPlateau`` listens)."""

    def state_dict(self) -> dict[str, Any]:
        """What changes during a run beyond its position (nothing, but for plateaus)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""

    def __repr__(self) -> str:
        fields = {k: v for k, v in vars(self).items()
                  if k not in ("initial_lr", "epochs", "steps_per_epoch") and
                  not k.startswith("_") and not (k == "per" and v == "epoch")}
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in fields.items())})"


class Constant(Schedule):
    """lr_k = lr."""

    def at(self, k: int, n: int) -> float:
        return self.initial_lr


class LinearDecay(Schedule):
    """lr_k = lr − k·(lr − final_lr)/(N − 1): the last of N periods trains at ``final_lr``."""

    def __init__(self, final_lr: float, per: str = "epoch") -> None:
        super().__init__(per)
        self.final_lr = check_number(final_lr, "final_lr", low=0.0)

    def at(self, k: int, n: int) -> float:
        lr = self.initial_lr
        if n == 1:
            return lr
        return lr - k * (lr - self.final_lr) / (n - 1)


class ExponentialDecay(Schedule):
    """lr_k = lr·(final_lr/lr)^(k/(N − 1)): the last of N periods trains at ``final_lr``."""

    def __init__(self, final_lr: float, per: str = "epoch") -> None:
        super().__init__(per)
        self.final_lr = check_number(final_lr, "final_lr (exponential decay cannot reach 0)",
                                     low=0.0, low_open=True)

    def at(self, k: int, n: int) -> float:
        lr = self.initial_lr
        if n == 1:
            return lr
        return lr * (self.final_lr / lr) ** (k / (n - 1))


class StepDecay(Schedule):
    """lr_k = lr·γ^⌊k/step_size⌋."""

    def __init__(self, step_size: int, gamma: float = 0.1, per: str = "epoch") -> None:
        super().__init__(per)
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_number(gamma, "gamma", low=0.0, high=1.0, low_open=True)

    def at(self, k: int, n: int) -> float:
        return self.initial_lr * self.gamma ** (k // self.step_size)


class CosineDecay(Schedule):
    """Linear warm-up over ``warmup_epochs`` periods, then
    lr_k = final + (lr − final)·(1 + cos(π·j/(M − 1)))/2 for the j-th of the M remaining ones:
    the first trains at lr, the last at ``final_lr``, like the book's decays."""

    def __init__(self, final_lr: float = 0.0, warmup_epochs: int = 0, per: str = "epoch") -> None:
        super().__init__(per)
        self.final_lr = check_number(final_lr, "final_lr", low=0.0)
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) \
                or warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be an integer >= 0, got {warmup_epochs!r}")
        self.warmup_epochs = warmup_epochs

    def at(self, k: int, n: int) -> float:
        lr, warmup = self.initial_lr, self.warmup_epochs * (self.steps_per_epoch
                                                             if self.per == "step" else 1)
        if k < warmup:
            return lr * (k + 1) / (warmup + 1)
        j, m = k - warmup, n - warmup
        if m <= 1:
            return lr
        return self.final_lr + (lr - self.final_lr) * (1 + math.cos(math.pi * j / (m - 1))) / 2


class ReduceLROnPlateau(Schedule):
    """lr ← max(lr·factor, min_lr) after more than ``patience`` evaluations in a row without a
    lower validation loss (the semantics of ``torch.optim.lr_scheduler.ReduceLROnPlateau`` in
    ``"min"`` mode with a zero threshold)."""

    def __init__(self, factor: float = 0.1, patience: int = 0, min_lr: float = 0.0) -> None:
        super().__init__("epoch")
        self.factor = check_number(factor, "factor", low=0.0, high=1.0, low_open=True,
                                   high_open=True)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.patience = patience
        self.min_lr = check_number(min_lr, "min_lr", low=0.0)
        self._reset()

    def _reset(self) -> None:
        self._current: float | None = None
        self._best, self._bad = math.inf, 0

    def start(self, lr: float, epochs: int, steps_per_epoch: int = 1) -> None:
        super().start(lr, epochs, steps_per_epoch)
        self._reset()
        self._current = lr

    def at(self, k: int, n: int) -> float:
        return self.initial_lr if self._current is None else self._current

    def evaluated(self, val_loss: float) -> None:
        if val_loss < self._best:
            self._best, self._bad = val_loss, 0
            return
        self._bad += 1
        if self._bad > self.patience:
            self._current = max(self.at(0, 1) * self.factor, self.min_lr)
            self._bad = 0

    def state_dict(self) -> dict[str, Any]:
        return {"lr": self._current, "best": None if math.isinf(self._best) else self._best,
                "bad": self._bad}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._current, self._bad = state["lr"], state["bad"]
        self._best = math.inf if state["best"] is None else state["best"]


def book_schedule(final_lr: float, decay_type: str | None) -> Schedule:
    """The schedule the book's ``decay_type`` names (``None``: a constant rate)."""
    if decay_type is None:
        return Constant()
    if decay_type == "linear":
        return LinearDecay(final_lr)
    if decay_type == "exponential":
        return ExponentialDecay(final_lr)
    raise ValueError(f"decay_type must be one of {DECAY_TYPES}, got {decay_type!r}")
