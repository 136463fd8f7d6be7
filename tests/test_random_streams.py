"""Host random streams: dtypes, moving between backends mid-block, the state of a stream that
has drawn nothing, and the book's shared stream (found by mutation testing)."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import get_backend, to_numpy
from xnn.core.random import BernoulliStream, BookMasks, BookStreams, generator_state


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_masks_come_in_the_dtype_asked_for(backend, dtype):
    stream = BernoulliStream(np.random.default_rng(1), 0.5, backend, dtype, block=8)
    assert to_numpy(stream.take((2, 3))).dtype == np.dtype(dtype)
    assert to_numpy(stream.take((9,))).dtype == np.dtype(dtype)  # a block of its own


def test_moving_a_stream_keeps_the_rest_of_its_block(backend):
    numpy = get_backend("numpy")
    moved = BernoulliStream(np.random.default_rng(4), 0.5, numpy, "float32", block=16)
    stayed = BernoulliStream(np.random.default_rng(4), 0.5, numpy, "float32", block=16)
    np.testing.assert_array_equal(to_numpy(moved.take((5,))), to_numpy(stayed.take((5,))))
    moved.to(backend, "float64")
    for n in (6, 5, 7):  # the rest of the first block, then a new one
        mask = moved.take((n,))
        assert to_numpy(mask).dtype == np.float64
        np.testing.assert_array_equal(to_numpy(mask), to_numpy(stayed.take((n,))))
    assert moved.state_dict() == stayed.state_dict()


def test_a_stream_that_drew_nothing_round_trips_its_state(backend):
    stream = BernoulliStream(np.random.default_rng(8), 0.5, backend, "float32", block=8)
    state = stream.state_dict()
    assert state["block_size"] is None and state["offset"] == 0
    other = BernoulliStream(np.random.default_rng(0), 0.5, backend, "float32", block=8)
    other.take((3,))  # somewhere else entirely
    other.load_state_dict(state)
    assert other.state_dict() == state
    np.testing.assert_array_equal(to_numpy(other.take((4,))), to_numpy(stream.take((4,))))


def test_keeping_everything_draws_no_random_numbers(backend):
    generator = np.random.default_rng(3)
    before = generator_state(generator)
    stream = BernoulliStream(generator, 1.0, backend, "float32", block=8)
    assert to_numpy(stream.take((3, 4))).min() == 1.0
    assert generator_state(generator) == before


def test_book_streams_use_the_given_shared_state():
    shared = np.random.RandomState(123)
    streams = BookStreams(5, state=shared)
    assert streams.state is shared
    fresh = BookStreams(5)
    np.testing.assert_array_equal(fresh.state.random_sample(4),
                                  np.random.RandomState(5).random_sample(4))


@pytest.mark.parametrize("p", [0.3, 0.8])
def test_book_masks_move_between_backends(backend, p):
    numpy = get_backend("numpy")
    moved = BookMasks(np.random.RandomState(2), p, numpy, "float32")
    stayed = BookMasks(np.random.RandomState(2), p, numpy, "float32")
    moved.take((2, 3))
    stayed.take((2, 3))
    moved.to(backend, "float64")
    mask = moved.take((4, 5))
    assert to_numpy(mask).dtype == np.float64
    np.testing.assert_array_equal(to_numpy(mask), to_numpy(stayed.take((4, 5))))


def test_a_generator_state_is_plain_data():
    """NumPy scalars and arrays inside a bit generator's state come back as ints and lists."""
    import types

    source = types.SimpleNamespace(bit_generator=types.SimpleNamespace(state={
        "bit_generator": "X", "state": {"key": np.arange(3, dtype=np.uint32),
                                        "pos": np.int64(2)}, "n": np.uint64(7)}))
    state = generator_state(source)
    assert state == {"bit_generator": "X", "state": {"key": [0, 1, 2], "pos": 2}, "n": 7}
    assert type(state["state"]["pos"]) is int and type(state["n"]) is int
    assert type(state["state"]["key"]) is list
