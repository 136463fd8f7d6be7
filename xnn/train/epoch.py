"""One epoch of a fit: train, evaluate when due, early stopping, and what the user sees."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from xnn.nn.operations import Array
from xnn.train.loops import evaluate, train_epoch
from xnn.train.run import Run

__all__ = ["Epoch"]


class Epoch:
    """Runs the epochs of one fit (``run()`` once per epoch) with its fixed settings."""

    def __init__(self, trainer: Any, run: Run, X: Array, y: Array,
                 validation: tuple[Array, Array] | None, batch_size: int, epochs: int,
                 eval_every: int, early_stopping: bool, say: Callable[[str], None],
                 verbose: int) -> None:
        self.trainer, self.run_state = trainer, run
        self.X, self.y, self.validation = X, y, validation
        self.epochs, self.eval_every = epochs, eval_every
        self.early_stopping = early_stopping and validation is not None
        self.say, self.verbose = say, verbose
        rows = min(batch_size, X.shape[0])  # one batch, refilled each step
        xp = trainer.net.backend.xp
        self.batch = (xp.empty_like(X[:rows, ...]), xp.empty_like(y[:rows, ...]))
        self.steps = -(-X.shape[0] // rows)
        self._bar: Any = None

    def due(self, epoch: int) -> bool:
        """Whether epoch ``epoch`` (1-based) is evaluated: every ``eval_every``, and the last
        one when ``eval_every`` is longer than the run (so a validation set is always used)."""
        if self.validation is None:
            return False
        return epoch % self.eval_every == 0 or (epoch == self.epochs and
                                                self.eval_every > self.epochs)

    def run(self) -> dict[str, Any]:
        """One epoch of training, then the evaluation and early stopping when due."""
        trainer, run = self.trainer, self.run_state
        net, optim, history, say = trainer.net, trainer.optim, run.history, self.say
        started = time.perf_counter()
        epoch = run.epoch + 1
        optim.set_epoch(run.epoch)
        train_loss = train_epoch(net, optim, self.X, self.y, run.order, self.batch,
                                 self._progress(epoch))
        _check_diverged(train_loss, "training", epoch)
        record = {"epoch": epoch, "lr": optim.lr, "train_loss": train_loss, "val_loss": None,
                  "val_accuracy": None, "seconds": 0.0}
        if self.due(epoch):
            val_loss, record["val_accuracy"] = evaluate(net, *self.validation,
                                                        trainer.eval_chunk)
            record["val_loss"] = val_loss
            _check_diverged(val_loss, "validation", epoch)
            optim.evaluated(val_loss)
            if not self.early_stopping or val_loss < run.best_loss:
                say(f"Validation loss after {epoch} epochs is {val_loss:.3f}")
            if val_loss < run.best_loss:
                trainer.best_loss = run.best_loss = val_loss
                history.best_epoch, history.best_val_loss = epoch, val_loss
                run.best_params = net.store.snapshot()
            elif self.early_stopping:
                say(f"Loss increased after epoch {epoch}, final loss was "
                    f"{run.best_loss:.3f}, using the model from epoch {history.best_epoch}")
                if run.best_params is not None:
                    net.store.restore(run.best_params)
                history.stopped_early = True
        history.records.append(record)
        run.epoch = epoch
        record["seconds"] = time.perf_counter() - started
        if self.verbose >= 2:
            say(_epoch_line(record, self.epochs))
        return record

    def _progress(self, epoch: int) -> Callable[[], None] | None:
        """A tqdm bar over this epoch's batches at ``verbose=2`` (when tqdm is installed)."""
        self.close()
        if self.verbose < 2:
            return None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None
        self._bar = tqdm(total=self.steps, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                         leave=False)
        return lambda: self._bar.update(1)

    def close(self) -> None:
        """Close the batch bar, if any."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _epoch_line(record: dict[str, Any], epochs: int) -> str:
    """``verbose=2``'s line: epoch, losses, accuracy when evaluated, rate, seconds."""
    parts = [f"epoch {record['epoch']}/{epochs}", f"train loss {record['train_loss']:.4f}"]
    if record["val_loss"] is not None:
        parts.append(f"val loss {record['val_loss']:.4f}")
    if record["val_accuracy"] is not None:
        parts.append(f"val accuracy {100 * record['val_accuracy']:.2f}%")
    parts += [f"lr {record['lr']:.4g}", f"{record['seconds']:.2f} s"]
    return ", ".join(parts)


def _check_diverged(loss: float, which: str, epoch: int) -> None:
    """Stop with a clear message once a loss is NaN or infinite (training has diverged)."""
    if not math.isfinite(loss):
        raise FloatingPointError(
            f"training diverged: the {which} loss after epoch {epoch} is {loss}; "
            "try a smaller learning rate (or check the data's scale)"
        )
