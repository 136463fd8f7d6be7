"""Tests written for surviving mutants of ``xnn.train.epoch`` and the schedules' defaults (see
docs/mutation/xnn.train.epoch.md): the divergence message, the epoch's progress bar, its
measured seconds, and a schedule's rate at an epoch's first step."""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np
import pytest
import tqdm.auto
from test_mutants_train import _data  # the same small 3-class task

from xnn import SGD, Dense, LinearDecay, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer
from xnn.train import epoch as epoch_module


def _trainer(optimizer=None):
    net = NeuralNetwork([Dense(6, Tanh(), weight_init="glorot"), Dense(3)],
                        SoftmaxCrossEntropy(), seed=3, dtype="float64")
    return Trainer(net, SGD(0.1) if optimizer is None else optimizer, log=lambda line: None)


def _message(which: str, epoch: int, loss: float) -> str:
    """The epoch's words (the trainer adds what became of the model after a "; ")."""
    return (f"training diverged: the {which} loss after epoch {epoch} is {loss}; "
            "try a smaller learning rate (or check the data's scale)")


def test_a_training_loss_that_is_not_finite_stops_the_fit_naming_its_epoch(monkeypatch):
    train_epoch = epoch_module.train_epoch
    losses = iter([0.5, float("nan")])

    def second_epoch_diverges(*args, **kwargs):
        train_epoch(*args, **kwargs)
        return next(losses)

    monkeypatch.setattr(epoch_module, "train_epoch", second_epoch_diverges)
    X, y = _data()
    with pytest.raises(FloatingPointError) as info:
        _trainer().fit(X, y, epochs=3, batch_size=8)
    assert str(info.value).startswith(_message("training", 2, float("nan")) + "; ")


def test_a_validation_loss_that_is_not_finite_stops_the_fit_naming_its_epoch(monkeypatch):
    monkeypatch.setattr(epoch_module, "evaluate", lambda *args: (float("inf"), 0.5))
    X, y = _data()
    with pytest.raises(FloatingPointError) as info:
        _trainer().fit(X, y, X[:8], y[:8], epochs=3, eval_every=1, batch_size=8)
    assert str(info.value).startswith(_message("validation", 1, float("inf")) + "; ")


class RecordingBar:
    """Stands in for tqdm: records how it was made, its updates and its closing."""

    made: ClassVar[list[RecordingBar]] = []

    def __init__(self, **kwargs):
        self.kwargs, self.updates, self.closed = kwargs, [], False
        RecordingBar.made.append(self)

    def update(self, n):
        self.updates.append(n)

    def close(self):
        self.closed = True


@pytest.mark.parametrize("verbose", [0, 1, 2])
def test_verbose_2_shows_a_bar_over_each_epochs_batches(monkeypatch, verbose):
    """At ``verbose=2`` each epoch gets a tqdm bar of its batches (3 here: 24 rows by 8), named
    ``epoch E/N``, updated once a batch, not left on screen, and closed; below 2, none."""
    RecordingBar.made = []
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    X, y = _data(24)
    _trainer().fit(X, y, epochs=2, batch_size=8, verbose=verbose)
    if verbose < 2:
        assert RecordingBar.made == []
        return
    assert [bar.kwargs for bar in RecordingBar.made] == [
        {"total": 3, "desc": f"epoch {e}/2", "unit": "batch", "leave": False} for e in (1, 2)]
    assert [bar.updates for bar in RecordingBar.made] == [[1, 1, 1], [1, 1, 1]]
    assert all(bar.closed for bar in RecordingBar.made)


def test_each_records_seconds_are_the_epochs_own_wall_time():
    X, y = _data(24)
    started = time.perf_counter()
    history = _trainer().fit(X, y, X[:8], y[:8], epochs=3, eval_every=1, batch_size=8)
    elapsed = time.perf_counter() - started
    seconds = [record["seconds"] for record in history.records]
    assert all(0 < s for s in seconds) and sum(seconds) <= elapsed


def test_a_schedules_rate_defaults_to_the_first_step_of_the_epoch():
    schedule = LinearDecay(0.01, per="step")
    schedule.start(0.1, epochs=3, steps_per_epoch=4)
    assert schedule.lr(1) == schedule.lr(1, 0) == pytest.approx(0.1 - 4 * 0.09 / 11)
    assert schedule.lr(1, 1) < schedule.lr(1)


def test_a_schedule_started_without_steps_has_one_step_an_epoch():
    schedule = LinearDecay(0.01, per="step")
    schedule.start(0.1, epochs=3)
    assert schedule.lr(2) == pytest.approx(0.01)  # the last of 3 periods: the final rate


def test_each_batch_is_gathered_into_the_epochs_own_buffers(monkeypatch):
    """train_epoch gathers every batch into the two arrays the epoch made once (no array is
    allocated per batch), and the fit is the same as with fresh arrays."""
    X, y = _data(24)
    trainer = _trainer()
    kernels = type(trainer.net.backend.kernels)
    take_rows, outs = kernels.take_rows, []

    def recording(self, x, indices, out=None):
        outs.append(out)
        return take_rows(self, x, indices, out=out)

    monkeypatch.setattr(kernels, "take_rows", recording)
    history = trainer.fit(X, y, epochs=2, batch_size=8)
    assert len(outs) == 2 * 2 * 3 and all(out is not None for out in outs)
    assert len({id(out.base if out.base is not None else out) for out in outs}) == 2
    monkeypatch.setattr(kernels, "take_rows", take_rows)
    fresh = _trainer().fit(X, y, epochs=2, batch_size=8)
    assert [r["train_loss"] for r in history.records] == [r["train_loss"] for r in fresh.records]


@pytest.mark.parametrize(("first", "second"), [((5, 6, "float64"), (5, 9, "float64")),
                                               ((5, 6, "float64"), (5, 6, "float32"))])
def test_one_optimizer_with_l2_decay_serves_a_model_of_another_shape_or_dtype(first, second):
    """SGD's weight-decay work array follows the parameters it serves: the second model, of
    other sizes or another dtype, trains exactly as with an optimizer of its own."""
    def model(inputs, hidden, dtype):
        rng = np.random.default_rng(1)
        X = rng.standard_normal((16, inputs))
        net = NeuralNetwork([Dense(hidden, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=2,
                            dtype=dtype)
        return net, X, np.arange(16) % 3

    shared = SGD(0.1, weight_decay=0.01)
    net, X, y = model(*first)
    Trainer(net, shared, log=lambda line: None).fit(X, y, epochs=1, batch_size=8)
    net, X, y = model(*second)
    Trainer(net, shared, log=lambda line: None).fit(X, y, epochs=1, batch_size=8)
    alone, X, y = model(*second)
    Trainer(alone, SGD(0.1, weight_decay=0.01), log=lambda line: None).fit(X, y, epochs=1,
                                                                       batch_size=8)
    for a, b in zip(net.params(), alone.params(), strict=True):
        np.testing.assert_array_equal(a, b)
