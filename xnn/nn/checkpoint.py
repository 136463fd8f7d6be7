"""Checkpoints: a model's architecture, hyper-parameters, dtype and parameters in one ``.npz``.

The file holds a JSON description (``config``), one array per parameter (``param_0`` …, in the
order of ``model.params()``) and one per buffer (``buffer/1.running_mean`` …), read back with
``allow_pickle=False``: loading a checkpoint never runs code from the file. Writes are atomic. A
model saved on one backend loads on any other. Format 2 added buffers and ``batch_norm``; files
of format 1 (two parameters a layer, no buffers) still load. This module knows layers,
activations and losses but not the network, which calls it (:meth:`xnn.NeuralNetwork.save` and
``load``).
"""

from __future__ import annotations

import json
import math
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from xnn.core.files import atomic_write
from xnn.nn.activations import ACTIVATIONS, Activation
from xnn.nn.layers import Dense, Layer
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy

__all__ = ["FORMAT", "READABLE", "CheckpointError", "SavedModel", "read_arrays", "read_checkpoint",
           "write_checkpoint"]

FORMAT = "xnn-checkpoint-2"
READABLE = ("xnn-checkpoint-1", FORMAT)  # 1: no buffers, no batch norm
_LOSSES: dict[str, type[Loss]] = {cls.__name__: cls for cls in (MeanSquaredError,
                                                                 SoftmaxCrossEntropy)}
_ACTIVATION_NAMES = {cls.__name__: name for name, cls in ACTIVATIONS.items()}  # files name classes
_NPY_HEADERS = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}
_DEFLATE_RATIO = 1032  # DEFLATE never expands a byte to more than about 1032 (RFC 1951)


class CheckpointError(ValueError):
    """A checkpoint file that is corrupt, of another format, or inconsistent with itself."""


@dataclass
class SavedModel:
    """What a checkpoint holds: fresh layers and loss, the network's options, the parameters."""

    layers: list[Layer]
    loss: Loss
    options: dict[str, Any]  # seed, dtype, streams
    n_features: int | None
    params: list[np.ndarray]  # those of model.params(); empty when saved before being built
    buffers: dict[str, np.ndarray] = field(default_factory=dict)  # by store name


def write_checkpoint(model: Any, path: str | os.PathLike[str], params: list[np.ndarray],
                     buffers: Mapping[str, np.ndarray] | None = None) -> None:
    """Write ``model``'s description, its host ``params`` and ``buffers`` (by store name) to
    ``path`` (``.npz``), atomically."""
    arrays = {f"param_{i}": p for i, p in enumerate(params)}
    arrays.update({f"buffer/{name}": b for name, b in (buffers or {}).items()})
    config = json.dumps(_describe(model))
    with atomic_write(path) as file:
        np.savez(file, format=np.array(FORMAT), config=np.array(config), **arrays)


def read_checkpoint(path: str | os.PathLike[str]) -> SavedModel:
    """The model saved at ``path``, checked, as parts to build a network from."""
    contents = read_arrays(path)
    if str(contents.get("format", "")) not in READABLE:
        raise CheckpointError(f"{path} is not an {' or '.join(READABLE)} file")
    try:
        config = json.loads(str(contents["config"]))
        layers, loss = _layers(config), _loss(config)
        built = config["n_features"] is not None
        n_params = sum(len(layer.param_shapes(1)) for layer in layers) if built else 0
        params = [contents[f"param_{i}"] for i in range(n_params)]
        buffers = {name: contents[f"buffer/{name}"]
                   for name in (_buffer_names(layers) if built else [])}
        options = {"seed": config["seed"], "dtype": config["dtype"],
                   "streams": config.get("streams", "independent")}
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has an invalid configuration: {exc!r}") from exc
    for kind, arrays in (("parameters", params), ("buffers", list(buffers.values()))):
        for a in arrays:
            if a.dtype != np.dtype(config["dtype"]):
                raise CheckpointError(f"{path}: {kind} of dtype {a.dtype}, config says "
                                      f"{config['dtype']}")
            if not np.all(np.isfinite(a)):
                raise CheckpointError(f"{path}: {kind} contain NaN or inf")
    if any(np.any(b < 0) for n, b in buffers.items() if n.endswith(".running_var")):
        raise CheckpointError(f"{path}: a running variance is negative")
    return SavedModel(layers, loss, options, config["n_features"], params, buffers)


def _buffer_names(layers: list[Layer]) -> list[str]:
    """The store names of the layers' buffers (``"1.running_mean"`` …), in order."""
    return [f"{i}.{name}" for i, layer in enumerate(layers) for name in layer.buffer_shapes(1)]


def read_arrays(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` at ``path`` by name; CheckpointError for anything else.

    Each member's ``.npy`` header is read and checked against the member's size (and that
    against the file's) before its array is allocated, so a header that claims terabytes, a
    pickled object array or a file of another kind (an ``.npy``, a text file) is refused with a
    ``CheckpointError`` naming the file, never a MemoryError or TypeError.
    """
    try:
        size = os.path.getsize(path)
        with zipfile.ZipFile(path) as archive:
            return {info.filename.removesuffix(".npy"): _read_member(archive, info, size)
                    for info in archive.infolist()}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise CheckpointError(f"{path} is not a readable xnn checkpoint: {exc}") from exc


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, archive_size: int
                 ) -> np.ndarray:
    """One ``.npy`` member, its header checked before anything is allocated for it."""
    name = info.filename
    if not name.endswith(".npy"):
        raise ValueError(f"member {name!r} is not an .npy array")
    if info.compress_type == zipfile.ZIP_STORED:
        fits = info.compress_size <= archive_size and info.file_size == info.compress_size
    elif info.compress_type == zipfile.ZIP_DEFLATED:
        fits = (info.compress_size <= archive_size
                and info.file_size <= _DEFLATE_RATIO * info.compress_size + 1024)
    else:
        raise ValueError(f"member {name!r} uses an unsupported compression "
                         f"(method {info.compress_type}; expected stored or deflated)")
    if not fits:
        raise ValueError(f"member {name!r} claims {info.file_size} bytes, more than the "
                         f"{archive_size}-byte file can hold")
    with archive.open(info) as member:
        shape, fortran, dtype = _npy_header(member, name)
        nbytes = math.prod(shape) * dtype.itemsize
        if nbytes != info.file_size - member.tell():
            raise ValueError(f"member {name!r}: its header declares shape {shape} of {dtype} "
                             f"({nbytes} bytes), but it holds "
                             f"{info.file_size - member.tell()} bytes of data")
        data = bytearray(nbytes)
        if member.readinto(data) != nbytes:
            raise ValueError(f"member {name!r} is truncated")
    return np.frombuffer(data, dtype=dtype).reshape(shape, order="F" if fortran else "C")


def _npy_header(member: IO[bytes], name: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, Fortran order, dtype) from an ``.npy`` header; no object (pickled) arrays."""
    version = np.lib.format.read_magic(member)
    if version not in _NPY_HEADERS:
        raise ValueError(f"member {name!r} is .npy format {version[0]}.{version[1]}; "
                         "expected 1.0 or 2.0")
    shape, fortran, dtype = _NPY_HEADERS[version](member)
    if dtype.hasobject:
        raise ValueError(f"member {name!r} holds Python objects (pickles are never loaded)")
    return shape, fortran, dtype


def _describe(model: Any) -> dict[str, Any]:
    layers = []
    for layer in model.layers:
        if type(layer) is not Dense:
            raise TypeError(f"cannot save layer {layer!r}: only Dense layers are supported")
        layers.append({"type": "Dense", "neurons": layer.neurons,
                       "activation": _describe_activation(layer.activation),
                       "dropout": layer.keep_prob, "weight_init": layer.weight_init,
                       "batch_norm": layer.batch_norm})
    loss = {"type": type(model.loss).__name__}
    if isinstance(model.loss, MeanSquaredError):
        loss["normalize"] = model.loss.normalize
    elif isinstance(model.loss, SoftmaxCrossEntropy):
        loss["eps"] = model.loss.eps
    return {"layers": layers, "loss": loss, "seed": model.seed, "dtype": model.dtype,
            "streams": model.streams, "n_features": model.n_features}


def _describe_activation(activation: Any) -> dict[str, Any]:
    if not (isinstance(activation, Activation) and activation.registered):
        raise TypeError(f"cannot save activation {activation!r}: only registered activations "
                        f"({', '.join(sorted(_ACTIVATION_NAMES))}) can be saved")
    return {"type": type(activation).__name__, **activation.config()}


def _layers(config: dict[str, Any]) -> list[Layer]:
    layers: list[Layer] = []
    for spec in config["layers"]:
        if spec["type"] != "Dense":
            raise ValueError(f"unknown layer type {spec['type']!r}")
        activation = dict(spec["activation"])
        make = ACTIVATIONS[_ACTIVATION_NAMES[activation.pop("type")]]
        layers.append(Dense(spec["neurons"], make(**activation), dropout=spec["dropout"],
                            weight_init=spec["weight_init"],
                            batch_norm=spec.get("batch_norm", False)))
    return layers


def _loss(config: dict[str, Any]) -> Loss:
    loss = dict(config["loss"])
    return _LOSSES[loss.pop("type")](**loss)
