"""Tests written for surviving mutants of ``xnn.train.*`` (see docs/mutation/xnn.train.*.md):
the per-epoch line, the optimizer's repr, rolling back and restoring a run, the cosine
schedule after its warm-up, and the trainer's messages."""

from __future__ import annotations

import numpy as np
import pytest

from xnn import (
    SGD,
    CosineDecay,
    Dense,
    NeuralNetwork,
    ReduceLROnPlateau,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)


def _data(rows=24, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 5))
    return X, np.argmax(X @ rng.standard_normal((5, 3)), axis=1)


def _net(seed=3):
    return NeuralNetwork([Dense(6, Tanh(), weight_init="glorot"), Dense(3)],
                         SoftmaxCrossEntropy(), seed=seed, dtype="float64")


def _trainer(optimizer=None, lines=None):
    net = _net()
    optimizer = SGDMomentum(0.1, momentum=0.9) if optimizer is None else optimizer
    log = (lambda line: None) if lines is None else lines.append
    return net, optimizer, Trainer(net, optimizer, log=log)


# -- xnn.train.epoch: verbose=2's line ----------------------------------------------------

def test_the_verbose_epoch_line_shows_the_validation_accuracy_in_percent():
    """One line per epoch: ``epoch E/N, train loss …, val loss …, val accuracy P%, lr …, S s``
    (parts joined by ", "), P the share of validation rows whose arg-max output is the label,
    times 100."""
    X, y = _data(24)
    lines = []
    net, _, trainer = _trainer(SGD(0.1), lines)
    history = trainer.fit(X, y, X[:10], y[:10], epochs=1, eval_every=1, batch_size=8,
                          verbose=2)
    record = history.records[0]
    right = int(np.sum(np.argmax(to_numpy(net.predict(X[:10])), axis=1) == y[:10]))
    assert 0 < right < 10  # neither 0 % nor 100 %: a wrong scale would show
    expected = (f"epoch 1/1, train loss {record['train_loss']:.4f}, "
                f"val loss {record['val_loss']:.4f}, val accuracy {10 * right:.2f}%, "
                f"lr 0.1, {record['seconds']:.2f} s")
    assert lines[-1] == expected


# -- xnn.train.optimizers: repr -------------------------------------------------------------

class _Capped(SGD):
    """A user's optimizer with a hyper-parameter of its own whose value may be ``None``."""

    def __init__(self, lr, cap=None):
        super().__init__(lr)
        self.cap = cap

    def config(self):
        return {**super().config(), "cap": self.cap}


def test_a_hyper_parameter_of_a_users_optimizer_is_shown_even_when_none():
    """Only the base class's known defaults are left out of the repr: a key the base class
    does not know is always shown, ``None`` included."""
    assert repr(_Capped(0.1)) == "_Capped(lr=0.1, cap=None)"
    assert repr(_Capped(0.1, cap=2.0)) == "_Capped(lr=0.1, cap=2.0)"


# -- xnn.train.run: roll_back, capture, restore --------------------------------------------

def test_an_interrupt_with_a_plateau_schedule_rolls_back_to_the_last_epoch(monkeypatch):
    """An interrupt in the middle of epoch 3 puts everything (the plateau schedule's state
    too) back as it was after epoch 2, and the KeyboardInterrupt reaches the caller."""
    X, y = _data(24)
    schedule = ReduceLROnPlateau(factor=0.5, patience=0)
    _, optimizer, trainer = _trainer(SGDMomentum(0.1, momentum=0.9, schedule=schedule))
    after = {}
    step, calls = optimizer.step, []

    def interrupted_step():
        calls.append(1)
        if len(calls) == 3 * 2 + 2:  # the second step of epoch 3 (3 steps an epoch)
            raise KeyboardInterrupt
        step()

    monkeypatch.setattr(optimizer, "step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, X[:10], y[:10], epochs=5, eval_every=1, batch_size=8,
                    early_stopping=False,
                    on_epoch=lambda r: after.update(
                        {r["epoch"]: (schedule.state_dict(), trainer.state_dict())}))
    assert sorted(after) == [1, 2]
    assert schedule.state_dict() == after[2][0]
    state = trainer.state_dict()
    assert state.epoch == 2 and len(state.history.records) == 2
    for name, value in after[2][1].params.items():
        np.testing.assert_array_equal(state.params[name], value)


def test_the_state_before_the_first_optimizer_step_has_no_optimizer_state(monkeypatch):
    """A fit interrupted before its first update still has a state (the model is built):
    epoch 0, an empty History, and ``optimizer`` ``None`` (as TrainingState documents)."""
    X, y = _data(24)
    _, optimizer, trainer = _trainer()

    def interrupted_step():
        raise KeyboardInterrupt

    monkeypatch.setattr(optimizer, "step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(X, y, epochs=2, batch_size=8)
    state = trainer.state_dict()
    assert state.optimizer is None and state.epoch == 0 and state.history.records == []
    assert set(state.params) == {"0.W", "0.B", "1.W", "1.B"}


def test_continuing_from_a_state_leaves_that_state_as_it_was():
    """``fit(state=...)`` continues from a copy: the TrainingState the caller holds (its
    History included) is not changed by the epochs that follow."""
    X, y = _data(24)
    _, _, first = _trainer()
    states = []
    first.fit(X, y, X[:10], y[:10], epochs=4, eval_every=1, batch_size=8,
              early_stopping=False,
              on_epoch=lambda r: states.append(first.state_dict()) if r["epoch"] == 2 else None)
    state = states[0]
    records = [dict(r) for r in state.history.records]
    best = (state.history.best_epoch, state.history.best_val_loss)
    _, _, second = _trainer()
    history = second.fit(X, y, X[:10], y[:10], epochs=4, eval_every=1, batch_size=8,
                         early_stopping=False, state=state)
    assert len(history.records) == 4
    assert state.history.records == records and len(records) == 2
    assert (state.history.best_epoch, state.history.best_val_loss) == best


# -- xnn.train.schedules: CosineDecay after the warm-up ------------------------------------

def test_the_first_epoch_after_the_warm_up_trains_at_exactly_the_initial_rate():
    """With a 2-epoch warm-up the rates are lr/3, 2·lr/3, then the cosine from lr itself:
    epoch 2 trains at exactly 0.1 (the warm-up's formula would give 0.1·3/3 =
    0.10000000000000002)."""
    schedule = CosineDecay(final_lr=0.0, warmup_epochs=2)
    schedule.start(0.1, 10)
    assert schedule.lr(2) == 0.1 and schedule(2) == 0.1
    assert schedule.lr(0) == pytest.approx(0.1 / 3) and schedule.lr(1) == pytest.approx(0.2 / 3)


# -- xnn.train.trainer: its messages -------------------------------------------------------

def test_state_dict_before_any_fit_is_refused_even_for_a_built_model():
    X, _ = _data(4)
    net, _, trainer = _trainer()
    with pytest.raises(RuntimeError, match=r"^no training state yet: call fit first$"):
        trainer.state_dict()
    net.forward(X)  # the model is built, but nothing was trained
    with pytest.raises(RuntimeError, match=r"^no training state yet: call fit first$"):
        trainer.state_dict()


def test_divergence_in_the_first_epoch_says_the_parameters_are_reset(monkeypatch):
    X, y = _data(24)
    net, optimizer, trainer = _trainer()
    monkeypatch.setattr(optimizer, "set_epoch", lambda epoch: setattr(optimizer, "lr", np.nan))
    with pytest.raises(FloatingPointError) as raised:
        trainer.fit(X, y, epochs=2, batch_size=8)
    assert str(raised.value).endswith(
        "; the model's parameters are reset: its next forward pass draws them again from its "
        "seed")
    assert net.store is None


# -- the trainer's constructor and argument checks (survivors of a second, trainer-only run) ----
def test_a_new_trainer_has_the_books_starting_state():
    trainer = Trainer(_net(), SGD(0.1))
    assert trainer.best_loss == float("inf") and trainer.stop_training is False


@pytest.mark.parametrize(("args", "message"), [
    (("model", SGD(0.1)), "net must be a NeuralNetwork, got 'model'"),
    ((None, "sgd"), "optim must be an Optimizer such as SGD(0.1), got 'sgd'"),
])
def test_the_constructor_names_what_it_got(args, message):
    net, optimizer = args
    with pytest.raises(TypeError) as info:
        Trainer(_net() if net is None else net, optimizer)
    assert str(info.value) == message


def test_data_without_rows_is_named():
    _, _, trainer = _trainer()
    with pytest.raises(ValueError) as info:
        trainer.fit(np.zeros((0, 5)), np.zeros(0, dtype=int), epochs=1, verbose=0)
    assert str(info.value) == "X_train has no rows"


def test_half_a_validation_set_is_refused_in_words():
    X, y = _data()
    _, _, trainer = _trainer()
    with pytest.raises(ValueError) as info:
        trainer.fit(X, y, X, None, epochs=1, verbose=0)
    assert str(info.value) == "give both X_test and y_test, or neither (no validation)"


def test_a_last_batch_too_short_for_batch_norm_is_refused_in_words():
    X, y = _data(rows=25)
    net = NeuralNetwork([Dense(6, Tanh(), batch_norm=True), Dense(3)], SoftmaxCrossEntropy(),
                        seed=3)
    with pytest.raises(ValueError) as info:
        Trainer(net, SGD(0.1)).fit(X, y, epochs=1, batch_size=8, verbose=0)
    assert str(info.value) == (
        "batch_size=8 leaves a last batch of 1 row(s) of the 25, and batch normalisation needs "
        "at least 2; choose another batch_size (or drop a row)")
