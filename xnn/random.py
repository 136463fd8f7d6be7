"""Seeded random streams, drawn on the host with NumPy and copied to the backend.

Drawing on the host makes one seed give the same numbers on every backend (CuPy's streams
differ from NumPy's). Copies are batched: a :class:`BernoulliStream` refills a large block at
a time, so dropout costs one host→device copy per ~million mask entries, not one per batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xnn.backend import Backend

__all__ = ["BernoulliStream", "Streams", "seed_sequence"]

_BLOCK = 1 << 20  # mask entries drawn per refill


def seed_sequence(seed: int | np.random.SeedSequence, *key: int) -> np.random.SeedSequence:
    """A ``SeedSequence`` for ``seed``, optionally a child identified by ``key``."""
    if isinstance(seed, np.random.SeedSequence):
        entropy = seed.entropy
        key = (*seed.spawn_key, *key)
    else:
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        entropy = int(seed)
    return np.random.SeedSequence(entropy, spawn_key=key)


class Streams:
    """The independent streams of one seed: ``child(k)`` is the stream of component ``k``."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        self.seed = seed
        self._root = seed_sequence(seed)

    def generator(self, *key: int) -> np.random.Generator:
        """A fresh host generator for component ``key`` (same key → same numbers)."""
        return np.random.default_rng(seed_sequence(self._root, *key))

    def normal(self, backend: Backend, shape: tuple[int, ...], scale: float, dtype: Any,
               key: tuple[int, ...]) -> Any:
        """N(0, scale²) draws of ``shape`` as a backend array."""
        values = self.generator(*key).standard_normal(shape) * scale
        return backend.asarray(values, dtype)

    def permutation(self, backend: Backend, n: int, key: tuple[int, ...]) -> Any:
        """A permutation of ``range(n)`` as a backend integer array."""
        return backend.asarray(self.generator(*key).permutation(n))


class BernoulliStream:
    """0/1 masks with P(1) = ``p``, cut in order from host-drawn blocks copied to the backend.

    A mask that does not fit in what is left of the block starts a new block, so the masks
    depend only on the seed and the sequence of shapes asked for, never on the backend.
    """

    def __init__(self, generator: np.random.Generator, p: float, backend: Backend,
                 dtype: str, block: int = _BLOCK) -> None:
        self.generator = generator
        self.p = p
        self.backend = backend
        self.dtype = dtype
        self.block = block
        self._buffer: Any = None
        self._offset = 0

    def take(self, shape: tuple[int, ...]) -> Any:
        """The next ``prod(shape)`` draws, as a mask of ``shape``."""
        size = math.prod(shape)
        if self._buffer is None or self._offset + size > self._buffer.shape[0]:
            draws = self.generator.random(max(size, self.block), dtype="float32") < self.p
            self._buffer = self.backend.asarray(draws, self.backend.dtype(self.dtype))
            self._offset = 0
        mask = self._buffer[self._offset : self._offset + size]
        self._offset += size
        return self.backend.xp.reshape(mask, shape)

    def to(self, backend: Backend, dtype: str) -> None:
        """Continue the stream on ``backend`` in ``dtype`` (the unread block moves along)."""
        if self._buffer is not None:
            rest = self.backend.to_numpy(self._buffer[self._offset :])
            self._buffer = backend.asarray(rest, backend.dtype(dtype))
            self._offset = 0
        self.backend, self.dtype = backend, dtype
