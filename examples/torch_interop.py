"""xnn on PyTorch tensors: train from tensors, hand results back without copies, check parity.

    pip install -e ".[torch]" && python examples/torch_interop.py [--device cuda]

The model trains on torch's kernels without autograd; the data stays the caller's tensors (a
tensor that requires grad is read, never modified), and ``torch.from_dlpack`` takes the
outputs as they are. The same model on NumPy agrees to rounding, not bit for bit: the two BLAS
libraries sum in another order.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from xnn import (
    Dense,
    Linear,
    NeuralNetwork,
    SGDMomentum,
    SoftmaxCrossEntropy,
    Tanh,
    Trainer,
    to_numpy,
)


def model(backend: str, dtype: str) -> NeuralNetwork:
    return NeuralNetwork([Dense(32, Tanh(), weight_init="glorot", dropout=0.8),
                          Dense(3, Linear(), weight_init="glorot")],
                         SoftmaxCrossEntropy(), seed=7, backend=backend, dtype=dtype)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps (float32 only)")
    device = parser.parse_args().device
    backend = "torch" if device == "cpu" else f"torch:{device}"
    dtype = "float32" if device == "mps" else "float64"  # MPS has no float64
    net = model(backend, dtype)  # an unusable device fails here, saying why

    generator = torch.Generator().manual_seed(0)
    X = torch.randn(600, 10, generator=generator).to(device, getattr(torch, dtype))
    y = X[:, :3] @ torch.randn(3, 3, generator=generator).to(device, getattr(torch, dtype))
    labels = y.argmax(dim=1)
    X.requires_grad_(True)  # a tensor from an autograd graph: read, never written

    trainer = Trainer(net, SGDMomentum(0.1, momentum=0.9), log=lambda line: None)
    history = trainer.fit(X, labels, X[:200], labels[:200], epochs=10, eval_every=5, seed=1,
                          batch_size=60, verbose=0)
    outputs = torch.from_dlpack(net.predict(X))  # already a tensor on the device: no copy
    accuracy = (outputs.argmax(dim=1) == labels).double().mean().item()
    print(f"{backend}: validation loss {history.records[-1]['val_loss']:.4f}, "
          f"accuracy {100 * accuracy:.1f}%, X.grad is {X.grad}")

    reference = model("numpy", dtype)
    Trainer(reference, SGDMomentum(0.1, momentum=0.9), log=lambda line: None).fit(
        to_numpy(X), to_numpy(labels), to_numpy(X[:200]), to_numpy(labels[:200]), epochs=10,
        eval_every=5, seed=1, batch_size=60, verbose=0)
    worst = max(float(np.max(np.abs(to_numpy(a) - b)) / np.max(np.abs(b)))
                for a, b in zip(net.params(), reference.params(), strict=True))
    print(f"numpy vs {backend}: largest relative parameter difference {worst:.1e}")


if __name__ == "__main__":
    main()
