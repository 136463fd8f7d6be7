"""Alternating timed runs of xnn, PyTorch and the matmul floor, summarised as min and median."""

from __future__ import annotations

import statistics
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends import get_backend
from xnn.tools.bench.pytorch import torch_device, torch_inference, torch_training
from xnn.tools.bench.workloads import (
    MODELS,
    Data,
    Runner,
    floor_inference,
    floor_training,
    matmul_count,
    xnn_inference,
    xnn_training,
)

__all__ = ["alternate", "bench_inference", "bench_training", "ratio", "summary"]


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
                   seed: int, torch: ModuleType | None, why_no_torch: str) -> dict[str, Any]:
    """Alternating training epochs of xnn, PyTorch (where it can run) and the matmul floor."""
    backend, layers = get_backend(backend_name), MODELS[model]
    runners = {"xnn": xnn_training(backend, layers, data, batch_size, seed)}
    device, reason = torch_device(torch, backend_name, why_no_torch)
    if device is not None:
        runners["torch"] = torch_training(torch, device, layers, data, batch_size, seed)
    runners["floor"] = floor_training(backend, layers, data, batch_size, seed)
    runners["floor_update"] = floor_training(backend, layers, data, batch_size, seed,
                                             update=True)
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
    entry["xnn_over_torch"] = ratio(entry["xnn"]["epoch"], entry["torch"].get("epoch"))
    entry["xnn_over_floor"] = ratio(entry["xnn"]["epoch"], entry["floor"]["epoch"])
    entry["xnn_over_floor_update"] = ratio(entry["xnn"]["epoch"],
                                           entry["floor_update"]["epoch"])
    return entry


def bench_inference(backend_name: str, model: str, X: np.ndarray, calls: int, repeats: int,
                    seed: int, torch: ModuleType | None, why_no_torch: str) -> dict[str, Any]:
    """Alternating forward passes over ``X``: xnn, PyTorch and the forward matmuls alone."""
    backend, layers = get_backend(backend_name), MODELS[model]
    runners = {"xnn": xnn_inference(backend, layers, X, calls, seed)}
    device, reason = torch_device(torch, backend_name, why_no_torch)
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
