"""Where one training step of the chapter model goes: each operation timed on its own.

    python benchmarks/step_breakdown.py [--model chapter|deep] [--rounds 7] [--reps 400]

Builds the model on NumPy float32 (batch 60, 784 features), takes one real step to set it up,
then times, in alternating rounds, every piece of a step through the model's own operation
objects (the same calls ``Trainer`` makes) and the whole step. Prints medians in µs; the whole
step minus the pieces is the Python glue between them (calls, shape checks, loops).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from xnn import Linear
from xnn.tools.bench.workloads import MODELS, xnn_model


def _pieces(net, optimizer, X, y, X_batch, y_batch, indices):
    """Name → a zero-argument callable doing one piece of a training step."""
    kernels = net.backend.kernels
    pieces = {"gather batch (take_rows X, y)": lambda: (
        kernels.take_rows(X, indices, out=X_batch), kernels.take_rows(y, indices, out=y_batch))}
    inputs = [X_batch]
    for index, layer in enumerate(net.layers):
        for op in layer.operations:
            x = inputs[-1]
            pieces[f"layer {index} forward: {type(op).__name__}"] = (
                lambda op=op, x=x: op.forward(x))
            inputs.append(op.forward(x))
    logits = inputs[-1]
    pieces["loss forward"] = lambda: net.loss.forward(logits, y_batch)
    net.loss.forward(logits, y_batch)
    grad = net.loss.backward()
    pieces["loss backward"] = net.loss.backward
    for index in range(len(net.layers) - 1, -1, -1):
        for op in reversed(net.layers[index].operations):
            pieces[f"layer {index} backward: {type(op).__name__}"] = (
                lambda op=op, g=grad: op.backward(g))
            grad = op.backward(grad)
            if grad is None:
                break
    pieces["optimizer update"] = optimizer.step
    return pieces


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=tuple(MODELS), default="chapter")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--reps", type=int, default=400)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((6000, 784)).astype(np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 6000)]
    net, optimizer = xnn_model(MODELS[args.model], "numpy", 1), None
    from xnn import SGDMomentum

    optimizer = SGDMomentum(0.01, momentum=0.9)
    optimizer.net = net
    indices = rng.permutation(6000)[:60]
    X_batch, y_batch = X[:60].copy(), y[:60].copy()
    net.train_step(X_batch, y_batch)
    optimizer.step()
    pieces = _pieces(net, optimizer, X, y, X_batch, y_batch, indices)

    def whole():
        net.train_step(net.backend.kernels.take_rows(X, indices, out=X_batch),
                       net.backend.kernels.take_rows(y, indices, out=y_batch))
        optimizer.step()

    samples: dict[str, list[float]] = {name: [] for name in [*pieces, "whole step"]}
    for _ in range(args.rounds):
        for name, run in [*pieces.items(), ("whole step", whole)]:
            start = time.perf_counter()
            for _ in range(args.reps):
                run()
            samples[name].append((time.perf_counter() - start) / args.reps * 1e6)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    total = medians.pop("whole step")
    width = max(map(len, medians))
    print(f"{args.model} model, NumPy float32, batch 60 ({Linear.__name__} layers add nothing)")
    for name, value in medians.items():
        print(f"{name:<{width}}  {value:7.1f} µs  {100 * value / total:5.1f}%")
    parts = sum(medians.values())
    print(f"{'sum of the pieces':<{width}}  {parts:7.1f} µs  {100 * parts / total:5.1f}%")
    print(f"{'glue (whole − pieces)':<{width}}  {total - parts:7.1f} µs  "
          f"{100 * (total - parts) / total:5.1f}%")
    print(f"{'whole step':<{width}}  {total:7.1f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
