"""The trainer: epochs of shuffled mini-batches, periodic evaluation and early stopping."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xnn.backends import to_numpy
from xnn.core.batches import row_blocks
from xnn.core.inputs import as_features
from xnn.core.random import generator_state, set_generator_state
from xnn.core.validation import check_positive_int
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train.history import History
from xnn.train.optimizers import Optimizer, OptimizerState
from xnn.train.state import TrainingState

__all__ = ["History", "Trainer"]

_SHUFFLE = 2  # stream family of a fit's seed (dropout masks use family 1)
_EVAL_CHUNK = 8192  # rows per forward pass when evaluating


@dataclass
class _Run:
    """The moving parts of one ``fit``: where it is, its batch order and best-so-far."""

    order: Any  # the batch order's host generator
    history: History = field(default_factory=History)
    epoch: int = 0  # epochs finished
    best_loss: float = math.inf
    best_params: Array | None = None  # a copy of the store's values, on the backend


class Trainer:
    """Trains ``net`` with ``optim`` (the book's ``Trainer(model, optimizer)``)."""

    def __init__(self, net: NeuralNetwork, optim: Optimizer, *,
                 log: Callable[[str], None] = print) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"net must be a NeuralNetwork, got {net!r}")
        if not isinstance(optim, Optimizer):
            raise TypeError(f"optim must be an Optimizer such as SGD(0.1), got {optim!r}")
        self.net = net
        self.optim = optim
        optim.net = net
        self.log = log  # where the book's lines go (``tqdm.write`` beside a progress bar)
        self.best_loss = math.inf
        self._run: _Run | None = None

    def fit(self, X_train: Any, y_train: Any, X_test: Any, y_test: Any, epochs: int = 100,
            eval_every: int = 10, batch_size: int = 32, seed: int = 1, restart: bool = True,
            early_stopping: bool = True, verbose: bool = True,
            on_epoch: Callable[[dict[str, Any]], None] | None = None,
            state: TrainingState | None = None) -> History:
        """Train for ``epochs`` epochs, evaluating on the test set every ``eval_every``.

        With ``early_stopping``, training stops at the first evaluation whose loss is not lower
        than the best so far, and the parameters of the best evaluated model are copied back
        into ``net`` (the object the caller holds). ``restart=True`` redraws the parameters from
        the model's seed and clears the optimizer's state; ``restart=False`` continues.
        ``seed`` fixes the batch order and the dropout masks. Targets may be one-hot rows or
        integer class labels. ``on_epoch`` is called with each epoch's record (for progress).
        ``state`` (from :meth:`state_dict`, same arguments otherwise) continues that run
        exactly where it was: the result equals one uninterrupted ``fit``.
        """
        net, optim = self.net, self.optim
        say = self.log if verbose else _silent
        epochs = check_positive_int(epochs, "epochs")
        eval_every = check_positive_int(eval_every, "eval_every")
        batch_size = check_positive_int(batch_size, "batch_size")
        streams = net.streams_for_fit(seed)
        # all checks before anything changes: bad data must not cost the caller their model
        X, y = self._data(X_train, y_train, "X_train", "y_train", None if restart else -1)
        X_val, y_val = self._data(X_test, y_test, "X_test", "y_test", X.shape[1])
        if restart or state is not None:
            net.reset_parameters()
            optim.reset()
        self.best_loss = math.inf  # each fit keeps its own best (the book's carried over)
        net.reseed_dropout(streams)
        run = self._run = _Run(order=streams.permutations((_SHUFFLE,)))
        xp, rows = net.backend.xp, min(batch_size, X.shape[0])  # one batch, refilled each step
        batch = (xp.empty_like(X[:rows, ...]), xp.empty_like(y[:rows, ...]))
        optim.start(epochs)
        if state is not None:
            self._restore(state, run)
        while run.epoch < epochs and not run.history.stopped_early:
            record = self._epoch(run, X, y, X_val, y_val, batch, eval_every, early_stopping, say)
            if on_epoch is not None:
                on_epoch(record)
        return run.history

    def _epoch(self, run: _Run, X: Array, y: Array, X_val: Array, y_val: Array,
               batch: tuple[Array, Array], eval_every: int, early_stopping: bool,
               say: Callable[[str], None]) -> dict[str, Any]:
        """One epoch of training, then the evaluation and early stopping when due."""
        net, optim, history = self.net, self.optim, run.history
        started = time.perf_counter()
        epoch = run.epoch + 1
        optim.set_epoch(run.epoch)
        train_loss = self._train_epoch(X, y, run.order, batch)
        _check_diverged(train_loss, "training", epoch)
        record = {"epoch": epoch, "lr": optim.lr, "train_loss": train_loss, "val_loss": None,
                  "seconds": 0.0}
        history.records.append(record)
        if epoch % eval_every == 0:
            record["val_loss"] = val_loss = self.evaluate(X_val, y_val)
            _check_diverged(val_loss, "validation", epoch)
            if not early_stopping or val_loss < run.best_loss:
                say(f"Validation loss after {epoch} epochs is {val_loss:.3f}")
            if val_loss < run.best_loss:
                self.best_loss = run.best_loss = val_loss
                history.best_epoch, history.best_val_loss = epoch, val_loss
                if early_stopping:
                    run.best_params = net.backend.copy(net.store.values)
            elif early_stopping:
                say(f"Loss increased after epoch {epoch}, final loss was "
                    f"{run.best_loss:.3f}, using the model from epoch {history.best_epoch}")
                if run.best_params is not None:
                    net.store.values[...] = run.best_params
                history.stopped_early = True
        run.epoch = epoch
        record["seconds"] = time.perf_counter() - started
        return record

    def evaluate(self, X: Array, y: Array) -> float:
        """The loss of ``net`` in inference mode on checked backend arrays (one host sync)."""
        net = self.net
        total = None
        for rows in row_blocks(X.shape[0], _EVAL_CHUNK):
            X_chunk, y_chunk = X[rows, ...], y[rows, ...]
            chunk = net.loss.forward(net.forward_batch(X_chunk, inference=True), y_chunk)
            chunk = chunk * X_chunk.shape[0]
            total = chunk if total is None else total + chunk
        return float(total) / X.shape[0]

    # -- the state of a run ----------------------------------------------------------------
    def state_dict(self) -> TrainingState:
        """The state of the latest ``fit`` after its last finished epoch (host copies)."""
        run, net = self._run, self.net
        if run is None or net.store is None:
            raise RuntimeError("no training state yet: call fit first")
        optim_state = self.optim.state
        masks = {index: stream.state_dict() for index, stream in net.mask_streams().items()}
        return TrainingState(
            epoch=run.epoch, params=net.state_dict(),
            optimizer=None if optim_state is None else optim_state.state_dict(),
            streams={"order": generator_state(run.order), "masks": masks},
            best_loss=run.best_loss,
            best_params=None if run.best_params is None else to_numpy(run.best_params),
            history=copy.deepcopy(run.history))

    def _restore(self, state: TrainingState, run: _Run) -> None:
        """Put the network, optimizer, streams and ``run`` where ``state`` says."""
        net, optim = self.net, self.optim
        net.load_state_dict(state.params)
        if state.optimizer is not None:
            optim.load_state(OptimizerState.from_state_dict(state.optimizer, net.backend),
                             net.store)
        set_generator_state(run.order, state.streams["order"])
        masks = net.mask_streams()
        for index, stream_state in state.streams["masks"].items():
            masks[int(index)].load_state_dict(stream_state)
        run.epoch, run.history = state.epoch, copy.deepcopy(state.history)
        self.best_loss = run.best_loss = state.best_loss
        if state.best_params is not None:
            run.best_params = net.backend.asarray(state.best_params)

    # -- data ------------------------------------------------------------------------------
    def _data(self, X: Any, y: Any, x_name: str, y_name: str,
              n_features: int | None) -> tuple[Array, Array]:
        """(X, y) checked and on the backend; ``n_features``: None any width, −1 the model's."""
        width = self.net.n_features if n_features == -1 else n_features
        X = as_features(X, self.net.backend, self.net.dtype, width, x_name)
        if X.shape[0] == 0:
            raise ValueError(f"{x_name} has no rows")
        return X, self.net.as_targets(y, X.shape[0], name=y_name)

    def _train_epoch(self, X: Array, y: Array, order: Any, batch: tuple[Array, Array]) -> float:
        """One pass over (X, y) in a fresh random order; returns the mean training loss.

        Each batch's rows are gathered into the same two buffers, so an epoch allocates no
        shuffled copy of the data (memory stays at data + model; no page faults per epoch).
        """
        net, optim = self.net, self.optim
        backend = net.backend
        take_rows = backend.kernels.take_rows
        X_buffer, y_buffer = batch
        permutation = backend.asarray(order.permutation(X.shape[0]))
        total = None
        for rows in row_blocks(X.shape[0], X_buffer.shape[0]):
            indices = permutation[rows]
            size = indices.shape[0]
            X_batch = take_rows(X, indices, out=X_buffer[:size, ...])
            loss = net.train_step(X_batch, take_rows(y, indices, out=y_buffer[:size, ...]))
            optim.step()
            loss = loss * size
            total = loss if total is None else total + loss
        return float(total) / X.shape[0]


def _silent(line: str) -> None:
    """A log that drops the line (``verbose=False``)."""


def _check_diverged(loss: float, which: str, epoch: int) -> None:
    """Stop with a clear message once a loss is NaN or infinite (training has diverged)."""
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: the {which} loss after epoch {epoch} is {loss}; "
            "try a smaller learning rate (or check the data's scale)"
        )
