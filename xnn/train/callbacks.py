"""Callbacks: code that a ``fit`` calls at fixed points (the contract; built-ins come next).

``Trainer.fit(..., callbacks=[...])`` calls, for each callback in the order given:
``on_fit_start(trainer)`` once the fit is set up (after any resume), then after every epoch
``on_evaluate(trainer, record)`` (only when that epoch was evaluated) and
``on_epoch_end(trainer, record)``, and ``on_fit_end(trainer, history)`` when the fit returns
normally. ``record`` is the epoch's History record (``epoch``, ``lr``, ``train_loss``,
``val_loss``, ``seconds``). Setting ``trainer.stop_training = True`` ends the fit after the
current epoch (the History then says ``stopped_early``).
"""

from __future__ import annotations

from typing import Any

__all__ = ["Callback"]


class Callback:
    """A base whose hooks do nothing: override the ones you need."""

    def on_fit_start(self, trainer: Any) -> None:
        """The fit is about to train its first (or, resumed, its next) epoch."""

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """An epoch has finished (``record`` is its History record)."""

    def on_evaluate(self, trainer: Any, record: dict[str, Any]) -> None:
        """The epoch of ``record`` was evaluated (``record["val_loss"]`` is set)."""

    def on_fit_end(self, trainer: Any, history: Any) -> None:
        """The fit has ended and returns ``history``."""
