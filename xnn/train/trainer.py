"""The trainer: epochs of shuffled mini-batches, periodic evaluation and early stopping."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from xnn.core.batches import row_blocks
from xnn.core.inputs import as_features
from xnn.core.validation import check_positive_int
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train.optimizers import Optimizer

__all__ = ["History", "Trainer"]

_SHUFFLE = 2  # stream family of a fit's seed (dropout masks use family 1)
_EVAL_CHUNK = 8192  # rows per forward pass when evaluating


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

    def fit(self, X_train: Any, y_train: Any, X_test: Any, y_test: Any, epochs: int = 100,
            eval_every: int = 10, batch_size: int = 32, seed: int = 1, restart: bool = True,
            early_stopping: bool = True, verbose: bool = True,
            on_epoch: Callable[[dict[str, Any]], None] | None = None) -> History:
        """Train for ``epochs`` epochs, evaluating on the test set every ``eval_every``.

        With ``early_stopping``, training stops at the first evaluation whose loss is not lower
        than the best so far, and the parameters of the best evaluated model are copied back
        into ``net`` (the object the caller holds). ``restart=True`` redraws the parameters from
        the model's seed and clears the optimizer's state; ``restart=False`` continues.
        ``seed`` fixes the batch order and the dropout masks. Targets may be one-hot rows or
        integer class labels. ``on_epoch`` is called with each epoch's record (for progress).
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
        if restart:
            net.reset_parameters()
            optim.reset()
        self.best_loss = math.inf  # each fit keeps its own best (the book's carried over)
        net.reseed_dropout(streams)
        order = streams.permutations((_SHUFFLE,))
        xp, rows = net.backend.xp, min(batch_size, X.shape[0])  # one batch, refilled each step
        batch = (xp.empty_like(X[:rows, ...]), xp.empty_like(y[:rows, ...]))
        optim.start(epochs)
        history = History()
        best_params: list[Array] | None = None
        for epoch in range(epochs):
            started = time.perf_counter()
            optim.set_epoch(epoch)
            train_loss = self._train_epoch(X, y, order, batch)
            _check_diverged(train_loss, "training", epoch + 1)
            record = {"epoch": epoch + 1, "lr": optim.lr, "train_loss": train_loss,
                      "val_loss": None, "seconds": 0.0}
            history.records.append(record)
            if (epoch + 1) % eval_every == 0:
                record["val_loss"] = val_loss = self.evaluate(X_val, y_val)
                _check_diverged(val_loss, "validation", epoch + 1)
                if not early_stopping or val_loss < self.best_loss:
                    say(f"Validation loss after {epoch + 1} epochs is {val_loss:.3f}")
                if val_loss < self.best_loss:
                    self.best_loss = val_loss
                    history.best_epoch, history.best_val_loss = epoch + 1, val_loss
                    if early_stopping:
                        best_params = [net.backend.copy(p) for p in net.params()]
                elif early_stopping:
                    say(f"Loss increased after epoch {epoch + 1}, final loss was "
                        f"{self.best_loss:.3f}, using the model from epoch {history.best_epoch}")
                    if best_params is not None:
                        for param, best in zip(net.params(), best_params, strict=True):
                            param[...] = best
                    history.stopped_early = True
            record["seconds"] = time.perf_counter() - started
            if on_epoch is not None:
                on_epoch(record)
            if history.stopped_early:
                break
        return history

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
