"""A training run killed with SIGKILL at several moments and resumed each time ends exactly
where the uninterrupted run ends (a real child process, a real kill)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

CHILD = r"""
import sys, time
import numpy as np
from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer, to_numpy
from xnn.core.files import atomic_write

backend, dtype, streams, keep, checkpoint, out = sys.argv[1:7]


def build():
    layers = [Dense(16, Tanh(), dropout=float(keep), weight_init="glorot"), Dense(4)]
    net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=3, backend=backend, dtype=dtype,
                        streams=streams)
    optimizer = SGDMomentum(0.1, momentum=0.9, final_lr=0.02, decay_type="linear")
    return net, optimizer


rng = np.random.default_rng(1)
X = rng.standard_normal((3000, 20))
y = np.argmax(X @ rng.standard_normal((20, 4)), axis=1)


def run(checkpoint=None):
    net, optimizer = build()
    trainer = Trainer(net, optimizer, log=lambda line: None)
    report = lambda r: print(f"epoch {r['epoch']}", flush=True)
    kwargs = {} if checkpoint is None else {"checkpoint": checkpoint, "resume": "auto"}
    history = trainer.fit(X, y, X[:500], y[:500], epochs=10, eval_every=4, batch_size=8,
                          seed=7, early_stopping=False, on_epoch=report, **kwargs)
    losses = np.array([[r["train_loss"], np.nan if r["val_loss"] is None else r["val_loss"]]
                       for r in history.records])
    return {**{f"p{i}": to_numpy(p) for i, p in enumerate(net.params())},
            "velocity": to_numpy(optimizer.velocity), "losses": losses,
            "step": np.array(optimizer.state.step)}


result = run(checkpoint)
with atomic_write(out) as file:
    np.savez(file, **result)
"""

COMBOS = [("numpy", "float32", "book", "0.8"), ("array_api_strict", "float64", "independent",
                                                "0.8")]


def _start(combo, checkpoint, out):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, *combo, str(checkpoint), str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def _kill_after(process, epoch, delay):
    """SIGKILL once the child has reported ``epoch`` (None: at once), ``delay`` s later."""
    if epoch is not None:
        for line in process.stdout:
            if line.strip() == f"epoch {epoch}":
                break
        else:
            pytest.fail(f"the child ended before epoch {epoch}: {process.stderr.read()}")
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


@pytest.mark.parametrize("combo", COMBOS, ids=["-".join(c[:3]) for c in COMBOS])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, combo):
    if combo[0] == "array_api_strict":
        pytest.importorskip("array_api_strict")
    from xnn.train.checkpoints import read_training_checkpoint

    checkpoint, out = tmp_path / "run.npz", tmp_path / "result.npz"
    epochs_saved = []
    # killed at once, after epochs 2, 5 and 8 (mid-epoch or mid-write, by the delays)
    for epoch, delay in ((None, 0.0), (2, 0.0), (5, 0.004), (8, 0.011)):
        process = _start(combo, checkpoint, out)
        _kill_after(process, epoch, delay)
        assert process.returncode == -signal.SIGKILL
        if checkpoint.exists():  # never half-written: always a whole, readable state
            epochs_saved.append(read_training_checkpoint(checkpoint)[0].epoch)
    assert epochs_saved and epochs_saved == sorted(epochs_saved) and epochs_saved[-1] >= 8
    assert not out.exists()
    process = _start(combo, checkpoint, out)
    _, errors = process.communicate(timeout=120)
    assert process.returncode == 0, errors
    expected_path = tmp_path / "expected.npz"
    straight = _start(combo, tmp_path / "straight.npz", expected_path)  # never interrupted
    _, errors = straight.communicate(timeout=120)
    assert straight.returncode == 0, errors
    with np.load(out) as got, np.load(expected_path) as expected:
        assert sorted(got.files) == sorted(expected.files)
        for name in expected.files:
            np.testing.assert_array_equal(got[name], expected[name], err_msg=name)
