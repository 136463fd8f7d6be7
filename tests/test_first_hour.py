"""A new user's first hour with fit and evaluate: what they pass is accepted, and what happens
is said."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import SGD, Dense, MeanSquaredError, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer


def _problem(rows=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 4))
    return X, np.argmax(X @ rng.standard_normal((4, 3)), axis=1)


def _trainer(backend="numpy", lines=None, **kwargs):
    net = NeuralNetwork([Dense(5, Tanh()), Dense(3)], SoftmaxCrossEntropy(), backend=backend,
                        dtype="float64", seed=2)
    return Trainer(net, SGD(0.3), log=(lines.append if lines is not None else print), **kwargs)


def test_evaluate_takes_labels_or_one_hot_rows_as_fit_does(backend):
    X, y = _problem()
    trainer = _trainer(backend, lines=[])
    trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=10)
    by_labels = trainer.evaluate(X, y)
    assert by_labels == pytest.approx(trainer.evaluate(X, np.eye(3)[y]), rel=1e-12)
    assert by_labels == pytest.approx(trainer.best_loss, rel=1e-12)


def test_fit_without_a_validation_set_trains_and_says_so_once():
    X, y = _problem()
    lines = []
    history = _trainer(lines=lines).fit(X, y, epochs=3, eval_every=1, batch_size=10)
    assert len(history.records) == 3 and all(r["val_loss"] is None for r in history.records)
    assert sum("No validation set" in line for line in lines) == 1
    with pytest.raises(ValueError, match="both X_test and y_test"):
        _trainer(lines=[]).fit(X, y, X, None, epochs=1)


def test_eval_every_longer_than_the_run_still_evaluates_at_the_end():
    X, y = _problem()
    lines = []
    history = _trainer(lines=lines).fit(X, y, X, y, epochs=3, eval_every=10, batch_size=10)
    assert [r["val_loss"] is not None for r in history.records] == [False, False, True]
    assert history.best_epoch == 3 and history.best_val_loss is not None
    assert lines == ["Validation loss after 3 epochs is " + f"{history.best_val_loss:.3f}"]


def test_a_second_fit_that_starts_over_says_so_once():
    X, y = _problem()
    lines = []
    trainer = _trainer(lines=lines)
    trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=10)
    assert not any("restart=True" in line for line in lines)
    trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=10)
    assert sum("restart=True" in line for line in lines) == 1
    lines.clear()
    trainer.fit(X, y, X, y, epochs=2, eval_every=2, batch_size=10, restart=False)
    assert not any("restart=True" in line for line in lines)


def test_verbose_levels(capsys):
    X, y = _problem()
    lines = []
    history = _trainer(lines=lines).fit(X, y, X, y, epochs=4, eval_every=2, batch_size=10,
                                        verbose=2, early_stopping=False)
    epoch_lines = [line for line in lines if line.startswith("epoch ")]
    assert len(epoch_lines) == 4
    assert "val accuracy" in epoch_lines[1] and "val accuracy" not in epoch_lines[0]
    assert history.records[1]["val_accuracy"] is not None
    assert history.records[0]["val_accuracy"] is None
    silent = []
    _trainer(lines=silent).fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10, verbose=0)
    assert silent == []
    with pytest.raises(ValueError, match="verbose"):
        _trainer(lines=[]).fit(X, y, X, y, epochs=1, verbose=3)


def test_validation_accuracy_is_recorded_for_classification_only():
    X, y = _problem()
    history = _trainer(lines=[]).fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10)
    from xnn.preprocessing import accuracy

    trainer = _trainer(lines=[])
    trainer.fit(X, y, X, y, epochs=2, eval_every=1, batch_size=10, early_stopping=False)
    assert history.records[-1]["val_accuracy"] == pytest.approx(accuracy(trainer.net, X, y))
    net = NeuralNetwork([Dense(3)], MeanSquaredError(), dtype="float64")
    targets = np.eye(3)[y]
    record = Trainer(net, SGD(0.1), log=lambda line: None).fit(
        X, targets, X, targets, epochs=1, eval_every=1, batch_size=10).records[0]
    assert record["val_loss"] is not None and record["val_accuracy"] is None


def test_a_multi_chunk_evaluation_equals_one_pass(backend):
    X, y = _problem(rows=50)
    whole = _trainer(backend, lines=[])
    whole.fit(X, y, X, y, epochs=1, eval_every=1, batch_size=10)
    chunked = _trainer(backend, lines=[], eval_chunk=7)
    chunked.fit(X, y, X, y, epochs=1, eval_every=1, batch_size=10)
    assert chunked.evaluate(X, y) == pytest.approx(whole.evaluate(X, y), rel=1e-12)
    assert chunked.best_loss == pytest.approx(whole.best_loss, rel=1e-12)
