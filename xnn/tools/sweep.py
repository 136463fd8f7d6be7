"""``xnn sweep NAMES... --seeds N --out DIR``: every experiment with every seed, on Dask.

Each run (experiment × seed) is one task on a ``dask.distributed`` cluster: a LocalCluster of
``--workers`` processes started here (default: one per core), or the running cluster at
``--scheduler tcp://HOST:8786``. Each finished run is one line of ``DIR/runs.jsonl`` as it
arrives; at the end ``DIR/summary.md``, ``summary.csv`` (and with matplotlib ``summary.png``)
give per experiment the mean ± standard deviation and the range of the accuracy over the seeds,
beside the book's. Running the same command again skips the runs in ``runs.jsonl`` and continues
an interrupted run from its checkpoint (``DIR/checkpoints/NAME-seedS/``). See docs/scale-out.md.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from xnn.tools.arguments import BACKEND_HELP, Parser, backend_name, integer, number
from xnn.tools.experiments import BOOK_NAMES, EXPERIMENTS
from xnn.tools.sweep_run import RunsFailed, SchedulerUnreachable, execute, parse_seeds, prepare
from xnn.tools.sweep_run import run as run

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE",
           "RunsFailed", "SchedulerUnreachable", "main", "parse_seeds", "run"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = """exit status:
    0  every run finished (now or in an earlier sweep into the same --out)
    1  some runs failed (the others are in runs.jsonl and the summary)
    2  bad arguments: unknown experiments, bad --seeds, an unwritable --out, ...
    3  the scheduler cannot be reached (or has no workers) within --timeout, or the backend
       cannot run
  130  interrupted (Ctrl-C): the same command again continues"""
PROG = "xnn sweep"


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``xnn sweep``; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    names = list(BOOK_NAMES) if args.all else args.names
    try:
        plan = prepare(names, args.seeds, out=args.out, workers=args.workers,
                       scheduler=args.scheduler, backend=args.backend, dtype=args.dtype,
                       streams=args.streams, epochs=args.epochs, limit=args.limit,
                       data=args.data, blas_threads=args.blas_threads,
                       checkpoints=not args.no_checkpoints)
    except ValueError as exc:
        return _fail(EXIT_USAGE, str(exc).splitlines()[0])
    import importlib.util

    from xnn.backends import BackendUnavailableError
    from xnn.tools.sweep_report import RUNS, summary_markdown

    if importlib.util.find_spec("distributed") is None:
        return _fail(EXIT_UNAVAILABLE, "needs Dask's distributed engine: pip install "
                     "\"dask[distributed]\" (or pip install -e \".[distributed]\")")

    try:
        _, summary = execute(plan, workers=args.workers, scheduler=args.scheduler,
                             retries=args.retries, timeout=args.timeout,
                             progress=not args.no_progress)
    except (SchedulerUnreachable, BackendUnavailableError) as exc:
        return _fail(EXIT_UNAVAILABLE, str(exc).splitlines()[0])
    except RunsFailed as exc:
        if exc.records:
            print("\n" + summary_markdown(exc.summary, plan.options))
        by_message: dict[str, list[str]] = {}
        for spec, outcome in exc.failures:
            by_message.setdefault(outcome["error"].splitlines()[0], []).append(
                f"{spec['experiment']} seed {spec['seed']}")
        for message, runs in by_message.items():
            print(f"{PROG}: {len(runs)} run(s) failed ({', '.join(runs[:6])}"
                  f"{', …' if len(runs) > 6 else ''}): {message}", file=sys.stderr)
        unusable = all(outcome.get("kind") == "unavailable" for _, outcome in exc.failures)
        return EXIT_UNAVAILABLE if unusable else EXIT_FAILED
    except KeyboardInterrupt:
        return _fail(EXIT_INTERRUPTED, f"interrupted; the finished runs are in "
                     f"{plan.out / RUNS}: the same command again continues")
    except BrokenPipeError:  # `xnn sweep ... | head`: no second error at exit
        with contextlib.suppress(OSError, ValueError, AttributeError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILED
    print("\n" + summary_markdown(summary, plan.options))
    return EXIT_OK


def _fail(status: int, message: str) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog=PROG, description=__doc__, epilog=EXIT_CODES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"experiments to sweep: {', '.join(EXPERIMENTS)}")
    parser.add_argument("--all", action="store_true", help="every experiment of the chapter's "
                        "table")
    parser.add_argument("--seeds", required=True, metavar="N|S1,S2,…",
                        help="N (seeds 1…N), or a list S1,S2,… (ranges A-B allowed)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="the sweep's directory: runs.jsonl, summary.md/.csv/.png, "
                             "checkpoints/ (the same --out again resumes)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--workers", type=integer(1), default=None, metavar="K",
                       help="start a local cluster of K worker processes, one thread each "
                            "(default: one per core; with --backend cupy: one per GPU with "
                            "dask-cuda, else 1)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="use the running Dask cluster at ADDRESS (tcp://HOST:8786)")
    parser.add_argument("--epochs", type=integer(1), default=None, metavar="E",
                        help="override every experiment's epochs (quick runs; not comparable "
                             "with the book)")
    parser.add_argument("--backend", type=backend_name, default=None, metavar="BACKEND",
                        help=f"array backend on the workers: {BACKEND_HELP} (default: "
                        "$XNN_BACKEND, else numpy; cupy, torch:cuda: each worker's GPU)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="floating-point type (default: %(default)s)")
    parser.add_argument("--streams", choices=("book", "independent"), default="book",
                        help="random draws: the book's (default, as `xnn chapter4`) or xnn's "
                             "independent streams")
    parser.add_argument("--limit", type=integer(1), default=None, metavar="N",
                        help="train on the first N images only (smoke runs)")
    parser.add_argument("--data", default=None, metavar="DIR",
                        help="directory of the four MNIST IDX files, the same path on every "
                             "worker (default: each worker's cache, else a download)")
    parser.add_argument("--blas-threads", type=integer(1), default=1, metavar="T",
                        help="BLAS threads per run (default: %(default)s; with threadpoolctl)")
    parser.add_argument("--retries", type=integer(0), default=2, metavar="R",
                        help="retries of a run that raised on its worker (default: "
                             "%(default)s; a run whose worker died is rescheduled by Dask)")
    parser.add_argument("--timeout", type=number(0.1), default=10.0, metavar="SECONDS",
                        help="seconds to reach --scheduler and find a worker (default: "
                             "%(default)s)")
    parser.add_argument("--no-checkpoints", action="store_true",
                        help="no per-run checkpoints under DIR/checkpoints/ (workers without "
                             "a shared filesystem)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    return parser
