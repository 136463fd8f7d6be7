"""Bad input fails early, with a ValueError that names the argument and what was expected."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    SGD,
    Dense,
    Dropout,
    LeakyReLU,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)


@pytest.fixture
def data(rng):
    return rng.standard_normal((20, 4)), rng.integers(0, 3, 20)


def _trainer(backend):
    net = NeuralNetwork([Dense(5, Tanh()), Dense(3)], SoftmaxCrossEntropy(), backend=backend)
    return Trainer(net, SGD(0.1))


def _fit(trainer, X, y, X_test=None, y_test=None, **kwargs):
    kwargs.setdefault("verbose", False)
    return trainer.fit(X, y, X if X_test is None else X_test, y if y_test is None else y_test,
                       epochs=kwargs.pop("epochs", 1), **kwargs)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda X, y: (X[:-1], y), "y_train must have one row per row of X"),
        (lambda X, y: (X[:, 0], y), "X_train must be 2-D"),
        (lambda X, y: (np.where(X > 1, np.nan, X), y), "X_train contains NaN or inf"),
        (lambda X, y: (np.where(X > 1, np.inf, X), y), "X_train contains NaN or inf"),
        (lambda X, y: (X, np.eye(3)[y] * np.where(y[:, None] == 0, np.nan, 1)),
         "y_train contains NaN or inf"),
        (lambda X, y: (X, np.eye(4)[y]), "y_train must have 3 columns"),
        (lambda X, y: (X, np.where(y == 0, 3, y)), r"labels in \[0, 2\]"),
        (lambda X, y: (X, y - 1), r"labels in \[0, 2\]"),
        (lambda X, y: (X, y.astype(float)), "integer class labels"),
    ],
    ids=["rows", "not-2d", "nan-x", "inf-x", "nan-y", "one-hot-width", "label-high",
         "label-negative", "float-labels"],
)
def test_bad_training_data(backend, data, change, match):
    X, y = change(*data)
    with pytest.raises(ValueError, match=match):
        _fit(_trainer(backend), X, y, *data)


def test_bad_test_data(backend, data):
    X, y = data
    with pytest.raises(ValueError, match="X_test has 3 features per row, expected 4"):
        _fit(_trainer(backend), X, y, X[:, :3], y)
    with pytest.raises(ValueError, match=r"y_test holds class labels in \[0, 7\]"):
        _fit(_trainer(backend), X, y, X, np.where(y == 1, 7, y))


def test_feature_count_must_match_a_built_model(backend, data):
    X, y = data
    trainer = _trainer(backend)
    _fit(trainer, X, y)
    with pytest.raises(ValueError, match="X has 6 features per row, expected 4"):
        trainer.net.forward(np.ones((2, 6)))
    with pytest.raises(ValueError, match="X_train has 6 features per row, expected 4"):
        _fit(trainer, np.ones((20, 6)), y, restart=False)
    _fit(trainer, np.ones((20, 6)), y, X_test=np.ones((20, 6)))  # restart: a new width is fine


@pytest.mark.parametrize("restart", [False, True])
def test_bad_data_changes_nothing(backend, data, restart):
    """Neither training nor a restart happens before the data passed every check."""
    X, y = data
    trainer = _trainer(backend)
    _fit(trainer, X, y)
    before = [to_numpy(p) for p in trainer.net.params()]
    with pytest.raises(ValueError):
        _fit(trainer, X, y, X, np.where(y == 1, 9, y), restart=restart)
    assert trainer.net.built
    for old, new in zip(before, map(to_numpy, trainer.net.params()), strict=True):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("name", ["epochs", "eval_every", "batch_size"])
@pytest.mark.parametrize("value", [0, -1, 2.5])
def test_bad_fit_counts(backend, data, name, value):
    with pytest.raises(ValueError, match=f"{name} must be an integer >= 1"):
        _fit(_trainer(backend), *data, **{name: value})


@pytest.mark.parametrize("seed", [-1, 1.5, "1"])
def test_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        NeuralNetwork([Dense(2)], MeanSquaredError(), seed=seed)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Dense(0), "neurons must be an integer >= 1"),
        (lambda: Dense(2.5), "neurons must be an integer >= 1"),
        (lambda: Dense(3, dropout=0.0), "dropout"),
        (lambda: Dense(3, dropout=1.2), "dropout"),
        (lambda: Dense(3, dropout=-0.5), "dropout"),
        (lambda: Dense(3, weight_init="xavier"), "weight_init must be one of"),
        (lambda: Dropout(0), "keep_prob"),
        (lambda: LeakyReLU(alpha=-0.1), "alpha"),
        (lambda: SGD(0), "lr must be a number in"),
        (lambda: SGD(-0.1), "lr must be a number in"),
        (lambda: SGD(0.1, final_lr=-1), "final_lr"),
        (lambda: SGD(0.1, decay_type="cosine"), "decay_type must be one of"),
        (lambda: SGD(0.1, final_lr=0.2, decay_type="linear"), "must not exceed lr"),
        (lambda: SGD(0.1, final_lr=0, decay_type="exponential"), "cannot decay to 0"),
        (lambda: SGDMomentum(0.1, momentum=1.0), "momentum must be a number in"),
        (lambda: SGDMomentum(0.1, momentum=-0.1), "momentum must be a number in"),
        (lambda: SoftmaxCrossEntropy(eps=1.0), "eps"),
        (lambda: NeuralNetwork([Dense(2)], MeanSquaredError(), dtype="int32"),
         "dtype must be 'float32' or 'float64'"),
        (lambda: NeuralNetwork([], MeanSquaredError()), "at least one layer"),
        (lambda: (d := Dense(2), NeuralNetwork([d, d], MeanSquaredError())),
         "appears twice"),
    ],
)
def test_impossible_hyper_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_classes_where_instances_are_needed():
    with pytest.raises(TypeError, match=r"instance such as MeanSquaredError\(\)"):
        NeuralNetwork([Dense(2)], MeanSquaredError)
    with pytest.raises(TypeError, match="activation must be an Operation instance"):
        Dense(3, activation=Tanh)


def test_decay_with_final_lr_equal_to_lr_is_a_constant_rate():
    optimizer = SGD(0.1, final_lr=0.1, decay_type="exponential")
    optimizer.start(5)
    assert [optimizer.schedule(k) for k in range(5)] == pytest.approx([0.1] * 5)
