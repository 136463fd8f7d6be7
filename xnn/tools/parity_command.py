"""``xnn parity A B ...``: the parity check of :mod:`xnn.tools.parity` as a command (a CI gate).

Trains the chapter's model (``--model chapter``: the ``momentum`` experiment) or the deep one
(``--model deep``) from one seed on each backend, on synthetic MNIST-shaped data (no download),
prints the report, and exits 0 when parity holds, 1 when it fails (naming the first step and
parameter that diverged), 2 on bad arguments (each checked before anything runs) and 3 when a
backend cannot run here.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys

import numpy as np

from xnn.backends import BackendUnavailableError
from xnn.core.files import atomic_write
from xnn.tools.arguments import BACKEND_HELP, Parser, backend_name, integer, number, output_file
from xnn.tools.experiments import EXPERIMENTS
from xnn.tools.parity import SEED, TOLERANCES, check_parity

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNAVAILABLE", "EXIT_USAGE", "MODELS", "main",
           "synthetic_mnist"]

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
VALIDATION_ROWS = 1000  # held-out synthetic rows on which the command measures final metrics


def synthetic_mnist(rows: int = 3000, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """MNIST-shaped data, no download: ``rows`` of 784 standardised 'pixels', labels 0–9.

    Each class is a random pattern of lit pixels; a row is a faint, noisy copy of its class's.
    """
    rng = np.random.default_rng(seed)
    patterns = (rng.random((10, 784)) < 0.2).astype(np.float64)
    labels = rng.integers(0, 10, rows)
    pixels = np.clip(0.2 * patterns[labels] + rng.normal(0.1, 0.4, (rows, 784)), 0.0, 1.0)
    return (pixels - pixels.mean()) / pixels.std(), labels


MODELS = {"chapter": EXPERIMENTS["momentum"], "deep": EXPERIMENTS["deep"]}


def main(argv: list[str] | None = None) -> int:
    """``xnn parity A B ...``: run the check and print the report; returns the exit status."""
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2), already printed
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    experiment = MODELS[args.model]
    tolerance = TOLERANCES[args.dtype]
    if args.per_step is not None:
        tolerance = dataclasses.replace(tolerance, per_step=args.per_step)
    X, y = synthetic_mnist(args.rows + VALIDATION_ROWS, args.seed)
    train, held_out = slice(None, args.rows), slice(args.rows, None)
    try:
        report = check_parity(lambda backend, dtype: experiment.build(backend, dtype, args.seed),
                              X[train], y[train], args.backends, steps=args.steps,
                              dtype=args.dtype, batch_size=args.batch_size, seed=args.seed,
                              compare=args.compare, tolerance=tolerance,
                              validation=(X[held_out], y[held_out]))
    except BackendUnavailableError as exc:
        print(f"xnn parity: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    except ValueError as exc:
        print(f"xnn parity: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"model {args.model} (the chapter's {experiment.name!r}: {experiment.description})"
          f"\n{report.format()}")
    if args.json:
        try:
            with atomic_write(args.json, "w", encoding="utf-8") as file:
                json.dump({"model": args.model, "rows": args.rows, **report.to_dict()}, file,
                          indent=2)
        except OSError as exc:
            print(f"xnn parity: could not write --json {args.json}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    return EXIT_OK if report.passed else EXIT_FAILED


def _parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="xnn parity",
        description="Train one model from one seed on two or more backends and compare them "
                    "step by step; the first backend is the reference. Exit status: 0 parity, "
                    "1 divergence, 2 bad arguments, 3 a backend unavailable here.")
    parser.add_argument("backends", nargs="+", type=backend_name, metavar="BACKEND",
                        help=f"two or more of: {BACKEND_HELP}")
    parser.add_argument("--model", choices=sorted(MODELS), default="chapter")
    parser.add_argument("--steps", type=integer(1), default=50, help="optimizer steps (50)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    parser.add_argument("--batch-size", type=integer(1), default=60, help="rows per step (60)")
    parser.add_argument("--seed", type=integer(0), default=SEED,
                        help=f"data, weights, batch order, dropout masks ({SEED})")
    parser.add_argument("--rows", type=integer(1), default=2000, help="training rows (2000)")
    parser.add_argument("--compare", choices=("steps", "metrics"), default="steps",
                        help="judge every step (default) or only the final metrics")
    parser.add_argument("--per-step", type=number(0.0), metavar="RTOL",
                        help="relative difference allowed per step (1e-10 float64, 1e-5 float32)")
    parser.add_argument("--json", metavar="PATH", type=output_file,
                        help="also write the report as JSON")
    return parser

