"""Parity's seed: it fixes the batch order and the dropout masks, and another seed changes both."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh
from xnn.tools import parity
from xnn.tools.parity import batch_indices, check_parity

PAIR = ("numpy", "array_api_strict")


def _documented_batches(rows, batch_size, steps, seed):
    """Consecutive slices of fresh permutations drawn from ``default_rng(seed)``."""
    rng, batches = np.random.default_rng(seed), []
    while len(batches) < steps:
        order = rng.permutation(rows)
        batches += [order[i:i + batch_size] for i in range(0, rows, batch_size)]
    return batches[:steps]


@pytest.mark.parametrize(("rows", "batch_size", "steps"), [(10, 4, 7), (9, 3, 3), (5, 8, 2),
                                                           (6, 1, 13)])
@pytest.mark.parametrize("seed", [0, 5, 20190119])
def test_batch_indices_follow_the_documented_rule(rows, batch_size, steps, seed):
    got = batch_indices(rows, batch_size, steps, seed)
    expected = _documented_batches(rows, batch_size, steps, seed)
    assert len(got) == steps
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_another_seed_gives_another_batch_order():
    orders = {seed: np.concatenate(batch_indices(50, 10, 5, seed)) for seed in (1, 2, 3)}
    assert len({tuple(order) for order in orders.values()}) == 3
    for order in orders.values():  # each a whole permutation: 5 batches of 10 cover 50 rows
        assert sorted(order) == list(range(50))
    np.testing.assert_array_equal(np.concatenate(batch_indices(50, 10, 5, 2)), orders[2])


@pytest.mark.parametrize(("rows", "batch_size", "steps"), [(0, 4, 2), (4, 0, 2), (4, 4, 0)])
def test_batch_indices_refuse_nothing_to_draw(rows, batch_size, steps):
    with pytest.raises(ValueError, match="must be >= 1"):
        batch_indices(rows, batch_size, steps, 0)


def _model(dropout):
    def build(backend, dtype):
        layers = [Dense(8, Tanh(), dropout=dropout, weight_init="glorot"), Dense(3)]
        net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=7, backend=backend, dtype=dtype)
        return net, SGDMomentum(0.1, momentum=0.9)
    return build


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((40, 6)), rng.integers(0, 3, 40)


def test_check_parity_trains_on_the_batches_of_its_seed(data, monkeypatch):
    X, y = data
    seen: list[np.ndarray] = []
    real = NeuralNetwork.train_batch

    def recording(self, X_batch, y_batch):
        if self.backend.name == "numpy":
            seen.append(np.asarray(X_batch).copy())
        return real(self, X_batch, y_batch)

    monkeypatch.setattr(NeuralNetwork, "train_batch", recording)
    report = check_parity(_model(1.0), X, y, PAIR, steps=5, batch_size=16, seed=11)
    assert report.passed and report.seed == 11
    expected = _documented_batches(40, 16, 5, 11)
    assert len(seen) == 5
    for batch, rows in zip(seen, expected, strict=True):
        np.testing.assert_array_equal(batch, X[rows])


def test_another_seed_changes_the_trajectory(data):
    X, y = data
    reports = {seed: check_parity(_model(1.0), X, y, PAIR, steps=4, batch_size=8, seed=seed)
               for seed in (1, 2)}
    again = check_parity(_model(1.0), X, y, PAIR, steps=4, batch_size=8, seed=1)
    assert again.losses == reports[1].losses
    assert reports[1].losses["numpy"] != reports[2].losses["numpy"]


def test_the_seed_restarts_every_dropout_stream(data, monkeypatch):
    """Same batches for every seed: only the masks, drawn from the seed, can differ."""
    X, y = data
    monkeypatch.setattr(parity, "batch_indices", lambda rows, size, steps, seed: [
        np.arange(size)] * steps)
    losses = {seed: check_parity(_model(0.5), X, y, PAIR, steps=3, batch_size=8,
                                 seed=seed).losses["numpy"] for seed in (1, 2)}
    first = check_parity(_model(0.5), X, y, PAIR, steps=3, batch_size=8, seed=1)
    assert first.passed and first.losses["numpy"] == losses[1]
    assert losses[1] != losses[2]
