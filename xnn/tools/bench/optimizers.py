"""The optimizers' cost: one update of the chapter model's parameters, and a whole epoch, with
SGD momentum and with Adam, alternating."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from xnn.backends import Backend
from xnn.tools.bench.workloads import (
    FEATURES,
    LR,
    MOMENTUM,
    Data,
    LayerSpec,
    Runner,
    fit_one_epoch,
    sync,
    xnn_model,
)
from xnn.train.adaptive import Adam
from xnn.train.optimizers import SGDMomentum
from xnn.train.trainer import Trainer

__all__ = ["OPTIMIZERS", "optimizer_entry", "optimizer_epoch", "optimizer_step"]

OPTIMIZERS = {"momentum": lambda: SGDMomentum(LR, momentum=MOMENTUM), "adam": lambda: Adam(1e-3)}


def optimizer_step(backend: Backend, layers: tuple[LayerSpec, ...], name: str, calls: int,
                   seed: int) -> Runner:
    """Mean seconds of ``optimizer.step()`` on a built model with random gradients."""
    net, optimizer = xnn_model(layers, backend.name, seed), OPTIMIZERS[name]()
    optimizer.net = net
    net.forward(np.zeros((2, FEATURES), dtype=np.float32))
    store = net.store
    store.grads[...] = backend.asarray(
        np.random.default_rng(seed).standard_normal(store.size).astype(np.float32) * 1e-3)
    optimizer.step()  # state made before the clock

    def run() -> dict[str, float]:
        start = time.perf_counter()
        for _ in range(calls):
            optimizer.step()
        sync(backend)
        return {"step": (time.perf_counter() - start) / calls}

    return run


def optimizer_epoch(backend: Backend, layers: tuple[LayerSpec, ...], data: Data,
                    batch_size: int, name: str, seed: int) -> Runner:
    """One training epoch with optimizer ``name``."""
    trainer = Trainer(xnn_model(layers, backend.name, seed), OPTIMIZERS[name](),
                      log=lambda line: None)
    X, y = backend.asarray(data.X), backend.asarray(data.y)

    def run() -> dict[str, float]:
        return {"epoch": fit_one_epoch(trainer, X, y, batch_size, seed)}

    return run


def optimizer_entry(samples: dict[str, Any], summary: Any, ratio: Any) -> dict[str, Any]:
    """Medians and the Adam / momentum ratios from alternated ``samples``."""
    entry = {f"{name}_{kind}": summary(samples[f"{name}_{kind}"][kind])
             for name in OPTIMIZERS for kind in ("step", "epoch")}
    entry["adam_over_momentum_step"] = ratio(entry["adam_step"], entry["momentum_step"])
    entry["adam_over_momentum_epoch"] = ratio(entry["adam_epoch"], entry["momentum_epoch"])
    return entry
