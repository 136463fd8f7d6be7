"""The trainer: epochs of shuffled mini-batches, periodic evaluation and early stopping."""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xnn.core.batches import row_blocks
from xnn.core.inputs import as_features
from xnn.core.validation import check_positive_int
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train import checkpoints
from xnn.train.callbacks import Callback
from xnn.train.history import History
from xnn.train.optimizers import Optimizer
from xnn.train.run import Run, capture, restore, roll_back, snapshot
from xnn.train.state import TrainingState

__all__ = ["History", "Trainer"]

_SHUFFLE = 2  # stream family of a fit's seed (dropout masks use family 1)
_EVAL_CHUNK = 8192  # rows per forward pass when evaluating
PathLike = str | os.PathLike[str]


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
        self._run: Run | None = None

    def fit(self, X_train: Any, y_train: Any, X_test: Any, y_test: Any, epochs: int = 100,
            eval_every: int = 10, batch_size: int = 32, seed: int = 1, restart: bool = True,
            early_stopping: bool = True, verbose: bool = True,
            on_epoch: Callable[[dict[str, Any]], None] | None = None,
            state: TrainingState | None = None, checkpoint: PathLike | None = None,
            checkpoint_every: int = 1, resume: PathLike | None = None,
            callbacks: Sequence[Callback] = ()) -> History:
        """Train for ``epochs`` epochs, evaluating on the test set every ``eval_every``.

        With ``early_stopping``, training stops at the first evaluation whose loss is not lower
        than the best so far, and the parameters of the best evaluated model are copied back
        into ``net`` (the object the caller holds). ``restart=True`` redraws the parameters from
        the model's seed and clears the optimizer's state; ``restart=False`` continues.
        ``seed`` fixes the batch order and the dropout masks. Targets may be one-hot rows or
        integer class labels. ``on_epoch`` is called with each epoch's record (for progress).

        Nothing lost: ``checkpoint=PATH`` writes the whole training state there (atomically)
        every ``checkpoint_every`` epochs, at each evaluation and at the end; ``resume=PATH``
        continues the run saved there, bit for bit (``resume="auto"`` with ``checkpoint=``:
        from that file when it exists, else from the start); ``state`` does the same from a
        :meth:`state_dict`. If the loss turns NaN or infinite, or the fit is interrupted, the
        model keeps its last good parameters (and the checkpoint its last finished epoch).

        ``callbacks`` (:class:`xnn.Callback`) hear ``on_fit_start(trainer)``,
        ``on_epoch_end(trainer, record)``, ``on_evaluate(trainer, record)`` and
        ``on_fit_end(trainer, history)``, in the order given; setting
        ``trainer.stop_training = True`` ends the fit after the current epoch.
        """
        net, optim = self.net, self.optim
        say = self.log if verbose else _silent
        epochs = check_positive_int(epochs, "epochs")
        eval_every = check_positive_int(eval_every, "eval_every")
        batch_size = check_positive_int(batch_size, "batch_size")
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        resume_path = _resume_path(resume, checkpoint)
        streams = net.streams_for_fit(seed)
        # all checks before anything changes: bad data must not cost the caller their model
        X, y = self._data(X_train, y_train, "X_train", "y_train", None if restart else -1)
        X_val, y_val = self._data(X_test, y_test, "X_test", "y_test", X.shape[1])
        last = X.shape[0] % batch_size or min(batch_size, X.shape[0])
        if last < net.min_train_rows:  # batch norm needs two rows to a batch
            raise ValueError(
                f"batch_size={batch_size} leaves a last batch of {last} row(s) of the "
                f"{X.shape[0]}, and batch normalisation needs at least {net.min_train_rows}; "
                "choose another batch_size (or drop a row)")
        fingerprint = None
        if checkpoint is not None or resume_path is not None:
            fingerprint = self._fingerprint((X_train, y_train, X_test, y_test), epochs,
                                            eval_every, batch_size, seed, early_stopping)
        if resume_path is not None:
            state = _read_matching(resume_path, fingerprint)
        if restart or state is not None:
            net.reset_parameters()
            optim.reset()
        self.best_loss = math.inf  # each fit keeps its own best (the book's carried over)
        net.reseed_dropout(streams)
        run = self._run = Run(order=streams.permutations((_SHUFFLE,)))
        xp, rows = net.backend.xp, min(batch_size, X.shape[0])  # one batch, refilled each step
        batch = (xp.empty_like(X[:rows, ...]), xp.empty_like(y[:rows, ...]))
        optim.start(epochs, -(-X.shape[0] // rows))
        if state is not None:
            restore(net, optim, run, state)
            self.best_loss = run.best_loss
        self.stop_training = False
        callbacks = list(callbacks)
        for callback in callbacks:
            callback.on_fit_start(self)

        def save() -> None:
            if checkpoint is not None:
                checkpoints.write_training_checkpoint(checkpoint, capture(net, optim, run),
                                                      fingerprint)

        try:
            while run.epoch < epochs and not run.history.stopped_early:
                run.start = snapshot(net, optim, run)
                record = self._epoch(run, X, y, X_val, y_val, batch, eval_every,
                                     early_stopping, say)
                for callback in callbacks:
                    if record["val_loss"] is not None:
                        callback.on_evaluate(self, record)
                    callback.on_epoch_end(self, record)
                if self.stop_training:
                    run.history.stopped_early = True
                done = run.epoch == epochs or run.history.stopped_early
                if done or run.epoch % checkpoint_every == 0 or record["val_loss"] is not None:
                    save()
                if on_epoch is not None:
                    on_epoch(record)
        except FloatingPointError as diverged:
            raise FloatingPointError(f"{diverged}; {self._keep_last_good(run)}") from None
        except KeyboardInterrupt:  # back to the last finished epoch, which the file then holds
            if run.start is not None and run.start.epoch == run.epoch:  # mid-epoch
                roll_back(net, optim, run, run.start)
            if run.epoch > 0:
                save()
            raise
        for callback in callbacks:
            callback.on_fit_end(self, run.history)
        return run.history

    def _epoch(self, run: Run, X: Array, y: Array, X_val: Array, y_val: Array,
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
        if epoch % eval_every == 0:
            record["val_loss"] = val_loss = self.evaluate(X_val, y_val)
            _check_diverged(val_loss, "validation", epoch)
            optim.evaluated(val_loss)
            if not early_stopping or val_loss < run.best_loss:
                say(f"Validation loss after {epoch} epochs is {val_loss:.3f}")
            if val_loss < run.best_loss:
                self.best_loss = run.best_loss = val_loss
                history.best_epoch, history.best_val_loss = epoch, val_loss
                run.best_params = net.store.snapshot()
            elif early_stopping:
                say(f"Loss increased after epoch {epoch}, final loss was "
                    f"{run.best_loss:.3f}, using the model from epoch {history.best_epoch}")
                if run.best_params is not None:
                    net.store.restore(run.best_params)
                history.stopped_early = True
        history.records.append(record)
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
        if self._run is None or self.net.store is None:
            raise RuntimeError("no training state yet: call fit first")
        return capture(self.net, self.optim, self._run)

    def _keep_last_good(self, run: Run) -> str:
        """After a divergence: the best evaluated parameters if any, else those from before the
        failing epoch, back in the model; says which."""
        if run.best_params is not None:
            self.net.store.restore(run.best_params)
            return (f"the model holds the parameters of epoch {run.history.best_epoch}, the "
                    f"best evaluated (validation loss {run.best_loss:.4g})")
        if run.start is not None:
            roll_back(self.net, self.optim, run, run.start)
            return f"the model holds the parameters from before epoch {run.epoch + 1}"
        self.net.reset_parameters()  # it failed in the first epoch of a fresh model
        return ("the model's parameters are reset: its next forward pass draws them again "
                "from its seed")

    def _fingerprint(self, data: tuple[Any, ...], epochs: int, eval_every: int,
                     batch_size: int, seed: int, early_stopping: bool) -> dict[str, Any]:
        """What a checkpoint belongs to: the data, the model, the optimizer and the fit."""
        net = self.net
        names = ("X_train", "y_train", "X_test", "y_test")
        return {"data": {n: checkpoints.data_fingerprint(a) for n, a in zip(names, data,
                                                                             strict=True)},
                "model": {"layers": [repr(layer) for layer in net.layers],
                          "loss": repr(net.loss), "seed": net.seed, "dtype": net.dtype,
                          "streams": net.streams},
                "optimizer": self.optim.config(),
                "fit": {"epochs": epochs, "eval_every": eval_every, "batch_size": batch_size,
                        "seed": seed, "early_stopping": early_stopping}}

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
        per_step = optim.schedule.per == "step"
        total = None
        for step, rows in enumerate(row_blocks(X.shape[0], X_buffer.shape[0])):
            if per_step:
                optim.set_step(step)
            indices = permutation[rows]
            size = indices.shape[0]
            X_batch = take_rows(X, indices, out=X_buffer[:size, ...])
            loss = net.train_step(X_batch, take_rows(y, indices, out=y_buffer[:size, ...]))
            optim.step()
            loss = loss * size
            total = loss if total is None else total + loss
        return float(total) / X.shape[0]


def _resume_path(resume: PathLike | None, checkpoint: PathLike | None) -> Path | None:
    """The file to resume from: ``resume``, or with ``"auto"`` the checkpoint if it exists."""
    if resume is None:
        return None
    if isinstance(resume, str) and resume == "auto":
        if checkpoint is None:
            raise ValueError('resume="auto" needs checkpoint=PATH (the file to resume from)')
        return Path(checkpoint) if Path(checkpoint).exists() else None
    if not Path(resume).is_file():
        raise FileNotFoundError(f"resume={str(resume)!r}: no such checkpoint file (pass "
                                'resume="auto" with checkpoint=PATH to start afresh then)')
    return Path(resume)


def _read_matching(path: Path, fingerprint: dict[str, Any]) -> TrainingState:
    """The state saved at ``path``, refused when it belongs to other data or configuration."""
    state, saved = checkpoints.read_training_checkpoint(path)
    differ = checkpoints.differences(saved, fingerprint)
    if differ:
        raise ValueError(f"cannot resume from {path}: it belongs to another run; "
                         + "; ".join(differ))
    return state


def _silent(line: str) -> None:
    """A log that drops the line (``verbose=False``)."""


def _check_diverged(loss: float, which: str, epoch: int) -> None:
    """Stop with a clear message once a loss is NaN or infinite (training has diverged)."""
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: the {which} loss after epoch {epoch} is {loss}; "
            "try a smaller learning rate (or check the data's scale)"
        )
