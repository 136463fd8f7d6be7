"""How much faster `xnn sweep` gets through many short runs than one process, and what it costs.

    python benchmarks/sweep_speed.py [--experiment dropout] [--runs 8] [--workers 2]
                                     [--epochs 10] [--limit 20000] [--repeats 2] [--json F]

The same runs (one experiment, seeds 1…runs, MNIST from the cache, first --limit training
images) two ways, alternating --repeats times, best of each kept:

- one after another in this process, as ``xnn chapter4 NAME --seed S`` would run them: the data
  loaded once (timed in), each run through ``run_experiments`` with a results directory (so it
  writes a checkpoint every epoch, as the sweep's runs do), BLAS left at its default threads;
- ``xnn.sweep.run(..., workers=K)``: a fresh LocalCluster of K processes (one thread each,
  BLAS at one thread) started, every run, the cluster shut down: the whole call timed.

Reports runs per minute both ways and their ratio, and the sweep's overhead: the cluster's
start and stop (timed alone, beforehand), each worker's data load (from the records), and
what is left of the sweep's wall time beyond the busiest worker's training (``overhead``),
per run. ``same_accuracies`` says whether both ways gave the same accuracies: not guaranteed,
as the one process's BLAS may use more threads than the workers' one. Needs MNIST in the cache
(``xnn data mnist``) and ``dask[distributed]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xnn.tools.chapter import run_experiments
from xnn.tools.experiments import load_chapter_data
from xnn.tools.sweep_cluster import BLAS_ENV


def sequential(name: str, seeds: list[int], epochs: int, limit: int) -> tuple[float, list]:
    """The runs one after another in this process; (wall seconds, accuracies)."""
    started = time.perf_counter()
    data = load_chapter_data(None, "float32", limit)
    accuracies = []
    with tempfile.TemporaryDirectory() as scratch:
        for seed in seeds:
            result, = run_experiments([name], data, "numpy", "float32", epochs, seed,
                                      progress=False, log=lambda _: None, streams="book",
                                      results_dir=Path(scratch) / f"seed{seed}")
            accuracies.append(result.accuracy)
    return time.perf_counter() - started, accuracies


def swept(name: str, seeds: list[int], epochs: int, limit: int, workers: int) -> tuple[float,
                                                                                      list]:
    """The same runs with xnn.sweep.run on a fresh LocalCluster; (wall seconds, records)."""
    from xnn.sweep import run

    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        records, _ = run([name], seeds, out=out, workers=workers, epochs=epochs, limit=limit,
                         progress=False, log=lambda _: None)
        return time.perf_counter() - started, records


def cluster_start_stop(workers: int) -> tuple[float, float]:
    """Seconds to start a LocalCluster of ``workers`` processes plus a Client, and to stop it."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, env=BLAS_ENV,
                           dashboard_address=":0")
    client = Client(cluster)
    client.wait_for_workers(workers)
    ready = time.perf_counter()
    client.close()
    cluster.close()
    return ready - started, time.perf_counter() - ready


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="dropout")
    parser.add_argument("--runs", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--limit", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    seeds = list(range(1, args.runs + 1))
    load_before = os.getloadavg()[0]  # other work on the machine skews both sides
    start, stop = cluster_start_stop(args.workers)
    best_sequential = best_sweep = float("inf")
    records: list = []
    accuracies: list = []
    for repeat in range(args.repeats):
        wall, accuracies = sequential(args.experiment, seeds, args.epochs, args.limit)
        best_sequential = min(best_sequential, wall)
        wall, these = swept(args.experiment, seeds, args.epochs, args.limit, args.workers)
        if wall < best_sweep:
            best_sweep, records = wall, these
        print(f"round {repeat + 1}: one process {best_sequential:.1f} s, sweep {wall:.1f} s",
              file=sys.stderr)
    busiest = max(sum(r["seconds"] for r in records if r["worker"] == worker)
                  for worker in {r["worker"] for r in records})
    loads = [r["load_seconds"] for r in records if r["load_seconds"] > 0.01]
    report = {
        "experiment": args.experiment, "runs": args.runs, "workers": args.workers,
        "epochs": args.epochs, "limit": args.limit, "cores": os.cpu_count(),
        "sequential_s": round(best_sequential, 2), "sweep_s": round(best_sweep, 2),
        "runs_per_minute_sequential": round(60 * args.runs / best_sequential, 1),
        "runs_per_minute_sweep": round(60 * args.runs / best_sweep, 1),
        "speedup": round(best_sequential / best_sweep, 2),
        "median_run_s_on_a_worker": round(statistics.median(r["seconds"] for r in records), 2),
        "cluster_start_s": round(start, 2), "cluster_stop_s": round(stop, 2),
        "data_load_s_per_worker": [round(x, 2) for x in loads],
        "overhead_s": round(best_sweep - busiest, 2),
        "overhead_s_per_run": round((best_sweep - busiest) / args.runs, 2),
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "same_accuracies": [r["accuracy"] for r in sorted(records, key=lambda r: r["seed"])]
        == accuracies,
    }
    for key, value in report.items():
        print(f"{key:28} {value}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
