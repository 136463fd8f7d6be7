"""The whole state of a training run between two epochs, as plain data."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from xnn.train.history import History

__all__ = ["TrainingState"]


@dataclass
class TrainingState:
    """Everything a ``fit`` needs to go on exactly where it was, after ``epoch`` epochs.

    - ``params``: every parameter as a host array, by store name (``"0.W"``, ``"0.B"``, …);
    - ``optimizer``: :meth:`OptimizerState.state_dict` (``None`` before the first step); the
      learning rate's position in its schedule is ``epoch``;
    - ``streams``: where the random streams stand: ``"order"`` (the batch order's generator)
      and ``"masks"`` (each dropout layer's mask stream, by layer index); with
      ``streams="book"`` the order's generator is the book's one shared stream;
    - early stopping's best so far (``best_loss``; ``best_params``: ``{"values", "buffers"}``,
      the store's flat values and buffers as host arrays, see ``ParameterStore.snapshot``) and
      the :class:`History` so far.

    Host arrays and JSON-like values only: a state can be deep-copied, pickled, sent to
    another process and restored on any backend (``Trainer.fit(..., state=...)``).
    """

    epoch: int
    params: dict[str, Any]
    optimizer: dict[str, Any] | None
    streams: dict[str, Any]
    best_loss: float = math.inf
    best_params: dict[str, Any] | None = None
    history: History = field(default_factory=History)
    schedule: dict[str, Any] = field(default_factory=dict)  # e.g. ReduceLROnPlateau's place

    def copy(self) -> TrainingState:
        """A deep copy (the arrays too)."""
        return copy.deepcopy(self)
