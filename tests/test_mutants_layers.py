"""Tests written for surviving mutants of ``xnn.nn.layers`` (see docs/mutation/xnn.nn.layers.md):
what a pickled layer holds, and how a Dense layer describes itself."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest

from xnn import Dense, MeanSquaredError, NeuralNetwork, SoftmaxCrossEntropy, Tanh
from xnn.nn.operations import Operation


def _net(streams="independent"):
    return NeuralNetwork([Dense(8, Tanh()), Dense(3)], SoftmaxCrossEntropy(), seed=1,
                         dtype="float64", streams=streams)


def test_a_models_pickle_does_not_grow_with_the_last_batch_it_saw():
    """The last input and output of each layer are scratch: a pickle of the model after a
    forward pass of 400 rows is exactly as long as after one of 2 rows (400 rows of 40
    float64 columns alone would be 128 000 bytes)."""
    X = np.random.default_rng(0).standard_normal((400, 40))
    small, large = _net(), _net()
    small.forward(X[:2])
    large.forward(X)
    assert len(pickle.dumps(large)) == len(pickle.dumps(small)) < 10_000
    assert len(pickle.dumps(large.layers[0])) == len(pickle.dumps(small.layers[0])) < 1_000


@pytest.mark.parametrize("streams", ["independent", "book"])
def test_a_pickled_layer_holds_no_random_stream(streams):
    """The network's seed streams are the network's: a layer's pickle (alone or inside its
    model) names no class of ``xnn.core.random`` (the model saves its streams' positions as
    plain data)."""
    net = _net(streams)
    net.forward(np.ones((3, 4)))
    for obj in (net.layers[0], net.layers[1], net):
        assert b"xnn.core.random" not in pickle.dumps(obj)


@pytest.mark.parametrize("how", [lambda o: pickle.loads(pickle.dumps(o)), copy.deepcopy])
def test_a_built_layer_copied_alone_is_an_unbuilt_layer(how):
    """A layer copied out of its network keeps its configuration but none of the network's
    operations: it reports itself unbuilt, with no parameters, and refuses to run on its own
    with the library's message."""
    net = _net()
    net.forward(np.ones((3, 4)))
    assert net.layers[0].built and len(net.layers[0].params) == 2
    twin = how(net.layers[0])
    assert twin.built is False
    assert twin.params == [] and twin.param_grads == []
    assert repr(twin) == "Dense(neurons=8, activation=Tanh())"
    with pytest.raises(RuntimeError, match=r"is not built: layers run inside a NeuralNetwork"):
        twin.forward(np.ones((3, 4)))
    # and it can join a new network, which builds it again
    fresh = NeuralNetwork([twin], MeanSquaredError(), seed=2, dtype="float64")
    assert fresh.forward(np.ones((3, 4))).shape == (3, 8) and len(twin.params) == 2


def test_a_standard_initialised_dense_layer_does_not_mention_its_weight_init():
    """``weight_init="standard"`` is the default, so the repr leaves it out; any other is
    shown."""
    assert repr(Dense(4, Tanh())) == "Dense(neurons=4, activation=Tanh())"
    assert repr(Dense(4, weight_init="standard")) == "Dense(neurons=4, activation=Linear())"
    assert repr(Dense(4, weight_init="he")) == \
        "Dense(neurons=4, activation=Linear(), weight_init='he')"


def test_a_layer_used_before_its_network_built_it_says_so():
    layer = Dense(3)
    for call in (lambda: layer.forward(np.zeros((2, 4))), lambda: layer.backward(np.ones((2, 3)))):
        with pytest.raises(RuntimeError) as info:  # a backward pass, too: it once returned dy
            call()
        assert str(info.value) == (f"{layer!r} is not built: layers run inside a "
                                   "NeuralNetwork, whose first forward pass builds them")
    net = _net()
    net.forward(np.zeros((2, 4)))
    with pytest.raises(RuntimeError) as info:
        layer.build(net.store, True)
    assert str(info.value) == "a Dense layer must belong to a NeuralNetwork before its first use"


def test_a_layers_forward_trains_unless_told_and_keeps_its_input():
    """``layer.forward(x)`` is a training pass (dropout on), as in the book, and the layer keeps
    the input it was given as ``input_``."""
    net = NeuralNetwork([Dense(50, Tanh(), dropout=0.5), Dense(3)], SoftmaxCrossEntropy(),
                        seed=1, dtype="float64")
    X = np.random.default_rng(0).standard_normal((4, 6))
    net.forward(X)
    layer = net.layers[0]
    training, inference = layer.forward(X), layer.forward(X, inference=True)
    assert layer.input_ is X
    assert np.sum(training == 0) > 50 and not np.any(inference == 0)


class Doubling(Operation):
    """y = 2x: an activation that is an Operation, not a registered Activation."""

    def _output(self, inference: bool) -> np.ndarray:
        return 2 * self.input_

    def _input_grad(self, output_grad: np.ndarray) -> np.ndarray:
        return 2 * output_grad


def test_any_operation_can_be_a_dense_layers_activation():
    X = np.random.default_rng(0).standard_normal((4, 6))
    doubled = NeuralNetwork([Dense(3, Doubling())], MeanSquaredError(), seed=1, dtype="float64")
    plain = NeuralNetwork([Dense(3)], MeanSquaredError(), seed=1, dtype="float64")
    np.testing.assert_array_equal(doubled.forward(X), 2 * plain.forward(X))


def test_an_operation_that_is_not_an_activation_is_not_fused(backend, monkeypatch):
    """On kernels that fuse activations (CuPy's; here any backend's, told to), an ``Operation``
    that is not an ``Activation`` has no ``registered`` attribute and no fused form: it runs on
    its own after BiasAdd."""
    monkeypatch.setattr(backend.kernels, "fuses_activations", True)
    X = np.random.default_rng(0).standard_normal((4, 6))
    doubled, plain = (NeuralNetwork([Dense(3, activation)], MeanSquaredError(), seed=1,
                                    backend=backend, dtype="float64")
                      for activation in (Doubling(), None))
    np.testing.assert_allclose(backend.to_numpy(doubled.forward(X)),
                               2 * backend.to_numpy(plain.forward(X)), rtol=1e-15, atol=0)
    assert [type(op).__name__ for op in doubled.layers[0].operations] == [
        "WeightMultiply", "BiasAdd", "Doubling"]


def test_a_linear_dense_layer_runs_no_activation_operation():
    """Linear is y = x: a Dense layer without an activation runs only W and B (on kernels that
    do not fuse the activation into the bias)."""
    net = _net()
    net.forward(np.zeros((2, 4)))
    if not net.store.kernels.fuses_activations:
        assert [type(op).__name__ for op in net.layers[1].operations] == ["WeightMultiply",
                                                                        "BiasAdd"]
    assert len(net.layers[0].operations) == 3 - net.store.kernels.fuses_activations


def test_a_layer_in_a_second_network_is_refused_in_words():
    layer = Dense(3)
    first = NeuralNetwork([layer], MeanSquaredError(), seed=1)  # kept: ownership is a weakref
    with pytest.raises(ValueError) as info:
        NeuralNetwork([layer], MeanSquaredError(), seed=1)
    assert str(info.value) == (
        f"{layer!r} already belongs to another NeuralNetwork: a layer holds that network's "
        "parameters, so sharing it would train both at once; create new layer objects (or "
        "copy.deepcopy the other network)")
    assert first.layers == [layer]


def test_impossible_dropout_and_an_empty_store_are_refused_in_words():
    from xnn.backends import get_backend
    from xnn.nn.store import ParameterStore

    with pytest.raises(ValueError) as info:
        Dense(3, dropout=1.5)
    assert str(info.value) == ("dropout (the probability of keeping a unit) must be a number "
                               "in (0.0, 1.0], got 1.5")
    with pytest.raises(ValueError) as info:
        ParameterStore(get_backend("numpy"), "float64", {})
    assert str(info.value) == "no parameters to store"


@pytest.mark.parametrize("fusing", [False, True], ids=["separate", "fused"])
@pytest.mark.parametrize("batch_norm", [False, True], ids=["bias", "batch_norm"])
def test_every_operation_of_a_model_runs_on_the_models_kernels(backend, monkeypatch, fusing,
                                                               batch_norm):
    """A layer binds each operation it builds to its model's kernels (those of a backend made
    with its own kernels, such as ``cupy:N``'s or CuPy's fused ones, are not the kernels that
    an operation used on its own finds for its input): W, B (alone or fused with the
    activation), batch norm's statistics, γ and β, and the activation."""
    monkeypatch.setattr(backend.kernels, "fuses_activations", fusing)
    net = NeuralNetwork([Dense(5, Tanh(), batch_norm=batch_norm, dropout=0.8), Dense(3)],
                        SoftmaxCrossEntropy(), seed=1, backend=backend, dtype="float64")
    net.forward(np.zeros((2, 4)))
    for layer in net.layers:
        computing = [op for op in layer.operations if op is not layer.dropout]
        computing.append(layer.activation)  # inside BiasActivation when fused
        assert [op for op in computing if op.kernels is not backend.kernels] == []
    kinds = {type(op).__name__ for layer in net.layers for op in layer.operations}
    if batch_norm:
        assert {"BatchNormalize", "Scale", "BiasAdd"} <= kinds
    else:
        assert ("BiasActivation" in kinds) == fusing
