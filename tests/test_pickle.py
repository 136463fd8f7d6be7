"""Models, optimizers and training state are ordinary Python objects: pickle and deepcopy."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from xnn import (
    BackendUnavailableError,
    Dense,
    LeakyReLU,
    MeanSquaredError,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    available_backends,
    to_numpy,
)

ROUND_TRIPS = {"pickle": lambda obj: pickle.loads(pickle.dumps(obj)), "deepcopy": copy.deepcopy}


def _trained(backend, streams):
    net = NeuralNetwork([Dense(6, Tanh(), dropout=0.8), Dense(4, LeakyReLU(0.1)), Dense(3)],
                        SoftmaxCrossEntropy(), seed=2, backend=backend, dtype="float64",
                        streams=streams)
    optimizer = SGDMomentum(0.1, momentum=0.9)
    X = np.random.default_rng(0).standard_normal((40, 5))
    y = np.arange(40) % 3
    Trainer(net, optimizer, log=lambda line: None).fit(X, y, X, y, epochs=2, eval_every=5,
                                                       batch_size=8)
    return net, optimizer, X, y


def _params(net):
    return [to_numpy(p) for p in net.params()]


@pytest.mark.parametrize("streams", ["independent", "book"])
@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_a_model_round_trips_and_goes_on_like_the_original(backend, how, streams):
    net, _, X, y = _trained(backend, streams)
    twin = ROUND_TRIPS[how](net)
    assert twin is not net and twin.backend == net.backend and twin.dtype == net.dtype
    assert twin.store is not net.store and repr(twin) == repr(net)
    for ours, theirs in zip(_params(twin), _params(net), strict=True):
        np.testing.assert_array_equal(ours, theirs)
    # the same next dropout masks, the same continued training
    np.testing.assert_array_equal(to_numpy(twin.forward(X)), to_numpy(net.forward(X)))
    for model in (net, twin):
        Trainer(model, SGDMomentum(0.1), log=lambda line: None).fit(
            X, y, X, y, epochs=1, eval_every=5, batch_size=8, restart=False)
    for ours, theirs in zip(_params(twin), _params(net), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_the_copy_is_independent(backend):
    net = _trained(backend, "independent")[0]
    twin = copy.deepcopy(net)
    before = _params(net)
    twin.store.values[...] = twin.backend.asarray(np.zeros(twin.store.size))
    for ours, kept in zip(_params(net), before, strict=True):
        np.testing.assert_array_equal(ours, kept)


def test_an_unbuilt_model_round_trips():
    net = NeuralNetwork([Dense(3)], MeanSquaredError(normalize=True), seed=4)
    twin = pickle.loads(pickle.dumps(net))
    assert not twin.built and twin.loss.normalize and twin.seed == 4
    X = np.ones((2, 5))
    np.testing.assert_array_equal(to_numpy(twin.forward(X)), to_numpy(net.forward(X)))


@pytest.mark.parametrize("how", ROUND_TRIPS)
def test_an_optimizer_round_trips_with_its_network_and_momentum(backend, how):
    net, optimizer, X, y = _trained(backend, "independent")
    twin = ROUND_TRIPS[how](optimizer)
    np.testing.assert_array_equal(to_numpy(twin.velocity), to_numpy(optimizer.velocity))
    assert twin.state.step == optimizer.state.step and twin.net.backend == net.backend
    for trainer in (Trainer(net, optimizer), Trainer(twin.net, twin)):
        trainer.log = lambda line: None
        trainer.fit(X, y, X, y, epochs=1, eval_every=5, batch_size=8, restart=False)
    for ours, theirs in zip(_params(twin.net), _params(net), strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_a_model_pickled_on_an_unusable_backend_says_so():
    if "cupy" in available_backends():
        pytest.skip("CuPy runs here")
    net, _, _, _ = _trained("numpy", "independent")
    state = net.__getstate__()
    state["backend"] = "cupy"
    with pytest.raises(BackendUnavailableError, match="pickled on backend 'cupy'"):
        NeuralNetwork.__new__(NeuralNetwork).__setstate__(state)
