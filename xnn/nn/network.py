"""The neural network: layers, a loss, a backend, a dtype and the seed of its random streams."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

from xnn.backends import Backend, get_backend, resolve_dtype, to_numpy
from xnn.core.inputs import as_features, as_targets
from xnn.core.random import BookStreams, Streams, seed_sequence
from xnn.nn.layers import Layer
from xnn.nn.losses import Loss
from xnn.nn.operations import Array, ParamOperation
from xnn.nn.parameters import FlatParameters

if TYPE_CHECKING:
    from xnn.train.optimizers import Optimizer

__all__ = ["NeuralNetwork"]

_INIT, _DROPOUT = 0, 1  # stream families of a model's seed
STREAMS = {"independent": Streams, "book": BookStreams}


class NeuralNetwork:
    """Layers run in order, trained against ``loss``, on ``backend`` in ``dtype``.

    ``backend=None`` means ``$XNN_BACKEND``, else ``"numpy"``. ``seed`` fixes the initial
    weights (each layer its own stream) and the dropout masks; ``seed=0`` is a seed like any
    other (the book's ``if seed:`` ignored it). ``streams="book"`` draws instead from one
    global-style legacy NumPy stream reseeded as the book's code did (see
    :class:`xnn.core.random.BookStreams`), to reproduce the book's runs number for number.
    """

    def __init__(self, layers: Sequence[Layer], loss: Loss, seed: int = 1,
                 backend: str | Backend | None = None, dtype: Any = "float32",
                 streams: str = "independent") -> None:
        self.layers = _check_layers(layers)
        if isinstance(loss, type):
            raise TypeError(f"loss must be an instance such as {loss.__name__}(), not the class")
        if not isinstance(loss, Loss):
            raise TypeError(f"loss must be a Loss such as SoftmaxCrossEntropy(), got {loss!r}")
        self.loss = loss
        self.backend = get_backend(backend)
        self.dtype = resolve_dtype(dtype)
        self.seed = seed
        if streams not in STREAMS:
            raise ValueError(f"streams must be one of {tuple(STREAMS)}, got {streams!r}")
        self.streams = streams
        self._streams = STREAMS[streams](seed)
        self._optimizers: weakref.WeakSet[Optimizer] = weakref.WeakSet()
        self._flat: FlatParameters | None = None
        for index, layer in enumerate(self.layers):
            layer.attach(self.backend, self.dtype, self._streams, (_INIT, index))
        self.layers[0].input_grad_needed = False  # nobody reads the gradient of the data
        self.reseed_dropout(self._streams)

    # -- the book's API --------------------------------------------------------------------
    def forward(self, X: Any, inference: bool = False) -> Array:
        """Predictions for ``X`` (host data or arrays of this backend), as a backend array."""
        return self.forward_batch(self.as_features(X, check_values=False), inference)

    def backward(self, loss_grad: Array) -> None:
        """Back-propagate ``loss_grad`` through every layer, filling the parameter gradients."""
        grad = loss_grad
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    def train_batch(self, X: Any, y: Any) -> Array:
        """Forward, loss and backward on one batch; returns the loss as a 0-d backend array."""
        X = self.as_features(X)
        return self.train_step(X, self.as_targets(y, X.shape[0]))

    def params(self) -> Iterator[Array]:
        """The live parameter arrays, layer by layer (W then B for each Dense)."""
        for layer in self.layers:
            yield from layer.params

    def param_grads(self) -> Iterator[Array]:
        """The gradients of :meth:`params`, in the same order."""
        for layer in self.layers:
            yield from layer.param_grads

    def flat_parameters(self) -> FlatParameters | None:
        """Every parameter and gradient as views of two flat arrays (``None`` before the first
        forward pass); what optimizers update, in one pass per kernel."""
        if not self.built:
            return None
        operations = self._param_operations()
        if self._flat is None or not self._flat.packs(operations):
            self._flat = FlatParameters(operations, self.backend)
        return self._flat

    def _param_operations(self) -> list[ParamOperation]:
        return [op for layer in self.layers for op in layer.param_operations]

    # -- the fast path (arrays already on this backend, checked) --------------------------
    def forward_batch(self, X: Array, inference: bool = False) -> Array:
        """Forward pass of an already-checked backend array."""
        for layer in self.layers:
            X = layer.forward(X, inference)
        return X

    def train_step(self, X: Array, y: Array) -> Array:
        """:meth:`train_batch` for already-checked backend arrays."""
        loss = self.loss.forward(self.forward_batch(X), y)
        self.backward(self.loss.backward())
        return loss

    # -- data at the edges -----------------------------------------------------------------
    @property
    def built(self) -> bool:
        """Whether the parameters exist (they are made on the first forward pass)."""
        return not self.layers[0].first

    @property
    def n_features(self) -> int | None:
        """Input width the model was built for, or ``None`` before the first forward pass."""
        return self.layers[0].params[0].shape[0] if self.built else None

    @property
    def n_outputs(self) -> int:
        """Width of the last layer."""
        return self.layers[-1].neurons

    def as_features(self, X: Any, check_values: bool = True, name: str = "X") -> Array:
        """``X`` checked (against the model's width once built) and moved to this backend."""
        return as_features(X, self.backend, self.dtype, self.n_features, name, check_values)

    def as_targets(self, y: Any, n_rows: int, name: str = "y") -> Array:
        """``y`` checked, one-hot encoded if it holds labels, and moved to this backend."""
        return as_targets(y, self.backend, self.dtype, self.n_outputs, n_rows, name)

    # -- state -----------------------------------------------------------------------------
    def reset_parameters(self) -> None:
        """Forget the parameters: the next forward pass redraws them from the model's seed."""
        for layer in self.layers:
            layer.first = True
        self._flat = None
        for optimizer in self._optimizers:
            optimizer.reset()

    def streams_for_fit(self, seed: int) -> Streams:
        """The random streams of a ``fit(seed=...)``: batch order and dropout masks."""
        seed_sequence(seed)  # the same check, whichever kind of streams
        return self._streams.for_fit(seed)

    def reseed_dropout(self, seed: int | Streams) -> None:
        """Restart every dropout mask stream from ``seed`` (or from the given streams)."""
        streams = seed if isinstance(seed, Streams) else self.streams_for_fit(seed)
        for index, layer in enumerate(self.layers):
            layer.set_mask_stream(streams, (_DROPOUT, index))

    def attach_optimizer(self, optimizer: Optimizer) -> None:
        """Let :meth:`to` move ``optimizer``'s state along with the parameters."""
        self._optimizers.add(optimizer)

    def to(self, backend: str | Backend) -> NeuralNetwork:
        """Move parameters, dropout streams and optimizer state to ``backend``.

        The layers' operations are made again for the target's kernels; the gradients start
        at zero there (the next backward pass fills them).
        """
        target = get_backend(backend)
        if target == self.backend:
            return self
        for layer in self.layers:
            for op in layer.param_operations:
                op.param = target.asarray(to_numpy(op.param))
            layer.backend = target
            layer.rebuild()  # the target's kernels may fuse bias, activation and dropout
            dropout = getattr(layer, "dropout", None)
            if dropout is not None and dropout.masks is not None:
                dropout.masks.to(target, self.dtype)
        for optimizer in self._optimizers:
            optimizer.to(target)
        self.backend = target
        self.flat_parameters()  # packed again, on the new backend
        return self

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write architecture, hyper-parameters, dtype and parameters to ``path`` (``.npz``)."""
        from xnn.nn.checkpoint import save_model

        save_model(self, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str],
             backend: str | Backend | None = None) -> NeuralNetwork:
        """A model saved with :meth:`save`, on ``backend`` (whatever it was saved on)."""
        from xnn.nn.checkpoint import load_model

        return load_model(path, backend)

    def __repr__(self) -> str:
        layers = ",\n    ".join(repr(layer) for layer in self.layers)
        streams = "" if self.streams == "independent" else f", streams={self.streams!r}"
        return (f"NeuralNetwork(layers=[\n    {layers},\n], loss={self.loss!r}, seed={self.seed}, "
                f"backend={self.backend.name!r}, dtype={self.dtype!r}{streams})")


def _check_layers(layers: Sequence[Layer]) -> list[Layer]:
    layers = list(layers)
    if not layers:
        raise ValueError("layers must hold at least one layer")
    for layer in layers:
        if not isinstance(layer, Layer):
            raise TypeError(f"layers must be Layer instances such as Dense(10), got {layer!r}")
    if len({id(layer) for layer in layers}) != len(layers):
        raise ValueError("the same layer object appears twice in layers; create one per position")
    return layers
