"""The experiments of Chapter 4 on MNIST, each by name, with the book's accuracy beside ours.

All use batch 60, seed 20190119, eval_every 10, a hidden ``Dense(89)`` and an output
``Dense(10)``, for 50 epochs, unless the table says otherwise.
"""

from __future__ import annotations

import csv
import io
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from xnn.backends import Backend, get_backend
from xnn.core.files import atomic_write
from xnn.data.preprocessing import accuracy, one_hot, standardize
from xnn.nn.activations import Linear, ReLU, Sigmoid, Tanh
from xnn.nn.layers import Dense
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Operation
from xnn.train.optimizers import SGD, Optimizer, SGDMomentum
from xnn.train.trainer import Trainer

__all__ = ["EXPERIMENTS", "Experiment", "Result", "load_chapter_data", "run_experiments",
           "write_results"]

BOOK_SEED = 20190119
DEFAULT_NAMES = ("dropout", "deep")


@dataclass(frozen=True)
class Experiment:
    """One row of the chapter's table: a model, a loss, an optimizer and the book's accuracy."""

    name: str
    description: str
    book_accuracy: float  # percent, as printed in the book
    layers: Callable[[], list[Dense]]
    loss: Callable[[], Loss]
    optimizer: Callable[[], Optimizer]
    epochs: int = 50

    def build(self, backend: str | Backend, dtype: str, seed: int,
              streams: str = "independent") -> tuple[NeuralNetwork, Optimizer]:
        """A fresh model and optimizer for this experiment."""
        model = NeuralNetwork(self.layers(), self.loss(), seed=seed, backend=backend, dtype=dtype,
                              streams=streams)
        return model, self.optimizer()


def _two_layers(hidden: Callable[[], Operation], output: Callable[[], Operation],
                weight_init: str = "standard", dropout: float = 1.0) -> Callable[[], list[Dense]]:
    return lambda: [Dense(89, hidden(), dropout=dropout, weight_init=weight_init),
                    Dense(10, output(), weight_init=weight_init)]


def _deep(dropout: float) -> Callable[[], list[Dense]]:
    return lambda: [Dense(178, Tanh(), dropout=dropout, weight_init="glorot"),
                    Dense(46, Tanh(), dropout=dropout, weight_init="glorot"),
                    Dense(10, Linear(), weight_init="glorot")]


def _sgd() -> Optimizer:
    return SGD(0.1)


def _momentum() -> Optimizer:
    return SGDMomentum(0.1, momentum=0.9)


def _linear_decay() -> Optimizer:
    return SGDMomentum(0.15, momentum=0.9, final_lr=0.05, decay_type="linear")


def _exponential_decay() -> Optimizer:
    return SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")


_TABLE = [
    Experiment("mse-sigmoid", "Sigmoid → Sigmoid, MSE, SGD(0.1)", 89.98,
               _two_layers(Sigmoid, Sigmoid), MeanSquaredError, _sgd),
    Experiment("mse", "Tanh → Sigmoid, MSE, SGD(0.1)", 72.58,
               _two_layers(Tanh, Sigmoid), MeanSquaredError, _sgd),
    Experiment("sce-sigmoid", "Sigmoid → Linear, SCE, SGD(0.1)", 92.14,
               _two_layers(Sigmoid, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("sce-relu", "ReLU → Linear, SCE, SGD(0.1) (the book's ReLU bug)", 76.38,
               _two_layers(ReLU, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("sce", "Tanh → Linear, SCE, SGD(0.1)", 91.01,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _sgd),
    Experiment("momentum", "Tanh → Linear, SCE, SGDMomentum(0.1, 0.9)", 95.51,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _momentum),
    Experiment("linear-decay", "momentum, lr 0.15 → 0.05 linear", 95.91,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _linear_decay),
    Experiment("exp-decay", "momentum, lr 0.2 → 0.05 exponential", 96.06,
               _two_layers(Tanh, Linear), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("glorot-linear", "linear-decay + Glorot", 96.71,
               _two_layers(Tanh, Linear, "glorot"), SoftmaxCrossEntropy, _linear_decay),
    Experiment("glorot-exp", "exp-decay + Glorot", 96.71,
               _two_layers(Tanh, Linear, "glorot"), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("dropout", "glorot-exp + dropout 0.8 on the hidden layer", 96.95,
               _two_layers(Tanh, Linear, "glorot", 0.8), SoftmaxCrossEntropy, _exponential_decay),
    Experiment("deep", "178 Tanh (dropout 0.8) → 46 Tanh (dropout 0.8) → 10, Glorot, exp-decay",
               97.15, _deep(0.8), SoftmaxCrossEntropy, _exponential_decay, epochs=100),
    Experiment("deep-no-dropout", "deep without dropout", 96.52,
               _deep(1.0), SoftmaxCrossEntropy, _exponential_decay, epochs=100),
]
EXPERIMENTS: dict[str, Experiment] = {e.name: e for e in _TABLE}


@dataclass
class Result:
    """What one experiment reached."""

    name: str
    book_accuracy: float
    accuracy: float  # percent on the 10,000 test images
    best_val_loss: float | None
    best_epoch: int | None
    epochs_run: int
    stopped_early: bool
    seconds_per_epoch: float  # median over the epochs run
    backend: str
    dtype: str
    streams: str = "independent"
    val_losses: list[tuple[int, float]] = field(default_factory=list)

    @property
    def difference(self) -> float:
        """Percentage points above (+) or below (−) the book."""
        return self.accuracy - self.book_accuracy


def load_chapter_data(path: str | None = None, dtype: str = "float32",
                      limit: int | None = None) -> tuple[np.ndarray, ...]:
    """MNIST standardised as in the book: (X_train, y_train, X_test, y_test), labels as ints."""
    from xnn.data import load_mnist

    X_train, y_train, X_test, y_test = load_mnist(path=path)
    if limit is not None:
        X_train, y_train = X_train[:limit], y_train[:limit]
        X_test, y_test = X_test[: max(limit // 6, 1)], y_test[: max(limit // 6, 1)]
    X_train, X_test = standardize(X_train, X_test, dtype)
    return X_train, y_train, X_test, y_test


def run_experiments(names: Sequence[str], data: tuple[Any, ...], backend: str | Backend = "numpy",
                    dtype: str = "float32", epochs: int | None = None, seed: int = BOOK_SEED,
                    progress: bool = True, log: Callable[[str], None] = print,
                    streams: str = "independent") -> list[Result]:
    """Run the named experiments on ``data``, printing the book's lines; one result each.

    ``streams="book"`` (with ``dtype="float64"``) draws from the book's own random stream.
    """
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        raise ValueError(f"unknown experiment(s) {unknown}; known: {', '.join(EXPERIMENTS)}")
    backend = get_backend(backend)
    X_train, y_train, X_test, y_test = (backend.asarray(a) for a in data)  # once for all runs
    results = []
    for name in names:
        experiment = EXPERIMENTS[name]
        model, optimizer = experiment.build(backend, dtype, seed, streams)
        n_epochs = epochs or experiment.epochs
        log(f"\n== {name}: {experiment.description}; {n_epochs} epochs on {backend.name} {dtype}"
            f", {streams} random streams")
        train_targets, test_targets = _targets(model, y_train, y_test, dtype)
        with _progress_bar(n_epochs, name, progress) as (on_epoch, say):
            history = Trainer(model, optimizer, log=say or log).fit(
                X_train, train_targets, X_test, test_targets, epochs=n_epochs, eval_every=10,
                seed=seed, batch_size=60, on_epoch=on_epoch)
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
        log(f"The model validation accuracy is: {result.accuracy:.2f}% "
            f"(book: {experiment.book_accuracy:.2f}%)")
        results.append(result)
    return results


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


COLUMNS = ("experiment", "book accuracy %", "xnn accuracy %", "difference (points)",
           "best val loss", "best epoch", "epochs run", "s/epoch", "backend", "dtype", "streams")


def _rows(results: Sequence[Result]) -> list[list[str]]:
    return [[r.name, f"{r.book_accuracy:.2f}", f"{r.accuracy:.2f}", f"{r.difference:+.2f}",
             "" if r.best_val_loss is None else f"{r.best_val_loss:.4f}",
             str(r.best_epoch or ""), str(r.epochs_run), f"{r.seconds_per_epoch:.2f}",
             r.backend, r.dtype, r.streams] for r in results]


def markdown_table(results: Sequence[Result]) -> str:
    """The results as a markdown table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(results)]
    return "\n".join(lines) + "\n"


def write_results(results: Sequence[Result], directory: str | Path) -> list[Path]:
    """Write ``chapter4.md``, ``chapter4.csv`` and (with matplotlib) ``chapter4-val-loss.png``."""
    directory = Path(directory)
    written = [directory / "chapter4.md", directory / "chapter4.csv"]
    with atomic_write(written[0], "w", encoding="utf-8") as file:
        file.write("# Chapter 4 on MNIST\n\n" + markdown_table(results))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([list(COLUMNS), *_rows(results)])
    with atomic_write(written[1], "w", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
    plot = _plot(results, directory / "chapter4-val-loss.png")
    return written + ([plot] if plot else [])


def _plot(results: Sequence[Result], path: Path) -> Path | None:
    if not any(result.val_losses for result in results):
        return None  # nothing was evaluated (epochs < eval_every)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    figure, axes = plt.subplots(figsize=(9, 5.5))
    colours = plt.get_cmap("tab20").colors
    for index, result in enumerate(results):
        if result.val_losses:
            epochs, losses = zip(*result.val_losses, strict=True)
            axes.plot(epochs, losses, marker="os^"[index % 3], color=colours[index % 20],
                      linestyle="-" if index % 2 == 0 else "--", label=result.name)
    axes.set(xlabel="epoch", ylabel="validation loss (MSE or cross-entropy: not comparable)",
             title="Chapter 4 on MNIST")
    axes.legend(fontsize="small", loc="upper right", ncol=2)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100)
    plt.close(figure)
    return path
