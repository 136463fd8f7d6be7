"""The two loops of a fit: one training epoch, and one evaluation, on checked backend arrays."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from xnn.core.batches import row_blocks
from xnn.nn.network import NeuralNetwork
from xnn.nn.operations import Array
from xnn.train.optimizers import Optimizer

__all__ = ["evaluate", "train_epoch"]


def train_epoch(net: NeuralNetwork, optim: Optimizer, X: Array, y: Array, order: Any,
                batch: tuple[Array, Array], on_step: Callable[[], None] | None = None) -> float:
    """One pass over (X, y) in a fresh random order; returns the mean training loss.

    Each batch's rows are gathered into the same two buffers, so an epoch allocates no shuffled
    copy of the data (memory stays at data + model; no page faults per epoch). The loss stays on
    the device until the epoch's end: one host sync per epoch.
    """
    backend = net.backend
    take_rows = backend.kernels.take_rows
    X_buffer, y_buffer = batch
    permutation = backend.asarray(order.permutation(X.shape[0]))
    per_step = optim.schedule.per == "step"
    total = None
    for step, rows in enumerate(row_blocks(X.shape[0], X_buffer.shape[0])):
        if per_step:
            optim.set_step(step)
        indices = permutation[rows]
        size = indices.shape[0]
        X_batch = take_rows(X, indices, out=X_buffer[:size, ...])
        loss = net.train_step(X_batch, take_rows(y, indices, out=y_buffer[:size, ...]))
        optim.step()
        loss = loss * size
        total = loss if total is None else total + loss
        if on_step is not None:
            on_step()
    return float(total) / X.shape[0]


def evaluate(net: NeuralNetwork, X: Array, y: Array, chunk: int) -> tuple[float, float | None]:
    """(mean loss, accuracy) of ``net`` in inference mode, ``chunk`` rows at a time; accuracy
    (argmax of output against argmax of target) only for a classification loss, else None.
    Two numbers come back to the host, once per evaluation."""
    xp = net.backend.xp
    loss_total = hits = None
    classes = net.loss.classifies
    for rows in row_blocks(X.shape[0], chunk):
        X_chunk, y_chunk = X[rows, ...], y[rows, ...]
        output = net.forward_batch(X_chunk, inference=True)
        part = net.loss.forward(output, y_chunk) * X_chunk.shape[0]
        loss_total = part if loss_total is None else loss_total + part
        if classes:
            same = xp.argmax(output, axis=1) == xp.argmax(y_chunk, axis=1)
            right = xp.sum(net.backend.astype(same, output.dtype))
            hits = right if hits is None else hits + right
    loss = float(loss_total) / X.shape[0]
    return loss, None if hits is None else float(hits) / X.shape[0]
