"""What the ``xnn`` commands share: exit codes, a one-line-error parser, argument types."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

__all__ = ["BACKEND_HELP", "EXIT_CODES", "EXIT_DATA", "EXIT_FAILED", "EXIT_INTERRUPTED",
           "EXIT_UNAVAILABLE", "EXIT_USAGE", "Parser", "backend_name", "integer", "number",
           "output_file"]

EXIT_FAILED, EXIT_USAGE, EXIT_UNAVAILABLE, EXIT_DATA = 1, 2, 3, 4
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports SIGINT
EXIT_CODES = """exit status:
    0  done
    1  the run failed (a training run diverged; `xnn parity`: parity does not hold)
    2  bad arguments (an unwritable --results among them), or a bad $XNN_BACKEND
    3  a backend that cannot run on this machine
    4  the data could not be loaded (download failed, offline without a cache, bad IDX files)
  130  interrupted (Ctrl-C)"""

class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr, with exit status 2."""

    def error(self, message: str) -> NoReturn:
        """Print ``PROG: error: MESSAGE (see `PROG --help`)`` and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


BACKEND_HELP = ("numpy, cupy, cupy:N, array_api_strict, torch, torch:cuda, torch:cuda:N, "
                "torch:mps or auto")


def backend_name(text: str) -> str:
    """An argparse type: a backend name :func:`xnn.backends.get_backend` knows (it may still
    be unusable here: that is exit status 3, found when the backend is made)."""
    from xnn.backends import parse_backend_name

    try:
        parse_backend_name(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def integer(low: int, high: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer in [``low``, ``high``]."""
    def parse(text: str) -> int:
        value = int(text)
        if value < low or (high is not None and value > high):
            expected = f">= {low}" if high is None else f"from {low} to {high}"
            raise argparse.ArgumentTypeError(f"must be an integer {expected}, got {value}")
        return value
    parse.__name__ = "integer"  # argparse says "invalid integer value: 'x'"
    return parse


def number(low: float) -> Callable[[str], float]:
    """An argparse type: a finite number >= ``low`` (no NaN, no infinity)."""
    def parse(text: str) -> float:
        value = float(text)
        if not math.isfinite(value) or value < low:
            raise argparse.ArgumentTypeError(f"must be a finite number >= {low}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


def output_file(text: str) -> str:
    """An argparse type: a path a file can be written at (not a directory, not under a file)."""
    path = Path(text).expanduser()
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file path")
    ancestor = next((p for p in path.absolute().parents if p.exists()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {ancestor} is a file, not a directory")
    return text
