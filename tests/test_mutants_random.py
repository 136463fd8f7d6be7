"""Tests written for surviving mutants of ``xnn.core.random`` (docs/mutation/xnn.core.random.md).

The mask tests set a host generator so that its next draw is a chosen number, then compare
the masks with what that draw must give (NumPy's own ``binomial``, or the raw bits by hand).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnn.core.random import BernoulliStream, BookMasks

_M32 = 0xFFFFFFFF


def _untemper(y: int) -> int:
    """The MT19937 key word whose tempered output is ``y`` (each tempering step undone)."""
    y ^= y >> 18
    y ^= (y << 15) & 0xEFC60000
    x = y
    for _ in range(5):  # undo y ^= (y << 7) & 0x9D2C5680, 7 more bits right per pass
        x = (y ^ ((x << 7) & 0x9D2C5680)) & _M32
    z = x
    for _ in range(3):  # undo y ^= y >> 11
        z = x ^ (z >> 11)
    return z


def _state_whose_next_uniform_is(u: float) -> np.random.RandomState:
    """A legacy stream whose next ``random_sample()`` is ``u`` (a multiple of 2⁻⁵³ in [0, 1)):
    it is (a·2²⁶ + b)/2⁵³ for the next two 32-bit outputs a·2⁵ and b·2⁶."""
    k = int(u * 2.0**53)
    assert k / 2.0**53 == u
    keys = np.zeros(624, dtype=np.uint32)
    keys[0], keys[1] = _untemper((k >> 26) << 5), _untemper((k & (2**26 - 1)) << 6)
    state = np.random.RandomState()
    state.set_state(("MT19937", keys, 0, 0, 0.0))
    return state


@pytest.mark.parametrize(
    "u", [0.75, 0.3125 + 3 * 2.0**-53, math.exp(math.log(0.7)), 1.0 - 2.0**-53]
)
def test_untemper_inverts_the_tempering(u):
    assert _state_whose_next_uniform_is(u).random_sample() == u


@pytest.mark.parametrize("p", [0.3, 0.7])
def test_a_uniform_exactly_at_the_threshold_gives_binomials_mask(backend, p):
    # binomial(1, p) by inversion returns 0 when U <= q = exp(log(1 - min(p, 1-p))), so for
    # U == q exactly: 0 for p = 0.3, and 1 - 0 = 1 for p = 0.7
    q = math.exp(1.0 * math.log(1.0 - min(p, 1.0 - p)))
    expected = _state_whose_next_uniform_is(q).binomial(1, p, size=1)
    assert expected[0] == (1 if p > 0.5 else 0)
    mask = BookMasks(_state_whose_next_uniform_is(q), p, backend, "float64").take((1,))
    np.testing.assert_array_equal(backend.to_numpy(mask), expected.astype(np.float64))


def test_bernoulli_masks_compare_the_generators_own_32_bit_words(backend):
    # a PCG64 generator hands out 32-bit words: a buffered high half first when it holds one,
    # then the low and high halves of each 64-bit output; a mask entry is 1 where the word is
    # below round(0.5 · 2³²) = 2³¹. The buffered word is set to 0, so the first entry is 1.
    generator = np.random.default_rng(11)
    state = generator.bit_generator.state
    state["has_uint32"], state["uinteger"] = 1, 0
    generator.bit_generator.state = state
    raw = np.random.PCG64(11)
    raw.state = state
    words = [0]
    for value in raw.random_raw(4).tolist():
        words += [value & _M32, value >> 32]
    expected = np.array([word < 2**31 for word in words], dtype=np.float32)
    stream = BernoulliStream(generator, 0.5, backend, "float32", block=9)
    np.testing.assert_array_equal(backend.to_numpy(stream.take((9,))), expected)
