"""Layers: a sequence of operations around named parameters that live in the model's store."""

from __future__ import annotations

import copy
import math
import weakref
from typing import Any

from xnn.backends import Backend
from xnn.core.random import Streams
from xnn.core.validation import check_number, check_positive_int
from xnn.nn.activations import Linear
from xnn.nn.batchnorm import BatchNormalize, Scale
from xnn.nn.dropout import Dropout
from xnn.nn.fused import BiasActivation
from xnn.nn.operations import Array, BiasAdd, Operation, ParamOperation, WeightMultiply
from xnn.nn.store import ParameterStore

__all__ = ["WEIGHT_INITS", "Dense", "Layer", "init_scale"]

WEIGHT_INITS = ("standard", "glorot", "he", "lecun")


def init_scale(weight_init: str, n_in: int, n_out: int) -> float:
    """σ of the N(0, σ²) initial draws: standard 1, glorot √(2/(n_in + n_out)), he √(2/n_in),
    lecun √(1/n_in)."""
    if weight_init == "glorot":
        return math.sqrt(2 / (n_in + n_out))
    if weight_init == "he":
        return math.sqrt(2 / n_in)
    if weight_init == "lecun":
        return math.sqrt(1 / n_in)
    return 1.0


class Layer:
    """Operations run in order. A layer declares its parameters (:meth:`param_shapes`) and
    buffers (:meth:`buffer_shapes`); its network allocates them in one
    :class:`~xnn.nn.store.ParameterStore` when the first input shows their shape, and
    :meth:`build` makes the operations around the store's views."""

    def __init__(self, neurons: int) -> None:
        self.neurons = check_positive_int(neurons, "neurons")
        self.operations: list[Operation] = []
        self.param_operations: list[ParamOperation] = []  # those of :attr:`operations` with a param
        self.input_grad_needed = True
        self.prefix = ""  # of this layer's names in the store: "0." for the first layer
        self._owner: weakref.ref[object] | None = None  # the network it belongs to
        self._streams: Streams | None = None
        self._key: tuple[int, ...] = ()

    def attach(self, owner: object, streams: Streams, index: int, key: tuple[int, ...]) -> None:
        """Make this the ``index``-th layer of ``owner``, drawing from ``streams`` child ``key``.

        A layer belongs to one network (it holds views of that network's parameters): a second
        one is refused while the first is alive.
        """
        current = self._owner() if self._owner is not None else None
        if current is not None and current is not owner:
            raise ValueError(
                f"{self!r} already belongs to another NeuralNetwork: a layer holds that "
                "network's parameters, so sharing it would train both at once; create new "
                "layer objects (or copy.deepcopy the other network)")
        self._owner = weakref.ref(owner)
        self.prefix, self._streams, self._key = f"{index}.", streams, key

    @property
    def built(self) -> bool:
        """Whether the operations exist (after the model's first forward pass)."""
        return bool(self.operations)

    @property
    def min_train_rows(self) -> int:
        """The fewest rows of a training batch this layer can run."""
        return 1

    @property
    def params(self) -> list[Array]:
        """The live parameter arrays (views of the model's store), in operation order."""
        return [op.param for op in self.param_operations]

    @property
    def param_grads(self) -> list[Array]:
        """The gradients of :attr:`params` from the last backward pass."""
        return [op.param_grad for op in self.param_operations]

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """This layer's parameters by name, for inputs of width ``n_in``."""
        raise NotImplementedError

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """This layer's buffers (state the optimizer never updates) by name; none by default."""
        return {}

    def build(self, store: ParameterStore, draw: bool) -> None:
        """Make the operations around the store's views of this layer's parameters and
        buffers, first drawing their initial values from the model's seed when ``draw``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the operations (the model draws new parameters on its next forward pass)."""
        self.operations, self.param_operations = [], []

    def forward(self, input_: Array, inference: bool = False) -> Array:
        """Run the operations in order."""
        self._check_built()
        self.input_ = input_
        for operation in self.operations:
            input_ = operation.forward(input_, inference)
        self.output = input_
        return self.output

    def backward(self, output_grad: Array) -> Array | None:
        """Run the operations' backward passes in reverse; ``None`` when dx is not needed."""
        self._check_built()
        for operation in reversed(self.operations):
            output_grad = operation.backward(output_grad)
        return output_grad

    def _check_built(self) -> None:
        """``RuntimeError`` saying how a layer gets built, if it is not yet."""
        if not self.operations:
            raise RuntimeError(f"{self!r} is not built: layers run inside a NeuralNetwork, "
                               "whose first forward pass builds them")

    def set_mask_stream(self, streams: Streams, key: tuple[int, ...], backend: Backend,
                        dtype: str) -> None:
        """Draw this layer's dropout masks (if any) from ``streams`` child ``key``."""

    def __getstate__(self) -> dict[str, Any]:
        """The layer's configuration: its network rebuilds the rest (see its ``__setstate__``)."""
        transient = ("operations", "param_operations", "input_", "output", "_streams", "_owner")
        state = {k: v for k, v in self.__dict__.items() if k not in transient}
        return {**state, "operations": [], "param_operations": [], "_owner": None}


def _is_identity(operation: Operation) -> bool:
    """Whether ``operation`` is exactly the book's ``Linear`` (not a subclass of it)."""
    return type(operation) is Linear


class Dense(Layer):
    """A fully connected layer: activation(x @ W + B), then dropout when ``dropout < 1``.

    ``dropout`` is the probability of *keeping* a unit (0.8 keeps 80%), as in the book.
    ``weight_init="standard"`` draws W and B from N(0, 1); ``"glorot"`` from N(0, 2/(n_in+n_out))
    (the book passed 2/(n_in+n_out) as the standard deviation, a variance far too small);
    ``"he"`` from N(0, 2/n_in); ``"lecun"`` from N(0, 1/n_in).

    ``batch_norm=True``: activation(BN(x @ W)), BN as ``torch.nn.BatchNorm1d`` (ε = 1e-5,
    momentum 0.1; see :mod:`xnn.nn.batchnorm`) with its β in place of B: the parameters are W,
    γ (initially 1) and β (0), and the running mean and variance are the store's buffers.
    """

    batch_norm = False  # (a class default for layers pickled before batch norm existed)

    def __init__(self, neurons: int, activation: Operation | None = None,
                 dropout: float = 1.0, weight_init: str = "standard",
                 batch_norm: bool = False) -> None:
        super().__init__(neurons)
        if activation is None:
            activation = Linear()
        if not isinstance(activation, Operation):
            raise TypeError(
                f"activation must be an Operation instance such as Tanh(), got {activation!r}"
            )
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        if not isinstance(batch_norm, bool):
            raise TypeError(f"batch_norm must be True or False, got {batch_norm!r}")
        # each layer owns its activation, even when the caller shares one instance
        self.activation = copy.copy(activation)
        self.keep_prob = check_number(
            dropout, "dropout (the probability of keeping a unit)", low=0.0, high=1.0,
            low_open=True,
        )
        self.dropout = Dropout(self.keep_prob) if self.keep_prob < 1.0 else None
        self.weight_init = weight_init
        self.batch_norm = batch_norm

    @property
    def min_train_rows(self) -> int:
        """2 with batch norm (a batch's variance needs two rows), else 1."""
        return 2 if self.batch_norm else 1

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        if self.batch_norm:
            return {"W": (n_in, self.neurons), "gamma": (1, self.neurons),
                    "beta": (1, self.neurons)}
        return {"W": (n_in, self.neurons), "B": (1, self.neurons)}

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        if self.batch_norm:
            return {"running_mean": (1, self.neurons), "running_var": (1, self.neurons)}
        return {}

    def build(self, store: ParameterStore, draw: bool) -> None:
        if self._streams is None:
            raise RuntimeError("a Dense layer must belong to a NeuralNetwork before its first use")
        if draw:
            self._draw(store)
        kernels, name = store.kernels, self.prefix
        weights = WeightMultiply(store.value(name + "W"), store.grad(name + "W"), kernels)
        weights.input_grad_needed = self.input_grad_needed
        self.activation.bind(kernels)
        fused = kernels.fuses_activations and getattr(self.activation, "registered", False)
        if self.batch_norm:  # β replaces B, so the fused bias + activation does not apply
            self.operations = [
                weights,
                BatchNormalize(store.buffer(name + "running_mean"),
                               store.buffer(name + "running_var"), kernels=kernels),
                Scale(store.value(name + "gamma"), store.grad(name + "gamma"), kernels),
                BiasAdd(store.value(name + "beta"), store.grad(name + "beta"), kernels)]
        elif fused:
            self.operations = [weights, BiasActivation(store.value(name + "B"), self.activation,
                                                       self.dropout, store.grad(name + "B"),
                                                       kernels)]
        else:
            self.operations = [weights, BiasAdd(store.value(name + "B"), store.grad(name + "B"),
                                                kernels)]
        if self.batch_norm or not fused:
            if not _is_identity(self.activation):  # Linear: y = x, dx = dy; nothing to run
                self.operations.append(self.activation)
            if self.dropout is not None:
                self.operations.append(self.dropout)
        self.param_operations = [op for op in self.operations if isinstance(op, ParamOperation)]

    def _draw(self, store: ParameterStore) -> None:
        """W (and B) from N(0, σ²) of ``weight_init``; with batch norm γ = 1, β = 0, running
        mean 0 and running variance 1."""
        W, name = store.value(self.prefix + "W"), self.prefix
        drawn = [W] if self.batch_norm else [W, store.value(name + "B")]
        scale = init_scale(self.weight_init, W.shape[0], self.neurons)
        values = self._streams.initial_params(store.backend, [a.shape for a in drawn], scale,
                                              store.backend.dtype(store.dtype), self._key)
        for array, value in zip(drawn, values, strict=True):
            array[...] = value
        if self.batch_norm:
            store.value(name + "gamma")[...] = 1.0
            store.value(name + "beta")[...] = 0.0
            store.buffer(name + "running_mean")[...] = 0.0
            store.buffer(name + "running_var")[...] = 1.0

    def set_mask_stream(self, streams: Streams, key: tuple[int, ...], backend: Backend,
                        dtype: str) -> None:
        if self.dropout is not None:
            self.dropout.masks = streams.masks(self.dropout.keep_prob, backend, dtype, key)

    def __repr__(self) -> str:
        parts = [f"neurons={self.neurons}", f"activation={self.activation!r}"]
        if self.dropout is not None:
            parts.append(f"dropout={self.keep_prob}")
        if self.weight_init != "standard":
            parts.append(f"weight_init={self.weight_init!r}")
        if self.batch_norm:
            parts.append("batch_norm=True")
        return f"Dense({', '.join(parts)})"
