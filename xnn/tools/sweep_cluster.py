"""The cluster a sweep runs on: a running one (``scheduler=ADDRESS``) or one started here.

Started here: a ``distributed.LocalCluster`` of worker processes, one thread each, with
OMP/OpenBLAS/MKL limited to one thread in every worker process (``env=`` and dask's
``distributed.nanny.pre-spawn-environ``); with ``--backend cupy`` and dask-cuda installed, a
``dask_cuda.LocalCUDACluster`` (one worker per visible GPU) instead.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["BLAS_ENV", "SchedulerUnreachable", "connect", "dashboard", "progress_bar"]

BLAS_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


class SchedulerUnreachable(OSError):
    """The scheduler could not be reached (or had no workers) within the timeout."""


@contextlib.contextmanager
def connect(backend_name: str, runs: int, workers: int | None, scheduler: str | None,
            timeout: float) -> Iterator[Any]:
    """A Client of the cluster at ``scheduler``, or of a LocalCluster started (and stopped) here."""
    import dask
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            client = Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise SchedulerUnreachable(f"cannot reach the scheduler at {scheduler} within "
                                       f"{timeout:g} s ({exc})") from None
        with client:
            try:
                client.wait_for_workers(1, timeout=timeout)
            except (OSError, TimeoutError):
                raise SchedulerUnreachable(f"the scheduler at {scheduler} has no workers "
                                           f"(waited {timeout:g} s)") from None
            yield client
        return
    from xnn.backends import get_backend

    backend = get_backend(backend_name)  # unusable: fails before any cluster
    environ = {**dask.config.get("distributed.nanny.pre-spawn-environ", {}), **BLAS_ENV}
    settings = {"threads_per_worker": 1, "env": BLAS_ENV, "dashboard_address": ":0",
                "silence_logs": logging.ERROR}  # ":0": any free port (8787 may be taken)
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        gpu = backend.library == "cupy" or backend.name.startswith("torch:cuda")
        if gpu and workers is None and _has("dask_cuda"):
            from dask_cuda import LocalCUDACluster  # one worker per visible GPU

            cluster = LocalCUDACluster(**settings)
        else:  # a GPU without dask-cuda: one worker (one GPU) unless told otherwise
            n = workers or (1 if gpu else _cores())
            cluster = LocalCluster(n_workers=min(n, runs), processes=True,
                                   **settings)
        with cluster, Client(cluster) as client:
            yield client


def _cores() -> int:
    """The cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


@contextlib.contextmanager
def progress_bar(total: int, enabled: bool) -> Iterator[tuple[Any, Callable[[str], None] | None]]:
    """One tqdm bar of finished runs (when tqdm is installed and ``enabled``)."""
    try:
        from tqdm.auto import tqdm
    except ImportError:
        enabled = False
    if not enabled:
        yield None, None
        return
    with tqdm(total=total, unit="run", desc="runs", file=sys.stderr) as bar:
        yield bar, tqdm.write


def dashboard(client: Any) -> str | None:
    """The cluster's dashboard address, when bokeh (which draws it) is installed."""
    return client.dashboard_link if _has("bokeh") else None
