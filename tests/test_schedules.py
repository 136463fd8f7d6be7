"""Learning-rate schedules: each against its formula, per epoch and per step, and every epoch's
rate as a fit's History records it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from xnn import SGD, Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Trainer
from xnn.train.adaptive import Adam
from xnn.train.schedules import (
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    ReduceLROnPlateau,
    StepDecay,
)


def _rates(schedule, lr=0.1, epochs=6, steps=1):
    schedule.start(lr, epochs, steps)
    return [schedule.lr(e, s) for e in range(epochs) for s in range(steps)]


def test_step_decay():
    assert _rates(StepDecay(2, gamma=0.5)) == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])


def test_cosine_decay_ends_at_final_lr_like_the_books_decays():
    rates = _rates(CosineDecay(final_lr=0.01), epochs=5)
    expected = [0.01 + 0.09 * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(5)]
    assert rates == pytest.approx(expected)
    assert rates[0] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.01)


def test_cosine_decay_with_warmup():
    rates = _rates(CosineDecay(final_lr=0.0, warmup_epochs=2), epochs=6)
    assert rates[:2] == pytest.approx([0.1 / 3, 0.2 / 3])
    assert rates[2] == pytest.approx(0.1) and rates[-1] == pytest.approx(0.0)


def test_per_step_schedules_move_within_an_epoch():
    rates = _rates(LinearDecay(0.0, per="step"), lr=0.3, epochs=2, steps=2)
    assert rates == pytest.approx([0.3, 0.2, 0.1, 0.0])


def test_reduce_on_plateau_follows_the_evaluations():
    schedule = ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.02)
    schedule.start(0.1, 10)
    seen = []
    for loss in (1.0, 0.9, 0.95, 0.97, 0.96, 0.99, 0.99, 0.8):
        schedule.evaluated(loss)
        seen.append(schedule.lr(0))
    assert seen == pytest.approx([0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.025])
    state = schedule.state_dict()
    again = ReduceLROnPlateau(factor=0.5, patience=1, min_lr=0.02)
    again.start(0.1, 10)
    again.load_state_dict(state)
    assert again.lr(0) == schedule.lr(0) and again.state_dict() == state
    schedule.evaluated(1.0)
    schedule.evaluated(1.0)  # two bad evaluations: held at min_lr
    assert schedule.lr(0) == 0.02


def _fit(optimizer, epochs=5, eval_every=1, early_stopping=False):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 4))
    y = np.argmax(X @ rng.standard_normal((4, 3)), axis=1)
    net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), dtype="float64")
    return Trainer(net, optimizer, log=lambda line: None).fit(
        X, y, X, y, epochs=epochs, eval_every=eval_every, batch_size=10,
        early_stopping=early_stopping)


@pytest.mark.parametrize("schedule", [
    StepDecay(2, gamma=0.5), CosineDecay(final_lr=0.01, warmup_epochs=1), LinearDecay(0.02),
    ExponentialDecay(0.02)], ids=repr)
def test_history_records_every_epochs_rate(schedule):
    history = _fit(Adam(0.1, schedule=schedule))
    expected = _rates(type(schedule)(**{k: v for k, v in vars(schedule).items()
                                        if k in ("step_size", "gamma", "final_lr",
                                                 "warmup_epochs")}), epochs=5)
    assert [r["lr"] for r in history.records] == pytest.approx(expected)


def test_a_per_step_schedule_is_applied_in_fit():
    optimizer = SGD(0.4, schedule=LinearDecay(0.0, per="step"))
    _fit(optimizer, epochs=2)  # 4 steps an epoch, 8 in all: the last at 0
    assert optimizer.lr == pytest.approx(0.0)


def test_plateau_reduces_the_rate_in_fit():
    history = _fit(SGDMomentum(5.0, momentum=0.9, schedule=ReduceLROnPlateau(0.1, 0)),
                   epochs=8)
    rates = [r["lr"] for r in history.records]
    assert rates[0] == 5.0 and min(rates) < 5.0  # too large a rate: the loss rose, it cut


def test_the_books_arguments_and_a_schedule_are_exclusive():
    with pytest.raises(ValueError, match="not both"):
        SGD(0.1, final_lr=0.01, decay_type="linear", schedule=CosineDecay())


@pytest.mark.parametrize(("make", "message"), [
    (lambda: StepDecay(0), "step_size"), (lambda: StepDecay(2, gamma=0.0), "gamma"),
    (lambda: CosineDecay(warmup_epochs=-1), "warmup_epochs"),
    (lambda: ReduceLROnPlateau(factor=1.0), "factor"),
    (lambda: ReduceLROnPlateau(patience=-1), "patience"),
    (lambda: LinearDecay(0.0, per="batch"), "per"), (lambda: ExponentialDecay(0.0), "final_lr"),
])
def test_bad_schedule_arguments(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_a_plateau_schedule_resumes_exactly(tmp_path):
    """Its rate is state: saved in the training checkpoint and restored on resume."""
    def run(**kwargs):
        rng = np.random.default_rng(0)
        X = rng.standard_normal((40, 4))
        y = np.argmax(X @ rng.standard_normal((4, 3)), axis=1)
        net = NeuralNetwork([Dense(3)], SoftmaxCrossEntropy(), dtype="float64")
        optimizer = SGDMomentum(3.0, momentum=0.9, schedule=ReduceLROnPlateau(0.5, 0))
        history = Trainer(net, optimizer, log=lambda line: None).fit(
            X, y, X, y, epochs=8, eval_every=1, batch_size=10, early_stopping=False, **kwargs)
        return [r["lr"] for r in history.records], [p.copy() for p in net.params()]

    copies = tmp_path / "copies"
    copies.mkdir()
    path = tmp_path / "run.npz"
    import shutil

    straight_rates, straight_params = run(
        checkpoint=path, on_epoch=lambda r: shutil.copy(path, copies / f"{r['epoch']}.npz"))
    assert len(set(straight_rates)) > 1  # the rate was cut at least once
    for epoch in (3, 5, 7):
        rates, params = run(resume=copies / f"{epoch}.npz")
        assert rates == straight_rates
        for ours, theirs in zip(params, straight_params, strict=True):
            np.testing.assert_array_equal(ours, theirs)
