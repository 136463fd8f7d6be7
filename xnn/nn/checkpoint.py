"""Checkpoints: a model's architecture, hyper-parameters, dtype and parameters in one ``.npz``.

The file holds a JSON description (``config``) and one array per parameter (``param_0`` …), read
back with ``allow_pickle=False``: loading a checkpoint never runs code from the file. Writes are
atomic. A model saved on one backend loads on any other.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import numpy as np

from xnn.backends import Backend, to_numpy
from xnn.core.files import atomic_write
from xnn.nn.activations import LeakyReLU, Linear, ReLU, ReLU6, Sigmoid, Tanh
from xnn.nn.layers import Dense
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Operation

__all__ = ["CheckpointError", "load_model", "save_model"]

FORMAT = "xnn-checkpoint-1"
_ACTIVATIONS: dict[str, type[Operation]] = {
    cls.__name__: cls for cls in (Sigmoid, Tanh, Linear, ReLU, LeakyReLU, ReLU6)
}
_LOSSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (MeanSquaredError,
                                                                 SoftmaxCrossEntropy)}


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, of another format, or inconsistent with itself."""


def save_model(model: NeuralNetwork, path: str | os.PathLike[str]) -> None:
    """Write ``model`` to ``path`` (``.npz``), atomically."""
    params = [to_numpy(p) for p in model.params()]
    arrays = {f"param_{i}": p for i, p in enumerate(params)}
    config = json.dumps(_describe(model))
    with atomic_write(path) as file:
        np.savez(file, format=np.array(FORMAT), config=np.array(config), **arrays)


def load_model(path: str | os.PathLike[str], backend: str | Backend | None = None) -> NeuralNetwork:
    """The model saved at ``path``, on ``backend`` (default as for ``NeuralNetwork``)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            contents = {name: archive[name] for name in archive.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise CheckpointError(f"{path} is not a readable xnn checkpoint: {exc}") from exc
    if str(contents.get("format", "")) != FORMAT:
        raise CheckpointError(f"{path} is not an {FORMAT} file")
    try:
        config = json.loads(str(contents["config"]))
        model = _build(config, backend)
        built = config["n_features"] is not None
        params = [contents[f"param_{i}"] for i in range(2 * len(model.layers) if built else 0)]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an invalid configuration: {exc!r}") from exc
    _restore(model, config, params, path)
    return model


def _describe(model: NeuralNetwork) -> dict[str, Any]:
    layers = []
    for layer in model.layers:
        if type(layer) is not Dense:
            raise TypeError(f"cannot save layer {layer!r}: only Dense layers are supported")
        activation = {"type": type(layer.activation).__name__}
        if isinstance(layer.activation, LeakyReLU) and not isinstance(layer.activation, ReLU):
            activation["alpha"] = layer.activation.alpha
        layers.append({"type": "Dense", "neurons": layer.neurons, "activation": activation,
                       "dropout": layer.keep_prob, "weight_init": layer.weight_init})
    loss = {"type": type(model.loss).__name__}
    if isinstance(model.loss, MeanSquaredError):
        loss["normalize"] = model.loss.normalize
    elif isinstance(model.loss, SoftmaxCrossEntropy):
        loss["eps"] = model.loss.eps
    return {"layers": layers, "loss": loss, "seed": model.seed, "dtype": model.dtype,
            "streams": model.streams, "n_features": model.n_features}


def _build(config: dict[str, Any], backend: str | Backend | None) -> NeuralNetwork:
    layers = []
    for spec in config["layers"]:
        if spec["type"] != "Dense":
            raise ValueError(f"unknown layer type {spec['type']!r}")
        activation = dict(spec["activation"])
        make = _ACTIVATIONS[activation.pop("type")]
        layers.append(Dense(spec["neurons"], make(**activation), dropout=spec["dropout"],
                            weight_init=spec["weight_init"]))
    loss = dict(config["loss"])
    make_loss = _LOSSES[loss.pop("type")]
    return NeuralNetwork(layers, make_loss(**loss), seed=config["seed"], backend=backend,
                         dtype=config["dtype"], streams=config.get("streams", "independent"))


def _restore(model: NeuralNetwork, config: dict[str, Any], params: list[np.ndarray],
             path: Any) -> None:
    n_in = config["n_features"]
    if n_in is None:
        return  # saved before its first forward pass: nothing to restore
    for layer, (W, B) in zip(model.layers, zip(params[::2], params[1::2], strict=True),
                             strict=True):
        if W.dtype != np.dtype(model.dtype) or B.dtype != np.dtype(model.dtype):
            raise CheckpointError(f"{path}: parameters of dtype {W.dtype}, config says "
                                  f"{model.dtype}")
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(B))):
            raise CheckpointError(f"{path}: parameters contain NaN or inf")
        try:
            layer.build(n_in, (W, B))
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from exc
        n_in = layer.neurons
