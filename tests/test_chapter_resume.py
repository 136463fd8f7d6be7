"""`xnn chapter4` keeps each finished experiment as it completes, and `--resume` skips those and
continues an interrupted one from its checkpoint, ending as the uninterrupted run does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from xnn.tools import chapter
from xnn.tools.chapter import run_experiments
from xnn.train.optimizers import SGDMomentum


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    prototypes = rng.standard_normal((10, 30))
    labels = rng.integers(0, 10, 420)
    X = prototypes[labels] + 0.8 * rng.standard_normal((420, 30))
    return X[:360], labels[:360], X[360:], labels[360:]


def _run(names, data, directory, resume=False, lines=None):
    return run_experiments(names, data, "numpy", "float64", epochs=12, seed=3, progress=False,
                           log=(lines.append if lines is not None else lambda line: None),
                           results_dir=directory, resume=resume)


def _summary(results):
    return [(r.name, r.accuracy, r.best_val_loss, r.best_epoch, r.epochs_run, r.val_losses)
            for r in results]


def test_each_result_is_written_as_it_finishes(data, tmp_path, monkeypatch):
    seen = []
    real = chapter.write_results
    monkeypatch.setattr(chapter, "write_results",
                        lambda results, directory: seen.append([r.name for r in results])
                        or real(results, directory))
    _run(["sce", "momentum"], data, tmp_path)
    assert seen == [["sce"], ["sce", "momentum"]]
    record = json.loads((tmp_path / "runs" / "sce.json").read_text())
    assert record["options"]["epochs"] == 12 and record["result"]["name"] == "sce"
    assert (tmp_path / "checkpoints" / "momentum.npz").exists()


def test_resume_skips_finished_runs_and_continues_the_interrupted_one(data, tmp_path,
                                                                      monkeypatch):
    expected = _summary(_run(["sce", "momentum", "mse"], data, tmp_path / "straight"))
    update, steps = SGDMomentum.update, []

    def interrupted(self, *args):
        steps.append(1)  # "momentum" is the one experiment with SGDMomentum
        if len(steps) == 6 * 6 + 3:  # 6 steps per epoch (360 rows, batch 60): in epoch 7
            raise KeyboardInterrupt
        return update(self, *args)

    monkeypatch.setattr(SGDMomentum, "update", interrupted)
    with pytest.raises(KeyboardInterrupt):
        _run(["sce", "momentum", "mse"], data, tmp_path / "run")
    monkeypatch.setattr(SGDMomentum, "update", update)
    assert (tmp_path / "run" / "checkpoints" / "momentum.npz").exists()
    assert (tmp_path / "run" / "runs" / "sce.json").exists()
    assert not (tmp_path / "run" / "runs" / "momentum.json").exists()
    lines = []
    resumed = _run(["sce", "momentum", "mse"], data, tmp_path / "run", resume=True,
                   lines=lines)
    assert any("sce: finished earlier" in line for line in lines)
    assert not any("momentum: finished earlier" in line for line in lines)
    assert _summary(resumed) == expected


def test_other_options_run_again(data, tmp_path):
    _run(["sce"], data, tmp_path)
    lines = []
    run_experiments(["sce"], data, "numpy", "float64", epochs=11, seed=3, progress=False,
                    log=lines.append, results_dir=tmp_path, resume=True)
    assert not any("finished earlier" in line for line in lines)
    assert any("starting sce afresh" in line for line in lines)  # its checkpoint: 12 epochs
