"""Backend parity: train one model from one seed on several backends and compare, step by step.

    xnn parity numpy cupy [--model chapter|deep] [--steps 50] [--dtype float64|float32]
        [--batch-size 60] [--seed 20190119] [--compare steps|metrics] [--per-step RTOL]
        [--json PATH]

:func:`check_parity` builds the model on each backend (``build_model(backend, dtype)`` returns a
network and its optimizer), gives every backend the same mini-batches (drawn on the host from
``seed``) and restarts every dropout stream from ``seed``, so only the arithmetic differs. The
first backend is the reference. Before training (step 0) and after every optimizer step, each
parameter is pulled to the host and compared with the reference's; so is each step's loss, and
after the last step the loss and accuracy on held-out data.

Tolerance policy. A parameter's relative difference is max|p − r| / max|r| (r: the reference's),
a loss's |l − r| / |r|. After step k both may reach k × ``per_step`` (rounding differences
accumulate step by step). Measured with the command's models and data (docs/gpu.md):

- float64, 1e-10 per step: summing in another order moves the trajectory by ≤ 5e-15 × k over
  200 steps, so only a real bug fails.
- float32, 1e-5 per step: summing the 784-long dot products in another order (what a GPU's
  matmul does) moves it by ≤ 2.2e-7 × k over 50 steps and ≤ 3.4e-6 × k over 200 (the chapter
  model; the deep one stays ≤ 1e-7 × k); float32 drifts from float64 by as much. That leaves a
  margin of ≥ 20× at the default 50 steps and ≥ 3× at 200, while other dropout masks differ by
  ≥ 1e-3 at once, and TF32 matmuls by 1.4e-4 in the chapter model's first loss.
- whole trainings (``compare="metrics"``): long float32 trajectories part ways legitimately, so
  only the final loss (relative: 1e-2 in float32, 1e-8 in float64; float32 after 3000 steps:
  ≤ 2e-3) and accuracy (2 points in float32, 1 in float64; measured ≤ 0.5) are judged.

The command exits 0 when parity holds, 1 when it fails (naming the first step and parameter
that diverged), 2 on bad arguments and 3 when a backend cannot run on this machine. Its data are
synthetic and MNIST-shaped (784 features, 10 classes) from a fixed seed: nothing to download.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from xnn.backends import get_backend, resolve_dtype, to_numpy
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import BiasAdd, WeightMultiply
from xnn.tools.parity_report import (
    TOLERANCES,
    Comparison,
    Divergence,
    Metrics,
    ParamDiff,
    ParityReport,
    StepDiff,
    Tolerance,
)
from xnn.train.optimizers import Optimizer

__all__ = [
    "TOLERANCES", "Comparison", "Divergence", "Metrics", "ModelBuilder", "ParamDiff",
    "ParityReport", "StepDiff", "Tolerance", "batch_indices", "check_parity",
]

SEED = 20190119  # the book's seed

ModelBuilder = Callable[[str, str], tuple[NeuralNetwork, Optimizer]]


# -- the check -----------------------------------------------------------------------------
def check_parity(build_model: ModelBuilder, X: Any, y: Any,
                 backends: Sequence[str] = ("numpy", "cupy"), *, steps: int = 50,
                 dtype: str = "float64", batch_size: int = 60, seed: int = SEED,
                 compare: str = "steps", tolerance: Tolerance | None = None,
                 validation: tuple[Any, Any] | None = None) -> ParityReport:
    """Train ``build_model(backend, dtype)`` on every backend in lockstep and compare.

    ``X`` (rows, features) and ``y`` (labels or one-hot rows) are host data. Every backend gets
    the same ``steps`` batches of ``batch_size`` rows, in an order drawn from ``seed``, at the
    optimizer's initial learning rate. Final metrics are measured on ``validation`` (an
    ``(X, y)`` pair) if given, else on ``(X, y)``. ``compare="metrics"`` judges only those.
    Raises :class:`~xnn.BackendUnavailableError` when a backend cannot run here.
    """
    dtype = resolve_dtype(dtype)
    names = _check_backends(backends)
    if compare not in ("steps", "metrics"):
        raise ValueError(f"compare must be 'steps' or 'metrics', got {compare!r}")
    tolerance = TOLERANCES[dtype] if tolerance is None else tolerance
    X, y = np.asarray(X), np.asarray(y)
    models = [_build(build_model, name, dtype, seed, X) for name in names]
    _check_same_parameters(models, names)
    comparisons = [Comparison(name, _param_diffs(models[0][0])) for name in names[1:]]
    losses: dict[str, list[float]] = {name: [] for name in names}
    _compare_step(models, comparisons, 0, None, tolerance)
    for step, rows in enumerate(batch_indices(X.shape[0], batch_size, steps, seed), start=1):
        step_losses = [_train_step(net, optimizer, X[rows], y[rows]) for net, optimizer in models]
        for name, loss in zip(names, step_losses, strict=True):
            losses[name].append(loss)
        _compare_step(models, comparisons, step, step_losses, tolerance)
    X_val, y_val = (X, y) if validation is None else map(np.asarray, validation)
    metrics = {name: _metrics(net, X_val, y_val) for name, (net, _) in zip(names, models,
                                                                            strict=True)}
    for comparison in comparisons:
        _compare_metrics(comparison, metrics[names[0]], metrics[comparison.backend], tolerance)
    return ParityReport(names[0], names, dtype, steps, batch_size, seed, compare, tolerance,
                        losses, metrics, comparisons)


def batch_indices(rows: int, batch_size: int, steps: int, seed: int) -> list[np.ndarray]:
    """Row indices of ``steps`` mini-batches: consecutive slices of fresh permutations."""
    if min(rows, batch_size, steps) < 1:
        raise ValueError(f"rows, batch_size and steps must be >= 1, got {rows}, {batch_size} "
                         f"and {steps}")
    rng = np.random.default_rng(seed)
    batches: list[np.ndarray] = []
    while len(batches) < steps:
        order = rng.permutation(rows)
        batches.extend(order[start:start + batch_size] for start in range(0, rows, batch_size))
    return batches[:steps]


def _check_backends(backends: Sequence[str]) -> list[str]:
    """Two or more distinct backend names, each usable here."""
    names = [backends] if isinstance(backends, str) else list(backends)
    if len(names) < 2 or len(set(names)) != len(names):
        raise ValueError(f"backends must name two or more distinct backends, got {backends!r}")
    for name in names:
        get_backend(name)  # unknown: ValueError; unusable here: BackendUnavailableError
    return names


def _build(build_model: ModelBuilder, backend: str, dtype: str, seed: int,
           X: np.ndarray) -> tuple[NeuralNetwork, Optimizer]:
    """The model on ``backend`` with its parameters made, optimizer attached, masks from seed."""
    net, optimizer = build_model(backend, dtype)
    if net.backend != get_backend(backend) or net.dtype != dtype:  # "torch:cuda" is cuda:0
        raise ValueError(f"build_model({backend!r}, {dtype!r}) returned a model on "
                         f"{net.backend.name!r} in {net.dtype}")
    net.forward(X[:1], inference=True)  # makes the parameters; inference draws no mask
    optimizer.net = net
    net.reseed_dropout(seed)
    return net, optimizer


def _check_same_parameters(models: list[tuple[NeuralNetwork, Optimizer]],
                           names: list[str]) -> None:
    """Every model has the reference's parameters: the same names and shapes, in order."""
    reference = [(d.name, d.shape) for d in _param_diffs(models[0][0])]
    for (net, _), name in zip(models[1:], names[1:], strict=True):
        params = [(d.name, d.shape) for d in _param_diffs(net)]
        if params != reference:
            differ = next((f"{a[0]} {a[1]} against {b[0]} {b[1]}" for a, b in
                           zip(params, reference, strict=False) if a != b),
                          f"{len(params)} parameters against {len(reference)}")
            raise ValueError(f"build_model made different models on {names[0]!r} and "
                             f"{name!r}: {differ}; parity compares one model on each backend")


def _train_step(net: NeuralNetwork, optimizer: Optimizer, X: np.ndarray, y: np.ndarray) -> float:
    """One mini-batch step; returns its loss, pulled to the host."""
    loss = net.train_batch(X, y)
    optimizer.step()
    return float(to_numpy(loss))


def _param_diffs(net: NeuralNetwork) -> list[ParamDiff]:
    """Empty diffs named like ``layers[1].W``, in :meth:`NeuralNetwork.params` order."""
    diffs = []
    for index, layer in enumerate(net.layers):
        for op in layer.param_operations:
            short = ("W" if isinstance(op, WeightMultiply)
                     else "B" if isinstance(op, BiasAdd)  # BiasActivation too
                     else type(op).__name__)
            diffs.append(ParamDiff(f"layers[{index}].{short}", tuple(op.param.shape)))
    return diffs


def _compare_step(models: list[tuple[NeuralNetwork, Optimizer]], comparisons: list[Comparison],
                  step: int, losses: list[float] | None, tolerance: Tolerance) -> None:
    """Record step ``step`` of every backend against the reference (``models[0]``)."""
    allowed = tolerance.allowed(step)
    reference = [to_numpy(p).astype(np.float64) for p in models[0][0].params()]
    for index, comparison in enumerate(comparisons, start=1):
        params = models[index][0].params()
        rels = [_record_param(diff, to_numpy(p), ref, step, allowed)
                for diff, p, ref in zip(comparison.params, params, reference, strict=True)]
        loss_rel = None if losses is None else _relative(abs(losses[index] - losses[0]),
                                                         abs(losses[0]))
        record = StepDiff(step, loss_rel, max(rels, key=_nan_last), allowed)
        comparison.steps.append(record)
        if comparison.divergence is None and not record.passed:
            comparison.divergence = _divergence(comparison, record, rels)


def _record_param(diff: ParamDiff, value: np.ndarray, reference: np.ndarray, step: int,
                  allowed: float) -> float:
    """Fold this step's values into ``diff``; returns their relative difference."""
    delta = float(np.max(np.abs(value.astype(np.float64) - reference), initial=0.0))
    rel = _relative(delta, float(np.max(np.abs(reference), initial=0.0)))
    diff.max_abs = max(diff.max_abs, delta, key=_nan_last)
    if _nan_last(rel) > _nan_last(diff.max_rel):
        diff.max_rel, diff.worst_step = rel, step
    if diff.first_failure is None and not rel <= allowed:
        diff.first_failure = step
    return rel


def _divergence(comparison: Comparison, record: StepDiff, rels: list[float]) -> Divergence:
    """The worst failing parameter of a failed step (the loss when no parameter failed)."""
    failing = [(rel, diff.name) for rel, diff in zip(rels, comparison.params, strict=True)
               if not rel <= record.allowed]
    rel, name = max(failing, key=lambda item: _nan_last(item[0])) if failing else (
        record.loss_rel, "loss")
    return Divergence(record.step, name, rel, record.allowed)


def _metrics(net: NeuralNetwork, X: np.ndarray, y: np.ndarray) -> Metrics:
    """Inference-mode loss and accuracy on (X, y)."""
    prediction = net.forward(X, inference=True)
    loss = float(to_numpy(net.loss.forward(prediction, net.as_targets(y, X.shape[0]))))
    labels = y if y.ndim == 1 else np.argmax(y, axis=1)
    return Metrics(loss, float(np.mean(np.argmax(to_numpy(prediction), axis=1) == labels)))


def _compare_metrics(comparison: Comparison, reference: Metrics, other: Metrics,
                     tolerance: Tolerance) -> None:
    """Judge the final metrics of ``comparison``'s backend against the reference's."""
    comparison.final_loss_rel = _relative(abs(other.loss - reference.loss), abs(reference.loss))
    comparison.accuracy_diff = abs(other.accuracy - reference.accuracy)
    comparison.metrics_passed = (comparison.final_loss_rel <= tolerance.final_loss
                                 and comparison.accuracy_diff <= tolerance.accuracy + 1e-12)


def _relative(delta: float, scale: float) -> float:
    """``delta / scale``: 0 when both are 0, inf when only the scale is."""
    if delta == 0:
        return 0.0
    return delta / scale if scale != 0 else math.inf


def _nan_last(value: float) -> float:
    """Sort key that ranks NaN above everything: a NaN is the worst difference."""
    return math.inf if math.isnan(value) else value
