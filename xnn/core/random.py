"""Seeded random streams, drawn on the host with NumPy and copied to the backend.

Drawing on the host makes one seed give the same numbers on every backend (CuPy's streams
differ from NumPy's). Copies are batched: a :class:`BernoulliStream` refills a large block at
a time, so dropout costs one host→device copy per ~million mask entries, not one per batch.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from xnn.backends import Backend

__all__ = [
    "BernoulliStream",
    "BookMasks",
    "BookStreams",
    "MaskStream",
    "Streams",
    "generator_state",
    "seed_sequence",
    "set_generator_state",
]

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
    """The independent streams of one seed: each component draws from its own child ``key``."""

    def __init__(self, seed: int | np.random.SeedSequence) -> None:
        self.seed = seed
        self._root = seed_sequence(seed)

    def generator(self, *key: int) -> np.random.Generator:
        """A fresh host generator for component ``key`` (same key → same numbers)."""
        return np.random.default_rng(seed_sequence(self._root, *key))

    def initial_params(self, backend: Backend, shapes: list[tuple[int, ...]], scale: float,
                       dtype: Any, key: tuple[int, ...]) -> list[Any]:
        """N(0, scale²) draws of each shape (child ``(*key, i)`` for the i-th), on ``backend``."""
        return [backend.asarray(self.generator(*key, i).standard_normal(shape) * scale, dtype)
                for i, shape in enumerate(shapes)]

    def masks(self, p: float, backend: Backend, dtype: str, key: tuple[int, ...]) -> Any:
        """A stream of 0/1 dropout masks with P(1) = ``p``."""
        return BernoulliStream(self.generator(*key), p, backend, dtype)

    def permutations(self, key: tuple[int, ...]) -> Any:
        """Something whose ``permutation(n)`` shuffles ``range(n)`` anew at each call."""
        return self.generator(*key)

    def for_fit(self, seed: int) -> Streams:
        """The streams of a ``fit(seed=...)``: batch order and dropout masks."""
        return Streams(seed)


class BookStreams(Streams):
    """The book's randomness: one global legacy NumPy stream, reseeded where its code reseeded.

    Each layer reseeds it with the model's seed before drawing W then B (so every layer starts
    from the same numbers), ``fit`` reseeds it with its own seed, and batch order and dropout
    masks (``binomial(1, p)``, one draw per batch) take turns on it. With ``dtype="float64"``
    this reproduces the book's runs where xnn's fixes do not change the maths.
    """

    def __init__(self, seed: int, state: np.random.RandomState | None = None) -> None:
        super().__init__(seed)
        self.state = np.random.RandomState(seed) if state is None else state

    def initial_params(self, backend: Backend, shapes: list[tuple[int, ...]], scale: float,
                       dtype: Any, key: tuple[int, ...]) -> list[Any]:
        self.state.seed(self.seed)
        return [backend.asarray(self.state.normal(0, scale, shape), dtype) for shape in shapes]

    def masks(self, p: float, backend: Backend, dtype: str, key: tuple[int, ...]) -> Any:
        return BookMasks(self.state, p, backend, dtype)

    def permutations(self, key: tuple[int, ...]) -> Any:
        return self.state

    def for_fit(self, seed: int) -> Streams:
        self.state.seed(seed)
        return self

    def state_dict(self) -> dict[str, Any]:
        """The shared stream's position (batch order and masks draw from it in turn)."""
        return generator_state(self.state)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put the shared stream back where :meth:`state_dict` found it."""
        set_generator_state(self.state, state)


class BookMasks:
    """The book's dropout masks: ``binomial(1, p, shape)`` from the shared stream, per batch.

    For n = 1 legacy NumPy's binomial (inversion) draws one uniform U per entry and returns
    [U > exp(log(1 − p'))] with p' = min(p, 1 − p), flipped when p > 1/2. Drawing U with
    ``random_sample`` and comparing gives the same masks and leaves the stream where
    ``binomial`` would, three times faster (a test checks it against ``binomial`` itself).
    """

    def __init__(self, state: np.random.RandomState, p: float, backend: Backend,
                 dtype: str) -> None:
        self.state, self.p, self.backend, self.dtype = state, p, backend, dtype
        drawn = p if p <= 0.5 else 1.0 - p  # the probability the inversion works with
        self._threshold = math.exp(1.0 * math.log(1.0 - drawn))  # as C computes q^n, n = 1
        self._flip = p > 0.5

    def take(self, shape: tuple[int, ...]) -> Any:
        """The next mask, of ``shape``."""
        uniforms = self.state.random_sample(shape)
        mask = uniforms <= self._threshold if self._flip else uniforms > self._threshold
        return self.backend.asarray(mask, self.backend.dtype(self.dtype))

    def to(self, backend: Backend, dtype: str) -> None:
        """Continue on ``backend`` in ``dtype``."""
        self.backend, self.dtype = backend, dtype

    def state_dict(self) -> dict[str, Any]:
        """Nothing of its own: its position is the shared stream's (:class:`BookStreams`)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Nothing to restore (see :meth:`state_dict`)."""


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
        self._block_start: dict[str, Any] = generator_state(generator)  # before _buffer's draw

    def take(self, shape: tuple[int, ...]) -> Any:
        """The next ``prod(shape)`` draws, as a mask of ``shape``."""
        size = math.prod(shape)
        if self._buffer is None or self._offset + size > self._buffer.shape[0]:
            self._refill(max(size, self.block))
        mask = self._buffer[self._offset : self._offset + size]
        self._offset += size
        return self.backend.xp.reshape(mask, shape)

    def _refill(self, n: int) -> None:
        """Draw the next block of ``n`` entries, remembering where the generator stood."""
        self._block_start = generator_state(self.generator)
        self._buffer = self.backend.asarray(self._draw(n), self.backend.dtype(self.dtype))
        self._offset = 0

    def state_dict(self) -> dict[str, Any]:
        """Where the stream stands, as plain data: the generator before the current block was
        drawn, the block's size and how much of it was used (the block is drawn again on
        restore, so no device array is saved)."""
        size = None if self._buffer is None else int(self._buffer.shape[0])
        return {"block_start": self._block_start, "block_size": size, "offset": self._offset}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue exactly where :meth:`state_dict` was taken."""
        set_generator_state(self.generator, state["block_start"])
        if state["block_size"] is None:
            self._buffer, self._offset = None, 0
            self._block_start = generator_state(self.generator)
            return
        self._refill(state["block_size"])
        self._offset = state["offset"]

    def _draw(self, n: int) -> np.ndarray:
        """n host draws as float32 0/1: 32 random bits below round(p·2³²) (exact to 2⁻³²)."""
        if self.p >= 1.0:
            return np.ones(n, dtype=np.float32)
        bits = self.generator.integers(0, 1 << 32, n, dtype=np.uint32)
        return np.less(bits, round(self.p * 2**32), out=np.empty(n, dtype=np.float32))

    def to(self, backend: Backend, dtype: str) -> None:
        """Continue the stream on ``backend`` in ``dtype`` (the unread block moves along)."""
        if self._buffer is not None:
            block = self.backend.to_numpy(self._buffer)  # the whole block: state stays exact
            self._buffer = backend.asarray(block, backend.dtype(dtype))
        self.backend, self.dtype = backend, dtype


MaskStream = BernoulliStream | BookMasks  # what a Dropout draws its masks from


def generator_state(source: np.random.Generator | np.random.RandomState) -> dict[str, Any]:
    """The position of a host generator (new-style or the legacy one), as plain data."""
    if isinstance(source, np.random.RandomState):
        name, keys, pos, has_gauss, gauss = source.get_state()
        return {"bit_generator": name, "keys": keys.tolist(), "pos": int(pos),
                "has_gauss": int(has_gauss), "cached_gaussian": float(gauss)}
    return _plain(source.bit_generator.state)


def set_generator_state(source: np.random.Generator | np.random.RandomState,
                        state: dict[str, Any]) -> None:
    """Put a host generator back where :func:`generator_state` found it."""
    if isinstance(source, np.random.RandomState):
        source.set_state((state["bit_generator"], np.array(state["keys"], dtype=np.uint32),
                          state["pos"], state["has_gauss"], state["cached_gaussian"]))
    else:
        source.bit_generator.state = state


def _plain(value: Any) -> Any:
    """NumPy scalars and arrays inside a generator state as Python ints and lists."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    return int(value) if isinstance(value, np.integer) else value
