"""Training state as data: captured between epochs, restored exactly, on every backend."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from xnn import (
    Dense,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    TrainingState,
    to_numpy,
)
from xnn.core.random import BernoulliStream, generator_state, set_generator_state

EPOCHS = 6


def _setup(backend, dtype, streams, keep):
    layers = [Dense(7, Tanh(), dropout=keep, weight_init="glorot"), Dense(3)]
    net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=5, backend=backend, dtype=dtype,
                        streams=streams)
    optimizer = SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    return net, optimizer, Trainer(net, optimizer, log=lambda line: None)


def _data(rng):
    X = rng.standard_normal((50, 6))
    return X, np.argmax(X @ rng.standard_normal((6, 3)), axis=1)


def _fit(trainer, X, y, **kwargs):
    return trainer.fit(X, y, X[:20], y[:20], epochs=EPOCHS, eval_every=2, batch_size=8,
                       seed=11, **kwargs)


def _without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


@pytest.mark.parametrize("streams", ["independent", "book"])
@pytest.mark.parametrize("keep", [1.0, 0.7], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_run_continued_from_its_state_equals_the_straight_run(backend, rng, dtype, keep,
                                                                streams):
    X, y = _data(rng)
    net, optimizer, trainer = _setup(backend, dtype, streams, keep)
    captured = {}

    def capture(record):
        if record["epoch"] in (1, 3):
            captured[record["epoch"]] = trainer.state_dict()

    straight = _fit(trainer, X, y, on_epoch=capture)
    for epoch, state in captured.items():
        state = pickle.loads(pickle.dumps(state))  # plain data: survives another process
        assert state.epoch == epoch and len(state.history.records) == epoch
        net2, optimizer2, trainer2 = _setup(backend, dtype, streams, keep)
        continued = _fit(trainer2, X, y, state=state)
        for ours, theirs in zip(net2.params(), net.params(), strict=True):
            np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))
        np.testing.assert_array_equal(to_numpy(optimizer2.velocity),
                                      to_numpy(optimizer.velocity))
        assert optimizer2.state.step == optimizer.state.step
        assert _without_seconds(continued) == _without_seconds(straight)
        assert (continued.best_epoch, continued.best_val_loss, continued.stopped_early) == (
            straight.best_epoch, straight.best_val_loss, straight.stopped_early)


def test_the_state_holds_every_part(backend, rng):
    X, y = _data(rng)
    _net, _optimizer, trainer = _setup(backend, "float64", "independent", 0.7)
    _fit(trainer, X, y)
    state = trainer.state_dict()
    assert isinstance(state, TrainingState)
    assert set(state.params) == {"0.W", "0.B", "1.W", "1.B"}
    assert all(isinstance(a, np.ndarray) for a in state.params.values())
    assert set(state.optimizer["arrays"]) == {"velocity"}
    assert state.optimizer["step"] == EPOCHS * 7  # 50 rows in batches of 8
    assert set(state.streams) == {"order", "masks"} and list(state.streams["masks"]) == [0]
    assert state.history.records[-1]["epoch"] == state.epoch
    copied = state.copy()
    copied.params["0.W"][...] = 0
    assert not np.all(state.params["0.W"] == 0)


def test_no_state_before_a_fit(backend):
    _net, _optimizer, trainer = _setup(backend, "float32", "independent", 1.0)
    with pytest.raises(RuntimeError, match="call fit first"):
        trainer.state_dict()


def test_a_state_of_a_finished_run_trains_no_further(backend, rng):
    X, y = _data(rng)
    net, _optimizer, trainer = _setup(backend, "float64", "independent", 1.0)
    _fit(trainer, X, y)
    state = trainer.state_dict()
    net2, _optimizer2, trainer2 = _setup(backend, "float64", "independent", 1.0)
    history = _fit(trainer2, X, y, state=state)
    assert len(history.records) == len(state.history.records)
    for ours, theirs in zip(net2.params(), net.params(), strict=True):
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


def test_mse_models_continue_too(rng):
    X, y = _data(rng)
    targets = np.eye(3)[y]

    def make():
        net = NeuralNetwork([Dense(4, Tanh()), Dense(3)], MeanSquaredError(), seed=2,
                            dtype="float64")
        return net, Trainer(net, SGDMomentum(0.05), log=lambda line: None)

    net, trainer = make()
    states = []
    trainer.fit(X, targets, X, targets, epochs=4, eval_every=4, batch_size=10,
                on_epoch=lambda r: states.append(trainer.state_dict()) if r["epoch"] == 2 else 0)
    net2, trainer2 = make()
    trainer2.fit(X, targets, X, targets, epochs=4, eval_every=4, batch_size=10,
                 state=states[0])
    for ours, theirs in zip(net2.params(), net.params(), strict=True):
        np.testing.assert_array_equal(to_numpy(ours), to_numpy(theirs))


@pytest.mark.parametrize("taken", [0, 3, 5, 64])
def test_a_mask_stream_restarts_where_it_was(backend, taken):
    def stream():
        return BernoulliStream(np.random.default_rng(3), 0.6, backend, "float64", block=64)

    first = stream()
    for _ in range(taken // 3 if taken != 64 else 1):
        first.take((3,) if taken != 64 else (64,))
    saved = first.state_dict()
    expected = [to_numpy(first.take((5, 2))) for _ in range(9)]  # crosses a block boundary
    second = stream()
    second.load_state_dict(pickle.loads(pickle.dumps(saved)))
    got = [to_numpy(second.take((5, 2))) for _ in range(9)]
    for ours, theirs in zip(got, expected, strict=True):
        np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("kind", ["generator", "legacy"])
def test_generator_states_are_plain_data(kind):
    source = np.random.default_rng(7) if kind == "generator" else np.random.RandomState(7)
    source.standard_normal(5)
    state = pickle.loads(pickle.dumps(generator_state(source)))
    expected = source.standard_normal(5)
    set_generator_state(source, state)
    np.testing.assert_array_equal(source.standard_normal(5), expected)
