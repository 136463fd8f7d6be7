"""The ``xnn`` command line, offline, on a tiny synthetic MNIST-shaped data set."""

from __future__ import annotations

import csv
import subprocess
import sys

import numpy as np
import pytest

from xnn.data import write_idx
from xnn.tools.cli import main
from xnn.tools.experiments import EXPERIMENTS


@pytest.fixture
def tiny_mnist(tmp_path, monkeypatch):
    """Four IDX files of 600 + 100 learnable 28×28 images; an empty cache; no network."""
    rng = np.random.default_rng(0)
    prototypes = rng.integers(0, 256, (10, 28, 28))
    directory = tmp_path / "idx"
    directory.mkdir()
    for prefix, rows in (("train", 600), ("t10k", 100)):
        labels = rng.integers(0, 10, rows).astype(np.uint8)
        noise = rng.integers(-40, 40, (rows, 28, 28))
        images = np.clip(prototypes[labels] + noise, 0, 255).astype(np.uint8)
        write_idx(directory / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
    monkeypatch.setenv("XNN_DATA_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("XNN_OFFLINE", "1")
    return directory


def test_list_names_every_experiment(capsys):
    assert main(["chapter4", "--list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPERIMENTS)


def test_unknown_experiment_is_a_usage_error(capsys):
    assert main(["chapter4", "nonsense"]) == 2
    assert "unknown experiment(s) nonsense" in capsys.readouterr().err


def test_chapter4_runs_and_writes_results(tiny_mnist, tmp_path, capsys):
    results = tmp_path / "results"
    status = main(["chapter4", "sce", "momentum", "--epochs", "10", "--data", str(tiny_mnist),
                   "--results", str(results), "--backend", "array_api_strict",
                   "--no-progress"])
    assert status == 0
    out = capsys.readouterr().out
    assert "Validation loss after 10 epochs is" in out
    assert "| momentum | 95.51 |" in out
    with open(results / "chapter4.csv", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["experiment"] for r in rows] == ["sce", "momentum"]
    assert all(float(r["xnn accuracy %"]) > 50 for r in rows)  # learnable prototypes
    assert (results / "chapter4.md").read_text().startswith("# Chapter 4 on MNIST")


def test_unusable_backend_is_reported_before_loading_data(tiny_mnist, capsys, monkeypatch):
    from xnn.backends import registry as backend

    monkeypatch.setattr(backend, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)
    assert main(["chapter4", "sce", "--backend", "cupy", "--data", str(tiny_mnist)]) == 3
    assert "xnn[cuda12]" in capsys.readouterr().err


def test_python_dash_m_xnn():
    result = subprocess.run([sys.executable, "-m", "xnn", "chapter4", "--list"],
                            capture_output=True, text=True, check=True)
    assert "deep-no-dropout" in result.stdout
