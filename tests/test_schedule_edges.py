"""Schedules at their edges: defaults, bounds and the messages naming them, representations,
the book's call form, warm-up boundaries, and the plateau schedule's state (found by mutation
testing)."""

from __future__ import annotations

import math

import pytest

from xnn.train.schedules import (
    Constant,
    CosineDecay,
    ExponentialDecay,
    LinearDecay,
    ReduceLROnPlateau,
    StepDecay,
)


def _rates(schedule, lr=0.1, epochs=6, steps=1):
    schedule.start(lr, epochs, steps)
    return [schedule.lr(e, s) for e in range(epochs) for s in range(steps)]


@pytest.mark.parametrize(("schedule", "text"), [
    (Constant(), "Constant()"),
    (LinearDecay(0.01), "LinearDecay(final_lr=0.01)"),
    (LinearDecay(0.0, per="step"), "LinearDecay(per='step', final_lr=0.0)"),
    (ExponentialDecay(0.01), "ExponentialDecay(final_lr=0.01)"),
    (StepDecay(2), "StepDecay(step_size=2, gamma=0.1)"),
    (StepDecay(3, gamma=0.5, per="step"), "StepDecay(per='step', step_size=3, gamma=0.5)"),
    (CosineDecay(), "CosineDecay(final_lr=0.0, warmup_epochs=0)"),
    (ReduceLROnPlateau(), "ReduceLROnPlateau(factor=0.1, patience=0, min_lr=0.0)"),
    (ReduceLROnPlateau(0.5, 2, 0.001), "ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.001)"),
], ids=lambda value: value if isinstance(value, str) else "")
def test_representation_shows_the_arguments_not_the_run(schedule, text):
    schedule.start(0.1, 5, 3)  # the run's rate and length are not the schedule's arguments
    assert repr(schedule) == text


def test_the_books_call_form_is_the_first_step_of_an_epoch():
    schedule = LinearDecay(0.0, per="step")
    schedule.start(0.3, 2, 2)
    assert [schedule(0), schedule(1)] == pytest.approx([0.3, 0.1])


def test_start_keeps_the_run():
    schedule = ReduceLROnPlateau()
    schedule.start(0.1, 5)
    assert (schedule.initial_lr, schedule.epochs, schedule.steps_per_epoch) == (0.1, 5, 1)
    assert schedule.lr(3) == 0.1
    schedule.start(0.2, 4, 3)
    assert (schedule.initial_lr, schedule.epochs, schedule.steps_per_epoch) == (0.2, 4, 3)


@pytest.mark.parametrize(("make", "message"), [
    (lambda: LinearDecay(-0.1), r"^final_lr must be a number in \[0\.0, inf\], got -0\.1$"),
    (lambda: ExponentialDecay(0.0),
     r"^final_lr \(exponential decay cannot reach 0\) must be a number in \(0\.0, inf\]"),
    (lambda: StepDecay(0), r"^step_size must be an integer >= 1, got 0$"),
    (lambda: StepDecay(2, gamma=0.0), r"^gamma must be a number in \(0\.0, 1\.0\], got 0\.0$"),
    (lambda: StepDecay(2, gamma=1.5), r"^gamma must be a number in \(0\.0, 1\.0\], got 1\.5$"),
    (lambda: CosineDecay(final_lr=-1.0), r"^final_lr must be a number in \[0\.0, inf\]"),
    (lambda: CosineDecay(warmup_epochs=1.5), r"^warmup_epochs must be an integer >= 0, got 1\.5$"),
    (lambda: CosineDecay(warmup_epochs=True), r"^warmup_epochs must be an integer >= 0, got True"),
    (lambda: CosineDecay(warmup_epochs=-1), r"^warmup_epochs must be an integer >= 0, got -1$"),
    (lambda: ReduceLROnPlateau(factor=0.0), r"^factor must be a number in \(0\.0, 1\.0\), got 0"),
    (lambda: ReduceLROnPlateau(factor=-0.5), r"^factor must be a number in \(0\.0, 1\.0\)"),
    (lambda: ReduceLROnPlateau(factor=1.0), r"^factor must be a number in \(0\.0, 1\.0\)"),
    (lambda: ReduceLROnPlateau(patience=1.5), r"^patience must be an integer >= 0, got 1\.5$"),
    (lambda: ReduceLROnPlateau(patience=False), r"^patience must be an integer >= 0, got False"),
    (lambda: ReduceLROnPlateau(patience=-1), r"^patience must be an integer >= 0, got -1$"),
    (lambda: ReduceLROnPlateau(min_lr=-1e-3), r"^min_lr must be a number in \[0\.0, inf\]"),
])
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bounds_that_are_allowed():
    assert StepDecay(1, gamma=1.0).gamma == 1.0
    assert LinearDecay(0.0).final_lr == 0.0 and CosineDecay(0.0).final_lr == 0.0
    assert ReduceLROnPlateau(min_lr=0.0).min_lr == 0.0
    assert ReduceLROnPlateau(patience=0).patience == 0


def test_defaults():
    assert _rates(StepDecay(1), epochs=3) == pytest.approx([0.1, 0.01, 0.001])  # gamma 0.1
    assert _rates(CosineDecay(), epochs=3)[-1] == 0.0  # down to 0
    plateau = ReduceLROnPlateau()  # factor 0.1, patience 0, floor 0
    plateau.start(1.0, 5)
    plateau.evaluated(1.0)
    plateau.evaluated(1.0)  # no better: cut at once
    assert plateau.lr(0) == pytest.approx(0.1)


def test_cosine_warmup_per_step_counts_steps():
    rates = _rates(CosineDecay(final_lr=0.0, warmup_epochs=1, per="step"), lr=0.3, epochs=3,
                   steps=2)
    assert rates[:3] == pytest.approx([0.1, 0.2, 0.3])  # 2 warm-up steps, then the cosine
    assert rates[-1] == pytest.approx(0.0)


@pytest.mark.parametrize(("epochs", "expected"), [
    (3, [0.1 / 3, 0.2 / 3, 0.1]),  # one period after the warm-up: it trains at lr
    (4, [0.1 / 3, 0.2 / 3, 0.1, 0.01]),  # two: lr, then final_lr
    (5, [0.1 / 3, 0.2 / 3, 0.1, 0.055, 0.01]),
])
def test_cosine_after_a_warmup_of_all_but_a_few_epochs(epochs, expected):
    assert _rates(CosineDecay(final_lr=0.01, warmup_epochs=2), epochs=epochs) == (
        pytest.approx(expected))


def test_a_plateau_is_not_an_improvement():
    schedule = ReduceLROnPlateau(factor=0.5, patience=0)
    schedule.start(0.1, 10)
    schedule.evaluated(1.0)
    schedule.evaluated(1.0)  # equal: no better
    assert schedule.lr(0) == pytest.approx(0.05)


def test_plateau_state_before_and_after_start():
    schedule = ReduceLROnPlateau()
    assert schedule.lr(0) == 0.0  # like every schedule before start: its initial rate
    assert schedule.state_dict() == {"lr": None, "best": None, "bad": 0}
    schedule.start(0.1, 5)
    assert schedule.state_dict() == {"lr": 0.1, "best": None, "bad": 0}
    schedule.evaluated(2.0)
    assert schedule.state_dict() == {"lr": 0.1, "best": 2.0, "bad": 0}


def test_plateau_state_without_a_best_loads_as_infinite():
    schedule = ReduceLROnPlateau(factor=0.5, patience=0)
    schedule.start(0.1, 5)
    schedule.load_state_dict({"lr": 0.08, "best": None, "bad": 0})
    schedule.evaluated(1e300)  # any finite loss beats no best at all
    assert schedule.lr(0) == 0.08 and schedule.state_dict()["best"] == 1e300
    schedule.evaluated(math.inf)
    assert schedule.lr(0) == pytest.approx(0.04)


def test_before_start_a_schedule_is_a_run_of_one_period_at_rate_zero():
    for schedule in (Constant(), LinearDecay(0.0, per="step"), StepDecay(1)):
        assert (schedule.initial_lr, schedule.epochs, schedule.steps_per_epoch) == (0.0, 1, 1)
        assert schedule.lr(0) == 0.0


def test_start_names_a_bad_run_length():
    with pytest.raises(ValueError, match=r"^epochs must be an integer >= 1, got 0$"):
        Constant().start(0.1, 0)
    with pytest.raises(ValueError, match=r"^steps_per_epoch must be an integer >= 1, got 0$"):
        Constant().start(0.1, 3, 0)


def test_book_schedule_names_the_decay_types():
    from xnn.train.schedules import book_schedule

    assert type(book_schedule(0.0, None)) is Constant
    assert type(book_schedule(0.01, "linear")) is LinearDecay
    assert type(book_schedule(0.01, "exponential")) is ExponentialDecay
    with pytest.raises(ValueError, match=r"^decay_type must be one of \(None, 'linear', "
                                         r"'exponential'\), got 'cosine'$"):
        book_schedule(0.01, "cosine")
