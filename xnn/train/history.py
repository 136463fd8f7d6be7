"""What a ``fit`` did, epoch by epoch."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["History"]


@dataclass
class History:
    """What a ``fit`` did: one record per epoch, plus where early stopping left the model.

    Each record has ``epoch`` (1-based), ``lr`` (the rate used in that epoch), ``train_loss``
    (mean over the epoch's batches, weighted by rows), ``val_loss`` (``None`` when not
    evaluated) and ``seconds``.
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int | None = None
    best_val_loss: float | None = None
    stopped_early: bool = False

    @property
    def train_loss(self) -> list[float]:
        """The training loss of every epoch."""
        return [r["train_loss"] for r in self.records]

    @property
    def val_loss(self) -> list[float | None]:
        """The validation loss of every epoch (``None`` where not evaluated)."""
        return [r["val_loss"] for r in self.records]
