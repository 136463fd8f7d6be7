"""Running the chapter's experiments, each result written as it finishes, resumable.

:func:`start_run` makes a run's directory (``RESULTS/<timestamp>-<names>/``, pointed at by
``RESULTS/latest``; with ``resume``, the latest one again) and writes what the run is there.
With a results directory, every finished experiment leaves ``runs/NAME.json`` (its result and
the options it ran with) and refreshes the tables; the one in progress keeps its whole training
state in ``checkpoints/NAME.npz``. ``resume=True`` skips the experiments already recorded with
the same options and continues the unfinished one from its checkpoint, bit for bit.
"""

from __future__ import annotations

import statistics
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from xnn.backends import Backend, get_backend
from xnn.data.preprocessing import accuracy, one_hot
from xnn.nn.network import NeuralNetwork
from xnn.tools.experiments import BOOK_NAMES, BOOK_SEED, EXPERIMENTS, Result
from xnn.tools.results import (
    latest_run_directory,
    new_run_directory,
    plural,
    read_metadata,
    read_record,
    run_metadata,
    write_metadata,
    write_record,
    write_results,
)
from xnn.train.checkpoints import data_fingerprint
from xnn.train.history import History
from xnn.train.trainer import Trainer

__all__ = ["list_experiments", "run_experiments", "start_run"]


def start_run(root: str | Path, command: Sequence[str], options: dict[str, Any],
              resume: bool = False,
              log: Callable[[str], None] = print) -> tuple[Path, dict[str, Any]]:
    """The directory of a new run under ``root`` (``resume``: the one ``root/latest`` points
    at), with ``chapter4.json`` written there: the first write, so an unwritable ``root`` fails
    before any work (OSError). Returns the directory and the metadata."""
    root = Path(root).expanduser()
    directory = latest_run_directory(root) if resume else None
    if directory is None and resume and (root / "runs").is_dir():
        directory = root  # a run written before runs had directories of their own
    if directory is None:
        if resume:
            log(f"nothing to resume in {root}; starting a new run")
        names = list(options.get("experiments", ()))
        label = "all" if names == list(BOOK_NAMES) else "-".join(names[:4]) + \
            (f"-and-{len(names) - 4}-more" if len(names) > 4 else "")
        directory = new_run_directory(root, label or "run")
    metadata = run_metadata(command, options)
    earlier = read_metadata(directory) if resume else None
    if earlier is not None:  # the run began earlier: keep when, and say when it resumed
        metadata["resumed"], metadata["started"] = metadata["started"], earlier.get("started")
    write_metadata(metadata, directory)
    log(f"results go to {directory}")
    return directory, metadata


def run_experiments(names: Sequence[str], data: tuple[Any, ...], backend: str | Backend = "numpy",
                    dtype: str = "float32", epochs: int | None = None, seed: int = BOOK_SEED,
                    progress: bool = True, log: Callable[[str], None] = print,
                    streams: str = "independent", results_dir: str | Path | None = None,
                    resume: bool = False) -> list[Result]:
    """Run the named experiments on ``data``, printing the book's lines; one result each.

    ``streams="book"`` (with ``dtype="float64"``) draws from the book's own random stream.
    ``results_dir`` keeps each result as it finishes and the running one's checkpoint there;
    ``resume`` skips what is recorded there and continues the rest where it stopped.
    """
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}")
    backend = get_backend(backend)
    directory = None if results_dir is None else Path(results_dir)
    data_id = [data_fingerprint(a)["sha256"] for a in data] if directory else None
    X_train, y_train, X_test, y_test = (backend.asarray(a) for a in data)  # once for all runs
    results: list[Result] = []
    for name in names:
        options = {"backend": backend.name, "dtype": dtype, "seed": seed, "streams": streams,
                   "epochs": epochs or EXPERIMENTS[name].epochs, "data": data_id}
        done = read_record(directory / "runs" / f"{name}.json", options) \
            if directory and resume else None
        if done is not None:
            log(f"\n== {name}: finished earlier ({directory / 'runs' / f'{name}.json'}), "
                f"{done.accuracy:.2f}%")
        else:
            done = _run_one(name, (X_train, y_train, X_test, y_test), backend, options,
                            progress, log, directory, resume)
        results.append(done)
        if directory is not None:
            write_record(done, options, directory / "runs" / f"{name}.json")
            write_results(results, directory)
    return results


def list_experiments(experiments: dict[str, Any],
                     log: Callable[[str], None] = print) -> None:
    """The chapter's table, then the rows beyond the book, with the accuracy each compares to."""
    header = f"{'experiment':16} {'compare with':>17}  {'what it trains (epochs)'}"
    log(header + "\n" + "-" * len(header))
    for section, reference in (("the chapter's table (--all runs it)", "book"),
                               ("beyond the book (by name)", "PyTorch")):
        log(f"\n{section}:")
        for e in experiments.values():
            if e.reference != reference:
                continue
            accuracy = "—" if e.book_accuracy is None else f"{e.book_accuracy:.2f}%"
            log(f"{e.name:16} {reference + ' ' + accuracy:>17}  {e.description} "
                f"({plural(e.epochs, 'epoch')})")
    log("\ncompare with: the accuracy the book printed for the chapter's rows; beyond the "
        "book, PyTorch's on the same network (— not measured)")


def _run_one(name: str, data: tuple[Any, ...], backend: Backend, options: dict[str, Any],
             progress: bool, log: Callable[[str], None], directory: Path | None,
             resume: bool) -> Result:
    experiment = EXPERIMENTS[name]
    dtype, seed, streams, n_epochs = (options[k] for k in ("dtype", "seed", "streams",
                                                            "epochs"))
    X_train, y_train, X_test, y_test = data
    model, optimizer = experiment.build(backend, dtype, seed, streams)
    log(f"\n== {name}: {experiment.description}; {plural(n_epochs, 'epoch')} on "
        f"{backend.name} {dtype}, {streams} random streams")
    train_targets, test_targets = _targets(model, y_train, y_test, dtype)
    checkpoint = None if directory is None else directory / "checkpoints" / f"{name}.npz"
    with _progress_bar(n_epochs, name, progress) as (on_epoch, say):
        trainer = Trainer(model, optimizer, log=say or log)

        def fit(resume_from: str | None) -> History:
            return trainer.fit(X_train, train_targets, X_test, test_targets, epochs=n_epochs,
                               eval_every=10, seed=seed, batch_size=60, on_epoch=on_epoch,
                               checkpoint=checkpoint, resume=resume_from)

        try:
            history = fit("auto" if resume and checkpoint is not None else None)
        except ValueError as exc:  # a checkpoint of another configuration: start afresh
            if "cannot resume" not in str(exc):
                raise
            log(f"{checkpoint} is from another run ({exc}); starting {name} afresh")
            history = fit(None)
    result = Result(
        name=name, book_accuracy=experiment.book_accuracy,
        accuracy=100 * accuracy(model, X_test, y_test),
        best_val_loss=history.best_val_loss, best_epoch=history.best_epoch,
        epochs_run=len(history.records), stopped_early=history.stopped_early,
        seconds_per_epoch=statistics.median(r["seconds"] for r in history.records),
        backend=backend.name, dtype=dtype, streams=streams,
        val_losses=[(r["epoch"], r["val_loss"]) for r in history.records
                    if r["val_loss"] is not None],
    )
    reference = "" if experiment.book_accuracy is None else \
        f" ({experiment.reference}: {experiment.book_accuracy:.2f}%)"
    log(f"The model validation accuracy is: {result.accuracy:.2f}%{reference}")
    return result


def _targets(model: NeuralNetwork, y_train: Any, y_test: Any, dtype: str) -> tuple[Any, Any]:
    """Labels for a classification loss; one-hot rows for MSE, as the book gave both."""
    if model.loss.classifies:
        return y_train, y_test
    return (one_hot(y_train, model.n_outputs, dtype), one_hot(y_test, model.n_outputs, dtype))


class _progress_bar:
    """A tqdm bar over epochs when tqdm is installed and ``enabled``; else nothing."""

    def __init__(self, total: int, name: str, enabled: bool) -> None:
        self.total, self.name, self.enabled = total, name, enabled
        self.bar: Any = None

    def __enter__(self) -> tuple[Callable[[dict], None] | None, Callable[[str], None] | None]:
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return None, None
        if not self.enabled:
            return None, None
        self.bar = tqdm(total=self.total, desc=self.name, unit="epoch", leave=False,
                        file=sys.stderr)
        return (lambda record: self.bar.update(1)), tqdm.write

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
