"""xnn: the training framework of *Deep Learning from Scratch*, chapter 4, on NumPy or CuPy."""

from xnn.backends import (
    Backend,
    BackendUnavailableError,
    available_backends,
    get_backend,
    to_numpy,
)
from xnn.nn.activations import Activation, LeakyReLU, Linear, ReLU, ReLU6, Sigmoid, Tanh
from xnn.nn.dropout import Dropout
from xnn.nn.fused import BiasActivation
from xnn.nn.layers import Dense, Layer
from xnn.nn.losses import Loss, MeanSquaredError, SoftmaxCrossEntropy
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import BiasAdd, Operation, ParamOperation, WeightMultiply
from xnn.nn.store import ParameterStore
from xnn.train.history import History
from xnn.train.optimizers import SGD, Optimizer, OptimizerState, SGDMomentum
from xnn.train.state import TrainingState
from xnn.train.trainer import Trainer

__version__ = "0.1.0"

__all__ = [
    "SGD",
    "Activation",
    "Backend",
    "BackendUnavailableError",
    "BiasActivation",
    "BiasAdd",
    "Dense",
    "Dropout",
    "History",
    "Layer",
    "LeakyReLU",
    "Linear",
    "Loss",
    "MeanSquaredError",
    "NeuralNetwork",
    "Operation",
    "Optimizer",
    "OptimizerState",
    "ParamOperation",
    "ParameterStore",
    "ReLU",
    "ReLU6",
    "SGDMomentum",
    "Sigmoid",
    "SoftmaxCrossEntropy",
    "Tanh",
    "Trainer",
    "TrainingState",
    "WeightMultiply",
    "__version__",
    "available_backends",
    "get_backend",
    "to_numpy",
]
