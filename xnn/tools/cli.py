"""xnn: the training framework of Deep Learning from Scratch, chapter 4, on NumPy, CuPy or
array-api-strict. Run the chapter's MNIST experiments (chapter4), fetch MNIST for offline use
(data), check that two backends train alike (parity), time training against PyTorch and JAX
(bench) and run experiments over many seeds on Dask (sweep). `xnn COMMAND --help` describes
each command."""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from xnn.backends import BackendUnavailableError, parse_backend_name
from xnn.tools.arguments import (
    BACKEND_HELP,
    EXIT_CODES,
    EXIT_DATA,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    Parser,
    backend_name,
    integer,
)

__all__ = ["main"]

# subcommands that live in their own module, each with main(argv) -> int
_DELEGATED = {"parity": "xnn.tools.parity_command", "bench": "xnn.tools.bench",
              "sweep": "xnn.tools.sweep"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xnn`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    with _messages_to_stderr():
        try:
            if argv and argv[0] in _DELEGATED:
                return importlib.import_module(_DELEGATED[argv[0]]).main(argv[1:])
            args = _parser().parse_args(argv)
        except SystemExit as exc:  # --help (0) or a usage error (2), already printed
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        args.argv = argv
        try:
            return args.run(args)
        except BackendUnavailableError as exc:
            print(f"xnn: {exc}", file=sys.stderr)
            return EXIT_UNAVAILABLE
        except KeyboardInterrupt:
            print("xnn: interrupted" + (" (`xnn chapter4 --resume` with the same options "
                                        "continues the run)" if args.run is _chapter4 else ""),
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        except BrokenPipeError:  # `xnn chapter4 --list | head`: no second error at exit
            with contextlib.suppress(OSError, ValueError, AttributeError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    from xnn import __version__
    from xnn.data import default_cache_dir

    parser = Parser(prog="xnn", description=__doc__, epilog=EXIT_CODES,
                    formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version",
                        version=f"%(prog)s {__version__} (Python {platform.python_version()})")
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    chapter = commands.add_parser(
        "chapter4", help="run the chapter's MNIST experiments",
        description="Run the chapter's MNIST experiments. Each run writes its tables, plot and "
                    "metadata\nto a directory of its own under --results.",
        epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    chapter.add_argument("names", nargs="*",
                         help="experiments to run (default: dropout deep; see --list)")
    chapter.add_argument("--all", action="store_true", help="run every experiment of the "
                         "chapter's table")
    chapter.add_argument("--list", action="store_true", help="list the experiments and exit")
    chapter.add_argument("--backend", type=backend_name, default=None, metavar="BACKEND",
                         help=f"array backend: {BACKEND_HELP} (default: $XNN_BACKEND, else "
                              "numpy)")
    chapter.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                         help="floating-point type of the model and data (default: "
                              "%(default)s; the book computed in float64)")
    chapter.add_argument("--epochs", type=integer(1), default=None,
                         help="override every experiment's epochs, for quick runs (default: "
                              "each experiment's own: see --list)")
    chapter.add_argument("--seed", type=integer(0, 2**32 - 1), default=20190119,
                         help="seed of the weights, batch order and dropout masks "
                              "(0 to 2**32 - 1; default: %(default)s, the book's)")
    chapter.add_argument("--streams", choices=("book", "independent"), default="book",
                         help="random draws: the book's own (default, so differences from the "
                              "book are xnn's fixes, not luck; with --dtype float64, the book's "
                              "runs) or xnn's independent streams")
    chapter.add_argument("--results", default="results",
                         help="where each run gets a directory of its own, "
                              "RESULTS/<timestamp>-<names>/, and RESULTS/latest points at the "
                              "newest (default: %(default)s)")
    chapter.add_argument("--data", default=None,
                         help="directory holding the four MNIST IDX files (default: the cache, "
                              "else a download; see `xnn data --help`)")
    chapter.add_argument("--limit", type=integer(1), default=None,
                         help="train on the first N images only and test on the first "
                              "max(N // 6, 1) (smoke runs, not comparable with the book; "
                              "default: all)")
    chapter.add_argument("--no-progress", action="store_true", help="no progress bar")
    chapter.add_argument("--resume", action="store_true",
                         help="continue in the run directory RESULTS/latest points at instead "
                              "of a new one: skip the experiments finished there (with the same "
                              "options) and continue an interrupted one from its checkpoint")
    chapter.add_argument("--seeds", default=None, metavar="N|S1,S2,…",
                         help="run every experiment with each seed (N: seeds 1..N) through "
                              "`xnn sweep` on a local Dask cluster, into RESULTS/sweep, and "
                              "report mean ± spread (needs the [distributed] extra)")
    chapter.set_defaults(run=_chapter4)

    data = commands.add_parser("data", help="fetch a dataset into the cache (for offline use)",
                               description="Fetch a dataset into the cache, so that later runs "
                                           "work offline (XNN_OFFLINE=1).",
                               epilog=EXIT_CODES,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
    data.add_argument("dataset", choices=("mnist",), help="the dataset (only mnist)")
    data.add_argument("--cache-dir", default=str(default_cache_dir()),
                      help="directory of the cache (default: %(default)s, from $XNN_DATA_DIR or "
                           "the platform's user cache)")
    data.set_defaults(run=_data)

    for name, module in _DELEGATED.items():
        commands.add_parser(name, help=f"see `xnn {name} --help` ({module})", add_help=False)
    return parser


def _chapter4_sweep(args: argparse.Namespace, names: list[str]) -> int:
    """``chapter4 --seeds``: the chosen experiments × seeds through ``xnn sweep``."""
    from xnn.tools import sweep

    argv = [*names, "--seeds", args.seeds, "--out", str(Path(args.results) / "sweep"),
            "--dtype", args.dtype, "--streams", args.streams]
    for flag, value in (("--backend", args.backend), ("--epochs", args.epochs),
                        ("--limit", args.limit), ("--data", args.data)):
        if value is not None:
            argv += [flag, str(value)]
    if args.no_progress:
        argv.append("--no-progress")
    return sweep.main(argv)


def _chapter4(args: argparse.Namespace) -> int:
    from xnn.tools.chapter import list_experiments, run_experiments, start_run
    from xnn.tools.experiments import BOOK_NAMES, DEFAULT_NAMES, EXPERIMENTS, load_chapter_data
    from xnn.tools.results import caveat, check_writable, markdown_table, write_results

    if args.list:
        list_experiments(EXPERIMENTS)
        return 0
    names = list(BOOK_NAMES) if args.all else (args.names or list(DEFAULT_NAMES))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        return _usage(f"unknown experiment(s) {', '.join(unknown)}; see `xnn chapter4 --list`")
    if args.seeds is not None:
        return _chapter4_sweep(args, names)
    backend = args.backend or os.environ.get("XNN_BACKEND") or "numpy"
    try:
        parse_backend_name(backend)
    except ValueError:
        return _usage(f"$XNN_BACKEND is {backend!r}, which is not a backend; expected one "
                      f"of {BACKEND_HELP} (or give --backend)")
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        return _usage(f"--data {args.data}: not a directory (expected the one holding the "
                      "four MNIST IDX files)")
    if Path(args.results).exists() and not Path(args.results).is_dir():
        return _usage(f"--results {args.results}: not a directory")
    from xnn.backends import get_backend
    from xnn.data import MnistError

    backend = get_backend(backend)  # fail before loading data if it is unusable
    try:
        backend.check_dtype(args.dtype)
    except ValueError as exc:
        return _usage(str(exc))
    try:  # and so does a results directory that cannot be written
        check_writable(Path(args.results).expanduser())
    except OSError as exc:
        return _usage(f"--results {args.results}: cannot write there ({_one_line(exc)})")
    try:
        data = load_chapter_data(args.data, args.dtype, args.limit)
    except (MnistError, ValueError) as exc:
        print(f"xnn: {_one_line(exc)}", file=sys.stderr)
        return EXIT_DATA
    options = {"experiments": names, "backend": backend.name, "dtype": args.dtype,
               "seed": args.seed, "streams": args.streams, "epochs": args.epochs,
               "limit": args.limit, "data": args.data}
    try:  # the run's own directory, before any training
        directory, metadata = start_run(args.results, ["xnn", *args.argv], options,
                                        resume=args.resume, log=print)
    except OSError as exc:
        print(f"xnn: could not make a run directory in {args.results}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_FAILED
    try:
        results = run_experiments(names, data, backend, args.dtype, args.epochs, args.seed,
                                  progress=not args.no_progress, streams=args.streams,
                                  results_dir=directory, resume=args.resume)
    except (FloatingPointError, OSError) as exc:  # diverged; a disk full
        print(f"xnn: {_one_line(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print("\n" + markdown_table(results, caveat(metadata)))
    notes: list[str] = []
    try:
        written = write_results(results, directory, notes)
    except OSError as exc:
        print(f"xnn: could not write the results to {directory}: {_one_line(exc)}",
              file=sys.stderr)
        return EXIT_FAILED
    for path in written:
        print(f"wrote {path}")
    for note in notes:
        print(note)
    return 0


def _data(args: argparse.Namespace) -> int:
    from xnn.data import MnistError, fetch_mnist

    try:
        path = fetch_mnist(cache_dir=args.cache_dir)
    except MnistError as exc:
        print(f"xnn: {_one_line(exc)}", file=sys.stderr)
        return EXIT_DATA
    print(f"MNIST is in {path}")
    return 0


def _usage(message: str) -> int:
    print(f"xnn: {message}", file=sys.stderr)
    return EXIT_USAGE


def _one_line(error: BaseException) -> str:
    """An error's message on one line: its first line, then its list items joined by '; '."""
    first, *rest = str(error).splitlines() or [type(error).__name__]
    items = "; ".join(line.strip().removeprefix("- ") for line in rest if line.strip())
    return f"{first} {items}" if items else first


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler writing to whatever ``sys.stderr`` is at the time (tests replace it)."""

    @property  # type: ignore[override]
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


@contextlib.contextmanager
def _messages_to_stderr() -> Iterator[None]:
    """The library's log messages (INFO and up) as ``xnn: message`` lines on stderr."""
    logger = logging.getLogger("xnn")
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("xnn: %(message)s"))
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]
