"""The ``xnn`` command: ``chapter4``, ``data``, ``parity`` and ``bench``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from xnn.backends import BACKEND_NAMES, BackendUnavailableError

__all__ = ["main"]

EXIT_USAGE, EXIT_UNAVAILABLE = 2, 3  # as for `xnn parity`: bad arguments; backend not here

# subcommands that live in their own module, each with main(argv) -> int
_DELEGATED = {"parity": "xnn.tools.parity_command", "bench": "xnn.tools.bench"}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``xnn`` command line; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in _DELEGATED:
        return importlib.import_module(_DELEGATED[argv[0]]).main(argv[1:])
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except BackendUnavailableError as exc:
        print(f"xnn: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xnn", description=__doc__)
    commands = parser.add_subparsers(title="commands", required=True, metavar="COMMAND")

    chapter = commands.add_parser("chapter4", help="run the chapter's MNIST experiments")
    chapter.add_argument("names", nargs="*", help="experiments to run (default: dropout deep)")
    chapter.add_argument("--all", action="store_true", help="run every experiment (the table)")
    chapter.add_argument("--list", action="store_true", help="list the experiments and exit")
    chapter.add_argument("--backend", choices=(*BACKEND_NAMES, "auto"), default=None,
                         help="array backend (default: $XNN_BACKEND, else numpy)")
    chapter.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    chapter.add_argument("--epochs", type=int, default=None,
                         help="override every experiment's epochs (for quick runs)")
    chapter.add_argument("--seed", type=int, default=20190119)
    chapter.add_argument("--streams", choices=("book", "independent"), default="book",
                         help="random draws: the book's own (default, so differences from the "
                              "book are xnn's fixes, not luck; with --dtype float64, the book's "
                              "runs) or xnn's independent streams")
    chapter.add_argument("--results", default="results", help="directory for the tables and plot")
    chapter.add_argument("--data", default=None, help="directory holding the four MNIST IDX files")
    chapter.add_argument("--limit", type=int, default=None,
                         help="train on the first N images only (smoke runs)")
    chapter.add_argument("--no-progress", action="store_true", help="no progress bar")
    chapter.set_defaults(run=_chapter4)

    data = commands.add_parser("data", help="fetch a dataset into the cache (for offline use)")
    data.add_argument("dataset", choices=("mnist",))
    data.add_argument("--cache-dir", default=None)
    data.set_defaults(run=_data)

    for name, module in _DELEGATED.items():
        commands.add_parser(name, help=f"see `xnn {name} --help` ({module})", add_help=False)
    return parser


def _chapter4(args: argparse.Namespace) -> int:
    from xnn.tools.experiments import (
        DEFAULT_NAMES,
        EXPERIMENTS,
        load_chapter_data,
        markdown_table,
        run_experiments,
        write_results,
    )

    if args.list:
        for experiment in EXPERIMENTS.values():
            print(f"{experiment.name:16} {experiment.book_accuracy:6.2f}%  "
                  f"{experiment.description} ({experiment.epochs} epochs)")
        return 0
    names = list(EXPERIMENTS) if args.all else (args.names or list(DEFAULT_NAMES))
    unknown = [n for n in names if n not in EXPERIMENTS]
    if unknown:
        print(f"xnn: unknown experiment(s) {', '.join(unknown)}; see `xnn chapter4 --list`",
              file=sys.stderr)
        return EXIT_USAGE
    if args.epochs is not None and args.epochs < 1:
        print("xnn: --epochs must be >= 1", file=sys.stderr)
        return EXIT_USAGE
    from xnn.backends import get_backend

    backend = get_backend(args.backend)  # fail before loading data if it is unusable
    data = load_chapter_data(args.data, args.dtype, args.limit)
    results = run_experiments(names, data, backend, args.dtype, args.epochs, args.seed,
                              progress=not args.no_progress, streams=args.streams)
    print("\n" + markdown_table(results))
    for path in write_results(results, args.results):
        print(f"wrote {path}")
    return 0


def _data(args: argparse.Namespace) -> int:
    from xnn.data import fetch_mnist

    print(f"MNIST is in {fetch_mnist(cache_dir=args.cache_dir)}")
    return 0
