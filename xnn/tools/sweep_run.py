"""Many runs, experiments × seeds, on a Dask cluster (``dask.distributed``); the results as they
arrive in ``OUT/runs.jsonl``, then the summary over seeds. ``xnn sweep`` and :func:`run`.

Without a scheduler, :func:`run` starts a ``distributed.LocalCluster`` of worker processes (one
thread each, BLAS limited to one thread) and shuts it down at the end; with
``scheduler="tcp://HOST:8786"`` it submits to a cluster that is already running (``dask
scheduler`` + ``dask worker``, dask-jobqueue on SLURM, dask-cuda's workers on GPUs). Each run is
one task, :func:`xnn.tools.sweep_worker.run_one`; only this process writes ``runs.jsonl``.
Everything is checked before any cluster starts; runs already in ``runs.jsonl`` are skipped.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xnn.backends import parse_backend_name
from xnn.tools.experiments import EXPERIMENTS
from xnn.tools.results import check_writable
from xnn.tools.sweep_cluster import SchedulerUnreachable, connect, dashboard, progress_bar
from xnn.tools.sweep_report import RUNS, append_record, read_records, summarize, write_summary
from xnn.tools.sweep_worker import KEY_FIELDS, checkpoint_directory, run_one

__all__ = ["RunsFailed", "SchedulerUnreachable", "SweepPlan", "execute",
           "parse_seeds", "prepare", "run"]

class RunsFailed(RuntimeError):
    """Some runs failed; the others are in ``runs.jsonl`` and in the summary."""

    def __init__(self, records: list[dict[str, Any]], summary: list[dict[str, Any]],
                 failures: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
        super().__init__(f"{len(failures)} run(s) failed: " + "; ".join(sorted(
            {outcome["error"] for _, outcome in failures})))
        self.records, self.summary, self.failures = records, summary, failures


@dataclass
class SweepPlan:
    """A checked sweep: every run it asks for, those still to do, those done earlier."""

    names: list[str]
    seeds: list[int]
    out: Path
    options: dict[str, Any]
    todo: list[dict[str, Any]] = field(default_factory=list)
    done: list[dict[str, Any]] = field(default_factory=list)


def parse_seeds(seeds: int | str | Iterable[int]) -> list[int]:
    """``5`` or ``"5"``: seeds 1…5; ``"1,4,9"`` or ``"3-7"`` or a list: those seeds."""
    if isinstance(seeds, str):
        text = seeds.strip()
        if text.isdigit():
            seeds = int(text)
        else:
            items: list[int] = []
            for part in filter(None, (p.strip() for p in text.split(","))):
                low, dash, high = part.partition("-")
                if not (low.isdigit() and (not dash or high.isdigit())):
                    raise ValueError(f"--seeds {seeds}: {part!r} is not a seed or a range "
                                     "A-B of seeds (expected N, or S1,S2,…)")
                items += range(int(low), int(high or low) + 1)
            seeds = items
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"--seeds {seeds}: the number of seeds must be at least 1")
        return list(range(1, seeds + 1))
    chosen = list(seeds)  # type: ignore[arg-type]
    if not chosen:
        raise ValueError("--seeds: no seed given")
    for seed in chosen:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
            raise ValueError(f"--seeds: {seed!r} is not a seed (an integer 0 to 2**32 - 1)")
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"--seeds: a seed is given twice in {chosen}")
    return chosen


def prepare(names: Sequence[str], seeds: int | str | Iterable[int], *, out: str | Path,
            workers: int | None = None, scheduler: str | None = None,
            backend: str | None = None, dtype: str = "float32", streams: str = "book",
            epochs: int | None = None, limit: int | None = None, data: str | Path | None = None,
            blas_threads: int | None = 1, checkpoints: bool = True) -> SweepPlan:
    """Check everything (ValueError naming the argument) and read what is done already."""
    names = list(names)
    unknown = [n for n in names if n not in EXPERIMENTS]
    if not names or unknown:
        raise ValueError((f"unknown experiment(s) {', '.join(unknown)}" if unknown else
                          "no experiment named") + f"; known: {', '.join(EXPERIMENTS)}")
    if len(set(names)) != len(names):
        raise ValueError(f"an experiment is named twice in {names}")
    seed_list = parse_seeds(seeds)
    if workers is not None and scheduler is not None:
        raise ValueError("--workers starts a cluster here; --scheduler uses a running one: "
                         "give one of them")
    for value, what in ((workers, "--workers"), (epochs, "--epochs"), (limit, "--limit"),
                        (blas_threads, "--blas-threads")):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 1):
            raise ValueError(f"{what} must be an integer >= 1, got {value!r}")
    backend = backend or os.environ.get("XNN_BACKEND") or "numpy"
    parse_backend_name(backend)  # ValueError: says which names there are
    for value, what, choices in ((dtype, "--dtype", ("float32", "float64")),
                                 (streams, "--streams", ("book", "independent"))):
        if value not in choices:
            raise ValueError(f"{what} {value!r}: expected one of {', '.join(choices)}")
    if scheduler is not None:
        from distributed.comm.addressing import parse_address, parse_host_port

        protocol, location = parse_address(scheduler)
        if protocol in ("tcp", "tls"):
            try:
                parse_host_port(location)
            except ValueError as exc:
                raise ValueError(f"--scheduler {scheduler}: {exc} (expected "
                                 "tcp://HOST:PORT)") from None
    if data is not None:
        if not Path(data).expanduser().is_dir():
            raise ValueError(f"--data {data}: not a directory (expected the one holding the "
                             "four MNIST IDX files)")
        data = str(Path(data).expanduser().resolve())
    out = Path(out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out {out}: not a directory")
    try:
        check_writable(out)
        if (out / RUNS).exists() and not os.access(out / RUNS, os.W_OK):
            raise PermissionError(f"{out / RUNS} is read-only")
    except OSError as exc:
        raise ValueError(f"--out {out}: cannot write there ({exc})") from None
    options = {"seeds": seed_list, "backend": backend, "dtype": dtype, "streams": streams,
               "epochs": epochs, "limit": limit, "data": data}
    plan = SweepPlan(names, seed_list, out, options)
    finished = {_key(r): r for r in read_records(out / RUNS)}
    for seed in seed_list:
        for name in names:
            spec = {"experiment": name, "seed": seed, "backend": backend, "dtype": dtype,
                    "streams": streams, "epochs": epochs or EXPERIMENTS[name].epochs,
                    "limit": limit, "data": data, "out": str(out), "checkpoints": checkpoints,
                    "blas_threads": blas_threads}
            record = finished.get(_key(spec))
            (plan.todo if record is None else plan.done).append(record or spec)
    return plan


def _key(record: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(record.get(k) for k in KEY_FIELDS)


def execute(plan: SweepPlan, *, workers: int | None = None, scheduler: str | None = None,
            retries: int = 2, timeout: float = 10.0, progress: bool = True,
            log: Callable[[str], None] = print) -> tuple[list[dict[str, Any]],
                                                        list[dict[str, Any]]]:
    """Run ``plan.todo`` on the cluster, appending each record as it arrives; then the summary.

    Returns (records, summary rows) of every run the plan names; raises :class:`RunsFailed`
    (after writing the summary of the rest) when some failed, :class:`SchedulerUnreachable`.
    """
    records, failures = list(plan.done), []
    for record in plan.done:  # finished earlier: their checkpoints are spent
        shutil.rmtree(checkpoint_directory(plan.out, record["experiment"], record["seed"]),
                      ignore_errors=True)
    total = len(plan.todo) + len(plan.done)
    log(f"{total} run(s): {len(plan.done)} in {plan.out / RUNS} already, {len(plan.todo)} to "
        "run" + ("" if not plan.todo else " on " + (scheduler or "a local cluster")))
    if plan.todo:
        with connect(plan.options["backend"], len(plan.todo), workers, scheduler,
                     timeout) as client, progress_bar(len(plan.todo), progress) as (bar, say):
            say = say if say is not None and log is print else log
            if (link := dashboard(client)) is not None:
                say(f"dashboard: {link}")
            if scheduler is None and plan.options["data"] is None:
                _fetch_mnist_once(say)  # here, rather than by every worker at once
            futures = {client.submit(run_one, spec, key=_task_key(spec), pure=False,
                                     retries=retries, priority=_cost(spec)): spec
                       for spec in plan.todo}
            from distributed import as_completed

            for future in as_completed(futures):
                spec = futures[future]
                outcome = _outcome(future)
                if "record" in outcome:
                    record = outcome["record"]
                    append_record(plan.out / RUNS, record)
                    records.append(record)
                    if spec["checkpoints"]:
                        shutil.rmtree(checkpoint_directory(plan.out, spec["experiment"],
                                                           spec["seed"]), ignore_errors=True)
                    say(f"{spec['experiment']} seed {spec['seed']}: {record['accuracy']:.2f}% "
                        f"after {record['epochs_run']} epochs, {record['seconds']:.1f} s on "
                        f"{record['worker']}" + (" (resumed)" if record["resumed"] else ""))
                else:
                    failures.append((spec, outcome))
                    say(f"{spec['experiment']} seed {spec['seed']}: FAILED"
                        + (f" on {outcome['worker']}" if outcome.get("worker") else "")
                        + f": {outcome['error']}")
                if bar is not None:
                    bar.update(1)
    with contextlib.suppress(OSError):
        (plan.out / "checkpoints").rmdir()  # when empty: every run finished
    order = {(n, s): i for i, (s, n) in enumerate(itertools.product(plan.seeds, plan.names))}
    records.sort(key=lambda r: order[(r["experiment"], r["seed"])])
    failures.sort(key=lambda failure: order[(failure[0]["experiment"], failure[0]["seed"])])
    summary = summarize(records, plan.names)
    notes: list[str] = []
    written = write_summary(summary, plan.out, plan.options, notes)
    log(f"wrote {', '.join(str(p) for p in written)}" + "".join(f"; {n}" for n in notes))
    if failures:
        raise RunsFailed(records, summary, failures)
    return records, summary


def run(names: Sequence[str], seeds: int | str | Iterable[int], *, out: str | Path,
        workers: int | None = None, scheduler: str | None = None, retries: int = 2,
        timeout: float = 10.0, progress: bool = True, log: Callable[[str], None] = print,
        **run_options: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run every experiment of ``names`` with every seed of ``seeds`` on a Dask cluster.

    ``run_options``: ``backend``, ``dtype``, ``streams`` (default ``"book"``), ``epochs``,
    ``limit``, ``data`` (a directory of IDX files), ``blas_threads`` (1), ``checkpoints``
    (True). Returns (records, summary rows); see :func:`prepare` and :func:`execute`.
    """
    plan = prepare(names, seeds, out=out, workers=workers, scheduler=scheduler, **run_options)
    return execute(plan, workers=workers, scheduler=scheduler, retries=retries,
                   timeout=timeout, progress=progress, log=log)


def _fetch_mnist_once(log: Callable[[str], None]) -> None:
    """MNIST into this machine's cache, if it is not there (a failure: each run says why)."""
    from xnn.data import MnistError, fetch_mnist
    from xnn.data.mnist import cache_path

    if not cache_path().exists():
        log(f"fetching MNIST into {cache_path()}")
        with contextlib.suppress(MnistError, OSError):
            fetch_mnist()


def _outcome(future: Any) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as exc:  # raised on the worker after the retries, or KilledWorker
        return {"error": f"{type(exc).__name__}: {exc}", "kind": "failed"}


def _task_key(spec: dict[str, Any]) -> str:
    return f"xnn-sweep-{spec['experiment']}-seed{spec['seed']}-{uuid.uuid4().hex[:8]}"


def _cost(spec: dict[str, Any]) -> int:
    """Longer runs first (a higher priority), so that the last runs to finish are short ones."""
    return spec["epochs"] * len(EXPERIMENTS[spec["experiment"]].layers())
