"""Batch normalization as ``torch.nn.BatchNorm1d`` computes it, in two operations and a bias.

``BN(x) = γ·x̂ + β`` runs as :class:`BatchNormalize` (x → x̂, no parameters; it keeps the running
statistics), :class:`Scale` (γ) and :class:`~xnn.nn.operations.BiasAdd` (β), so each parameter
has its own :class:`~xnn.nn.operations.ParamOperation` and gradient, as W and B do.
"""

from __future__ import annotations

from xnn.backends import Kernels
from xnn.core.validation import check_number, check_same_shape
from xnn.nn.operations import Array, Operation, ParamOperation

__all__ = ["BatchNormalize", "Scale", "check_batch_rows"]


def check_batch_rows(n_rows: int, name: str = "input") -> None:
    """Training statistics need two rows at least (torch's rule, and its message)."""
    if n_rows < 2:
        raise ValueError(f"Expected more than 1 value per channel when training: {name} has "
                         f"{n_rows} row(s), and batch normalization needs at least 2 in training "
                         "(use inference=True, or batches of 2 rows or more)")


def _check_row(array: Array, name: str) -> None:
    if array.ndim != 2 or array.shape[0] != 1:
        raise ValueError(f"{name} must have shape (1, n), got {tuple(array.shape)}")


class BatchNormalize(Operation):
    """Training: x̂ = (x − μ_B)/√(σ²_B + ε) with the batch's mean and biased variance, and
    running ← (1 − momentum)·running + momentum·(μ_B, σ²_B·n/(n − 1)); inference: x̂ from the
    running mean and variance.

    ``running_mean`` and ``running_var`` (shape (1, n)) are updated in place: in a model, views
    of its store's buffers. Backward (training): dx = (dy − mean(dy) − x̂·mean(dy·x̂))/√(σ²_B + ε),
    means over rows; inference: dx = dy/√(running_var + ε).
    """

    def __init__(self, running_mean: Array, running_var: Array, momentum: float = 0.1,
                 eps: float = 1e-5, kernels: Kernels | None = None) -> None:
        _check_row(running_mean, "running_mean")
        check_same_shape(running_mean, running_var, "running_var")
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum = check_number(momentum, "momentum", low=0.0, high=1.0)
        self.eps = check_number(eps, "eps", low=0.0, low_open=True)
        self.kernels = kernels
        self.inv_std: Array = None  # 1/√(σ² + ε) of the last forward pass
        self.batch_stats = True  # whether the last forward pass used the batch's statistics

    _transient = (*Operation._transient, "inv_std")

    def _output(self, inference: bool) -> Array:
        x = self.input_
        xp = self._kernels(x).xp
        self.batch_stats = not inference
        if inference:
            self.inv_std = 1.0 / xp.sqrt(self.running_var + self.eps)
            return (x - self.running_mean) * self.inv_std
        n = x.shape[0]
        check_batch_rows(n)
        mean = xp.mean(x, axis=0, keepdims=True)
        centered = x - mean
        var = xp.mean(centered * centered, axis=0, keepdims=True)  # biased, as torch normalizes
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        m = self.momentum
        self.running_mean[...] = (1.0 - m) * self.running_mean + m * mean
        self.running_var[...] = (1.0 - m) * self.running_var + (m * n / (n - 1)) * var
        return centered * self.inv_std

    def _input_grad(self, output_grad: Array) -> Array:
        if not self.batch_stats:
            return output_grad * self.inv_std
        xp = self._kernels(output_grad).xp
        normalized = self.output
        mean_grad = xp.mean(output_grad, axis=0, keepdims=True)
        mean_proj = xp.mean(output_grad * normalized, axis=0, keepdims=True)
        return (output_grad - mean_grad - normalized * mean_proj) * self.inv_std

    def __repr__(self) -> str:
        return (f"BatchNormalize(n={self.running_mean.shape[1]}, momentum={self.momentum}, "
                f"eps={self.eps})")


class Scale(ParamOperation):
    """y = x·γ for γ of shape (1, n): dγ = Σ_rows dy·x, dx = dy·γ."""

    def __init__(self, gamma: Array, param_grad: Array | None = None,
                 kernels: Kernels | None = None) -> None:
        _check_row(gamma, "gamma")
        super().__init__(gamma, param_grad, kernels)

    def _output(self, inference: bool) -> Array:
        return self.input_ * self.param

    def _input_grad(self, output_grad: Array) -> Array:
        return output_grad * self.param

    def _write_param_grad(self, output_grad: Array) -> None:
        self._kernels(output_grad).sum_rows(output_grad * self.input_, out=self.param_grad)
