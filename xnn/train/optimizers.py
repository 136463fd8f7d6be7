"""Optimizers: the book's SGD and SGD with momentum, with per-epoch learning-rate decay.

An optimizer's *rule* is explicit: :meth:`Optimizer.init` makes its state for a parameter store
(:class:`OptimizerState`: named flat arrays and the step count) and :meth:`Optimizer.update`
reads the store's gradients and writes its values, one pass per kernel over the flat arrays.
The book's API — ``optimizer.net = model`` (what ``Trainer`` does), then ``optimizer.step()`` —
is a thin layer over it that keeps the state of the network's current store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from xnn.backends import Backend, activated, to_numpy
from xnn.core.validation import check_number, check_positive_int
from xnn.nn.network import NeuralNetwork
from xnn.nn.store import ParameterStore
from xnn.train.schedules import DECAY_TYPES, Schedule, book_schedule

__all__ = ["SGD", "Optimizer", "OptimizerState", "SGDMomentum"]


@dataclass
class OptimizerState:
    """What an optimizer carries from step to step: flat arrays shaped like the store's
    values (``arrays``) and the number of updates made (``step``). Plain data: it can be saved
    (:meth:`state_dict`), moved (:meth:`to`) and sent to another process."""

    arrays: dict[str, Any] = field(default_factory=dict)
    step: int = 0

    def to(self, backend: Backend) -> OptimizerState:
        """The same state with its arrays on ``backend``."""
        moved = {name: backend.asarray(to_numpy(a)) for name, a in self.arrays.items()}
        return OptimizerState(moved, self.step)

    def state_dict(self) -> dict[str, Any]:
        """The state with host arrays."""
        return {"arrays": {name: to_numpy(a) for name, a in self.arrays.items()},
                "step": self.step}

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], backend: Backend) -> OptimizerState:
        """The state :meth:`state_dict` described, on ``backend``."""
        arrays = {name: backend.asarray(a) for name, a in state["arrays"].items()}
        return cls(arrays, int(state["step"]))


class Optimizer:
    """Updates a network's parameters from its gradients, at a rate that may decay per epoch."""

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None, *,
                 schedule: Schedule | None = None, weight_decay: float = 0.0,
                 clip_norm: float | None = None) -> None:
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
        if schedule is not None and decay_type is not None:
            raise ValueError("give either decay_type (the book's) or schedule=, not both")
        if schedule is not None and not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a Schedule such as CosineDecay(), got "
                            f"{schedule!r}")
        self.decay_type = decay_type
        self.schedule = schedule if schedule is not None else book_schedule(final_lr, decay_type)
        self.weight_decay = check_number(weight_decay, "weight_decay", low=0.0)
        self.clip_norm = None if clip_norm is None else check_number(
            clip_norm, "clip_norm", low=0.0, low_open=True)
        self.lr = self.initial_lr
        self._epoch = 0
        self._net: NeuralNetwork | None = None
        self.reset()

    # -- the rule ------------------------------------------------------------------------
    def init(self, store: ParameterStore) -> OptimizerState:
        """A fresh state for ``store`` (SGD needs none)."""
        return OptimizerState()

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        """One step at rate ``lr``: read ``store.grads``, write ``store.values`` and ``state``."""
        raise NotImplementedError

    # -- the book's API ------------------------------------------------------------------
    @property
    def net(self) -> NeuralNetwork | None:
        """The network whose parameters this optimizer updates."""
        return self._net

    @net.setter
    def net(self, net: NeuralNetwork) -> None:
        if net is not self._net:
            self.reset()
        self._net = net

    @property
    def state(self) -> OptimizerState | None:
        """The state for the network's current parameters (``None`` before the first step);
        after ``net.to(...)`` it is on the new backend."""
        store = None if self._net is None else self._net.store
        if self._state is not None and store is not None and store is not self._store:
            self._adopt(store)
        return self._state

    def start(self, epochs: int, steps_per_epoch: int = 1) -> None:
        """Begin a run of ``epochs`` epochs at the initial rate (called by ``Trainer.fit``)."""
        self.schedule.start(self.initial_lr, check_positive_int(epochs, "epochs"),
                            steps_per_epoch)
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Use the rate of epoch ``epoch`` (0-based) of the current run."""
        self._epoch = epoch
        self.lr = self.schedule.lr(epoch, 0)

    def set_step(self, step: int) -> None:
        """Use the rate of ``step`` (0-based) of the current epoch, for per-step schedules."""
        if self.schedule.per == "step":
            self.lr = self.schedule.lr(self._epoch, step)

    def evaluated(self, val_loss: float) -> None:
        """Tell the schedule an evaluation's loss (``ReduceLROnPlateau`` acts on it)."""
        self.schedule.evaluated(val_loss)

    @activated
    def step(self) -> None:
        """Update every parameter of :attr:`net` in place from its latest gradient."""
        net = self._net
        if net is None:
            raise RuntimeError("the optimizer has no network; set optimizer.net or use a Trainer")
        store = net.store
        if store is None:
            raise RuntimeError("the network has no parameters yet; run a forward pass first")
        if store is not self._store:  # new parameters, or the same ones moved
            self._adopt(store)
        if self.clip_norm is not None:
            store.kernels.clip_norm(store.grads, self.clip_norm)
        self._state.step += 1
        self.update(self._state, store, self.lr)

    def reset(self) -> None:
        """Forget any state (momentum); the learning-rate schedule is unaffected."""
        self._state: OptimizerState | None = None
        self._store: ParameterStore | None = None

    def load_state(self, state: OptimizerState, store: ParameterStore) -> None:
        """Continue from ``state`` (e.g. restored from a checkpoint) on ``store``."""
        self._state, self._store = state, store

    def __getstate__(self) -> dict[str, Any]:
        """Hyper-parameters, the network, and the state as host arrays (not the store)."""
        state = self.state
        return {**{k: v for k, v in self.__dict__.items() if k not in ("_state", "_store")},
                "_state": None if state is None else state.state_dict()}

    def __setstate__(self, saved: dict[str, Any]) -> None:
        state = saved.pop("_state")
        self.__dict__.update(saved)
        self._state, self._store = None, None
        net = self._net
        if state is not None and net is not None and net.store is not None:
            self.load_state(OptimizerState.from_state_dict(state, net.backend), net.store)

    def _adopt(self, store: ParameterStore) -> None:
        """Keep the state of ``store``'s parameters: moved along if they moved, else new."""
        old = self._store
        if self._state is not None and old is not None and old.lineage is store.lineage:
            self._state = self._state.to(store.backend)
        else:
            self._state = self.init(store)
        self._store = store

    def config(self) -> dict[str, Any]:
        """The hyper-parameters, by name (what a training checkpoint belongs to)."""
        return {"type": type(self).__name__, "lr": self.initial_lr, "final_lr": self.final_lr,
                "decay_type": self.decay_type, "schedule": repr(self.schedule),
                "weight_decay": self.weight_decay, "clip_norm": self.clip_norm}

    def _work(self, store: ParameterStore) -> Any:
        """A second work array the size of the parameters, for L2 weight decay (else None)."""
        if not self.weight_decay or self.decoupled:
            return None
        work = self.__dict__.get("_work_array")
        if work is None or work.shape != store.values.shape or \
                not store.backend.owns(work) or work.dtype != store.values.dtype:
            work = self._work_array = store.backend.zeros(store.values.shape,
                                                          store.values.dtype)
        return work

    decoupled = False  # AdamW decays θ directly instead of adding wd·θ to the gradient

    def __repr__(self) -> str:
        defaults = {"final_lr": 0, "decay_type": None, "weight_decay": 0.0, "clip_norm": None,
                    "nesterov": False, "schedule": repr(book_schedule(0.0, None)),
                    "type": None, "lr": None}
        parts = [f"lr={self.initial_lr}"] + [
            f"{k}={v}" if k == "schedule" else f"{k}={v!r}"
            for k, v in self.config().items() if defaults.get(k, object()) != v
            and k not in ("type", "lr") and not (k == "schedule" and self.decay_type)]
        return f"{type(self).__name__}({', '.join(parts)})"


class SGD(Optimizer):
    """θ ← θ − lr·(∇θ + wd·θ)."""

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        store.kernels.sgd_step(store.values, store.grads, lr, store.scratch, self.weight_decay,
                               self._work(store))


class SGDMomentum(Optimizer):
    """v ← μ·v + lr·g;  θ ← θ − v  (the book's form, with v starting at 0; g = ∇θ + wd·θ).

    ``nesterov=True``: θ ← θ − lr·g − μ·v. At a constant rate both equal
    ``torch.optim.SGD(lr, momentum=μ, nesterov=..., weight_decay=wd)`` (whose buffer is v/lr).
    """

    def __init__(self, lr: float = 0.01, final_lr: float = 0, decay_type: str | None = None,
                 momentum: float = 0.9, *, nesterov: bool = False, **options: Any) -> None:
        super().__init__(lr, final_lr, decay_type, **options)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_open=True)
        if nesterov not in (True, False):
            raise TypeError(f"nesterov must be True or False, got {nesterov!r}")
        if nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = bool(nesterov)

    def init(self, store: ParameterStore) -> OptimizerState:
        velocity = store.backend.zeros(store.values.shape, store.values.dtype)
        return OptimizerState({"velocity": velocity})

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        store.kernels.momentum_step(store.values, store.grads, state.arrays["velocity"], lr,
                                    self.momentum, store.scratch, self.weight_decay,
                                    self.nesterov, self._work(store))

    @property
    def velocity(self) -> Any:
        """v of every parameter, flat like the store (``None`` before the first step)."""
        state = self.state
        return None if state is None else state.arrays["velocity"]

    def config(self) -> dict[str, Any]:
        return {**super().config(), "momentum": self.momentum, "nesterov": self.nesterov}
