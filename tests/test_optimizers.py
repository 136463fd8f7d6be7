"""Update rules and learning-rate decay, on every backend."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from xnn import SGD, Dense, MeanSquaredError, NeuralNetwork, SGDMomentum, Trainer, to_numpy
from xnn.tools.testing import backend_tolerance
from xnn.train.schedules import ExponentialDecay, LinearDecay


def _net(backend, seed=0):
    return NeuralNetwork([Dense(3)], MeanSquaredError(), seed=seed, backend=backend,
                         dtype="float64")


def _step(net, optimizer, X, y):
    net.train_batch(X, y)
    grads = [to_numpy(g) for g in net.param_grads()]
    optimizer.step()
    return grads


def test_sgd_rule(backend, rng):
    X, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    net, optimizer = _net(backend), SGD(lr=0.1)
    optimizer.net = net
    net.forward(X)
    before = [to_numpy(p) for p in net.params()]
    grads = _step(net, optimizer, X, y)
    tolerance = backend_tolerance(backend, "float64", rtol=1e-13)  # CUDA may fuse into an FMA
    for param, old, grad in zip(net.params(), before, grads, strict=True):
        np.testing.assert_allclose(to_numpy(param), old - 0.1 * grad, **tolerance)


def test_momentum_rule_over_two_steps(backend, rng):
    """v₁ = lr·g₁, θ₁ = θ₀ − v₁;  v₂ = μ·v₁ + lr·g₂, θ₂ = θ₁ − v₂."""
    X, y = rng.standard_normal((4, 2)), rng.standard_normal((4, 3))
    net, optimizer = _net(backend), SGDMomentum(lr=0.1, momentum=0.9)
    optimizer.net = net
    net.forward(X)
    theta0 = [to_numpy(p) for p in net.params()]
    g1 = _step(net, optimizer, X, y)
    g2 = _step(net, optimizer, X, y)
    tolerance = backend_tolerance(backend, "float64", 2, rtol=1e-12)
    for param, t0, a, b in zip(net.params(), theta0, g1, g2, strict=True):
        v1 = 0.1 * a
        v2 = 0.9 * v1 + 0.1 * b
        np.testing.assert_allclose(to_numpy(param), t0 - v1 - v2, **tolerance)


def _started(schedule, lr, epochs):
    schedule.start(lr, epochs)
    return schedule


def test_linear_decay_schedule():
    schedule = _started(LinearDecay(0.05), 0.15, 5)
    assert [schedule(k) for k in range(5)] == pytest.approx([0.15, 0.125, 0.1, 0.075, 0.05])
    assert _started(LinearDecay(0.05), 0.15, 1)(0) == 0.15


def test_exponential_decay_schedule():
    schedule = _started(ExponentialDecay(0.05), 0.2, 3)
    assert [schedule(k) for k in range(3)] == pytest.approx([0.2, 0.1, 0.05])
    assert _started(ExponentialDecay(0.05), 0.2, 1)(0) == 0.2


@pytest.mark.parametrize("decay_type", ["linear", "exponential"])
def test_each_fit_decays_from_lr_to_final_lr(backend, rng, decay_type):
    """The last of N epochs trains at final_lr; a second fit starts again from lr."""
    X, y = rng.standard_normal((12, 2)), rng.standard_normal((12, 3))
    optimizer = SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type=decay_type)
    trainer = Trainer(_net(backend), optimizer)
    for _ in range(2):
        history = trainer.fit(X, y, X, y, epochs=4, eval_every=10, batch_size=5, verbose=False)
        rates = [r["lr"] for r in history.records]
        assert rates[0] == pytest.approx(0.2) and rates[-1] == pytest.approx(0.05)
        assert all(a > b for a, b in itertools.pairwise(rates))
    single = trainer.fit(X, y, X, y, epochs=1, eval_every=1, batch_size=5, verbose=False)
    assert single.records[0]["lr"] == pytest.approx(0.2)


def test_constant_rate_without_decay(backend, rng):
    X, y = rng.standard_normal((12, 2)), rng.standard_normal((12, 3))
    history = Trainer(_net(backend), SGD(0.01, final_lr=0.001)).fit(
        X, y, X, y, epochs=3, eval_every=10, verbose=False)
    assert [r["lr"] for r in history.records] == [0.01] * 3


@pytest.mark.parametrize("make", [lambda: SGD(0.01), lambda: SGDMomentum(0.01, momentum=0.9)],
                         ids=["sgd", "momentum"])
def test_optimizers_converge_on_a_least_squares_problem(backend, rng, make):
    """A linear model fitted by each optimizer reaches the closed-form least-squares loss."""
    X = rng.standard_normal((200, 4))
    y = X @ rng.standard_normal((4, 3)) + 0.1 * rng.standard_normal((200, 3))
    net = _net(backend)
    history = Trainer(net, make()).fit(X, y, X, y, epochs=60, eval_every=60, batch_size=20,
                                       early_stopping=False, verbose=False)
    design = np.hstack([X, np.ones((200, 1))])
    residual = y - design @ np.linalg.lstsq(design, y, rcond=None)[0]
    best = (residual**2).sum() / 200
    assert history.records[-1]["val_loss"] == pytest.approx(best, rel=0.02)


def test_restart_resets_momentum_and_continuing_keeps_it(backend, rng):
    X, y = rng.standard_normal((10, 2)), rng.standard_normal((10, 3))
    optimizer = SGDMomentum(0.05, momentum=0.9)
    trainer = Trainer(_net(backend), optimizer)
    trainer.fit(X, y, X, y, epochs=2, eval_every=10, verbose=False)
    assert optimizer.velocity is not None
    kept = to_numpy(optimizer.velocity)
    trainer.fit(X, y, X, y, epochs=1, eval_every=10, restart=False, verbose=False)
    assert not np.allclose(to_numpy(optimizer.velocity), kept)
    first = trainer.fit(X, y, X, y, epochs=2, eval_every=10, verbose=False)
    second = trainer.fit(X, y, X, y, epochs=2, eval_every=10, verbose=False)
    assert first.train_loss == second.train_loss  # restart=True: same start, same state


def test_a_step_before_the_first_forward_pass_says_why(backend):
    optimizer = SGDMomentum(0.1)
    optimizer.net = _net(backend)
    with pytest.raises(RuntimeError, match="no parameters yet"):
        optimizer.step()


def test_a_step_after_reset_parameters_does_not_touch_the_old_arrays(backend, rng):
    net, optimizer = _net(backend), SGD(0.1)
    optimizer.net = net
    net.train_batch(rng.standard_normal((4, 2)), rng.standard_normal((4, 3)))
    net.reset_parameters()
    with pytest.raises(RuntimeError, match="no parameters yet"):
        optimizer.step()
