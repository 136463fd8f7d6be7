"""Callbacks that report a fit: one row per epoch to a CSV or JSON Lines file, a progress bar.

Each epoch's row has the History record's fields: ``epoch``, ``lr``, ``train_loss``,
``val_loss`` (empty or null when the epoch was not evaluated) and ``seconds``. The files are
rewritten whole and atomically after every epoch, so a crash leaves the rows of every finished
epoch and never half a line; a resumed fit rewrites them with the rows of the run so far first.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
from typing import IO, Any

from xnn.core.files import atomic_write
from xnn.train.callbacks import Callback, check_path, run_so_far

__all__ = ["FIELDS", "CSVLogger", "JSONLogger", "ProgressBar"]

FIELDS = ("epoch", "lr", "train_loss", "val_loss", "seconds")


class _FileLogger(Callback):
    """Keeps a row per epoch and rewrites ``path`` with all of them, atomically, after each."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = check_path(path, "path")
        self.rows: list[dict[str, Any]] = []

    def on_fit_start(self, trainer: Any) -> None:
        """Start the file: empty, or with the epochs of a resumed run."""
        so_far = run_so_far(trainer)
        self.rows = [] if so_far is None else [_row(r) for r in so_far.history.records]
        self._write()

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Add the epoch's row and rewrite the file."""
        self.rows.append(_row(record))
        self._write()

    def _write(self) -> None:
        with atomic_write(self.path, "w", encoding="utf-8", newline="") as file:
            self.write_rows(file)

    def write_rows(self, file: IO[str]) -> None:
        """Write every row to ``file``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r})"


class CSVLogger(_FileLogger):
    """Writes one CSV row per epoch to ``path`` under a header (rewritten atomically)."""

    def write_rows(self, file: IO[str]) -> None:
        """The header, then a row per epoch (``val_loss`` empty when not evaluated)."""
        writer = csv.writer(file, lineterminator="\n")
        writer.writerow(FIELDS)
        for row in self.rows:
            writer.writerow(["" if row[f] is None else row[f] for f in FIELDS])


class JSONLogger(_FileLogger):
    """Writes one JSON object per epoch, a line each (JSON Lines), to ``path`` (rewritten
    atomically); ``val_loss`` is null when not evaluated, as is any NaN or infinity."""

    def write_rows(self, file: IO[str]) -> None:
        """A line of JSON per epoch."""
        for row in self.rows:
            file.write(json.dumps({f: _finite(row[f]) for f in FIELDS}, allow_nan=False) + "\n")


class ProgressBar(Callback):
    """A tqdm bar over the epochs on stderr (gone when the fit ends) with the latest losses;
    ``options`` go to ``tqdm`` (``desc=``, ``mininterval=``, ...)."""

    def __init__(self, **options: Any) -> None:
        try:
            from tqdm import tqdm
        except ImportError:
            raise ImportError("ProgressBar needs tqdm: pip install tqdm "
                              '(or pip install -e ".[progress]")') from None
        self._tqdm, self.options = tqdm, options
        self.bar: Any = None
        self.losses: dict[str, str] = {}

    def on_fit_start(self, trainer: Any) -> None:
        """Open a bar for the fit's epochs (a resumed run's finished ones already counted)."""
        self._close()
        so_far = run_so_far(trainer)
        done = 0 if so_far is None else len(so_far.history.records)
        self.losses = {}
        options = {"unit": "epoch", "leave": False, "file": sys.stderr, **self.options}
        self.bar = self._tqdm(total=trainer.optim.schedule.epochs, initial=done, **options)

    def on_epoch_end(self, trainer: Any, record: dict[str, Any]) -> None:
        """Advance the bar and show the training and latest validation loss."""
        self.losses["train_loss"] = f"{record['train_loss']:.4f}"
        if record["val_loss"] is not None:
            self.losses["val_loss"] = f"{record['val_loss']:.4f}"
        if self.bar is not None:
            self.bar.set_postfix(self.losses, refresh=False)
            self.bar.update(1)

    def on_fit_end(self, trainer: Any, history: Any) -> None:
        """Close the bar."""
        self._close()

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def __repr__(self) -> str:
        return f"ProgressBar({', '.join(f'{k}={v!r}' for k, v in self.options.items())})"


def _row(record: dict[str, Any]) -> dict[str, Any]:
    """A record's fields as plain Python numbers (``val_loss`` may be None)."""
    row: dict[str, Any] = {"epoch": int(record["epoch"])}
    for field in FIELDS[1:]:
        value = record.get(field)
        row[field] = None if value is None else float(value)
    return row


def _finite(value: Any) -> Any:
    """``value``, or None for a NaN or infinity (which JSON cannot hold)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
