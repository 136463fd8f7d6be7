"""xnn: the training framework of *Deep Learning from Scratch*, chapter 4, on NumPy, CuPy or torch.

The public names below are imported on first use (PEP 562), so ``import xnn`` — and the pytest
plugin that every pytest session loads — stays cheap until a name is actually needed.
"""

from __future__ import annotations

import importlib as _importlib
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

__version__ = "0.1.0"

_HOMES = {  # public name → the module that defines it
    "Backend": "xnn.backends",
    "BackendUnavailableError": "xnn.backends",
    "available_backends": "xnn.backends",
    "from_dlpack": "xnn.backends",
    "get_backend": "xnn.backends",
    "to_numpy": "xnn.backends",
    "Activation": "xnn.nn.activations",
    "LeakyReLU": "xnn.nn.activations",
    "Linear": "xnn.nn.activations",
    "ReLU": "xnn.nn.activations",
    "ReLU6": "xnn.nn.activations",
    "Sigmoid": "xnn.nn.activations",
    "Tanh": "xnn.nn.activations",
    "Dropout": "xnn.nn.dropout",
    "BiasActivation": "xnn.nn.fused",
    "Dense": "xnn.nn.layers",
    "Layer": "xnn.nn.layers",
    "Loss": "xnn.nn.losses",
    "MeanSquaredError": "xnn.nn.losses",
    "SoftmaxCrossEntropy": "xnn.nn.losses",
    "NeuralNetwork": "xnn.nn.network",
    "BiasAdd": "xnn.nn.operations",
    "Operation": "xnn.nn.operations",
    "ParamOperation": "xnn.nn.operations",
    "WeightMultiply": "xnn.nn.operations",
    "ParameterStore": "xnn.nn.store",
    "Callback": "xnn.train.callbacks",
    "EarlyStopping": "xnn.train.callbacks",
    "ModelCheckpoint": "xnn.train.callbacks",
    "History": "xnn.train.history",
    "CSVLogger": "xnn.train.loggers",
    "JSONLogger": "xnn.train.loggers",
    "ProgressBar": "xnn.train.loggers",
    "SGD": "xnn.train.optimizers",
    "Optimizer": "xnn.train.optimizers",
    "OptimizerState": "xnn.train.optimizers",
    "SGDMomentum": "xnn.train.optimizers",
    "TrainingState": "xnn.train.state",
    "Trainer": "xnn.train.trainer",
    "Adam": "xnn.train.adaptive",
    "AdamW": "xnn.train.adaptive",
    "RMSProp": "xnn.train.adaptive",
    "AdaGrad": "xnn.train.adaptive",
    "Schedule": "xnn.train.schedules",
    "LinearDecay": "xnn.train.schedules",
    "ExponentialDecay": "xnn.train.schedules",
    "StepDecay": "xnn.train.schedules",
    "CosineDecay": "xnn.train.schedules",
    "ReduceLROnPlateau": "xnn.train.schedules",
    "BatchNormalize": "xnn.nn.batchnorm",
    "Scale": "xnn.nn.batchnorm",
}

__all__ = [
    "SGD",
    "Activation",
    "AdaGrad",
    "Adam",
    "AdamW",
    "Backend",
    "BackendUnavailableError",
    "BatchNormalize",
    "BiasActivation",
    "BiasAdd",
    "CSVLogger",
    "Callback",
    "CosineDecay",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "ExponentialDecay",
    "History",
    "JSONLogger",
    "Layer",
    "LeakyReLU",
    "Linear",
    "LinearDecay",
    "Loss",
    "MeanSquaredError",
    "ModelCheckpoint",
    "NeuralNetwork",
    "Operation",
    "Optimizer",
    "OptimizerState",
    "ParamOperation",
    "ParameterStore",
    "ProgressBar",
    "RMSProp",
    "ReLU",
    "ReLU6",
    "ReduceLROnPlateau",
    "SGDMomentum",
    "Scale",
    "Schedule",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "StepDecay",
    "Tanh",
    "Trainer",
    "TrainingState",
    "WeightMultiply",
    "__version__",
    "available_backends",
    "from_dlpack",
    "get_backend",
    "to_numpy",
]


def __getattr__(name: str) -> _Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'xnn' has no attribute {name!r}")
    value = getattr(_importlib.import_module(home), name)
    globals()[name] = value  # imported once
    return value


def __dir__() -> list[str]:
    return [*__all__]


if _TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from xnn.backends import (
        Backend,
        BackendUnavailableError,
        available_backends,
        from_dlpack,
        get_backend,
        to_numpy,
    )
    from xnn.nn.activations import Activation, LeakyReLU, Linear, ReLU, ReLU6, Sigmoid, Tanh
    from xnn.nn.batchnorm import BatchNormalize, Scale
    from xnn.nn.dropout import Dropout
    from xnn.nn.fused import BiasActivation
    from xnn.nn.layers import Dense, Layer
    from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
    from xnn.nn.network import NeuralNetwork
    from xnn.nn.operations import BiasAdd, Operation, ParamOperation, WeightMultiply
    from xnn.nn.store import ParameterStore
    from xnn.train.adaptive import AdaGrad, Adam, AdamW, RMSProp
    from xnn.train.callbacks import Callback, EarlyStopping, ModelCheckpoint
    from xnn.train.history import History
    from xnn.train.loggers import CSVLogger, JSONLogger, ProgressBar
    from xnn.train.optimizers import SGD, Optimizer, OptimizerState, SGDMomentum
    from xnn.train.schedules import (
        CosineDecay,
        ExponentialDecay,
        LinearDecay,
        ReduceLROnPlateau,
        Schedule,
        StepDecay,
    )
    from xnn.train.state import TrainingState
    from xnn.train.trainer import Trainer
