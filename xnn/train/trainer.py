"""The trainer: epochs of shuffled mini-batches, periodic evaluation and early stopping."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any

from xnn.backends import activated
from xnn.core.inputs import as_features
from xnn.core.validation import check_positive_int
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train import checkpoints
from xnn.train.callbacks import Callback
from xnn.train.epoch import Epoch
from xnn.train.history import History
from xnn.train.optimizers import Optimizer
from xnn.train.run import Run, capture, restore, roll_back, snapshot
from xnn.train.state import TrainingState

__all__ = ["History", "Trainer"]

_SHUFFLE = 2  # stream family of a fit's seed (dropout masks use family 1)
PathLike = str | os.PathLike[str]


class Trainer:
    """Trains ``net`` with ``optim`` (the book's ``Trainer(model, optimizer)``).

    ``log`` receives the book's lines (``print`` by default); ``eval_chunk`` is how many rows an
    evaluation runs through the model at a time.
    """

    def __init__(self, net: NeuralNetwork, optim: Optimizer, *,
                 log: Callable[[str], None] = print, eval_chunk: int = 8192) -> None:
        if not isinstance(net, NeuralNetwork):
            raise TypeError(f"net must be a NeuralNetwork, got {net!r}")
        if not isinstance(optim, Optimizer):
            raise TypeError(f"optim must be an Optimizer such as SGD(0.1), got {optim!r}")
        self.net = net
        self.optim = optim
        optim.net = net
        self.log = log  # where the book's lines go (``tqdm.write`` beside a progress bar)
        self.eval_chunk = check_positive_int(eval_chunk, "eval_chunk")
        self.best_loss = math.inf
        self.stop_training = False
        self._run: Run | None = None

    @activated
    def fit(self, X_train: Any, y_train: Any, X_test: Any = None, y_test: Any = None,
            epochs: int = 100, eval_every: int = 10, batch_size: int = 32, seed: int = 1,
            restart: bool = True, early_stopping: bool = True, verbose: int | bool = 1,
            on_epoch: Callable[[dict[str, Any]], None] | None = None,
            state: TrainingState | None = None, checkpoint: PathLike | None = None,
            checkpoint_every: int = 1, resume: PathLike | None = None,
            callbacks: Sequence[Callback] = ()) -> History:
        """Train for ``epochs`` epochs, evaluating on the test set every ``eval_every`` (and at
        the end, when ``eval_every`` is longer than the run).

        With ``early_stopping``, training stops at the first evaluation whose loss is not lower
        than the best so far, and the parameters of the best evaluated model are copied back
        into ``net`` (the object the caller holds). ``restart=True`` redraws the parameters from
        the model's seed and clears the optimizer's state; ``restart=False`` continues.
        ``seed`` fixes the batch order and the dropout masks. Targets may be one-hot rows or
        integer class labels. Without ``X_test``/``y_test`` nothing is evaluated (and nothing
        stops early). ``verbose``: 0 silent, 1 the book's lines, 2 also a line per epoch (train
        and validation loss, validation accuracy, rate, seconds) and a bar over the batches
        (with tqdm). ``on_epoch`` is called with each epoch's record (for progress).

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
        verbose = _verbosity(verbose)
        say = self.log if verbose else _silent
        epochs = check_positive_int(epochs, "epochs")
        eval_every = check_positive_int(eval_every, "eval_every")
        batch_size = check_positive_int(batch_size, "batch_size")
        checkpoint_every = check_positive_int(checkpoint_every, "checkpoint_every")
        resume_path = checkpoints.resume_path(resume, checkpoint)
        streams = net.streams_for_fit(seed)
        # all checks before anything changes: bad data must not cost the caller their model
        X, y = self._data(X_train, y_train, "X_train", "y_train", None if restart else -1)
        validation = self._validation(X_test, y_test, X.shape[1])
        self._check_last_batch(X.shape[0], batch_size)
        fingerprint = None
        if checkpoint is not None or resume_path is not None:
            fingerprint = checkpoints.fit_fingerprint(
                net, optim, (X_train, y_train, X_test, y_test), epochs=epochs,
                eval_every=eval_every, batch_size=batch_size, seed=seed,
                early_stopping=early_stopping)
        if resume_path is not None:
            state = checkpoints.read_matching(resume_path, fingerprint)
        if validation is None and early_stopping:
            say("No validation set (X_test, y_test): nothing is evaluated, nothing stops early")
        if restart and state is None and net.built:
            say("restart=True: the parameters are drawn again from the model's seed and the "
                "optimizer starts over (restart=False continues training)")
        if restart or state is not None:
            net.reset_parameters()
            optim.reset()
        self.best_loss = math.inf  # each fit keeps its own best (the book's carried over)
        net.reseed_dropout(streams)
        run = self._run = Run(order=streams.permutations((_SHUFFLE,)))
        epoch = Epoch(self, run, X, y, validation, batch_size, epochs, eval_every,
                      early_stopping, say, verbose)
        optim.start(epochs, epoch.steps)
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
                record = epoch.run()
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
        finally:
            epoch.close()
        for callback in callbacks:
            callback.on_fit_end(self, run.history)
        return run.history

    @activated
    def evaluate(self, X: Any, y: Any) -> float:
        """The mean loss of ``net`` on (X, y) in inference mode; X and y as ``fit`` takes them
        (host data or arrays of the model's backend; labels or one-hot rows)."""
        from xnn.train.loops import evaluate

        X, y = self._data(X, y, "X", "y", -1 if self.net.built else None)
        return evaluate(self.net, X, y, self.eval_chunk)[0]

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

    # -- data ------------------------------------------------------------------------------
    def _data(self, X: Any, y: Any, x_name: str, y_name: str,
              n_features: int | None) -> tuple[Array, Array]:
        """(X, y) checked and on the backend; ``n_features``: None any width, −1 the model's."""
        width = self.net.n_features if n_features == -1 else n_features
        X = as_features(X, self.net.backend, self.net.dtype, width, x_name)
        if X.shape[0] == 0:
            raise ValueError(f"{x_name} has no rows")
        return X, self.net.as_targets(y, X.shape[0], name=y_name)

    def _validation(self, X: Any, y: Any, width: int) -> tuple[Array, Array] | None:
        """The checked validation set, or ``None`` when neither part is given."""
        if X is None and y is None:
            return None
        if X is None or y is None:
            raise ValueError("give both X_test and y_test, or neither (no validation)")
        return self._data(X, y, "X_test", "y_test", width)

    def _check_last_batch(self, rows: int, batch_size: int) -> None:
        """Batch normalisation needs two rows to a batch: refuse a shorter last one now."""
        last = rows % batch_size or min(batch_size, rows)
        if last < self.net.min_train_rows:
            raise ValueError(
                f"batch_size={batch_size} leaves a last batch of {last} row(s) of the {rows}, "
                f"and batch normalisation needs at least {self.net.min_train_rows}; choose "
                "another batch_size (or drop a row)")


def _verbosity(verbose: int | bool) -> int:
    """``verbose`` as 0, 1 or 2 (``True`` is 1, ``False`` 0)."""
    if verbose not in (0, 1, 2) or isinstance(verbose, float):
        raise ValueError(f"verbose must be 0, 1 or 2 (or True/False), got {verbose!r}")
    return int(verbose)


def _silent(line: str) -> None:
    """A log that drops the line (``verbose=0``)."""
