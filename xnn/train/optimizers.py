"""Optimizers: the book's SGD and SGD with momentum, with per-epoch learning-rate decay."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from xnn.backends import Backend, to_numpy
from xnn.backends.kernels import Kernels
from xnn.core.validation import check_number, check_positive_int
from xnn.train.schedules import DECAY_TYPES, make_schedule

if TYPE_CHECKING:
    from xnn.nn.network import NeuralNetwork

__all__ = ["SGD", "Optimizer", "SGDMomentum"]


class Optimizer:
    """Updates a network's parameters from its gradients, at a rate that may decay per epoch."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0,
                 decay_type: str | None = None) -> None:
        self.initial_lr = check_number(lr, "lr", low=0.0, low_open=True)
        self.final_lr = check_number(final_lr, "final_lr", low=0.0)
        if decay_type not in DECAY_TYPES:
            raise ValueError(f"decay_type must be one of {DECAY_TYPES}, got {decay_type!r}")
        if decay_type is not None and self.final_lr > self.initial_lr:
            raise ValueError(
                f"final_lr ({final_lr}) must not exceed lr ({lr}) when decaying the learning rate"
            )
        if decay_type == "exponential" and self.final_lr == 0:
            raise ValueError("exponential decay needs final_lr > 0 (it cannot decay to 0)")
        self.decay_type = decay_type
        self.lr = self.initial_lr
        self.schedule = make_schedule(self.initial_lr, self.final_lr, decay_type, 1)
        self._net: NeuralNetwork | None = None
        self.reset()

    @property
    def net(self) -> NeuralNetwork | None:
        """The network whose parameters this optimizer updates."""
        return self._net

    @net.setter
    def net(self, net: NeuralNetwork) -> None:
        if net is not self._net:
            self.reset()
        self._net = net
        net.attach_optimizer(self)

    def start(self, epochs: int) -> None:
        """Begin a run of ``epochs`` epochs at the initial rate (called by ``Trainer.fit``)."""
        epochs = check_positive_int(epochs, "epochs")
        self.schedule = make_schedule(self.initial_lr, self.final_lr, self.decay_type, epochs)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Use the rate of epoch ``epoch`` (0-based) of the current run."""
        self.lr = self.schedule(epoch)

    def step(self) -> None:
        """Update every parameter of :attr:`net` in place from its latest gradient."""
        net = self._net
        if net is None:
            raise RuntimeError("the optimizer has no network; set optimizer.net or use a Trainer")
        flat = net.flat_parameters()  # every parameter at once: one pass per kernel
        if flat is None:
            raise RuntimeError("the network has no parameters yet; run a forward pass first")
        if self._scratch is None or self._scratch.shape != flat.values.shape:
            self._scratch = net.backend.zeros(flat.values.shape, flat.values.dtype)
        self._update_rule(net.backend.kernels, flat.values, flat.grads, self._scratch)

    def reset(self) -> None:
        """Forget any state (momentum); the learning-rate schedule is unaffected."""
        self._scratch: Any = None  # a work buffer for ``out=`` kernels, shaped like the params

    def to(self, backend: Backend) -> None:
        """Move any state to ``backend``."""
        self._scratch = None

    def _update_rule(self, kernels: Kernels, param: Any, grad: Any, scratch: Any) -> None:
        """Update the flat array of all parameters ``param`` from their gradients ``grad``."""
        raise NotImplementedError

    def __repr__(self) -> str:
        decay = ""
        if self.decay_type:
            decay = f", final_lr={self.final_lr}, decay_type={self.decay_type!r}"
        return f"{type(self).__name__}(lr={self.initial_lr}{decay})"


class SGD(Optimizer):
    """θ ← θ − lr·∇θ."""

    def _update_rule(self, kernels: Kernels, param: Any, grad: Any, scratch: Any) -> None:
        kernels.sgd_step(param, grad, self.lr, scratch)


class SGDMomentum(Optimizer):
    """v ← μ·v + lr·∇θ;  θ ← θ − v  (the book's form, with v starting at 0)."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None,
                 momentum: float = 0.9) -> None:
        super().__init__(lr, final_lr, decay_type)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_open=True)

    def reset(self) -> None:
        super().reset()
        self.velocity: Any = None  # of every parameter, flat like ``net.flat_parameters()``

    def to(self, backend: Backend) -> None:
        super().to(backend)
        if self.velocity is not None:
            self.velocity = backend.asarray(to_numpy(self.velocity))

    def _update_rule(self, kernels: Kernels, param: Any, grad: Any, scratch: Any) -> None:
        if self.velocity is None or self.velocity.shape != param.shape:
            self.velocity = self._net.backend.zeros(param.shape, param.dtype)
        kernels.momentum_step(param, grad, self.velocity, self.lr, self.momentum, scratch)

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", momentum={self.momentum})"

