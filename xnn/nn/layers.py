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
from xnn.nn.dropout import Dropout
from xnn.nn.fused import BiasActivation
from xnn.nn.operations import Array, BiasAdd, Operation, ParamOperation, WeightMultiply
from xnn.nn.store import ParameterStore

__all__ = ["WEIGHT_INITS", "Dense", "Layer"]

WEIGHT_INITS = ("standard", "glorot")


class Layer:
    """Operations run in order. A layer declares its parameters (:meth:`param_shapes`); its
    network allocates them in one :class:`~xnn.nn.store.ParameterStore` when the first input
    shows their shape, and :meth:`build` makes the operations around the store's views."""

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

    def build(self, store: ParameterStore, draw: bool) -> None:
        """Make the operations around the store's views of this layer's parameters, first
        drawing their values from the model's seed when ``draw``."""
        raise NotImplementedError

    def reset(self) -> None:
        """Forget the operations (the model draws new parameters on its next forward pass)."""
        self.operations, self.param_operations = [], []

    def forward(self, input_: Array, inference: bool = False) -> Array:
        """Run the operations in order."""
        if not self.operations:
            raise RuntimeError(f"{self!r} is not built: layers run inside a NeuralNetwork, "
                               "whose first forward pass builds them")
        self.input_ = input_
        for operation in self.operations:
            input_ = operation.forward(input_, inference)
        self.output = input_
        return self.output

    def backward(self, output_grad: Array) -> Array | None:
        """Run the operations' backward passes in reverse; ``None`` when dx is not needed."""
        for operation in reversed(self.operations):
            output_grad = operation.backward(output_grad)
        return output_grad

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
    (the book passed 2/(n_in+n_out) as the standard deviation, a variance far too small).
    """

    def __init__(self, neurons: int, activation: Operation | None = None,
                 dropout: float = 1.0, weight_init: str = "standard") -> None:
        super().__init__(neurons)
        if activation is None:
            activation = Linear()
        if not isinstance(activation, Operation):
            raise TypeError(
                f"activation must be an Operation instance such as Tanh(), got {activation!r}"
            )
        if weight_init not in WEIGHT_INITS:
            raise ValueError(f"weight_init must be one of {WEIGHT_INITS}, got {weight_init!r}")
        # each layer owns its activation, even when the caller shares one instance
        self.activation = copy.copy(activation)
        self.keep_prob = check_number(
            dropout, "dropout (the probability of keeping a unit)", low=0.0, high=1.0,
            low_open=True,
        )
        self.dropout = Dropout(self.keep_prob) if self.keep_prob < 1.0 else None
        self.weight_init = weight_init

    def param_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return {"W": (n_in, self.neurons), "B": (1, self.neurons)}

    def build(self, store: ParameterStore, draw: bool) -> None:
        if self._streams is None:
            raise RuntimeError("a Dense layer must belong to a NeuralNetwork before its first use")
        W, B = store.value(self.prefix + "W"), store.value(self.prefix + "B")
        if draw:
            n_in = W.shape[0]
            scale = 1.0 if self.weight_init == "standard" else math.sqrt(2 / (n_in + self.neurons))
            drawn = self._streams.initial_params(store.backend, [W.shape, B.shape], scale,
                                                 store.backend.dtype(store.dtype), self._key)
            W[...], B[...] = drawn
        kernels = store.kernels
        weights = WeightMultiply(W, store.grad(self.prefix + "W"), kernels)
        weights.input_grad_needed = self.input_grad_needed
        B_grad = store.grad(self.prefix + "B")
        self.activation.bind(kernels)
        if kernels.fuses_activations and getattr(self.activation, "registered", False):
            bias = BiasActivation(B, self.activation, self.dropout, B_grad, kernels)
            self.operations = [weights, bias]
        else:
            self.operations = [weights, BiasAdd(B, B_grad, kernels)]
            if not _is_identity(self.activation):  # Linear: y = x, dx = dy; nothing to run
                self.operations.append(self.activation)
            if self.dropout is not None:
                self.operations.append(self.dropout)
        self.param_operations = [op for op in self.operations if isinstance(op, ParamOperation)]

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
        return f"Dense({', '.join(parts)})"
