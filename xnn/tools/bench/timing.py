"""Alternating timed runs of xnn, PyTorch, the compiled contenders and the matmul floor."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends import get_backend
from xnn.tools.bench.jax_runner import jax_device, jax_jit_training, jax_scan_training
from xnn.tools.bench.optimizers import (
    OPTIMIZERS,
    optimizer_entry,
    optimizer_epoch,
    optimizer_step,
)
from xnn.tools.bench.pytorch import (
    torch_compile_training,
    torch_device,
    torch_inference,
    torch_training,
)
from xnn.tools.bench.workloads import (
    MODELS,
    Data,
    LayerSpec,
    Runner,
    floor_inference,
    floor_training,
    matmul_count,
    xnn_inference,
    xnn_training,
)

__all__ = ["COMPILED", "Frameworks", "alternate", "bench_inference", "bench_training",
           "compile_contender", "ratio", "summary"]

COMPILED = ("torch_compile", "jax_jit", "jax_scan")  # contenders that compile before timing
Compiling = Callable[[], tuple[Runner, float]]  # compiles → (runner, compile seconds)


@dataclass(frozen=True)
class Frameworks:
    """The optional libraries to compare with: each module, or ``None`` and the reason."""

    torch: ModuleType | None = None
    why_no_torch: str = "not requested"
    why_no_compile: str = ""  # non-empty: torch.compile is skipped even with PyTorch
    jax: ModuleType | None = None
    why_no_jax: str = "not requested"


def alternate(runners: dict[str, Runner], repeats: int) -> dict[str, dict[str, list[float]]]:
    """One untimed warm-up call of each runner, then ``repeats`` rounds calling each in turn."""
    for runner in runners.values():
        runner()
    samples: dict[str, dict[str, list[float]]] = {name: {} for name in runners}
    for _ in range(repeats):
        for name, runner in runners.items():
            for metric, seconds in runner().items():
                samples[name].setdefault(metric, []).append(seconds)
    return samples


def summary(samples: list[float]) -> dict[str, Any]:
    """Min, median and every sample, in seconds."""
    return {"min": min(samples), "median": statistics.median(samples), "samples": samples}


def ratio(numerator: dict[str, Any] | None, denominator: dict[str, Any] | None) -> float | None:
    """The ratio of two summaries' medians (``None`` when either is missing)."""
    if not numerator or not denominator:
        return None
    return numerator["median"] / denominator["median"]


def bench_training(backend_name: str, model: str, batch_size: int, data: Data, repeats: int,
                   seed: int, frameworks: Frameworks) -> dict[str, Any]:
    """Alternating training epochs of xnn, PyTorch eager and compiled, JAX and the matmul floor.

    The compiled contenders compile before the rounds; their compile seconds are kept apart.
    """
    backend, layers = get_backend(backend_name), MODELS[model]
    runners = {"xnn": xnn_training(backend, layers, data, batch_size, seed)}
    torch = frameworks.torch
    device, reason = torch_device(torch, backend_name, frameworks.why_no_torch)
    if device is not None:
        runners["torch"] = torch_training(torch, device, layers, data, batch_size, seed)
    compiled = {}
    for name, (place, why_not, compiling) in _compiled(backend_name, layers, data, batch_size,
                                                       seed, frameworks).items():
        runner, compiled[name] = compile_contender(place, why_not, compiling)
        if runner is not None:
            runners[name] = runner
    runners["floor"] = floor_training(backend, layers, data, batch_size, seed)
    runners["floor_update"] = floor_training(backend, layers, data, batch_size, seed,
                                             update=True)
    for name in OPTIMIZERS:  # the optimizers alone, and an epoch with each
        runners[f"{name}_step"] = optimizer_step(backend, layers, name, 200, seed)
        runners[f"{name}_epoch"] = optimizer_epoch(backend, layers, data, batch_size, name,
                                                   seed)
    samples = alternate(runners, repeats)
    xnn = samples["xnn"]
    setup = [fit - epoch for fit, epoch in zip(xnn["fit"], xnn["epoch"], strict=True)]
    rows = data.X.shape[0]
    entry: dict[str, Any] = {
        "model": model, "backend": backend_name, "batch_size": batch_size, "rows": rows,
        "steps": -(-rows // batch_size), "matmuls_per_step": matmul_count(layers),
        "xnn": {"epoch": summary(xnn["epoch"]), "fit": summary(xnn["fit"]),
                "setup": summary(setup)},
        "torch": _torch_entry(samples, "epoch", device, reason),
        "floor": {"epoch": summary(samples["floor"]["epoch"])},
        "floor_update": {"epoch": summary(samples["floor_update"]["epoch"])},
    }
    for name, part in compiled.items():
        if part["status"] == "ok":
            part["epoch"] = summary(samples[name]["epoch"])
        entry[name] = part
    for name in ("torch", *COMPILED):
        entry[f"xnn_over_{name}"] = ratio(entry["xnn"]["epoch"], entry[name].get("epoch"))
    entry["xnn_over_floor"] = ratio(entry["xnn"]["epoch"], entry["floor"]["epoch"])
    entry["xnn_over_floor_update"] = ratio(entry["xnn"]["epoch"],
                                           entry["floor_update"]["epoch"])
    entry["optimizers"] = optimizer_entry(samples, summary, ratio)
    return entry


def _compiled(backend_name: str, layers: tuple[LayerSpec, ...], data: Data, batch_size: int,
              seed: int, frameworks: Frameworks) -> dict[str, tuple[Any, str, Compiling]]:
    """Each compiled contender: its device (``None``: skipped), why not, and its compiling."""
    torch, jax = frameworks.torch, frameworks.jax
    device, reason = torch_device(torch, backend_name, frameworks.why_no_torch)
    if device is not None and frameworks.why_no_compile:
        device, reason = None, frameworks.why_no_compile
    place, why_not = jax_device(jax, backend_name, frameworks.why_no_jax)
    work = (layers, data, batch_size, seed)
    return {
        "torch_compile": (device, reason, lambda: torch_compile_training(torch, device, *work)),
        "jax_jit": (place, why_not, lambda: jax_jit_training(jax, place, *work)),
        "jax_scan": (place, why_not, lambda: jax_scan_training(jax, place, *work)),
    }


def compile_contender(device: Any, why_not: str,
                      compiling: Compiling) -> tuple[Runner | None, dict[str, Any]]:
    """The contender's runner and its entry (device, compile seconds), or ``None`` and why not.

    A compiler that fails here (no C++ compiler for TorchInductor, no GPU for JAX…) is
    reported as the reason the contender was skipped, not raised: the rest still runs.
    """
    if device is None:
        return None, {"status": "skipped", "reason": why_not}
    try:
        runner, seconds = compiling()
    except Exception as exc:  # any compiler's failure: a skip, with its cause
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return None, {"status": "skipped",
                      "reason": f"compiling failed: {type(exc).__name__}: {first}"}
    return runner, {"status": "ok", "device": str(device), "compile": seconds}


def bench_inference(backend_name: str, model: str, X: np.ndarray, calls: int, repeats: int,
                    seed: int, frameworks: Frameworks) -> dict[str, Any]:
    """Alternating forward passes over ``X``: xnn, PyTorch and the forward matmuls alone."""
    backend, layers = get_backend(backend_name), MODELS[model]
    runners = {"xnn": xnn_inference(backend, layers, X, calls, seed)}
    torch = frameworks.torch
    device, reason = torch_device(torch, backend_name, frameworks.why_no_torch)
    if device is not None:
        runners["torch"] = torch_inference(torch, device, layers, X, calls, seed)
    runners["floor"] = floor_inference(backend, layers, X, calls, seed)
    samples = alternate(runners, repeats)
    entry: dict[str, Any] = {
        "model": model, "backend": backend_name, "rows": X.shape[0], "calls_per_sample": calls,
        "xnn": {"call": summary(samples["xnn"]["call"])},
        "torch": _torch_entry(samples, "call", device, reason),
        "floor": {"call": summary(samples["floor"]["call"])},
    }
    entry["xnn_over_torch"] = ratio(entry["xnn"]["call"], entry["torch"].get("call"))
    entry["xnn_over_floor"] = ratio(entry["xnn"]["call"], entry["floor"]["call"])
    return entry


def _torch_entry(samples: dict[str, dict[str, list[float]]], metric: str, device: str | None,
                 reason: str) -> dict[str, Any]:
    """PyTorch's part of an entry: its device and summary, or why it was skipped."""
    if device is None:
        return {"status": "skipped", "reason": reason}
    return {"status": "ok", "device": device, metric: summary(samples["torch"][metric])}
