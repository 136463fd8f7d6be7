"""PyTorch on the same models, data and device, eager and under ``torch.compile``."""

from __future__ import annotations

import time
from collections.abc import Callable
from types import ModuleType
from typing import Any

import numpy as np

from xnn.tools.bench.workloads import FEATURES, LR, MOMENTUM, Data, LayerSpec, Runner

__all__ = ["load_torch", "on_gpu", "torch_compile_training", "torch_device", "torch_inference",
           "torch_step", "torch_training"]



def on_gpu(backend: str) -> bool:
    """Whether the xnn backend named ``backend`` computes on a CUDA GPU (CuPy, torch CUDA)."""
    return backend.startswith(("cupy", "torch:cuda"))


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
    if not on_gpu(backend):
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


def torch_step(model: Any, optimizer: Any, loss_fn: Any) -> Callable[[Any, Any], Any]:
    """One training step on a batch: zero the gradients, forward, loss, backward, update."""

    def step(X_batch: Any, y_batch: Any) -> Any:
        optimizer.zero_grad()
        loss = loss_fn(model(X_batch), y_batch)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


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
        torch_epoch(torch, torch_step(model, optimizer, loss_fn), X, y, batch_size)
        return {"epoch": time.perf_counter() - start}

    return run


def torch_compile_training(torch: ModuleType, device: str, layers: tuple[LayerSpec, ...],
                           data: Data, batch_size: int, seed: int) -> tuple[Runner, float]:
    """Epochs of :func:`torch_step` under ``torch.compile``; and the seconds compiling took.

    Compiled once (TorchInductor, static shapes), by two steps of each batch shape: the
    optimizer's first step, without momentum yet, compiles apart. Each epoch then starts from
    the same initial weights and zero momentum, copied in place so nothing recompiles.
    """
    torch.compiler.reset()  # earlier models' graphs would count against the recompile limit
    torch.manual_seed(seed)
    X, y = torch.from_numpy(data.X).to(device), torch.from_numpy(data.y).to(device)
    model = torch_model(torch, layers, device)
    initial = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    step = torch.compile(torch_step(model, optimizer, torch.nn.CrossEntropyLoss()),
                         dynamic=False)
    rows = X.shape[0]
    start = time.perf_counter()
    for size in sorted({min(batch_size, rows), rows % batch_size} - {0}):
        for _ in range(2):
            step(X[:size], y[:size])
    torch_sync(torch, device)
    compile_seconds = time.perf_counter() - start

    def run() -> dict[str, float]:
        _restart(torch, model, initial, optimizer)
        torch_sync(torch, device)
        begin = time.perf_counter()
        torch_epoch(torch, step, X, y, batch_size)
        return {"epoch": time.perf_counter() - begin}

    return run, compile_seconds


def _restart(torch: ModuleType, model: Any, initial: list[Any], optimizer: Any) -> None:
    """Copy the initial weights back and zero the momentum, in place."""
    with torch.no_grad():
        for param, value in zip(model.parameters(), initial, strict=True):
            param.copy_(value)
        for state in optimizer.state.values():
            state["momentum_buffer"].zero_()


def torch_epoch(torch: ModuleType, step: Callable[[Any, Any], Any], X: Any, y: Any,
                batch_size: int) -> float:
    """Batches sliced from a shuffled copy; the loss summed on the device, one sync at the end.

    The same strategy as xnn's trainer, so both pay for one permuted copy and one host sync.
    """
    n = X.shape[0]
    order = torch.randperm(n, device=X.device)
    X, y, total = X[order], y[order], None
    for first in range(0, n, batch_size):
        X_batch = X[first:first + batch_size]
        loss = step(X_batch, y[first:first + batch_size]) * X_batch.shape[0]
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
