"""The trainer: batches, evaluation, early stopping, reproducibility and backend agreement."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    SGD,
    Dense,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    get_backend,
    to_numpy,
)
from xnn.tools.testing import backend_tolerance


def _task(rng, rows=600, features=10, classes=4, noise=0.3):
    """A learnable classification task: labels from a noisy random linear map."""
    X = rng.standard_normal((rows, features))
    logits = X @ rng.standard_normal((features, classes))
    y = np.argmax(logits + noise * rng.standard_normal(logits.shape), axis=1)
    return X, y


def _model(backend, seed=1, dtype="float64", dropout=1.0):
    layers = [Dense(16, Tanh(), weight_init="glorot", dropout=dropout),
              Dense(4, weight_init="glorot")]
    return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=seed, backend=backend, dtype=dtype)


def _params(net):
    return [to_numpy(p) for p in net.params()]


def _noisy_overfitting_fit(backend, capsys=None):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 10)), rng.integers(0, 4, 40)
    X_val, y_val = rng.standard_normal((40, 10)), rng.integers(0, 4, 40)
    net = _model(backend)
    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9))
    history = trainer.fit(X, y, X_val, y_val, epochs=30, eval_every=2, batch_size=8)
    return net, trainer, history, (X, y, X_val, y_val)


def test_early_stopping_restores_the_best_evaluated_model(backend, capsys):
    net, trainer, history, (X, y, X_val, y_val) = _noisy_overfitting_fit(backend)
    assert history.stopped_early
    best = history.best_epoch
    out = capsys.readouterr().out
    assert f"using the model from epoch {best}" in out
    assert f"final loss was {history.best_val_loss:.3f}" in out
    # the caller's own object holds the best model: its validation loss is the best one
    assert trainer.net is net
    assert trainer.evaluate(net.as_features(X_val), net.as_targets(y_val, 40)) == pytest.approx(
        history.best_val_loss, rel=1e-12)
    # and it is exactly the model after `best` epochs (not a copy from the stopping epoch)
    replay = _model(backend)
    Trainer(replay, SGDMomentum(0.1, momentum=0.9)).fit(
        X, y, X_val, y_val, epochs=best, eval_every=100, batch_size=8, verbose=False)
    for ours, theirs in zip(_params(net), _params(replay), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_prints_the_books_lines(backend, capsys):
    _noisy_overfitting_fit(backend)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("Validation loss after 2 epochs is ")
    assert lines[-1].startswith("Loss increased after epoch ")


def test_without_early_stopping_every_evaluation_is_printed(backend, rng, capsys):
    X, y = _task(rng, rows=60)
    history = Trainer(_model(backend), SGD(0.1)).fit(
        X, y, X, y, epochs=6, eval_every=2, batch_size=20, early_stopping=False)
    assert capsys.readouterr().out.count("Validation loss after") == 3
    assert [r["val_loss"] is not None for r in history.records] == [False, True] * 3
    assert set(history.records[0]) == {"epoch", "lr", "train_loss", "val_loss", "val_accuracy",
                                        "seconds"}
    assert [r["epoch"] for r in history.records] == list(range(1, 7))


def test_every_row_is_used_including_the_last_short_batch(backend, rng):
    X, y = _task(rng, rows=23)
    optimizer = SGD(0.1)
    steps = []
    original = optimizer.step
    optimizer.step = lambda: (steps.append(1), original())
    history = Trainer(_model(backend), optimizer).fit(X, y, X, y, epochs=2, eval_every=5,
                                                      batch_size=10, verbose=False)
    assert len(steps) == 2 * 3 and len(history.records) == 2


def test_labels_and_one_hot_targets_train_identically(backend, rng):
    X, y = _task(rng, rows=50)
    histories = []
    for targets in (y, np.eye(4)[y]):
        net = _model(backend)
        histories.append(Trainer(net, SGD(0.1)).fit(X, targets, X, targets, epochs=3,
                                                    eval_every=1, batch_size=16, verbose=False))
    assert histories[0].records[-1]["val_loss"] == histories[1].records[-1]["val_loss"]


def test_restart_false_continues_from_the_current_parameters(backend, rng):
    X, y = _task(rng, rows=60)
    net = _model(backend)
    trainer = Trainer(net, SGD(0.1))
    trainer.fit(X, y, X, y, epochs=2, eval_every=10, verbose=False)
    trained = _params(net)
    trainer.fit(X, y, X, y, epochs=1, eval_every=10, restart=False, verbose=False)
    moved = _params(net)
    assert not np.array_equal(trained[0], moved[0])
    restarted = Trainer(_model(backend), SGD(0.1))
    restarted.fit(X, y, X, y, epochs=3, eval_every=10, verbose=False)
    trainer.fit(X, y, X, y, epochs=3, eval_every=10, verbose=False)
    np.testing.assert_array_equal(_params(net)[0], _params(restarted.net)[0])


@pytest.mark.parametrize("seed", [0, 20190119])
def test_same_seed_same_results_different_seed_different(backend, rng, seed):
    X, y = _task(rng, rows=90)

    def run(model_seed, fit_seed):
        net = _model(backend, seed=model_seed, dropout=0.8)
        history = Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=2, eval_every=1,
                                                     batch_size=30, seed=fit_seed, verbose=False)
        return history.train_loss, _params(net)

    loss, params = run(seed, seed)
    again_loss, again_params = run(seed, seed)
    assert loss == again_loss
    for a, b in zip(params, again_params, strict=True):
        np.testing.assert_array_equal(a, b)
    assert run(seed + 1, seed)[0] != loss  # another model seed: other initial weights
    assert run(seed, seed + 1)[0] != loss  # another fit seed: other batches and masks


def test_seed_zero_is_a_seed():
    """The book's ``if seed:`` silently ignored seed 0."""
    X = np.ones((2, 5))
    a, b = (_model("numpy", seed=0) for _ in range(2))
    a.forward(X), b.forward(X)
    np.testing.assert_array_equal(_params(a)[0], _params(b)[0])
    c = _model("numpy", seed=1)
    c.forward(X)
    assert not np.array_equal(_params(a)[0], _params(c)[0])


def test_float64_training_agrees_with_numpy(backend, rng):
    """To 1e-12 where the kernels are NumPy's; elsewhere within the parity tolerance."""
    X, y = _task(rng, rows=200)

    def run(b):
        net = _model(b, dropout=0.8)
        history = Trainer(net, SGDMomentum(0.2, final_lr=0.05, decay_type="exponential")).fit(
            X, y, X, y, epochs=4, eval_every=2, batch_size=32, verbose=False)
        return history, _params(net)

    (history, params), (reference, reference_params) = run(backend), run("numpy")
    steps = 4 * 7  # 4 epochs of 200 rows in batches of 32
    np.testing.assert_allclose(history.train_loss, reference.train_loss,
                               **backend_tolerance(backend, "float64", steps, rtol=1e-12))
    tolerance = backend_tolerance(backend, "float64", steps, rtol=1e-12, atol=1e-12)
    for ours, theirs in zip(params, reference_params, strict=True):
        np.testing.assert_allclose(ours, theirs, **tolerance)


def test_no_host_copies_per_batch(rng):
    """On the GPU stand-in, copies are counted: data once per fit, then O(1) per epoch."""
    backend = get_backend("array_api_strict")
    X, y = _task(rng, rows=600)
    net = _model(backend, dropout=0.8)
    trainer = Trainer(net, SGDMomentum(0.1))
    before_in, before_out = backend.host_to_device, backend.device_to_host
    epochs = 5
    trainer.fit(X, y, X, y, epochs=epochs, eval_every=1, batch_size=10, verbose=False)
    copies_in = backend.host_to_device - before_in
    copies_out = backend.device_to_host - before_out
    batches = epochs * 60
    # 4 data arrays + 2×2 initial parameters + per epoch a permutation, + mask blocks
    assert copies_in <= 4 + 4 + epochs + 2, copies_in
    assert copies_out == 0, copies_out
    assert copies_in < batches / 10


def test_learns_a_synthetic_task(backend, rng):
    """End to end: a clear accuracy floor on held-out data, float32 as users train."""
    X, y = _task(rng, rows=3000, noise=0.1)
    net = _model(backend, dtype="float32", dropout=0.9)
    Trainer(net, SGDMomentum(0.1, momentum=0.9, final_lr=0.01, decay_type="linear")).fit(
        X[:2400], y[:2400], X[2400:], y[2400:], epochs=15, eval_every=5, batch_size=32,
        verbose=False)
    predictions = to_numpy(net.forward(X[2400:], inference=True)).argmax(axis=1)
    accuracy = (predictions == y[2400:]).mean()
    assert accuracy > 0.9, accuracy


def test_divergence_is_reported_not_trained_through(backend, rng):
    """A learning rate far too large: overflow to inf/NaN stops fit with a clear message."""
    from xnn import MeanSquaredError

    X, y = rng.standard_normal((60, 4)), rng.standard_normal((60, 3))
    net = NeuralNetwork([Dense(3)], MeanSquaredError(), backend=backend, dtype="float32")
    with pytest.raises(FloatingPointError, match=r"training diverged.*smaller learning rate"):
        with np.errstate(all="ignore"):
            Trainer(net, SGD(1e3)).fit(X, y, X, y, epochs=20, eval_every=1, verbose=False,
                                       early_stopping=False)
