"""The moving parts of one ``fit``, and moving them between the live objects and data.

A :class:`Run` is where a fit stands: epochs finished, the batch order's generator, the
History, early stopping's best so far. :func:`capture` turns the live network, optimizer and run
into a :class:`TrainingState` (host copies) and :func:`restore` puts one back. A
:class:`Snapshot` is the cheap, on-device version taken before every epoch, which
:func:`roll_back` returns to when an epoch is interrupted or diverges.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

from xnn.backends import to_numpy
from xnn.core.random import generator_state, set_generator_state
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train.history import History
from xnn.train.optimizers import Optimizer, OptimizerState
from xnn.train.state import TrainingState

__all__ = ["Run", "Snapshot", "capture", "restore", "roll_back", "snapshot"]


@dataclass
class Run:
    """Where one ``fit`` stands."""

    order: Any  # the batch order's host generator
    history: History = field(default_factory=History)
    epoch: int = 0  # epochs finished
    best_loss: float = math.inf
    best_params: dict[str, Array] | None = None  # store.snapshot() at the best evaluation
    start: Snapshot | None = None  # taken before the current epoch


@dataclass
class Snapshot:
    """What an epoch changes, as it was before it: device copies of the parameters (and
    buffers) and the optimizer's arrays, the host streams' positions, and how far the run had
    got."""

    values: dict[str, Array]  # store.snapshot(): the parameters and the buffers
    optimizer: OptimizerState | None
    order: dict[str, Any]
    masks: dict[int, dict[str, Any]]
    epoch: int
    records: int
    best: tuple[float, int | None, float | None]
    schedule: dict[str, Any]


def snapshot(net: NeuralNetwork, optim: Optimizer, run: Run) -> Snapshot | None:
    """The state before the next epoch (``None`` before the model is built)."""
    store = net.store
    if store is None:
        return None
    backend, state = net.backend, optim.state
    optimizer = None if state is None else OptimizerState(
        {name: backend.copy(a) for name, a in state.arrays.items()}, state.step)
    history = run.history
    return Snapshot(store.snapshot(), optimizer, generator_state(run.order),
                    {i: s.state_dict() for i, s in net.mask_streams().items()}, run.epoch,
                    len(history.records),
                    (run.best_loss, history.best_epoch, history.best_val_loss),
                    optim.schedule.state_dict())


def roll_back(net: NeuralNetwork, optim: Optimizer, run: Run, start: Snapshot) -> None:
    """Put everything back as it was when ``start`` was taken."""
    net.store.restore(start.values)
    if start.optimizer is None:
        optim.reset()
    else:
        optim.load_state(start.optimizer, net.store)
    set_generator_state(run.order, start.order)
    masks = net.mask_streams()
    for index, state in start.masks.items():
        masks[index].load_state_dict(state)
    history = run.history
    del history.records[start.records:]
    run.epoch = start.epoch
    run.best_loss, history.best_epoch, history.best_val_loss = start.best
    history.stopped_early = False
    optim.schedule.load_state_dict(start.schedule)


def capture(net: NeuralNetwork, optim: Optimizer, run: Run) -> TrainingState:
    """The run's whole state after its last finished epoch, as host copies."""
    optim_state = optim.state
    masks = {index: stream.state_dict() for index, stream in net.mask_streams().items()}
    return TrainingState(
        epoch=run.epoch, params=net.state_dict(),
        optimizer=None if optim_state is None else optim_state.state_dict(),
        streams={"order": generator_state(run.order), "masks": masks},
        best_loss=run.best_loss,
        best_params=None if run.best_params is None else {
            name: to_numpy(a) for name, a in run.best_params.items()},
        history=copy.deepcopy(run.history), schedule=optim.schedule.state_dict())


def restore(net: NeuralNetwork, optim: Optimizer, run: Run, state: TrainingState) -> None:
    """Put the network, optimizer, streams and ``run`` where ``state`` says."""
    net.load_state_dict(state.params)
    if state.optimizer is not None:
        optim.load_state(OptimizerState.from_state_dict(state.optimizer, net.backend),
                         net.store)
    set_generator_state(run.order, state.streams["order"])
    masks = net.mask_streams()
    for index, stream_state in state.streams["masks"].items():
        masks[int(index)].load_state_dict(stream_state)
    run.epoch, run.history = state.epoch, copy.deepcopy(state.history)
    run.best_loss = state.best_loss
    if state.schedule:
        optim.schedule.load_state_dict(state.schedule)
    if state.best_params is not None:
        run.best_params = {name: net.backend.asarray(a)
                           for name, a in state.best_params.items()}
