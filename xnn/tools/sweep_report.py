"""A sweep's files: ``runs.jsonl`` (one line per finished run) and the summary over seeds.

``runs.jsonl`` is only ever appended to, by the client, one whole line per ``write`` on a file
opened with ``O_APPEND``, flushed and fsynced: a crash leaves at most one torn last line, which
:func:`read_records` skips (and the next append starts on a fresh line). The summary
(``summary.md``, ``summary.csv``, with matplotlib ``summary.png``) gives, per experiment, the
number of seeds, the mean ± standard deviation and the range of the accuracy, and whether the
book's value lies in that range.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from xnn.core.files import atomic_write
from xnn.tools.experiments import EXPERIMENTS
from xnn.tools.results import caveat

__all__ = ["RUNS", "SUMMARY_COLUMNS", "append_record", "read_records", "summarize",
           "summary_markdown", "write_summary"]

RUNS = "runs.jsonl"
SUMMARY_COLUMNS = ("experiment", "n", "mean accuracy %", "std", "min %", "max %",
                   "reference", "reference accuracy %", "reference in range",
                   "mean epochs run", "mean s/run")


def append_record(path: str | Path, record: dict[str, Any]) -> None:
    """Append ``record`` as one JSON line: a single ``write`` with ``O_APPEND``, fsynced."""
    line = json.dumps(record, ensure_ascii=False) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and _last_byte(path, size) != b"\n":  # a torn line: end it first
            line = "\n" + line
        data = line.encode("utf-8")
        written = os.write(fd, data)
        if written != len(data):
            raise OSError(f"{path}: wrote {written} of {len(data)} bytes")
        os.fsync(fd)
    finally:
        os.close(fd)


def _last_byte(path: str | Path, size: int) -> bytes:
    with open(path, "rb") as file:
        file.seek(size - 1)
        return file.read(1)


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """The records in ``runs.jsonl`` (none if it does not exist); torn lines are skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "experiment" in record and "accuracy" in record:
            records.append(record)
    return records


def summarize(records: Iterable[dict[str, Any]],
              names: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One row per experiment (in ``names``' order): n, mean, std, min, max, the reference."""
    by_name: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_name.setdefault(record["experiment"], []).append(record)
    rows = []
    for name in names if names is not None else list(by_name):
        runs = by_name.get(name, [])
        if not runs:
            continue
        accuracies = [r["accuracy"] for r in runs]
        experiment = EXPERIMENTS.get(name)
        book = experiment.book_accuracy if experiment else runs[0].get("book_accuracy")
        low, high = min(accuracies), max(accuracies)
        rows.append({
            "experiment": name, "n": len(runs), "seeds": sorted(r["seed"] for r in runs),
            "mean": statistics.fmean(accuracies),
            "std": statistics.stdev(accuracies) if len(runs) > 1 else None,
            "min": low, "max": high,
            "reference": experiment.reference if experiment else "book",
            "book_accuracy": book,
            "in_range": None if book is None else bool(low <= book <= high),
            "mean_epochs_run": statistics.fmean(r["epochs_run"] for r in runs),
            "mean_seconds": statistics.fmean(r["seconds"] for r in runs),
        })
    return rows


def _cells(row: dict[str, Any]) -> list[str]:
    def number(value: float | None) -> str:
        return "" if value is None else f"{value:.2f}"

    return [row["experiment"], str(row["n"]), number(row["mean"]), number(row["std"]),
            number(row["min"]), number(row["max"]), row["reference"],
            number(row["book_accuracy"]),
            {None: "", True: "yes", False: "no"}[row["in_range"]],
            f"{row['mean_epochs_run']:.1f}", f"{row['mean_seconds']:.1f}"]


def summary_markdown(rows: Sequence[dict[str, Any]], options: dict[str, Any]) -> str:
    """The summary as markdown: a line of options, the table, and a caveat when one applies."""
    described = [f"seeds {_seeds(options['seeds'])}"] if options.get("seeds") else []
    described += [f"{k} {options[k]}" for k in ("backend", "dtype", "streams", "epochs",
                                                 "limit", "data") if options.get(k) is not None]
    lines = [f"# Sweep over seeds: {', '.join(r['experiment'] for r in rows) or 'no runs'}", "",
             "- " + ", ".join(described),
             "- accuracy: mean ± standard deviation (over n seeds) and min–max, in percent; "
             "reference in range: the book's value (PyTorch's beyond the book) lies in "
             "min–max", "",
             "| experiment | n | accuracy % (mean ± std) | min–max % | reference % | in range "
             "| epochs run | s/run |", "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        cells = _cells(row)
        spread = f"{cells[2]} ± {cells[3]}" if row["std"] is not None else f"{cells[2]} ± —"
        reference = f"{row['reference']} {cells[7]}" if cells[7] else "—"
        lines.append(f"| {cells[0]} | {cells[1]} | {spread} | {cells[4]}–{cells[5]} | "
                     f"{reference} | {cells[8] or '—'} | {cells[9]} | {cells[10]} |")
    note = caveat({"limit": options.get("limit"), "epochs": options.get("epochs")})
    return "\n".join(lines) + "\n" + (f"\n**{note}**\n" if note else "")


def _seeds(seeds: Sequence[int]) -> str:
    """``1–5`` for a run of consecutive seeds, else ``3, 9, 2``."""
    if len(seeds) > 2 and list(seeds) == list(range(seeds[0], seeds[0] + len(seeds))):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def write_summary(rows: Sequence[dict[str, Any]], directory: str | Path,
                  options: dict[str, Any], notes: list[str] | None = None) -> list[Path]:
    """``summary.md``, ``summary.csv`` and, with matplotlib, ``summary.png`` (atomically)."""
    directory = Path(directory)
    written = [directory / "summary.md", directory / "summary.csv"]
    with atomic_write(written[0], "w", encoding="utf-8") as file:
        file.write(summary_markdown(rows, options))
    buffer = io.StringIO()
    csv.writer(buffer).writerows([list(SUMMARY_COLUMNS), *(_cells(row) for row in rows)])
    with atomic_write(written[1], "w", encoding="utf-8", newline="") as file:
        file.write(buffer.getvalue())
    plot, why_not = _plot(rows, directory / "summary.png")
    if plot is None:
        (directory / "summary.png").unlink(missing_ok=True)  # an older sweep's would mislead
        if notes is not None:
            notes.append(f"no plot: {why_not}")
    return written + ([plot] if plot else [])


def _plot(rows: Sequence[dict[str, Any]], path: Path) -> tuple[Path | None, str]:
    if not rows:
        return None, "no finished runs"
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None, "matplotlib is not installed (pip install -e '.[plot]')"
    figure, axes = plt.subplots(figsize=(8, 1.2 + 0.45 * len(rows)))
    labelled: set[str] = set()

    def label(text: str) -> str | None:  # each legend entry once
        return None if text in labelled or labelled.add(text) else text

    for index, row in enumerate(rows):
        axes.plot([row["min"], row["max"]], [index, index], color="C0", alpha=0.3, lw=6,
                  solid_capstyle="butt", label=label("min–max"))
        axes.errorbar(row["mean"], index, xerr=row["std"] or 0.0, fmt="o", color="C0",
                      capsize=4, label=label("mean ± std"))
        if row["book_accuracy"] is not None:
            axes.plot(row["book_accuracy"], index, marker="x", color="C3", ms=9,
                      linestyle="none", label=label("reference (book or PyTorch)"))
    axes.set_yticks(range(len(rows)), [f"{r['experiment']} (n={r['n']})" for r in rows])
    axes.invert_yaxis()
    axes.set(xlabel="test accuracy (%)", title="xnn sweep: accuracy over seeds")
    axes.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.5 / len(rows)
                                                                        - 0.12), ncol=3)
    with atomic_write(path) as file:
        figure.savefig(file, format="png", dpi=100, bbox_inches="tight")
    plt.close(figure)
    return path, ""
