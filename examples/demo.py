"""A short training run on synthetic data, in the book's own words: no download needed.

    python examples/demo.py [--backend numpy|cupy|array_api_strict]
"""

from __future__ import annotations

import argparse

import numpy as np

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer, to_numpy


def make_blobs(rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Ten Gaussian clusters in 20 dimensions, one per class, partly overlapping."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((10, 20)) * 0.8
    labels = rng.integers(0, 10, rows)
    return (centres[labels] + rng.standard_normal((rows, 20))).astype(np.float32), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default=None, help="numpy (default), cupy, array_api_strict")
    args = parser.parse_args()

    X, y = make_blobs(12_000)
    X_train, y_train, X_test, y_test = X[:10_000], y[:10_000], X[10_000:], y[10_000:]
    model = NeuralNetwork(
        layers=[Dense(neurons=89, activation=Tanh(), weight_init="glorot", dropout=0.8),
                Dense(neurons=10, weight_init="glorot")],
        loss=SoftmaxCrossEntropy(),
        seed=20190119,
        backend=args.backend,
    )
    optimizer = SGDMomentum(0.2, momentum=0.9, final_lr=0.05, decay_type="exponential")
    history = Trainer(model, optimizer).fit(X_train, y_train, X_test, y_test, epochs=20,
                                            eval_every=5, seed=20190119, batch_size=60)
    predictions = to_numpy(model.forward(X_test, inference=True)).argmax(axis=1)
    seconds = sum(r["seconds"] for r in history.records) / len(history.records)
    print(f"backend {model.backend.name}: accuracy {100 * (predictions == y_test).mean():.2f}% "
          f"on {len(y_test)} held-out rows, {seconds:.3f} s per epoch")


if __name__ == "__main__":
    main()
