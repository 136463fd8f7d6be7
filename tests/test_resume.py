"""Nothing lost: checkpoints of the whole training state, resumed bit for bit; divergence and
interrupts leave the model at its last good parameters."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from xnn import (
    Dense,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    available_backends,
    get_backend,
    to_numpy,
)
from xnn.nn.checkpoint import CheckpointError
from xnn.tools.testing import backend_tolerance
from xnn.train.checkpoints import read_training_checkpoint

EPOCHS = 10


def make(backend="numpy", dtype="float64", streams="independent", keep=0.8, lr=0.2):
    layers = [Dense(7, Tanh(), dropout=keep, weight_init="glorot"), Dense(3)]
    net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=5, backend=backend, dtype=dtype,
                        streams=streams)
    optimizer = SGDMomentum(lr, momentum=0.9, final_lr=0.05, decay_type="exponential")
    return net, optimizer, Trainer(net, optimizer, log=lambda line: None)


def data(seed=0, rows=60):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((rows, 6))
    return X, np.argmax(X @ rng.standard_normal((6, 3)), axis=1)


def fit(trainer, X, y, **kwargs):
    return trainer.fit(X, y, X[:20], y[:20], epochs=EPOCHS, eval_every=3, batch_size=8,
                       seed=11, **kwargs)


def outcome(net, optimizer, history):
    """Parameters, optimizer state and History (without timings) as host data."""
    return ([to_numpy(p) for p in net.params()], to_numpy(optimizer.velocity),
            optimizer.state.step,
            [{k: v for k, v in r.items() if k != "seconds"} for r in history.records],
            (history.best_epoch, history.best_val_loss, history.stopped_early))


def assert_same(ours, theirs, **tolerance):
    for a, b in zip(ours[0], theirs[0], strict=True):
        np.testing.assert_allclose(a, b, **tolerance) if tolerance else \
            np.testing.assert_array_equal(a, b)
    if tolerance:
        np.testing.assert_allclose(ours[1], theirs[1], **tolerance)
        return
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[2:] == theirs[2:]


@pytest.mark.parametrize("streams", ["independent", "book"])
@pytest.mark.parametrize("keep", [1.0, 0.8], ids=["no-dropout", "dropout"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resumed_from_any_epochs_checkpoint_equals_the_straight_run(backend, tmp_path, dtype,
                                                                    keep, streams):
    if backend.name == "cupy":
        pytest.skip("bit-exactness is promised on NumPy's kernels; cupy: see the parity test")
    X, y = data()
    net, optimizer, trainer = make(backend, dtype, streams, keep)
    path = tmp_path / "run.npz"

    def keep_copy(record):
        shutil.copy(path, tmp_path / f"epoch{record['epoch']}.npz")

    history = fit(trainer, X, y, checkpoint=path, on_epoch=keep_copy)
    straight = outcome(net, optimizer, history)
    last = len(history.records)
    for epoch in sorted({2, 4, last - 1}):
        net2, optimizer2, trainer2 = make(backend, dtype, streams, keep)
        history = fit(trainer2, X, y, checkpoint=tmp_path / "again.npz",
                      resume=tmp_path / f"epoch{epoch}.npz")
        assert_same(outcome(net2, optimizer2, history), straight)


def test_the_checkpoint_holds_the_whole_state(tmp_path):
    X, y = data()
    _net, _optimizer, trainer = make()
    fit(trainer, X, y, checkpoint=tmp_path / "run.npz")
    state, fingerprint = read_training_checkpoint(tmp_path / "run.npz")
    assert state.epoch == len(state.history.records) == EPOCHS or state.history.stopped_early
    assert set(state.params) == {"0.W", "0.B", "1.W", "1.B"}
    assert set(state.optimizer["arrays"]) == {"velocity"} and state.optimizer["step"] > 0
    assert set(state.streams) == {"order", "masks"} and 0 in state.streams["masks"]
    assert set(fingerprint) == {"data", "model", "optimizer", "fit"}
    assert set(fingerprint["data"]) == {"X_train", "y_train", "X_test", "y_test"}
    assert fingerprint["optimizer"]["momentum"] == 0.9 and fingerprint["fit"]["seed"] == 11


def test_checkpoint_every_and_evaluations_decide_when_it_is_written(tmp_path):
    X, y = data()
    written = []
    _net, _optimizer, trainer = make()
    path = tmp_path / "run.npz"
    trainer.fit(X, y, X, y, epochs=7, eval_every=3, batch_size=8, checkpoint=path,
                checkpoint_every=5, early_stopping=False,
                on_epoch=lambda r: written.append(read_training_checkpoint(path)[0].epoch
                                                  if path.exists() else None))
    assert written == [None, None, 3, 3, 5, 6, 7]  # evaluations 3, 6; every 5th; the end


@pytest.mark.parametrize("change", ["X_train", "y_test", "lr", "batch_size", "layers", "dtype"])
def test_resuming_another_run_is_refused_saying_what_differs(tmp_path, change):
    X, y = data()
    _net, _optimizer, trainer = make()
    fit(trainer, X, y, checkpoint=tmp_path / "run.npz")
    X2, y2 = X.copy(), y.copy()
    kwargs, build = {}, {}
    if change == "X_train":
        X2[5, 2] += 1e-9
    elif change == "y_test":
        y2[3] = (y2[3] + 1) % 3
    elif change == "lr":
        build["lr"] = 0.3
    elif change == "batch_size":
        kwargs["batch_size"] = 9
    elif change == "layers":
        build["keep"] = 0.7
    else:
        build["dtype"] = "float32"
    net2, _optimizer2, trainer2 = make(**build)
    before = [to_numpy(p) for p in net2.params()]
    with pytest.raises(ValueError, match="cannot resume") as error:
        trainer2.fit(X2, y2, X2[:20], y2[:20], **{"epochs": EPOCHS, "eval_every": 3,
                     "batch_size": 8, "seed": 11, **kwargs}, resume=tmp_path / "run.npz")
    expected = {"X_train": "X_train", "y_test": "y_test", "lr": "optimizer.lr",
                "batch_size": "fit.batch_size", "layers": "model.layers",
                "dtype": "model.dtype"}[change]
    assert expected in str(error.value)
    assert [to_numpy(p) for p in net2.params()] == before  # nothing touched


def test_resume_needs_the_file_unless_told_auto(tmp_path):
    X, y = data()
    net, optimizer, trainer = make()
    with pytest.raises(FileNotFoundError, match='resume="auto"'):
        fit(trainer, X, y, resume=tmp_path / "missing.npz")
    with pytest.raises(ValueError, match="needs checkpoint"):
        fit(trainer, X, y, resume="auto")
    fresh = outcome(net, optimizer, fit(trainer, X, y, checkpoint=tmp_path / "a.npz",
                                        resume="auto"))
    net2, optimizer2, trainer2 = make()
    assert_same(outcome(net2, optimizer2, fit(trainer2, X, y)), fresh)
    net3, optimizer3, trainer3 = make()  # "auto" with the file there: a finished run
    history = fit(trainer3, X, y, checkpoint=tmp_path / "a.npz", resume="auto")
    assert_same(outcome(net3, optimizer3, history), fresh)


def test_a_file_that_is_not_a_training_checkpoint_is_refused(tmp_path):
    X, y = data()
    net, _optimizer, trainer = make()
    fit(trainer, X, y)
    net.save(tmp_path / "model.npz")  # a model checkpoint, not a training one
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name in ("model.npz", "junk.npz"):
        with pytest.raises(CheckpointError):
            fit(make()[2], X, y, resume=tmp_path / name)


@pytest.mark.parametrize("other", ["array_api_strict", "cupy"])
def test_resumed_on_another_backend_agrees_within_parity_tolerance(tmp_path, other):
    if other not in available_backends():
        pytest.skip(f"{other} is not usable here")
    X, y = data()
    path = tmp_path / "run.npz"
    copies = []
    net, optimizer, trainer = make("numpy")
    straight = outcome(net, optimizer, fit(
        trainer, X, y, checkpoint=path,
        on_epoch=lambda r: copies.append(shutil.copy(path, tmp_path / "e4.npz"))
        if r["epoch"] == 4 else None))
    net2, optimizer2, trainer2 = make(other)
    moved = outcome(net2, optimizer2, fit(trainer2, X, y, resume=tmp_path / "e4.npz"))
    assert get_backend(other).owns(next(iter(net2.params())))
    steps = EPOCHS * 8
    assert_same(moved, straight, **backend_tolerance("cupy", "float64", steps))


def test_divergence_keeps_the_last_good_parameters(tmp_path):
    X, y = data()
    for eval_every, says in ((100, "from before epoch 4"), (3, "of epoch 3, the best")):
        net, optimizer, trainer = make()
        kept = {}

        def explode(record, net=net, optimizer=optimizer, kept=kept):
            if record["epoch"] == 3:
                kept["params"] = [to_numpy(p) for p in net.params()]
                optimizer.set_epoch = lambda epoch: setattr(optimizer, "lr", np.nan)  # epoch 4

        with pytest.raises(FloatingPointError, match=says):
            trainer.fit(X, y, X, y, epochs=6, eval_every=eval_every, batch_size=8,
                        on_epoch=explode, checkpoint=tmp_path / "run.npz")
        for ours, good in zip(net.params(), kept["params"], strict=True):
            np.testing.assert_array_equal(to_numpy(ours), good)
        assert read_training_checkpoint(tmp_path / "run.npz")[0].epoch == 3


def test_divergence_in_the_first_epoch_resets_the_model(monkeypatch):
    X, y = data()
    net, optimizer, trainer = make()
    monkeypatch.setattr(optimizer, "set_epoch", lambda epoch: setattr(optimizer, "lr", np.nan))
    with pytest.raises(FloatingPointError, match="reset"):
        fit(trainer, X, y)
    assert net.store is None


def test_an_interrupt_leaves_a_usable_model_and_a_resumable_file(tmp_path, monkeypatch):
    X, y = data()
    net, optimizer, trainer = make()
    states = []
    straight = outcome(net, optimizer, fit(trainer, X, y,
                                           on_epoch=lambda r: states.append(
                                               trainer.state_dict())))
    net2, optimizer2, trainer2 = make()
    step, calls = optimizer2.step, []

    def interrupted_step():
        calls.append(1)
        if len(calls) == 8 * 5 + 3:  # in the middle of epoch 6
            raise KeyboardInterrupt
        step()

    monkeypatch.setattr(optimizer2, "step", interrupted_step)
    with pytest.raises(KeyboardInterrupt):
        fit(trainer2, X, y, checkpoint=tmp_path / "run.npz", checkpoint_every=2)
    after_five = states[4]
    for ours, expected in zip(net2.params(), after_five.params.values(), strict=True):
        np.testing.assert_array_equal(to_numpy(ours), expected)
    assert read_training_checkpoint(tmp_path / "run.npz")[0].epoch == 5
    net3, optimizer3, trainer3 = make()
    assert_same(outcome(net3, optimizer3, fit(trainer3, X, y, resume=tmp_path / "run.npz")),
                straight)
