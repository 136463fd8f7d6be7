"""Cutting arrays into blocks of rows (mini-batches, evaluation chunks, check blocks)."""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["row_blocks"]


def row_blocks(n_rows: int, size: int) -> Iterator[slice]:
    """Slices of ``size`` rows covering ``range(n_rows)``, the last one shorter if need be.

    Stops never pass ``n_rows``: the Array API leaves out-of-bounds slices unspecified.
    """
    for start in range(0, n_rows, size):
        yield slice(start, min(start + size, n_rows))
