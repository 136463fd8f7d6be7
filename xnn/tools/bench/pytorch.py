"""PyTorch eager on the same models, data and device: the reference the ratios divide by."""

from __future__ import annotations

import time
from types import ModuleType
from typing import Any

import numpy as np

from xnn.tools.bench.workloads import FEATURES, LR, MOMENTUM, Data, LayerSpec, Runner

__all__ = ["load_torch", "torch_device", "torch_inference", "torch_training"]

GPU_BACKENDS = ("cupy",)


def load_torch() -> tuple[ModuleType | None, str]:
    """PyTorch, or ``None`` and the reason it is skipped."""
    try:
        import torch
    except ImportError as exc:
        return None, f"PyTorch is not installed ({exc}); pip install torch"
    return torch, ""


def torch_device(torch: ModuleType | None, backend: str, why_not: str) -> tuple[str | None, str]:
    """The PyTorch device where ``backend`` computes ("cpu" or "cuda"), or ``None`` and why."""
    if torch is None:
        return None, why_not
    if backend not in GPU_BACKENDS:
        return "cpu", ""
    if not torch.cuda.is_available():
        return None, f"this PyTorch ({torch.__version__}) cannot use CUDA here"
    return "cuda", ""


def torch_model(torch: ModuleType, layers: tuple[LayerSpec, ...], device: str) -> Any:
    """The network as torch.nn.Linear/Tanh/Dropout modules (PyTorch's default init)."""
    modules, width = [], FEATURES
    for spec in layers:
        modules.append(torch.nn.Linear(width, spec.neurons))
        if spec.tanh:
            modules.append(torch.nn.Tanh())
        if spec.keep_prob < 1.0:
            modules.append(torch.nn.Dropout(1.0 - spec.keep_prob))
        width = spec.neurons
    return torch.nn.Sequential(*modules).to(device)


def torch_sync(torch: ModuleType, device: str) -> None:
    """Wait for queued CUDA work (a no-op on the CPU)."""
    if device == "cuda":
        torch.cuda.synchronize()


def torch_training(torch: ModuleType, device: str, layers: tuple[LayerSpec, ...], data: Data,
                   batch_size: int, seed: int) -> Runner:
    """One epoch of a fresh model per call, timed from the shuffle to the epoch's loss."""
    torch.manual_seed(seed)
    X, y = torch.from_numpy(data.X).to(device), torch.from_numpy(data.y).to(device)
    loss_fn = torch.nn.CrossEntropyLoss()

    def run() -> dict[str, float]:
        model = torch_model(torch, layers, device)
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        torch_sync(torch, device)
        start = time.perf_counter()
        torch_epoch(torch, model, optimizer, loss_fn, X, y, batch_size)
        return {"epoch": time.perf_counter() - start}

    return run


def torch_epoch(torch: ModuleType, model: Any, optimizer: Any, loss_fn: Any, X: Any, y: Any,
                batch_size: int) -> float:
    """Batches sliced from a shuffled copy; the loss summed on the device, one sync at the end.

    The same strategy as xnn's trainer, so both pay for one permuted copy and one host sync.
    """
    n = X.shape[0]
    order = torch.randperm(n, device=X.device)
    X, y, total = X[order], y[order], None
    for first in range(0, n, batch_size):
        X_batch = X[first:first + batch_size]
        optimizer.zero_grad()
        loss = loss_fn(model(X_batch), y[first:first + batch_size])
        loss.backward()
        optimizer.step()
        loss = loss.detach() * X_batch.shape[0]
        total = loss if total is None else total + loss
    return float(total) / n


def torch_inference(torch: ModuleType, device: str, layers: tuple[LayerSpec, ...],
                    X: np.ndarray, calls: int, seed: int) -> Runner:
    """Mean seconds of a forward pass in eval mode under ``torch.inference_mode``."""
    torch.manual_seed(seed)
    model = torch_model(torch, layers, device).eval()
    X = torch.from_numpy(X).to(device)

    def run() -> dict[str, float]:
        start = time.perf_counter()
        with torch.inference_mode():
            for _ in range(calls):
                model(X)
        torch_sync(torch, device)
        return {"call": (time.perf_counter() - start) / calls}

    return run
