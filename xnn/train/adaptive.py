"""Adaptive optimizers: Adam, AdamW, RMSProp and AdaGrad, with ``torch.optim``'s update rules.

Each keeps exactly the flat arrays its rule needs (Adam: m and v) in its
:class:`~xnn.train.optimizers.OptimizerState`, and updates the whole model with one call of its
kernel (one CUDA kernel on CuPy's fused path, ``out=`` passes on NumPy, plain ``xp`` elsewhere).
All take the book's ``final_lr``/``decay_type``, ``schedule=``, ``weight_decay=`` and
``clip_norm=``.
"""

from __future__ import annotations

from typing import Any

from xnn.core.validation import check_number
from xnn.nn.store import ParameterStore
from xnn.train.optimizers import Optimizer, OptimizerState

__all__ = ["AdaGrad", "Adam", "AdamW", "RMSProp"]


def _betas(betas: Any) -> tuple[float, float]:
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (β₁, β₂), got {betas!r}") from None
    return (check_number(beta1, "betas[0]", low=0.0, high=1.0, high_open=True),
            check_number(beta2, "betas[1]", low=0.0, high=1.0, high_open=True))


def _zeros(store: ParameterStore, *names: str) -> OptimizerState:
    backend, values = store.backend, store.values
    return OptimizerState({name: backend.zeros(values.shape, values.dtype) for name in names})


class Adam(Optimizer):
    """m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr·m̂/(√v̂ + ε), bias-corrected
    (m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ)); ``weight_decay`` adds wd·θ to g (L2, as
    ``torch.optim.Adam``)."""

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, **options: Any) -> None:
        super().__init__(lr, weight_decay=weight_decay, **options)
        self.betas = _betas(betas)
        self.eps = check_number(eps, "eps", low=0.0, low_open=True)

    def init(self, store: ParameterStore) -> OptimizerState:
        return _zeros(store, "m", "v")

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        arrays = state.arrays
        store.kernels.adam_step(store.values, store.grads, arrays["m"], arrays["v"], lr,
                                self.betas, self.eps, state.step, self.weight_decay,
                                self.decoupled, store.scratch, self._work(store))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "betas": list(self.betas), "eps": self.eps}


class AdamW(Adam):
    """Adam with decoupled weight decay: θ ← θ·(1 − lr·wd) first (``torch.optim.AdamW``)."""

    decoupled = True

    def __init__(self, lr: float = 0.001, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.01, **options: Any) -> None:
        super().__init__(lr, betas, eps, weight_decay, **options)


class RMSProp(Optimizer):
    """s ← αs + (1−α)g²; θ ← θ − lr·g/(√s + ε) (ε outside the root); with ``momentum``
    b ← μb + g/(√s + ε), θ ← θ − lr·b (``torch.optim.RMSprop``, not centered)."""

    def __init__(self, lr: float = 0.01, alpha: float = 0.99, eps: float = 1e-8,
                 momentum: float = 0.0, weight_decay: float = 0.0, **options: Any) -> None:
        super().__init__(lr, weight_decay=weight_decay, **options)
        self.alpha = check_number(alpha, "alpha", low=0.0, high=1.0, high_open=True)
        self.eps = check_number(eps, "eps", low=0.0, low_open=True)
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0, high_open=True)

    def init(self, store: ParameterStore) -> OptimizerState:
        return _zeros(store, "square_avg", *(("momentum_buffer",) if self.momentum else ()))

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        arrays = state.arrays
        store.kernels.rmsprop_step(store.values, store.grads, arrays["square_avg"],
                                   arrays.get("momentum_buffer"), lr, self.alpha, self.eps,
                                   self.momentum, self.weight_decay, store.scratch,
                                   self._work(store))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "alpha": self.alpha, "eps": self.eps,
                "momentum": self.momentum}


class AdaGrad(Optimizer):
    """Σ ← Σ + g²; θ ← θ − lr·g/(√Σ + ε) (``torch.optim.Adagrad``)."""

    def __init__(self, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0,
                 **options: Any) -> None:
        super().__init__(lr, weight_decay=weight_decay, **options)
        self.eps = check_number(eps, "eps", low=0.0, low_open=True)

    def init(self, store: ParameterStore) -> OptimizerState:
        return _zeros(store, "sum")

    def update(self, state: OptimizerState, store: ParameterStore, lr: float) -> None:
        store.kernels.adagrad_step(store.values, store.grads, state.arrays["sum"], lr,
                                   self.eps, self.weight_decay, store.scratch,
                                   self._work(store))

    def config(self) -> dict[str, Any]:
        return {**super().config(), "eps": self.eps}
