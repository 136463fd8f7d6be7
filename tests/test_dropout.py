"""Dropout: mask statistics, train/inference modes, and one mask sequence per seed."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnn import Dense, Dropout, MeanSquaredError, NeuralNetwork, Tanh, to_numpy
from xnn.core.random import BernoulliStream
from xnn.tools.testing import backend_tolerance


def _dropout(backend, keep_prob, seed=0):
    op = Dropout(keep_prob)
    op.masks = BernoulliStream(np.random.default_rng(seed), keep_prob, backend, "float64")
    return op


@pytest.mark.parametrize("keep_prob", [0.2, 0.8])
def test_kept_fraction_matches_keep_prob(backend, keep_prob):
    n = 200 * 500
    y = to_numpy(_dropout(backend, keep_prob).forward(backend.asarray(np.ones((200, 500)))))
    assert set(np.unique(y)) <= {0.0, 1.0}
    sigma = math.sqrt(keep_prob * (1 - keep_prob) / n)
    assert abs(y.mean() - keep_prob) < 5 * sigma


def test_train_and_inference_have_the_same_expected_activation(backend, rng):
    x = rng.uniform(1, 2, (100, 300))
    op = _dropout(backend, 0.8)
    train = to_numpy(op.forward(backend.asarray(x)))
    inference = to_numpy(op.forward(backend.asarray(x), inference=True))
    np.testing.assert_allclose(inference, 0.8 * x)
    assert train.mean() == pytest.approx(inference.mean(), rel=0.01)


def test_gradient_flows_only_through_kept_units(backend, rng):
    op = _dropout(backend, 0.5)
    y = to_numpy(op.forward(backend.asarray(np.ones((20, 30)))))
    dx = to_numpy(op.backward(backend.asarray(np.full((20, 30), 3.0))))
    np.testing.assert_array_equal(dx, 3.0 * y)


def test_masks_are_fresh_each_batch_and_fixed_by_seed(backend):
    x = backend.asarray(np.ones((10, 10)))
    op = _dropout(backend, 0.5, seed=1)
    first, second = to_numpy(op.forward(x)), to_numpy(op.forward(x))
    assert not np.array_equal(first, second)
    again = _dropout(backend, 0.5, seed=1)
    np.testing.assert_array_equal(to_numpy(again.forward(x)), first)


def test_masks_cross_block_boundaries_deterministically(backend):
    """Masks larger than what is left of a block start a new one; the sequence stays fixed."""
    stream = BernoulliStream(np.random.default_rng(5), 0.5, backend, "float32", block=64)
    again = BernoulliStream(np.random.default_rng(5), 0.5, backend, "float32", block=64)
    for shape in [(5, 10), (5, 10), (20, 10), (3, 3)]:
        np.testing.assert_array_equal(to_numpy(stream.take(shape)), to_numpy(again.take(shape)))


def test_same_seed_same_masks_on_every_backend(backend):
    """Masks are drawn on the host: numpy and any other backend see identical masks."""
    X = np.ones((7, 3))

    def masks_and_outputs(b):
        net = NeuralNetwork([Dense(50, Tanh(), dropout=0.5), Dense(2)], MeanSquaredError(),
                            seed=4, backend=b, dtype="float64")
        return [(to_numpy(net.forward(X)), to_numpy(net.layers[0].dropout.mask))
                for _ in range(3)]

    tolerance = backend_tolerance(backend, "float64")  # exact where the kernels are NumPy's
    for (ours, our_mask), (reference, mask) in zip(masks_and_outputs(backend),
                                                   masks_and_outputs("numpy"), strict=True):
        np.testing.assert_array_equal(our_mask, mask)  # drawn on the host: exact everywhere
        np.testing.assert_allclose(ours, reference, **tolerance)  # computed with tanh


def test_layers_get_independent_mask_streams():
    X = np.ones((4, 64))
    net = NeuralNetwork([Dense(64, dropout=0.5), Dense(64, dropout=0.5)], MeanSquaredError())
    net.forward(X)
    first, second = (to_numpy(layer.dropout.mask) for layer in net.layers)
    assert not np.array_equal(first, second)


def test_keep_everything_stream_is_all_ones(backend):
    stream = BernoulliStream(np.random.default_rng(0), 1.0, backend, "float32", block=16)
    assert to_numpy(stream.take((4, 5))).min() == 1.0


def _documented_masks(seed, p, block, sizes):
    """The seed-to-mask rule, written out: blocks of max(block, n) draws of 32 random bits
    each, an entry kept when its bits are below round(p·2³²); a mask that does not fit in what
    is left of the current block starts a new one."""
    generator = np.random.default_rng(seed)
    threshold = round(p * 2**32)
    block_bits, offset, masks = np.empty(0, dtype=bool), 0, []
    for n in sizes:
        if offset + n > block_bits.size:
            draws = generator.integers(0, 1 << 32, max(n, block), dtype=np.uint32)
            block_bits, offset = draws < threshold, 0
        masks.append(block_bits[offset:offset + n].astype(np.float32))
        offset += n
    return masks


@pytest.mark.parametrize("sizes", [[4, 4], [8], [4, 4, 4, 4], [3, 5, 8, 1, 9, 2], [8, 7, 1, 8],
                                   [2, 7, 20, 1]])
@pytest.mark.parametrize("p", [0.5, 0.3])
def test_masks_follow_the_documented_seed_to_mask_rule(backend, p, sizes):
    stream = BernoulliStream(np.random.default_rng(7), p, backend, "float32", block=8)
    for n, expected in zip(sizes, _documented_masks(7, p, 8, sizes), strict=True):
        np.testing.assert_array_equal(to_numpy(stream.take((n,))), expected)


def test_two_takes_that_exactly_fill_a_block_equal_one_take(backend):
    """A request that exactly fits what is left of the block is cut from it (no refill)."""
    whole = BernoulliStream(np.random.default_rng(11), 0.5, backend, "float32", block=8)
    halves = BernoulliStream(np.random.default_rng(11), 0.5, backend, "float32", block=8)
    expected = to_numpy(whole.take((2, 4)))
    got = np.concatenate([to_numpy(halves.take((4,))), to_numpy(halves.take((1, 4)))[0]])
    np.testing.assert_array_equal(got, expected.reshape(-1))
    # and the next request starts the next block in both streams
    np.testing.assert_array_equal(to_numpy(halves.take((3,))), to_numpy(whole.take((3,))))


@pytest.mark.parametrize("taken", [[], [4], [4, 4], [3, 9], [8, 1]])
def test_a_stream_resumes_exactly_from_its_state(backend, taken):
    """state_dict mid-block, at a block's end and before any draw: the rest is unchanged."""
    stream = BernoulliStream(np.random.default_rng(2), 0.5, backend, "float32", block=8)
    for n in taken:
        stream.take((n,))
    state = stream.state_dict()
    expected = [to_numpy(stream.take((n,))) for n in (3, 5, 9)]
    resumed = BernoulliStream(np.random.default_rng(99), 0.5, backend, "float32", block=8)
    resumed.load_state_dict(state)
    for n, mask in zip((3, 5, 9), expected, strict=True):
        np.testing.assert_array_equal(to_numpy(resumed.take((n,))), mask)
