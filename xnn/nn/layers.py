"""Layers: a sequence of operations whose parameters are created on the first forward pass."""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

from xnn.backends import Backend
from xnn.core.random import Streams
from xnn.core.validation import check_number, check_positive_int
from xnn.nn.activations import Activation, Linear
from xnn.nn.dropout import Dropout
from xnn.nn.fused import BiasActivation
from xnn.nn.operations import Array, BiasAdd, Operation, ParamOperation, WeightMultiply

__all__ = ["WEIGHT_INITS", "Dense", "Layer"]

WEIGHT_INITS = ("standard", "glorot")


class Layer:
    """Operations run in order; parameters are made when the first input shows their shape."""

    def __init__(self, neurons: int) -> None:
        self.neurons = check_positive_int(neurons, "neurons")
        self.first = True
        self.operations: list[Operation] = []
        self.param_operations: list[ParamOperation] = []  # those of :attr:`operations` with a param
        self.input_grad_needed = True
        self.backend: Backend | None = None
        self.dtype = "float32"
        self._streams: Streams | None = None
        self._key: tuple[int, ...] = ()

    def attach(self, backend: Backend, dtype: str, streams: Streams, key: tuple[int, ...]) -> None:
        """Give the layer its backend, dtype, and child ``key`` of its model's random streams."""
        self.backend, self.dtype, self._streams, self._key = backend, dtype, streams, key

    @property
    def params(self) -> list[Array]:
        """The live parameter arrays, in operation order."""
        return [op.param for op in self.param_operations]

    @property
    def param_grads(self) -> list[Array]:
        """The gradients of :attr:`params` from the last backward pass."""
        return [op.param_grad for op in self.param_operations]

    def forward(self, input_: Array, inference: bool = False) -> Array:
        """Run the operations in order (setting the layer up on first use)."""
        if self.first:
            self.build(input_.shape[1])
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

    def build(self, n_in: int, params: Sequence[Array] | None = None) -> None:
        """Make the parameters for inputs of width ``n_in``: drawn from the seed, or ``params``."""
        raise NotImplementedError

    def set_mask_stream(self, streams: Streams, key: tuple[int, ...]) -> None:
        """Draw this layer's dropout masks (if any) from ``streams`` child ``key``."""

    def rebuild(self) -> None:
        """Make the operations again around the current parameters (after a backend change,
        whose kernels may fuse differently)."""
        if not self.first:
            params = self.params
            self.build(params[0].shape[0], params)


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

    def build(self, n_in: int, params: Sequence[Array] | None = None) -> None:
        if self.backend is None or self._streams is None:
            raise RuntimeError("a Dense layer must belong to a NeuralNetwork before its first use")
        dtype = self.backend.dtype(self.dtype)
        if params is None:
            scale = 1.0 if self.weight_init == "standard" else math.sqrt(2 / (n_in + self.neurons))
            W, B = self._streams.initial_params(
                self.backend, [(n_in, self.neurons), (1, self.neurons)], scale, dtype, self._key)
        else:
            W, B = (self.backend.asarray(p, dtype) for p in params)
            for got, want in ((W, (n_in, self.neurons)), (B, (1, self.neurons))):
                if tuple(got.shape) != want:
                    raise ValueError(f"parameter of shape {tuple(got.shape)}, expected {want}")
        weights = WeightMultiply(W)
        weights.input_grad_needed = self.input_grad_needed
        if self._fuses_activation():
            self.operations = [weights, BiasActivation(B, self.activation, self.dropout)]
        else:
            self.operations = [weights, BiasAdd(B), self.activation]
            if self.dropout is not None:
                self.operations.append(self.dropout)
        self.param_operations = [op for op in self.operations if isinstance(op, ParamOperation)]
        self.first = False

    def _fuses_activation(self) -> bool:
        """Whether this backend runs bias + activation as one kernel (CuPy's fused kernels)."""
        return (isinstance(self.activation, Activation)
                and self.activation.kind in self.backend.kernels.fused_activations)

    def set_mask_stream(self, streams: Streams, key: tuple[int, ...]) -> None:
        if self.dropout is not None and self.backend is not None:
            self.dropout.masks = streams.masks(self.dropout.keep_prob, self.backend, self.dtype,
                                               key)

    def __repr__(self) -> str:
        parts = [f"neurons={self.neurons}", f"activation={self.activation!r}"]
        if self.dropout is not None:
            parts.append(f"dropout={self.keep_prob}")
        if self.weight_init != "standard":
            parts.append(f"weight_init={self.weight_init!r}")
        return f"Dense({', '.join(parts)})"
