"""The neural network: layers, a loss, a backend, a dtype and the seed of its random streams."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from xnn.backends import Backend, activated, get_backend, resolve_dtype
from xnn.core.batches import row_blocks
from xnn.core.inputs import as_features, as_targets
from xnn.core.random import BookStreams, Streams, seed_sequence
from xnn.core.validation import check_positive_int
from xnn.nn.batchnorm import check_batch_rows
from xnn.nn.layers import Layer
from xnn.nn.losses import Loss
from xnn.nn.operations import Array
from xnn.nn.persistence import Persistent
from xnn.nn.store import ParameterStore

__all__ = ["NeuralNetwork"]

_INIT, _DROPOUT = 0, 1  # stream families of a model's seed
STREAMS = {"independent": Streams, "book": BookStreams}


class NeuralNetwork(Persistent):
    """Layers run in order, trained against ``loss``, on ``backend`` in ``dtype``.

    ``backend=None`` means ``$XNN_BACKEND``, else ``"numpy"``. ``seed`` fixes the initial
    weights (each layer its own stream) and the dropout masks; ``seed=0`` is a seed like any
    other (the book's ``if seed:`` ignored it). ``streams="book"`` draws instead from one
    global-style legacy NumPy stream reseeded as the book's code did (see
    :class:`xnn.core.random.BookStreams`), to reproduce the book's runs number for number.

    The parameters live in one :class:`~xnn.nn.store.ParameterStore` (:attr:`store`), made on
    the first forward pass, when the input's width is known.
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
        self.backend.check_dtype(self.dtype)
        self.seed = seed
        if streams not in STREAMS:
            raise ValueError(f"streams must be one of {tuple(STREAMS)}, got {streams!r}")
        self.streams = streams
        self._streams = STREAMS[streams](seed)
        self.store: ParameterStore | None = None
        for index, layer in enumerate(self.layers):
            layer.attach(self, self._streams, index, (_INIT, index))
        self.layers[0].input_grad_needed = False  # nobody reads the gradient of the data
        # the fewest rows a training batch may have: 2 with batch norm, else 1
        self.min_train_rows = max(layer.min_train_rows for layer in self.layers)
        self.loss.bind(self.backend.kernels)
        self.reseed_dropout(self._streams)

    # -- the book's API --------------------------------------------------------------------
    @activated
    def forward(self, X: Any, inference: bool = False) -> Array:
        """Predictions for ``X`` (host data or arrays of this backend), as a backend array."""
        return self.forward_batch(self.as_features(X, check_values=False), inference)

    @activated
    def predict(self, X: Any, chunk: int = 8192) -> Array:
        """The outputs for ``X`` in inference mode (no dropout), ``chunk`` rows at a time; a
        backend array. (``forward`` keeps the book's meaning: training mode by default.)"""
        chunk = check_positive_int(chunk, "chunk")
        X = self.as_features(X)
        parts = [self.forward_batch(X[rows, ...], inference=True)
                 for rows in row_blocks(X.shape[0], chunk)]
        if len(parts) <= 1:
            return parts[0] if parts else self.forward_batch(X, inference=True)
        xp = self.backend.xp
        return (getattr(xp, "concat", None) or xp.concatenate)(parts, axis=0)  # CuPy 13: no concat

    def predict_classes(self, X: Any, chunk: int = 8192) -> Array:
        """The class of each row of ``X``: the index of its largest output (inference mode)."""
        return self.backend.xp.argmax(self.predict(X, chunk), axis=1)

    @activated
    def backward(self, loss_grad: Array) -> None:
        """Back-propagate ``loss_grad`` through every layer, filling the parameter gradients."""
        if self.store is None:
            raise RuntimeError("backward before forward: the model has no parameters yet; call "
                               "model.forward(X) (or train_batch) first")
        grad = loss_grad
        for layer in reversed(self.layers):
            grad = layer.backward(grad)

    @activated
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

    # -- the fast path (arrays already on this backend, checked) --------------------------
    def forward_batch(self, X: Array, inference: bool = False) -> Array:
        """Forward pass of an already-checked backend array."""
        if not inference and X.shape[0] < self.min_train_rows:  # before any work
            check_batch_rows(X.shape[0], "X")
        if self.store is None:
            return self._build_and_forward(X, inference)
        for layer in self.layers:
            X = layer.forward(X, inference)
        return X

    def train_step(self, X: Array, y: Array) -> Array:
        """:meth:`train_batch` for already-checked backend arrays."""
        loss = self.loss.forward(self.forward_batch(X), y)
        self.backward(self.loss.backward())
        return loss

    def _build_and_forward(self, X: Array, inference: bool) -> Array:
        """Allocate the store, then build and run each layer in turn (a layer draws its
        parameters just before its first forward pass, as the book's layers did)."""
        self.store = self._new_store(X.shape[1])
        for layer in self.layers:
            layer.build(self.store, draw=True)
            X = layer.forward(X, inference)
        return X

    def _layout(self, n_features: int, buffers: bool = False) -> dict[str, tuple[int, ...]]:
        """Every parameter's (or with ``buffers``, buffer's) name and shape for inputs of width
        ``n_features``."""
        shapes, n_in = {}, n_features
        for layer in self.layers:
            layer_shapes = layer.buffer_shapes(n_in) if buffers else layer.param_shapes(n_in)
            shapes.update({layer.prefix + name: shape for name, shape in layer_shapes.items()})
            n_in = layer.neurons
        return shapes

    def _new_store(self, n_features: int) -> ParameterStore:
        """An empty store of this model's parameters and buffers, for ``n_features`` inputs."""
        return ParameterStore(self.backend, self.dtype, self._layout(n_features),
                              buffer_shapes=self._layout(n_features, buffers=True))

    # -- data at the edges -----------------------------------------------------------------
    @property
    def built(self) -> bool:
        """Whether the parameters exist (they are made on the first forward pass)."""
        return self.store is not None

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
        """``y`` checked and moved to this backend: class labels (one-hot encoded) or
        probability rows for a classification loss, values for a regression loss."""
        return as_targets(y, self.backend, self.dtype, self.n_outputs, n_rows, name,
                          classes=self.loss.classifies)

    # -- state -----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Every parameter and buffer as a host array by store name (``"0.W"``…,
        ``"0.running_mean"``…); empty before built."""
        return {} if self.store is None else self.store.state_dict()

    def load_state_dict(self, arrays: Mapping[str, Any], n_features: int | None = None) -> None:
        """Set the parameters and buffers from :meth:`state_dict`'s arrays, building the
        model if needed (for inputs of width ``n_features``, default: that of ``"0.W"``)."""
        if self.store is None:
            width = n_features if n_features is not None else arrays[self._first_name()].shape[0]
            store = self._new_store(width)
            store.load_state_dict(arrays)
            for layer in self.layers:
                layer.build(store, draw=False)
            self.store = store
        else:
            self.store.load_state_dict(arrays)

    def _first_name(self) -> str:
        return self.layers[0].prefix + next(iter(self.layers[0].param_shapes(1)))

    def reset_parameters(self) -> None:
        """Forget the parameters: the next forward pass redraws them from the model's seed."""
        self.store = None
        for layer in self.layers:
            layer.reset()

    def streams_for_fit(self, seed: int) -> Streams:
        """The random streams of a ``fit(seed=...)``: batch order and dropout masks."""
        seed_sequence(seed)  # the same check, whichever kind of streams
        return self._streams.for_fit(seed)

    def reseed_dropout(self, seed: int | Streams) -> None:
        """Restart every dropout mask stream from ``seed`` (or from the given streams)."""
        streams = seed if isinstance(seed, Streams) else self.streams_for_fit(seed)
        for index, layer in enumerate(self.layers):
            layer.set_mask_stream(streams, (_DROPOUT, index), self.backend, self.dtype)

    def mask_streams(self) -> dict[int, Any]:
        """Each dropout layer's mask stream, by layer index."""
        streams = {}
        for index, layer in enumerate(self.layers):
            dropout = getattr(layer, "dropout", None)
            if dropout is not None and dropout.masks is not None:
                streams[index] = dropout.masks
        return streams

    def to(self, backend: str | Backend) -> NeuralNetwork:
        """Move parameters and dropout streams to ``backend`` (an optimizer's state follows at
        its next step). The store moves as one array and the layers' operations are made again
        for the target's kernels; the gradients start at zero there."""
        target = get_backend(backend)
        if target == self.backend:
            return self
        target.check_dtype(self.dtype)
        if self.store is not None:
            self.store = self.store.to(target)
            for layer in self.layers:
                layer.build(self.store, draw=False)
        for masks in self.mask_streams().values():
            masks.to(target, self.dtype)
        self.backend = target
        self.loss.bind(target.kernels)
        return self

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
