"""The chapter's 13 experiments give the same parameters, bit for bit, across refactors.

Each experiment trains briefly on NumPy float64 with both kinds of random streams, on small
synthetic MNIST-shaped data, and the SHA-256 of its final parameters (and of its History's
losses) is compared with the value recorded before the training-state redesign. Floating-point
results depend on the BLAS build and CPU, so the exact hashes are judged only where they were
recorded (same NumPy, BLAS and CPU kind); elsewhere the parameters' sums are compared to 1e-9.
Regenerate with ``python tests/test_fingerprints.py`` only for a change that means to alter
the maths, and say so in the commit.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest

from xnn import Trainer, to_numpy
from xnn.tools.experiments import BOOK_NAMES, EXPERIMENTS

RECORD = Path(__file__).with_name("fingerprints.json")
STREAMS = ("book", "independent")


def _data() -> tuple[np.ndarray, ...]:
    """240 training and 60 test rows, 784 features, labels from a fixed linear teacher."""
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 784))
    labels = np.argmax(X @ rng.standard_normal((784, 10)), axis=1)
    return X[:240], labels[:240], X[240:], labels[240:]


def _environment() -> str:
    """What the exact bits depend on: NumPy, its BLAS and the CPU kind."""
    config = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    return f"numpy {np.__version__}, {config.get('name')} {config.get('version')}, " \
           f"{platform.machine()}"


def fingerprint(name: str, streams: str) -> dict[str, object]:
    """Train experiment ``name`` for 3 epochs (evaluating each) and summarise the result."""
    X_train, y_train, X_test, y_test = _data()
    model, optimizer = EXPERIMENTS[name].build("numpy", "float64", 20190119, streams)
    if not model.loss.classifies:  # MSE takes values: one-hot rows, as the book gave them
        y_train, y_test = np.eye(10)[y_train], np.eye(10)[y_test]
    history = Trainer(model, optimizer, log=lambda line: None).fit(
        X_train, y_train, X_test, y_test, epochs=3, eval_every=1, seed=20190119, batch_size=60)
    params = [to_numpy(p) for p in model.params()]
    digest = hashlib.sha256()
    for p in params:
        digest.update(np.ascontiguousarray(p, dtype=np.float64).tobytes())
    losses = [(r["train_loss"], r["val_loss"]) for r in history.records]
    digest.update(repr(losses).encode())
    return {"sha256": digest.hexdigest(), "sums": [float(np.sum(p)) for p in params],
            "epochs": len(history.records)}


CASES = [(name, streams) for name in BOOK_NAMES for streams in STREAMS]


@pytest.mark.parametrize(("name", "streams"), CASES, ids=[f"{n}-{s}" for n, s in CASES])
def test_experiment_parameters_unchanged(name, streams):
    record = json.loads(RECORD.read_text())
    expected = record["fingerprints"][f"{name}/{streams}"]
    got = fingerprint(name, streams)
    assert got["epochs"] == expected["epochs"]
    if record["environment"] == _environment():
        assert got["sha256"] == expected["sha256"], f"{name} ({streams}) changed its results"
    else:  # another BLAS or CPU: summation order may differ in the last bits
        np.testing.assert_allclose(got["sums"], expected["sums"], rtol=1e-9, atol=1e-12)


if __name__ == "__main__":  # regenerate the record (only for an intended change of the maths)
    fingerprints = {f"{n}/{s}": fingerprint(n, s) for n, s in CASES}
    RECORD.write_text(json.dumps({"environment": _environment(), "fingerprints": fingerprints},
                                 indent=1) + "\n")
    sys.stdout.write(f"wrote {len(fingerprints)} fingerprints to {RECORD}\n")
