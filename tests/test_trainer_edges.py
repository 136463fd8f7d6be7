"""The trainer at its edges: a flat validation loss, the same fit twice, evaluation in chunks."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import SGD, Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer


def _task(rows, seed=3, noise=0.3):
    """Labels from one fixed noisy linear map (``seed`` draws the rows and the noise)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 10))
    W = np.random.default_rng(0).standard_normal((10, 4))
    return X, np.argmax(X @ W + noise * rng.standard_normal((rows, 4)), axis=1)


def _model(backend):
    return NeuralNetwork([Dense(16, Tanh(), weight_init="glorot"),
                          Dense(4, weight_init="glorot")], SoftmaxCrossEntropy(), seed=1,
                         backend=backend, dtype="float64")


def _frozen_sgd(monkeypatch):
    """SGD whose rate is 0 in every epoch: the parameters never move, so every evaluation
    gives exactly the same validation loss (a schedule cannot reach 0: lr > 0 is required)."""
    optimizer = SGD(0.1)
    monkeypatch.setattr(optimizer, "set_epoch", lambda epoch: setattr(optimizer, "lr", 0.0))
    return optimizer


def _without_seconds(history):
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history.records]


def test_an_equal_validation_loss_is_not_an_improvement(backend, monkeypatch, capsys):
    X, y = _task(60)
    history = Trainer(_model(backend), _frozen_sgd(monkeypatch)).fit(
        X, y, X, y, epochs=10, eval_every=2, batch_size=20)
    losses = [r["val_loss"] for r in history.records]
    assert losses[1] is not None and losses[1] == losses[3]  # flat, exactly
    assert history.stopped_early and len(history.records) == 4  # stopped at the second
    assert history.best_epoch == 2 and history.best_val_loss == losses[1]  # kept the first
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == [f"Validation loss after 2 epochs is {losses[1]:.3f}",
                        f"Loss increased after epoch 4, final loss was {losses[1]:.3f}, "
                        "using the model from epoch 2"]


def test_without_early_stopping_the_first_of_equal_losses_stays_the_best(backend, monkeypatch):
    X, y = _task(60)
    history = Trainer(_model(backend), _frozen_sgd(monkeypatch)).fit(
        X, y, X, y, epochs=6, eval_every=2, batch_size=20, early_stopping=False, verbose=False)
    assert not history.stopped_early and len(history.records) == 6
    assert len({r["val_loss"] for r in history.records if r["val_loss"] is not None}) == 1
    assert history.best_epoch == 2


def test_the_same_fit_twice_gives_the_same_history(backend):
    """Each fit keeps its own best loss: with the book's carried-over best, the second fit
    would stop at its first evaluation (no better than the first fit's best)."""
    (X, y), (X_val, y_val) = _task(40, seed=1, noise=1.5), _task(40, seed=2, noise=1.5)
    trainer = Trainer(_model(backend), SGDMomentum(0.03, momentum=0.9))
    histories = [trainer.fit(X, y, X_val, y_val, epochs=30, eval_every=2, batch_size=8,
                             verbose=False) for _ in range(2)]
    first, second = histories
    assert first.stopped_early and first.best_epoch > 2  # improved at least once, then stopped
    assert _without_seconds(second) == _without_seconds(first)
    assert (second.best_epoch, second.best_val_loss, second.stopped_early) == (
        first.best_epoch, first.best_val_loss, first.stopped_early)
    assert trainer.best_loss == first.best_val_loss


@pytest.mark.parametrize("chunk", [1, 7, 25, 49, 50, 51])
def test_evaluation_in_chunks_equals_one_pass(backend, chunk):
    X, y = _task(50)
    net = _model(backend)
    Trainer(net, SGD(0.1)).fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10,
                               verbose=False)
    features, targets = net.as_features(X), net.as_targets(y, 50)
    whole = Trainer(net, SGD(0.1)).evaluate(features, targets)
    chunked = Trainer(net, SGD(0.1), eval_chunk=chunk).evaluate(features, targets)
    assert chunked == pytest.approx(whole, rel=1e-12)
    # and inside fit: the same validation losses (and accuracies) in chunks as in one pass
    runs = []
    for eval_chunk in (8192, chunk):
        history = Trainer(_model(backend), SGD(0.1), eval_chunk=eval_chunk).fit(
            X, y, X[:30], y[:30], epochs=2, eval_every=1, batch_size=10, verbose=False)
        runs.append([(r["val_loss"], r.get("val_accuracy")) for r in history.records])
    for (loss, accuracy), (expected_loss, expected_accuracy) in zip(*runs[::-1], strict=True):
        assert loss == pytest.approx(expected_loss, rel=1e-12)
        assert accuracy == expected_accuracy


def test_a_bad_evaluation_chunk_is_refused(backend):
    with pytest.raises(ValueError, match="eval_chunk must be an integer >= 1"):
        Trainer(_model(backend), SGD(0.1), eval_chunk=0)
