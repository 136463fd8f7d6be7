"""The chapter's results as files: a markdown table, a CSV, a plot, and one JSON record per run."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnn.core.files import atomic_write
from xnn.tools.experiments import Result

__all__ = ["COLUMNS", "markdown_table", "read_record", "write_record", "write_results"]


def write_record(result: Result, options: dict[str, Any], path: str | Path) -> None:
    """One finished run as JSON: its result and the options it ran with (atomically)."""
    record = {"result": dataclasses.asdict(result), "options": options}
    with atomic_write(path, "w", encoding="utf-8") as file:
        json.dump(record, file, indent=1)


def read_record(path: str | Path, options: dict[str, Any]) -> Result | None:
    """The result recorded at ``path`` if it ran with ``options``; else ``None``."""
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        if record["options"] != options:
            return None
        saved = dict(record["result"])
        saved["val_losses"] = [tuple(pair) for pair in saved["val_losses"]]
        return Result(**saved)
    except (OSError, ValueError, KeyError, TypeError):
        return None


COLUMNS = ("experiment", "book accuracy %", "xnn accuracy %", "difference (points)",
           "best val loss", "best epoch", "epochs run", "s/epoch", "backend", "dtype", "streams")


def _rows(results: Sequence[Result]) -> list[list[str]]:
    return [[r.name, "" if r.book_accuracy is None else f"{r.book_accuracy:.2f}",
             f"{r.accuracy:.2f}", "" if r.difference is None else f"{r.difference:+.2f}",
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
