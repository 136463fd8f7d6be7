"""Callbacks: the hooks a fit calls and in which order, and the built-ins (early stopping,
model checkpoints, CSV and JSON Lines logs, a progress bar), also across a resumed fit."""

from __future__ import annotations

import csv
import json
import math
import shutil
import sys
from types import SimpleNamespace

import numpy as np
import pytest

import xnn
from xnn import (
    Callback,
    CSVLogger,
    Dense,
    EarlyStopping,
    JSONLogger,
    ModelCheckpoint,
    NeuralNetwork,
    ProgressBar,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)
from xnn.train.loggers import FIELDS

# validation losses of this task, epoch by epoch (eval_every=1, float64):
# 1.014 0.916 0.910 0.908 0.913 0.886 0.842 0.836 0.855 0.902 0.930 ...
# so the book's rule stops at epoch 5 (best 4), patience=1 at 10 (best 8), patience=2 at 11.


def task(seed=3, rows=48):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 6))
    y = np.argmax(X @ rng.standard_normal((6, 3)) + 1.5 * rng.standard_normal((rows, 3)), axis=1)
    return X[:32], y[:32], X[32:], y[32:]


def make(backend="numpy"):
    layers = [Dense(8, Tanh(), weight_init="glorot"), Dense(3, weight_init="glorot")]
    net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=1, backend=backend, dtype="float64")
    return net, Trainer(net, SGDMomentum(0.05, momentum=0.9), log=lambda line: None)


def fit(trainer, epochs=20, eval_every=1, **kwargs):
    kwargs.setdefault("early_stopping", False)
    return trainer.fit(*task(), epochs=epochs, eval_every=eval_every, batch_size=8, seed=1,
                       **kwargs)


def params(net):
    return [to_numpy(p) for p in net.params()]


def assert_same_params(ours, theirs, backend_name="numpy"):
    for a, b in zip(ours, theirs, strict=True):
        if backend_name == "cupy":  # bit-exactness is promised on NumPy's kernels
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)
        else:
            np.testing.assert_array_equal(a, b)


def without_seconds(history):
    return [{k: v for k, v in r.items() if k != "seconds"} for r in history.records]


class Recorder(Callback):
    """Writes down every hook it hears, as (name, hook, epoch)."""

    def __init__(self, name="r", log=None):
        self.name, self.log = name, [] if log is None else log

    def on_fit_start(self, trainer):
        self.log.append((self.name, "fit_start", None))

    def on_evaluate(self, trainer, record):
        self.log.append((self.name, "evaluate", record["epoch"]))

    def on_epoch_end(self, trainer, record):
        self.log.append((self.name, "epoch_end", record["epoch"]))

    def on_fit_end(self, trainer, history):
        self.log.append((self.name, "fit_end", len(history.records)))


# -- the contract ---------------------------------------------------------------------------
def test_hooks_come_in_order_for_every_callback(backend):
    log = []
    _net, trainer = make(backend)
    fit(trainer, epochs=5, eval_every=2, callbacks=[Recorder("a", log), Recorder("b", log)])
    expected = [("a", "fit_start", None), ("b", "fit_start", None)]
    for epoch in range(1, 6):
        for name in "ab":
            if epoch % 2 == 0:
                expected.append((name, "evaluate", epoch))
            expected.append((name, "epoch_end", epoch))
    expected += [("a", "fit_end", 5), ("b", "fit_end", 5)]
    assert log == expected


def test_a_callback_stops_the_fit_after_the_current_epoch():
    class StopAtThree(Callback):
        def on_epoch_end(self, trainer, record):
            trainer.stop_training = record["epoch"] == 3

    recorder = Recorder()
    _net, trainer = make()
    history = fit(trainer, epochs=10, callbacks=[StopAtThree(), recorder])
    assert [r["epoch"] for r in history.records] == [1, 2, 3]
    assert history.stopped_early
    assert recorder.log[-2:] == [("r", "epoch_end", 3), ("r", "fit_end", 3)]
    assert not fit(trainer, epochs=2).stopped_early  # the next fit starts afresh


def test_every_callback_is_exported():
    for name in ("Callback", "CSVLogger", "EarlyStopping", "JSONLogger", "ModelCheckpoint",
                 "ProgressBar"):
        assert name in xnn.__all__ and getattr(xnn, name).__name__ == name


# -- EarlyStopping ---------------------------------------------------------------------------
@pytest.mark.parametrize(("eval_every", "epochs"), [(1, 20), (2, 20), (3, 20), (3, 9)])
def test_early_stopping_callback_equals_the_books_rule(backend, eval_every, epochs):
    net, trainer = make(backend)
    books = fit(trainer, epochs, eval_every, early_stopping=True)
    net2, trainer2 = make(backend)
    ours = fit(trainer2, epochs, eval_every, early_stopping=False, callbacks=[EarlyStopping()])
    assert without_seconds(ours) == without_seconds(books)
    assert (ours.best_epoch, ours.best_val_loss, ours.stopped_early) == \
        (books.best_epoch, books.best_val_loss, books.stopped_early)
    assert ours.stopped_early == (epochs == 20)  # 3, 6 and 9 improve; 12 does not
    assert trainer2.best_loss == trainer.best_loss
    assert_same_params(params(net2), params(net), backend.name)


@pytest.mark.parametrize(("patience", "min_delta", "stop", "best"),
                         [(0, 0.0, 5, 4), (1, 0.0, 10, 8), (2, 0.0, 11, 8), (0, 0.01, 3, 3)])
def test_patience_and_min_delta_in_a_fit(patience, min_delta, stop, best):
    net, trainer = make()
    stopper = EarlyStopping(patience=patience, min_delta=min_delta)
    history = fit(trainer, callbacks=[stopper])
    assert len(history.records) == stop == stopper.stopped_epoch
    assert history.stopped_early and history.best_epoch == best == stopper.best_epoch
    # the model is the one of the best epoch: a run of `best` epochs gives the same parameters
    replay, replay_trainer = make()
    fit(replay_trainer, epochs=best, eval_every=100)
    assert_same_params(params(net), params(replay))


class FakeNet:
    """A model whose 'parameters' are the epoch they were saved at."""

    def __init__(self):
        self.epoch, self.loaded = 0, None

    def state_dict(self):
        return {"epoch": self.epoch}

    def load_state_dict(self, arrays):
        self.loaded = arrays["epoch"]


def hear(stopper, losses):
    """Feed ``losses`` as evaluations of epochs 1, 2, …; the epoch it stops at, or None."""
    trainer = SimpleNamespace(net=FakeNet(), stop_training=False)
    for epoch, loss in enumerate(losses, 1):
        trainer.net.epoch = epoch
        stopper.on_evaluate(trainer, {"epoch": epoch, "val_loss": loss})
        if trainer.stop_training:
            assert trainer.net.loaded == stopper.best_epoch
            return epoch
    return None


def test_patience_counts_evaluations_without_improvement():
    assert hear(EarlyStopping(), [1.0, 0.9, 0.9]) == 3  # equal is no improvement
    assert hear(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.93, 0.91]) == 5
    assert hear(EarlyStopping(patience=2), [1.0, 0.9, 0.95, 0.93, 0.89, 0.99]) is None
    stopper = EarlyStopping(patience=1)
    assert hear(stopper, [1.0, 0.8, 0.9, 0.85]) == 4 and stopper.best_epoch == 2


def test_min_delta_is_measured_from_the_last_improvement():
    # 0.97 and then 0.94 are each less than 0.05 below the previous loss, but 0.94 is more
    # than 0.05 below 1.0, the last improvement: patience starts over
    assert hear(EarlyStopping(patience=1, min_delta=0.05), [1.0, 0.97, 0.94, 0.93]) is None
    stopper = EarlyStopping(patience=1, min_delta=0.05)
    assert hear(stopper, [1.0, 0.97, 0.96]) == 3
    assert stopper.best_epoch == 3  # the lowest loss is what is restored


# -- ModelCheckpoint -------------------------------------------------------------------------
def test_model_checkpoint_keeps_the_best_model(backend, tmp_path):
    net, trainer = make(backend)
    best_only = ModelCheckpoint(tmp_path / "best.npz")
    every = ModelCheckpoint(tmp_path / "sub" / "last.npz", best_only=False)
    history = fit(trainer, epochs=12, callbacks=[best_only, every])
    assert not history.stopped_early and history.best_epoch == 8
    best = NeuralNetwork.load(tmp_path / "best.npz", backend=backend)
    replay, replay_trainer = make(backend)
    fit(replay_trainer, epochs=8, eval_every=100)
    assert_same_params(params(best), params(replay), backend.name)
    _X, _y, X_val, y_val = task()
    evaluated = Trainer(best, SGDMomentum(0.1)).evaluate(best.as_features(X_val),
                                                         best.as_targets(y_val, len(y_val)))
    assert evaluated == pytest.approx(history.best_val_loss, rel=1e-12)
    last = NeuralNetwork.load(tmp_path / "sub" / "last.npz", backend=backend)
    assert_same_params(params(last), params(net), backend.name)  # after the last epoch


def test_model_checkpoint_with_early_stopping_saves_the_restored_model(tmp_path):
    net, trainer = make()
    fit(trainer, early_stopping=True, callbacks=[ModelCheckpoint(tmp_path / "m.npz"),
                                                 ModelCheckpoint(tmp_path / "l.npz", False)])
    for name in ("m.npz", "l.npz"):
        assert_same_params(params(NeuralNetwork.load(tmp_path / name)), params(net))


# -- the loggers -----------------------------------------------------------------------------
def test_csv_logger_writes_a_row_per_epoch(backend, tmp_path):
    _net, trainer = make(backend)
    path = tmp_path / "logs" / "run.csv"  # the folder is made
    history = fit(trainer, epochs=5, eval_every=2, callbacks=[CSVLogger(path)])
    with open(path, newline="") as file:
        rows = list(csv.reader(file))
    assert rows[0] == list(FIELDS) and len(rows) == 6
    for row, record in zip(rows[1:], history.records, strict=True):
        assert int(row[0]) == record["epoch"]
        assert [float(x) for x in (row[1], row[2], row[4])] == \
            [record["lr"], record["train_loss"], record["seconds"]]
        assert row[3] == ("" if record["val_loss"] is None else repr(record["val_loss"]))
    assert [p.name for p in path.parent.iterdir()] == ["run.csv"]  # no temporary file left


def test_json_logger_writes_a_line_per_epoch(tmp_path):
    _net, trainer = make()
    path = tmp_path / "run.jsonl"
    history = fit(trainer, epochs=5, eval_every=2, callbacks=[JSONLogger(path)])
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == \
        [{f: r[f] for f in FIELDS} for r in history.records]
    assert '"val_loss": null' in lines[0]


def test_json_logger_writes_nan_and_infinity_as_null(tmp_path):
    logger = JSONLogger(tmp_path / "run.jsonl")
    logger.on_epoch_end(None, {"epoch": 1, "lr": math.nan, "train_loss": math.inf,
                               "val_loss": -math.inf, "seconds": np.float32(0.5)})
    line = (tmp_path / "run.jsonl").read_text()
    assert json.loads(line) == {"epoch": 1, "lr": None, "train_loss": None, "val_loss": None,
                                "seconds": 0.5}


def test_a_crash_leaves_the_rows_of_every_finished_epoch(tmp_path):
    class Crash(Callback):
        def on_epoch_end(self, trainer, record):
            if record["epoch"] == 3:
                raise RuntimeError("boom")

    _net, trainer = make()
    with pytest.raises(RuntimeError, match="boom"):
        fit(trainer, callbacks=[CSVLogger(tmp_path / "a.csv"), JSONLogger(tmp_path / "a.jsonl"),
                                Crash()])
    assert len((tmp_path / "a.csv").read_text().splitlines()) == 1 + 3
    assert len((tmp_path / "a.jsonl").read_text().splitlines()) == 3


def test_progress_bar_shows_the_losses(capsys):
    pytest.importorskip("tqdm")
    _net, trainer = make()
    bar = ProgressBar(mininterval=0)
    fit(trainer, epochs=4, eval_every=2, callbacks=[bar])
    err = capsys.readouterr().err
    assert "train_loss=" in err and "val_loss=" in err and "/4" in err
    assert bar.bar is None  # closed at the end


def test_progress_bar_without_tqdm_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm now raises ImportError
    with pytest.raises(ImportError, match="pip install tqdm"):
        ProgressBar()


# -- bad arguments ---------------------------------------------------------------------------
@pytest.mark.parametrize("patience", [-1, 1.5, True, "2", None])
def test_bad_patience(patience):
    with pytest.raises(ValueError, match="patience"):
        EarlyStopping(patience=patience)


@pytest.mark.parametrize("min_delta", [-0.1, math.nan, math.inf, "0", None])
def test_bad_min_delta(min_delta):
    with pytest.raises(ValueError, match="min_delta"):
        EarlyStopping(min_delta=min_delta)


@pytest.mark.parametrize("make_logger", [CSVLogger, JSONLogger, ModelCheckpoint])
def test_bad_paths(tmp_path, make_logger):
    (tmp_path / "file").write_text("")
    for path in (tmp_path, "", tmp_path / "file" / "log", tmp_path / "file" / "a" / "b", 3, None):
        with pytest.raises(ValueError, match="path"):
            make_logger(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing made or written


def test_bad_best_only(tmp_path):
    with pytest.raises(ValueError, match="best_only"):
        ModelCheckpoint(tmp_path / "m.npz", best_only="yes")


# -- a resumed fit ---------------------------------------------------------------------------
def test_callbacks_go_on_across_a_resumed_fit(backend, tmp_path):
    path = tmp_path / "run.npz"

    def keep_copy(record):
        shutil.copy(path, tmp_path / f"epoch{record['epoch']}.npz")

    def callbacks(name):
        return [EarlyStopping(patience=1), CSVLogger(tmp_path / f"{name}.csv"),
                JSONLogger(tmp_path / f"{name}.jsonl"),
                ModelCheckpoint(tmp_path / f"{name}.best.npz"), Recorder()]

    net, trainer = make(backend)
    straight = callbacks("straight")
    history = fit(trainer, checkpoint=path, on_epoch=keep_copy, callbacks=straight)
    assert history.stopped_early and (history.best_epoch, len(history.records)) == (8, 10)
    # from epoch 9: the best (epoch 8) and one evaluation without improvement are before it
    net2, trainer2 = make(backend)
    resumed = callbacks("resumed")
    history2 = fit(trainer2, checkpoint=tmp_path / "again.npz",
                   resume=tmp_path / "epoch9.npz", callbacks=resumed)
    assert without_seconds(history2) == without_seconds(history)
    assert (history2.best_epoch, history2.stopped_early) == (8, True)
    assert_same_params(params(net2), params(net), backend.name)
    recorder = resumed[-1]
    assert recorder.log == [("r", "fit_start", None), ("r", "evaluate", 10),
                            ("r", "epoch_end", 10), ("r", "fit_end", 10)]

    def drop_seconds(rows):
        return [row[:4] for row in rows]

    for suffix in ("csv", "jsonl"):
        text = (tmp_path / f"straight.{suffix}").read_text()
        again = (tmp_path / f"resumed.{suffix}").read_text()
        if suffix == "csv":
            assert drop_seconds(csv.reader(again.splitlines())) == \
                drop_seconds(csv.reader(text.splitlines()))
        else:
            assert [{**json.loads(line), "seconds": 0} for line in again.splitlines()] == \
                [{**json.loads(line), "seconds": 0} for line in text.splitlines()]
    # no new best after the resume: the resumed run's checkpoint was not written
    assert not (tmp_path / "resumed.best.npz").exists()
    assert_same_params(params(NeuralNetwork.load(tmp_path / "straight.best.npz")), params(net))


def test_on_fit_start_is_called_once_per_fit(tmp_path):
    recorder, states = Recorder(), []
    _net, trainer = make()
    fit(trainer, epochs=4, on_epoch=lambda r: states.append(trainer.state_dict()),
        callbacks=[recorder])
    logger = CSVLogger(tmp_path / "log.csv")
    fit(trainer, epochs=3, restart=False, callbacks=[recorder, logger])  # a new run: afresh
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 3
    _net2, trainer2 = make()
    fit(trainer2, epochs=4, state=states[1], callbacks=[recorder, logger])  # resumed: 3, 4
    assert len((tmp_path / "log.csv").read_text().splitlines()) == 1 + 4
    starts = [i for i, event in enumerate(recorder.log) if event[1] == "fit_start"]
    assert len(starts) == 3
    assert [e[2] for e in recorder.log[starts[2]:] if e[1] == "epoch_end"] == [3, 4]
