"""streams="book": the book's single global NumPy stream, checked against a plain re-run."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import SGD, Dense, MeanSquaredError, NeuralNetwork, Tanh, Trainer, to_numpy
from xnn.tools.testing import backend_tolerance


def _book_reference(X, y, model_seed, fit_seed, epochs, batch_size, lr, keep):
    """The book's training loop in plain NumPy, with its calls on one legacy global stream."""
    state = np.random.RandomState()
    state.seed(fit_seed)  # Trainer.fit: np.random.seed(seed)
    params = None
    for _ in range(epochs):
        order = state.permutation(X.shape[0])  # permute_data
        Xp, yp = X[order], y[order]
        for start in range(0, X.shape[0], batch_size):
            xb, yb = Xp[start:start + batch_size], yp[start:start + batch_size]
            if params is None:  # layer 1 set up, reseeding the global stream
                state.seed(model_seed)
                W1, B1 = state.normal(0, 1.0, (X.shape[1], 5)), state.normal(0, 1.0, (1, 5))
            a1 = np.tanh(xb @ W1 + B1)
            mask = state.binomial(1, keep, size=a1.shape)
            d1 = a1 * mask
            if params is None:  # layer 2 set up on its first forward: reseeds again
                state.seed(model_seed)
                W2, B2 = state.normal(0, 1.0, (5, 3)), state.normal(0, 1.0, (1, 3))
                params = True
            out = d1 @ W2 + B2
            g = 2.0 * (out - yb) / xb.shape[0]
            gW2, gB2 = d1.T @ g, g.sum(axis=0, keepdims=True)
            gz1 = (g @ W2.T) * mask * (1 - a1 * a1)
            gW1, gB1 = xb.T @ gz1, gz1.sum(axis=0, keepdims=True)
            W1, B1, W2, B2 = W1 - lr * gW1, B1 - lr * gB1, W2 - lr * gW2, B2 - lr * gB2
    return [W1, B1, W2, B2]


def test_book_streams_reproduce_the_books_draws(backend, rng):
    X, y = rng.standard_normal((23, 4)), rng.standard_normal((23, 3))
    net = NeuralNetwork([Dense(5, Tanh(), dropout=0.8), Dense(3)], MeanSquaredError(),
                        seed=20190119, backend=backend, dtype="float64", streams="book")
    Trainer(net, SGD(0.05)).fit(X, y, X, y, epochs=3, eval_every=10, batch_size=5, seed=7,
                                verbose=False)
    expected = _book_reference(X, y, 20190119, 7, epochs=3, batch_size=5, lr=0.05, keep=0.8)
    steps = 3 * 5  # 3 epochs of 23 rows in batches of 5
    tolerance = backend_tolerance(backend, "float64", steps, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(net.params(), expected, strict=True):
        np.testing.assert_allclose(to_numpy(ours), theirs, **tolerance)


def test_every_layer_of_the_book_starts_from_the_same_numbers():
    net = NeuralNetwork([Dense(4), Dense(4)], MeanSquaredError(), seed=3, streams="book")
    net.forward(np.ones((1, 4)))
    W1, _, W2, _ = (to_numpy(p) for p in net.params())
    np.testing.assert_array_equal(W1, W2)  # the book's shared seed, kept on purpose here


def test_unknown_streams_are_refused():
    with pytest.raises(ValueError, match="streams must be one of"):
        NeuralNetwork([Dense(2)], MeanSquaredError(), streams="global")


@pytest.mark.parametrize("p", [0.1, 0.5, 0.75, 0.8, 0.9, 1.0])
def test_book_masks_are_legacy_binomial_draws(p):
    """The fast masks equal RandomState.binomial(1, p) draw for draw, and use the same stream."""
    from xnn import get_backend
    from xnn.core.random import BookMasks

    ours, theirs = np.random.RandomState(42), np.random.RandomState(42)
    masks = BookMasks(ours, p, get_backend("numpy"), "float64")
    for shape in [(60, 89), (7, 3), (200, 178)]:
        np.testing.assert_array_equal(masks.take(shape), theirs.binomial(1, p, size=shape))
    assert ours.random_sample() == theirs.random_sample()
