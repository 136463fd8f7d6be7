"""The chapter's results as files: a markdown table, a CSV, a plot, and one JSON record per run.

``xnn chapter4`` gives every run a directory of its own, ``RESULTS/<timestamp>-<names>/``, and
points ``RESULTS/latest`` at it (a symbolic link; a text file naming the directory where links
cannot be made). Beside the tables, ``chapter4.json`` says what the run was: the command line,
the options, the versions and the machine; the markdown repeats it as a header block.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from xnn.core.files import atomic_write
from xnn.tools.experiments import Result

__all__ = ["COLUMNS", "LATEST", "METADATA", "caveat", "check_writable", "latest_run_directory",
           "markdown_table", "new_run_directory", "plural", "read_metadata", "read_record",
           "run_metadata", "write_metadata", "write_record", "write_results"]

LATEST = "latest"  # RESULTS/latest: the newest run's directory
METADATA = "chapter4.json"  # what a run was, beside its tables
PLOT = "chapter4-val-loss.png"


def plural(count: int, noun: str) -> str:
    """``1 epoch``, ``2 epochs``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


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


# -- one directory per run ---------------------------------------------------------------------
def new_run_directory(root: str | Path, label: str) -> Path:
    """Make ``root/<YYYYmmdd-HHMMSS>-<label>/`` (a fresh one) and point ``root/latest`` at it."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    stem = time.strftime("%Y%m%d-%H%M%S") + "-" + label
    for attempt in range(1, 1000):
        directory = root / (stem if attempt == 1 else f"{stem}-{attempt}")
        try:
            directory.mkdir()
        except FileExistsError:
            continue
        _point_latest(root, directory.name)
        return directory
    raise FileExistsError(f"{root / stem}: too many runs started in the same second")


def check_writable(root: str | Path) -> None:
    """Make ``root`` and write a file there (removed again): OSError if that cannot be done."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=root):
        pass


def latest_run_directory(root: str | Path) -> Path | None:
    """The directory ``root/latest`` points at (link or text file), if it still exists."""
    latest = Path(root) / LATEST
    try:
        name = os.readlink(latest) if latest.is_symlink() else \
            latest.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    directory = Path(root) / name
    return directory if name and directory.is_dir() else None


def _point_latest(root: Path, name: str) -> None:
    """``root/latest`` → ``name``, replaced atomically; a text file without symbolic links."""
    latest, temp = root / LATEST, root / f".{LATEST}.{os.getpid()}"
    temp.unlink(missing_ok=True)
    try:
        os.symlink(name, temp, target_is_directory=True)
    except (OSError, NotImplementedError):  # e.g. Windows without the privilege
        temp.write_text(name + "\n", encoding="utf-8")
    os.replace(temp, latest)


# -- what a run was ----------------------------------------------------------------------------
def run_metadata(command: Sequence[str], options: dict[str, Any]) -> dict[str, Any]:
    """The command line, ``options``, versions (xnn, NumPy, Python) and the machine."""
    import numpy as np

    from xnn import __version__
    from xnn.tools.bench.machine import cpu_name

    return {
        "command": _command_line(command),
        **options,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": {"xnn": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "machine": {"platform": platform.platform(), "cpu": cpu_name(),
                    "logical_cpus": os.cpu_count()},
    }


def write_metadata(metadata: dict[str, Any], directory: str | Path) -> Path:
    """``directory/chapter4.json`` (atomically); a directory that cannot be written fails here."""
    path = Path(directory) / METADATA
    with atomic_write(path, "w", encoding="utf-8") as file:
        json.dump(metadata, file, indent=1)
    return path


def read_metadata(directory: str | Path) -> dict[str, Any] | None:
    """``directory/chapter4.json``, or ``None`` without a readable one."""
    try:
        return json.loads((Path(directory) / METADATA).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def caveat(metadata: dict[str, Any] | None) -> str | None:
    """Why a run is not comparable with the book (``--limit``, ``--epochs``), or ``None``."""
    if not metadata:
        return None
    reasons = []
    if metadata.get("limit") is not None:
        limit = metadata["limit"]
        reasons.append(f"--limit {limit}: trained on the first {limit:,} training images "
                       f"and tested on the first {max(limit // 6, 1):,} test images")
    if metadata.get("epochs") is not None:
        reasons.append(f"--epochs {metadata['epochs']} instead of each experiment's own")
    if not reasons:
        return None
    return ("Not comparable with the book (the differences are not xnn's fixes): "
            + "; ".join(reasons) + ".")


def _header(metadata: dict[str, Any]) -> str:
    versions, machine = metadata.get("versions", {}), metadata.get("machine", {})
    limit = metadata.get("limit")
    lines = [
        f"- command: `{metadata.get('command', '?')}`",
        f"- backend {metadata.get('backend')}, {metadata.get('dtype')}, seed "
        f"{metadata.get('seed')}, {metadata.get('streams')} random streams",
        "- data: " + ("all the training and test images" if limit is None
                      else f"the first {limit:,} training and {max(limit // 6, 1):,} test "
                           f"images (--limit {limit})")
        + (f", from the IDX files in {metadata['data']}" if metadata.get("data")
           else " of MNIST"),
        "- epochs: " + ("each experiment's own" if metadata.get("epochs") is None
                        else f"{metadata['epochs']} (--epochs)"),
        f"- xnn {versions.get('xnn')}, NumPy {versions.get('numpy')}, "
        f"Python {versions.get('python')}",
        f"- machine: {machine.get('platform')}, {machine.get('cpu')}, "
        f"{machine.get('logical_cpus')} logical CPUs",
        f"- started {metadata.get('started')}"
        + (f", resumed {metadata['resumed']}" if metadata.get("resumed") else ""),
    ]
    return "\n".join(lines) + "\n"


def _command_line(command: Sequence[str]) -> str:
    """The command as the user's shell would take it back."""
    if sys.platform == "win32":
        import subprocess

        return subprocess.list2cmdline(list(command))
    import shlex

    return shlex.join(command)


# -- the tables and the plot -------------------------------------------------------------------
COLUMNS = ("experiment", "book accuracy %", "xnn accuracy %", "difference (points)",
           "best val loss", "best epoch", "epochs run", "s/epoch", "backend", "dtype", "streams")


def _rows(results: Sequence[Result], comparable: bool = True) -> list[list[str]]:
    return [[r.name, "" if r.book_accuracy is None else f"{r.book_accuracy:.2f}",
             f"{r.accuracy:.2f}",
             "" if r.difference is None else
             (f"{r.difference:+.2f}" if comparable else "not comparable"),
             "" if r.best_val_loss is None else f"{r.best_val_loss:.4f}",
             str(r.best_epoch or ""), str(r.epochs_run), f"{r.seconds_per_epoch:.2f}",
             r.backend, r.dtype, r.streams] for r in results]


def markdown_table(results: Sequence[Result], note: str | None = None) -> str:
    """The results as a markdown table; with ``note`` (a :func:`caveat`), the differences read
    "not comparable" and the note follows the table."""
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(results, note is None)]
    return "\n".join(lines) + "\n" + (f"\n**{note}**\n" if note else "")


def write_results(results: Sequence[Result], directory: str | Path,
                  notes: list[str] | None = None) -> list[Path]:
    """Write ``chapter4.md``, ``chapter4.csv`` and (with matplotlib) ``chapter4-val-loss.png``.

    The markdown opens with ``chapter4.json``'s header block when the directory has one. A plot
    that cannot be made leaves no older one behind, and says why in ``notes`` when given.
    """
    directory = Path(directory)
    metadata = read_metadata(directory)
    note = caveat(metadata)
    written = [directory / "chapter4.md", directory / "chapter4.csv"]
    with atomic_write(written[0], "w", encoding="utf-8") as file:
        file.write("# Chapter 4 on MNIST\n\n" + (_header(metadata) + "\n" if metadata else "")
                   + markdown_table(results, note))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([list(COLUMNS), *_rows(results, note is None)])
    with atomic_write(written[1], "w", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
    plot, why_not = _plot(results, directory / PLOT)
    if plot is None:
        (directory / PLOT).unlink(missing_ok=True)  # an older run's plot would mislead
        if notes is not None:
            notes.append(f"no plot: {why_not}")
    return written + ([plot] if plot else [])


def _plot(results: Sequence[Result], path: Path) -> tuple[Path | None, str]:
    if not any(result.val_losses for result in results):
        return None, "nothing was evaluated (no validation loss to draw)"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed (pip install -e '.[plot]')"
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
    return path, ""
