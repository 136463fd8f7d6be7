"""Callbacks: code that a ``fit`` calls at fixed points, and the built-ins that stop and save.

``Trainer.fit(..., callbacks=[...])`` calls, for each callback in the order given:
``on_fit_start(trainer)`` once the fit is set up (after any resume), then after every epoch
``on_evaluate(trainer, record)`` (only when that epoch was evaluated) and
``on_epoch_end(trainer, record)``, and ``on_fit_end(trainer, history)`` when the fit returns
normally. ``record`` is the epoch's History record (``epoch``, ``lr``, ``train_loss``,
``val_loss``, ``seconds``). Setting ``trainer.stop_training = True`` ends the fit after the
current epoch (the History then says ``stopped_early``).

Built-ins here: :class:`EarlyStopping` and :class:`ModelCheckpoint`; the loggers
(``CSVLogger``, ``JSONLogger``, ``ProgressBar``) are in :mod:`xnn.train.loggers`. A resumed fit
(``resume=`` or ``state=``) hands them the run so far, so they go on as if never interrupted.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from xnn.core.validation import check_number
from xnn.train.state import TrainingState

__all__ = ["Callback", "EarlyStopping", "ModelCheckpoint", "check_path", "run_so_far"]


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


class EarlyStopping(Callback):
    """Stops once the validation loss has not improved by more than ``min_delta`` for more than
    ``patience`` evaluations, and puts the parameters of the lowest validation loss back.

    An evaluation improves when its loss is below that of the last improvement by more than
    ``min_delta``. ``EarlyStopping()`` is the book's rule: ``fit(early_stopping=False,
    callbacks=[EarlyStopping()])`` equals ``fit(early_stopping=True)``.
    """

    def __init__(self, patience: int = 0, min_delta: float = 0.0) -> None:
        if isinstance(patience, bool) or not isinstance(patience, numbers.Integral) \
                or patience < 0:
            raise ValueError(f"patience must be an integer >= 0, got {patience!r}")
        self.patience = int(patience)
        self.min_delta = check_number(min_delta, "min_delta", low=0.0, high=math.inf,
                                      high_open=True)
        self._forget()

    def _forget(self) -> None:
        self.best_loss, self.best_epoch = math.inf, None  # the lowest loss: what is restored
        self.best_state: dict[str, Any] | None = None  # its parameters (host copies)
        self.reference, self.wait = math.inf, 0  # the last improvement; evaluations since
        self.stopped_epoch: int | None = None

    def on_fit_start(self, trainer: Any) -> None:
        """Start afresh, or from the evaluations and best parameters of a resumed run."""
        self._forget()
        so_far = run_so_far(trainer)
        if so_far is None:
            return
        for record in so_far.history.records:
            if record["val_loss"] is not None:
                self._hear(record)
        if self.best_epoch is not None and so_far.best_params is not None:
            # the trainer keeps the same best (the lowest loss), as flat arrays
            self.best_state = _named(so_far.best_params, so_far.params)

    def on_evaluate(self, trainer: Any, record: dict[str, Any]) -> None:
        """Keep the best parameters; once patience runs out, stop and restore them."""
        best_epoch = self.best_epoch
        out_of_patience = self._hear(record)
        if self.best_epoch != best_epoch:
            self.best_state = trainer.net.state_dict()
        if out_of_patience:
            self.stopped_epoch = record["epoch"]
            trainer.stop_training = True
            if self.best_state is not None:
                trainer.net.load_state_dict(self.best_state)

    def _hear(self, record: Mapping[str, Any]) -> bool:
        """Take in an evaluation; whether patience has run out."""
        loss = record["val_loss"]
        if loss < self.best_loss:
            self.best_loss, self.best_epoch = loss, record["epoch"]
        if loss < self.reference - self.min_delta:
            self.reference, self.wait = loss, 0
        else:
            self.wait += 1
        return self.wait > self.patience

    def __repr__(self) -> str:
        return f"EarlyStopping(patience={self.patience}, min_delta={self.min_delta})"


class ModelCheckpoint(Callback):
    """Saves the model to ``path`` with ``net.save`` (atomically) at each evaluation that lowers
    the best validation loss, or after every epoch with ``best_only=False``."""

    def __init__(self, path: str | os.PathLike[str], best_only: bool = True) -> None:
        self.path = check_path(path, "path")
        if not isinstance(best_only, bool):
            raise ValueError(f"best_only must be True or False, got {best_only!r}")
        self.best_only = best_only
        self.best_loss = math.inf

    def on_fit_start(self, trainer: Any) -> None:
        """Take the run's best so far (infinite unless resumed)."""
        self.best_loss = trainer.best_loss

    def on_evaluate(self, trainer: Any, record: dict[str, Any]) -> None:
        """Save the model if its loss is the lowest yet (``best_only``)."""
        if self.best_only and record["val_loss"] < self.best_loss:
            self.best_loss = record["val_loss"]
            trainer.net.save(self.path)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Save the model after every epoch (``best_only=False``)."""
        if not self.best_only:
            trainer.net.save(self.path)

    def __repr__(self) -> str:
        return f"ModelCheckpoint({str(self.path)!r}, best_only={self.best_only})"


def check_path(path: Any, name: str) -> Path:
    """``path`` as a file path whose folder exists or can be created, else ValueError."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"{name} must be a file path, got {path!r}")
    target = Path(path)
    if str(path) == "" or target.is_dir():
        raise ValueError(f"{name}={str(path)!r} is a directory, not a file")
    folder = target.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise ValueError(f"{name}={str(path)!r}: {folder} is not a directory")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"{name}={str(path)!r}: cannot write in {folder}")
    return target


def run_so_far(trainer: Any) -> TrainingState | None:
    """The state a resumed fit starts from (host copies), or None when it starts afresh."""
    if trainer.net.store is None:  # restart=True: nothing to go on from
        return None
    state = trainer.state_dict()
    return state if state.history.records else None


def _named(best: Mapping[str, Any], like: Mapping[str, Any]) -> dict[str, Any]:
    """A state's ``best_params`` (the store's flat ``"values"`` and ``"buffers"``) by name,
    split by the names and shapes of ``like``: a state_dict, parameters then buffers in store
    order (any name left over keeps ``like``'s array)."""
    named, items = {}, iter(like.items())
    for flat in (best["values"], best["buffers"]):
        start = 0
        while start < flat.shape[0]:
            name, array = next(items)
            stop = start + math.prod(array.shape)
            named[name] = flat[start:stop].reshape(array.shape)
            start = stop
    return {**like, **named}
