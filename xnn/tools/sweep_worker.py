"""What a sweep's worker process does: load the data once, run one experiment with one seed.

:func:`run_one` is the task `xnn sweep` submits to Dask, one per (experiment, seed). It runs in a
worker process, on the worker's backend (its GPU with ``cupy``), through
:func:`xnn.tools.chapter.run_experiments` exactly as ``xnn chapter4 NAME --seed S`` would, with
the run's checkpoint in ``OUT/checkpoints/NAME-seedS/``: a run whose worker died continues there
from its last finished epoch. It returns ``{"record": {...}}`` (one line of ``runs.jsonl``) or,
for failures that would fail again on any worker (the data cannot be loaded, the backend is
unusable, the loss diverged), ``{"error": message, "kind": ...}``; anything else is raised,
so that Dask retries it.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from xnn.tools.experiments import EXPERIMENTS, load_chapter_data

__all__ = ["KEY_FIELDS", "chapter_data", "checkpoint_directory", "run_one"]

# what makes two runs the same run: a record with these values is not run again
KEY_FIELDS = ("experiment", "seed", "backend", "dtype", "streams", "epochs", "limit", "data")

_DATA: dict[tuple[str | None, str, int | None], tuple[Any, ...]] = {}  # per worker process


def chapter_data(path: str | None, dtype: str, limit: int | None) -> tuple[Any, ...]:
    """:func:`load_chapter_data`, loaded once per process for each (path, dtype, limit)."""
    key = (path, dtype, limit)
    if key not in _DATA:
        _DATA[key] = load_chapter_data(path, dtype, limit)
    return _DATA[key]


def checkpoint_directory(out: str | Path, name: str, seed: int) -> Path:
    """Where run (``name``, ``seed``) of the sweep in ``out`` keeps its checkpoint."""
    return Path(out) / "checkpoints" / f"{name}-seed{seed}"


def run_one(spec: dict[str, Any]) -> dict[str, Any]:
    """Run ``spec`` (the :data:`KEY_FIELDS`, plus ``out``, ``checkpoints``, ``blas_threads``)."""
    from xnn.backends import BackendUnavailableError
    from xnn.data import MnistError
    from xnn.tools.chapter import run_experiments

    started = time.perf_counter()
    try:
        data = chapter_data(spec["data"], spec["dtype"], spec["limit"])
    except (MnistError, ValueError, OSError) as exc:
        return {"error": f"cannot load the data: {exc}", "kind": "data", "worker": _worker()}
    loaded = time.perf_counter()
    name, seed = spec["experiment"], spec["seed"]
    directory = checkpoint_directory(spec["out"], name, seed) if spec.get("checkpoints") \
        else None
    resumed = directory is not None and ((directory / "checkpoints" / f"{name}.npz").exists()
                                         or (directory / "runs" / f"{name}.json").exists())
    try:
        with _blas_threads(spec.get("blas_threads")):
            result, = run_experiments([name], data, spec["backend"], spec["dtype"],
                                      spec["epochs"], seed, progress=False, log=_quiet,
                                      streams=spec["streams"], results_dir=directory,
                                      resume=directory is not None)
    except BackendUnavailableError as exc:
        return {"error": str(exc), "kind": "unavailable", "worker": _worker()}
    except FloatingPointError as exc:  # diverged: it would on any worker
        return {"error": str(exc), "kind": "failed", "worker": _worker()}
    finished = time.perf_counter()
    record = {key: spec[key] for key in KEY_FIELDS}
    record.update(
        epochs_run=result.epochs_run, best_epoch=result.best_epoch,
        stopped_early=result.stopped_early, accuracy=result.accuracy,
        best_val_loss=result.best_val_loss, book_accuracy=EXPERIMENTS[name].book_accuracy,
        seconds=round(finished - loaded, 3), load_seconds=round(loaded - started, 3),
        resumed=resumed, worker=_worker(), host=platform.node(), pid=os.getpid(),
        ran_on=result.backend, cuda_visible_devices=os.environ.get("CUDA_VISIBLE_DEVICES"),
        blas_threads=spec.get("blas_threads"), versions=_versions(),
        finished=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    return {"record": record}


def _quiet(message: str) -> None:
    """The book's lines stay on the worker: the client prints one line per run."""


def _worker() -> str:
    """This worker's address, or ``"local"`` outside a Dask worker."""
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return "local"


def _blas_threads(threads: int | None) -> AbstractContextManager[Any]:
    """BLAS limited to ``threads`` threads for the run (threadpoolctl, when installed)."""
    if threads is None:
        return nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # the workers' OPENBLAS_NUM_THREADS/OMP_NUM_THREADS still hold
        return nullcontext()
    return threadpool_limits(limits=threads)


def _versions() -> dict[str, str]:
    import numpy as np

    from xnn import __version__

    versions = {"xnn": __version__, "numpy": np.__version__,
                "python": platform.python_version()}
    for module in ("distributed", "cupy"):
        if module in sys.modules:
            versions[module] = getattr(sys.modules[module], "__version__", "?")
    return versions
