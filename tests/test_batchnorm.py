"""Batch normalization (``Dense(batch_norm=True)``) and the He and LeCun initializations.

BN is checked against float64 central differences, a hand computation and, where torch is
installed, ``torch.nn.BatchNorm1d`` itself; its running statistics live in the store's buffers,
which training, moving, saving, pickling, resuming and early stopping carry along and no
optimizer touches.
"""

from __future__ import annotations

import math
import pickle
import shutil

import numpy as np
import pytest

from xnn import (
    SGD,
    BiasAdd,
    Dense,
    Linear,
    NeuralNetwork,
    ReLU,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    WeightMultiply,
    to_numpy,
)
from xnn.nn.batchnorm import BatchNormalize, Scale
from xnn.nn.layers import init_scale
from xnn.tools.testing import assert_backend_close, backend_tolerance, numerical_gradient

EPS = 1e-5
TORCH_MESSAGE = "Expected more than 1 value per channel when training"


# -- the operations ------------------------------------------------------------------------
def _bn_ops(backend, gamma, beta, mean=None, var=None):
    """BatchNormalize → Scale(γ) → BiasAdd(β) on ``backend``, owning their arrays."""
    n = gamma.shape[1]
    mean = np.zeros((1, n)) if mean is None else mean
    var = np.ones((1, n)) if var is None else var
    return [BatchNormalize(backend.asarray(mean), backend.asarray(var)),
            Scale(backend.asarray(gamma)), BiasAdd(backend.asarray(beta))]


def _forward(ops, x, inference=False):
    for op in ops:
        x = op.forward(x, inference)
    return x


def _backward(ops, grad):
    for op in reversed(ops):
        grad = op.backward(grad)
    return grad


@pytest.mark.parametrize("inference", [False, True], ids=["train", "inference"])
def test_gradients_against_central_differences(backend, rng, inference):
    """dx, dγ and dβ of L = Σ BN(x)·G, float64, with batch or running statistics."""
    x = rng.standard_normal((6, 4)) * 3 + 1
    gamma, beta = rng.uniform(0.5, 2, (1, 4)), rng.standard_normal((1, 4))
    mean, var = rng.standard_normal((1, 4)), rng.uniform(0.5, 2, (1, 4))
    G = rng.standard_normal((6, 4))

    def loss(x_=x, gamma_=gamma, beta_=beta):
        ops = _bn_ops(backend, gamma_, beta_, mean, var)
        return float(np.sum(to_numpy(_forward(ops, backend.asarray(x_), inference)) * G))

    ops = _bn_ops(backend, gamma, beta, mean, var)
    _forward(ops, backend.asarray(x), inference)
    dx = _backward(ops, backend.asarray(G))
    expected = {"x": numerical_gradient(lambda v: loss(x_=v), x),
                "gamma": numerical_gradient(lambda v: loss(gamma_=v), gamma),
                "beta": numerical_gradient(lambda v: loss(beta_=v), beta)}
    for name, analytic in (("x", dx), ("gamma", ops[1].param_grad), ("beta", ops[2].param_grad)):
        assert_backend_close(analytic, backend.asarray(expected[name]), rtol=1e-6, atol=1e-8)


def test_inference_uses_the_running_statistics(backend, rng):
    x = rng.standard_normal((5, 3))
    gamma, beta = rng.uniform(0.5, 2, (1, 3)), rng.standard_normal((1, 3))
    mean, var = rng.standard_normal((1, 3)), rng.uniform(0.5, 2, (1, 3))
    ops = _bn_ops(backend, gamma, beta, mean, var)
    out = _forward(ops, backend.asarray(x), inference=True)
    expected = (x - mean) / np.sqrt(var + EPS) * gamma + beta
    assert_backend_close(out, backend.asarray(expected), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(to_numpy(ops[0].running_mean), mean)  # not updated
    np.testing.assert_array_equal(to_numpy(ops[0].running_var), var)


def test_training_normalizes_with_the_batch_and_updates_the_running_statistics(backend, rng):
    x = rng.standard_normal((8, 3)) * 2 + 5
    op = BatchNormalize(backend.asarray(np.zeros((1, 3))), backend.asarray(np.ones((1, 3))))
    out = to_numpy(op.forward(backend.asarray(x)))
    mean, biased = x.mean(axis=0, keepdims=True), x.var(axis=0, keepdims=True)
    unbiased = x.var(axis=0, ddof=1, keepdims=True)
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(biased + EPS), rtol=1e-12)
    np.testing.assert_allclose(to_numpy(op.running_mean), 0.1 * mean, rtol=1e-12)
    np.testing.assert_allclose(to_numpy(op.running_var), 0.9 + 0.1 * unbiased, rtol=1e-12)


def test_one_row_in_training_is_refused_before_any_work(backend):
    op = BatchNormalize(backend.asarray(np.zeros((1, 3))), backend.asarray(np.ones((1, 3))))
    with pytest.raises(ValueError, match=TORCH_MESSAGE):
        op.forward(backend.asarray(np.ones((1, 3))))
    np.testing.assert_array_equal(to_numpy(op.running_mean), np.zeros((1, 3)))
    op.forward(backend.asarray(np.ones((1, 3))), inference=True)  # inference: fine


def test_bad_arguments_name_themselves(backend):
    row = backend.asarray(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="running_mean must have shape"):
        BatchNormalize(backend.asarray(np.zeros(3)), row)
    with pytest.raises(ValueError, match="running_var has shape"):
        BatchNormalize(row, backend.asarray(np.zeros((1, 4))))
    with pytest.raises(ValueError, match="momentum"):
        BatchNormalize(row, row, momentum=1.5)
    with pytest.raises(ValueError, match="eps"):
        BatchNormalize(row, row, eps=0.0)
    with pytest.raises(ValueError, match="gamma must have shape"):
        Scale(backend.asarray(np.zeros((2, 3))))
    with pytest.raises(TypeError, match="batch_norm must be True or False"):
        Dense(3, batch_norm="yes")


# -- against torch.nn.BatchNorm1d ------------------------------------------------------------
def test_matches_torch_batchnorm1d(backend, rng):
    """Three training batches (outputs, gradients, running statistics), then inference."""
    torch = pytest.importorskip("torch")
    n = 5
    gamma, beta = rng.uniform(0.5, 2, (1, n)), rng.standard_normal((1, n))
    reference = torch.nn.BatchNorm1d(n, eps=EPS, momentum=0.1).double()
    with torch.no_grad():
        reference.weight.copy_(torch.from_numpy(gamma[0]))
        reference.bias.copy_(torch.from_numpy(beta[0]))
    net = NeuralNetwork([Dense(n, Linear(), batch_norm=True)], SoftmaxCrossEntropy(),
                        backend=backend, dtype="float64")
    net.forward(np.zeros((2, n)), inference=True)  # build, then W = I, γ, β as torch's
    W, g, b = net.params()
    W[...], g[...], b[...] = (backend.asarray(a) for a in (np.eye(n), gamma, beta))
    ops = net.layers[0].operations[1:]
    tolerance = backend_tolerance(backend, "float64", rtol=1e-6, atol=1e-9)
    for _ in range(3):
        x, G = rng.standard_normal((7, n)) * 3 + 2, rng.standard_normal((7, n))
        x_torch = torch.tensor(x, requires_grad=True)
        reference.zero_grad()
        out_torch = reference.train()(x_torch)
        (out_torch * torch.from_numpy(G)).sum().backward()
        np.testing.assert_allclose(to_numpy(net.forward(x)), out_torch.detach().numpy(),
                                   **tolerance)
        dx = _backward(ops, backend.asarray(G))
        for ours, theirs in ((dx, x_torch.grad), (ops[1].param_grad, reference.weight.grad),
                             (ops[2].param_grad, reference.bias.grad)):
            np.testing.assert_allclose(to_numpy(ours).ravel(), theirs.numpy().ravel(),
                                       **tolerance)
    state = net.state_dict()
    np.testing.assert_allclose(state["0.running_mean"][0], reference.running_mean.numpy(),
                               **tolerance)
    np.testing.assert_allclose(state["0.running_var"][0], reference.running_var.numpy(),
                               **tolerance)
    x = rng.standard_normal((4, n))
    expected = reference.eval()(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(to_numpy(net.forward(x, inference=True)), expected, **tolerance)


# -- the layer ---------------------------------------------------------------------------------
def _net(backend, dtype="float64", seed=3, dropout=1.0):
    layers = [Dense(8, Tanh(), batch_norm=True, dropout=dropout, weight_init="he"),
              Dense(3, weight_init="glorot")]
    return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=seed, backend=backend, dtype=dtype)


def _task(rng, rows=400, features=6, classes=3):
    X = rng.standard_normal((rows, features)) * 4 + 3  # off-centre and wide: BN's job
    return X, np.argmax((X - 3) @ rng.standard_normal((features, classes)), axis=1)


def test_layout_initial_values_and_operations(backend, rng, monkeypatch):
    monkeypatch.setattr(backend.kernels, "fuses_activations", True)  # never for BN layers
    net = _net(backend, dropout=0.8)
    net.forward(rng.standard_normal((4, 6)), inference=True)
    store = net.store
    assert list(store.names()) == ["0.W", "0.gamma", "0.beta", "1.W", "1.B"]
    assert list(store.buffer_slots) == ["0.running_mean", "0.running_var"]
    W, gamma, beta = (to_numpy(p) for p in net.layers[0].params)
    assert W.shape == (6, 8) and gamma.shape == beta.shape == (1, 8)
    np.testing.assert_array_equal(gamma, np.ones((1, 8)))
    np.testing.assert_array_equal(beta, np.zeros((1, 8)))
    state = net.state_dict()
    np.testing.assert_array_equal(state["0.running_mean"], np.zeros((1, 8)))
    np.testing.assert_array_equal(state["0.running_var"], np.ones((1, 8)))
    kinds = [type(op).__name__ for op in net.layers[0].operations]
    assert kinds == ["WeightMultiply", "BatchNormalize", "Scale", "BiasAdd", "Tanh", "Dropout"]
    assert [type(op).__name__ for op in net.layers[1].operations] == [
        "WeightMultiply", "BiasActivation"]  # the other layer still fuses
    assert repr(net.layers[0]) == ("Dense(neurons=8, activation=Tanh(), dropout=0.8, "
                                   "weight_init='he', batch_norm=True)")


def test_w_is_drawn_as_without_batch_norm(rng):
    X = rng.standard_normal((4, 6))
    plain = NeuralNetwork([Dense(8, weight_init="he")], SoftmaxCrossEntropy(), seed=3)
    normed = NeuralNetwork([Dense(8, weight_init="he", batch_norm=True)], SoftmaxCrossEntropy(),
                           seed=3)
    plain.forward(X)
    normed.forward(X)
    np.testing.assert_array_equal(to_numpy(next(normed.params())), to_numpy(next(plain.params())))


def test_a_one_row_training_batch_is_refused_before_any_work(backend, rng):
    net = _net(backend, dropout=0.8)
    X, y = rng.standard_normal((1, 6)), np.array([1])
    with pytest.raises(ValueError, match=TORCH_MESSAGE + ".*X has 1 row"):
        net.train_batch(X, y)
    assert net.store is None  # not even built
    net.train_batch(rng.standard_normal((4, 6)), rng.integers(0, 3, 4))
    before, masks = net.state_dict(), net.mask_streams()[0].state_dict()
    with pytest.raises(ValueError, match=TORCH_MESSAGE):
        net.train_batch(X, y)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    assert net.mask_streams()[0].state_dict() == masks  # no mask drawn
    assert net.forward(X, inference=True).shape == (1, 3)


def test_an_optimizer_step_changes_the_values_but_not_the_buffers(backend, rng):
    net = _net(backend)
    optimizer = SGDMomentum(0.1)
    optimizer.net = net
    net.train_batch(rng.standard_normal((8, 6)), rng.integers(0, 3, 8))
    values, buffers = to_numpy(net.store.values), to_numpy(net.store.buffers)
    assert np.any(buffers != np.r_[np.zeros(8), np.ones(8)])  # the forward pass updated them
    optimizer.step()
    assert np.any(to_numpy(net.store.values) != values)
    np.testing.assert_array_equal(to_numpy(net.store.buffers), buffers)


def test_a_model_with_batch_norm_learns(backend, rng):
    X, y = _task(rng, rows=1200)
    net = _net(backend, dtype="float32")
    Trainer(net, SGDMomentum(0.1, momentum=0.9), log=lambda line: None).fit(
        X[:1000], y[:1000], X[1000:], y[1000:], epochs=8, eval_every=4, batch_size=32)
    predicted = np.argmax(to_numpy(net.forward(X[1000:], inference=True)), axis=1)
    assert np.mean(predicted == y[1000:]) > 0.9


def _trained(backend, rng, epochs=2):
    X, y = _task(rng, rows=120)
    net = _net(backend, dropout=0.9)
    Trainer(net, SGD(0.05), log=lambda line: None).fit(X, y, X, y, epochs=epochs,
                                                       eval_every=5, batch_size=16)
    return net, X, y


def test_moves_to_another_backend_with_its_buffers(backend, rng):
    net, X, y = _trained("numpy", rng)
    before = net.state_dict()
    expected = to_numpy(net.forward(X, inference=True))
    net.to(backend)
    assert backend.owns(net.store.buffers)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])
    np.testing.assert_allclose(to_numpy(net.forward(X, inference=True)), expected,
                               **backend_tolerance(backend, "float64", rtol=1e-12, atol=1e-12))
    net.train_batch(X[:16], y[:16])  # and trains there, updating the moved buffers
    assert np.any(net.state_dict()["0.running_mean"] != before["0.running_mean"])


@pytest.mark.parametrize("how", ["save", "pickle"])
def test_round_trips_through_save_and_pickle(backend, rng, tmp_path, how):
    net, X, _ = _trained(backend, rng)
    if how == "save":
        net.save(tmp_path / "m.npz")
        twin = NeuralNetwork.load(tmp_path / "m.npz", backend=backend)
    else:
        twin = pickle.loads(pickle.dumps(net))
    assert repr(twin) == repr(net)
    saved, loaded = net.state_dict(), twin.state_dict()
    assert list(loaded) == list(saved) and "0.running_var" in loaded
    for name, value in saved.items():
        np.testing.assert_array_equal(loaded[name], value)
    np.testing.assert_array_equal(to_numpy(twin.forward(X, inference=True)),
                                  to_numpy(net.forward(X, inference=True)))


def test_resumes_bit_for_bit_with_its_buffers(backend, rng, tmp_path):
    if backend.name == "cupy":
        pytest.skip("bit-exactness is promised on NumPy's kernels")
    X, y = _task(rng, rows=96)
    path = tmp_path / "run.npz"

    def run(**kwargs):
        net = _net(backend, dropout=0.8)
        trainer = Trainer(net, SGDMomentum(0.05, momentum=0.9), log=lambda line: None)
        history = trainer.fit(X, y, X[:32], y[:32], epochs=6, eval_every=2, batch_size=16,
                              **kwargs)
        return net.state_dict(), [{k: v for k, v in r.items() if k != "seconds"}
                                  for r in history.records]

    straight = run(checkpoint=path, on_epoch=lambda r: shutil.copy(
        path, tmp_path / "e3.npz") if r["epoch"] == 3 else None)
    resumed = run(resume=tmp_path / "e3.npz")
    assert resumed[1] == straight[1]
    assert list(resumed[0]) == list(straight[0])
    for name, value in straight[0].items():
        np.testing.assert_array_equal(resumed[0][name], value)


def test_early_stopping_restores_the_best_buffers(backend):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)  # noise: it overfits soon
    X_val, y_val = rng.standard_normal((40, 6)), rng.integers(0, 3, 40)
    net = _net(backend)
    kept = {}

    def keep(record):
        kept[record["epoch"]] = net.state_dict()

    history = Trainer(net, SGDMomentum(0.2, momentum=0.9), log=lambda line: None).fit(
        X, y, X_val, y_val, epochs=40, eval_every=1, batch_size=8, on_epoch=keep)
    assert history.stopped_early and history.best_epoch < len(history.records)
    best = kept[history.best_epoch]
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, best[name])


# -- He and LeCun initialization -----------------------------------------------------------
@pytest.mark.parametrize(("init", "variance"), [("he", 2 / 784), ("lecun", 1 / 784),
                                                ("glorot", 2 / (784 + 500)), ("standard", 1.0)])
def test_initial_weights_have_the_scale_of_their_rule(init, variance):
    net = NeuralNetwork([Dense(500, ReLU(), weight_init=init)], SoftmaxCrossEntropy(), seed=9)
    net.forward(np.zeros((1, 784)), inference=True)
    W, B = (to_numpy(p) for p in net.params())
    assert init_scale(init, 784, 500) == pytest.approx(math.sqrt(variance), rel=1e-12)
    assert W.std() == pytest.approx(math.sqrt(variance), rel=0.02)
    assert abs(W.mean()) < 0.01 * math.sqrt(variance)
    assert B.std() == pytest.approx(math.sqrt(variance), rel=0.15)  # B as for glorot


def test_every_rule_draws_the_same_numbers_scaled():
    """One stream per layer: the rules differ in the scale only (standard and glorot draws are
    unchanged; tests/test_fingerprints.py checks the book's experiments bit for bit)."""
    drawn = {}
    for init in ("standard", "glorot", "he", "lecun"):
        net = NeuralNetwork([Dense(5, weight_init=init)], SoftmaxCrossEntropy(), seed=4)
        net.forward(np.zeros((1, 7)), inference=True)
        drawn[init] = [to_numpy(p) for p in net.params()]
    for init in ("glorot", "he", "lecun"):
        for ours, standard in zip(drawn[init], drawn["standard"], strict=True):
            np.testing.assert_allclose(ours, standard * init_scale(init, 7, 5), rtol=1e-6)
    with pytest.raises(ValueError, match=r"weight_init must be one of .*'he', 'lecun'"):
        Dense(3, weight_init="kaiming")


def test_the_weight_gradient_through_batch_norm(backend, rng):
    """A BN layer's dW: WeightMultiply then the BN operations, against central differences."""
    x, W = rng.standard_normal((6, 3)), rng.standard_normal((3, 4))
    G = rng.standard_normal((6, 4))
    gamma, beta = rng.uniform(0.5, 2, (1, 4)), rng.standard_normal((1, 4))

    def loss(value):
        ops = [WeightMultiply(backend.asarray(value)), *_bn_ops(backend, gamma, beta)]
        return float(np.sum(to_numpy(_forward(ops, backend.asarray(x))) * G))

    ops = [WeightMultiply(backend.asarray(W)), *_bn_ops(backend, gamma, beta)]
    _forward(ops, backend.asarray(x))
    _backward(ops, backend.asarray(G))
    assert_backend_close(ops[0].param_grad, backend.asarray(numerical_gradient(loss, W)),
                         rtol=1e-6, atol=1e-8)


def test_fit_refuses_a_one_row_last_batch_before_any_work():
    import numpy as np

    from xnn import SGD, Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh, Trainer

    net = NeuralNetwork([Dense(4, Tanh(), batch_norm=True), Dense(2)], SoftmaxCrossEntropy())
    X, y = np.random.default_rng(0).standard_normal((33, 3)), np.arange(33) % 2
    with pytest.raises(ValueError, match="last batch of 1 row"):
        Trainer(net, SGD(0.1)).fit(X, y, X, y, epochs=1, batch_size=32)
    assert not net.built  # nothing was drawn or trained
