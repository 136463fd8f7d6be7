"""The benchmark's smoke test: the shape of its JSON and markdown, never its speed."""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest

from xnn.tools import bench
from xnn.tools.bench.pytorch import load_torch
from xnn.tools.bench.workloads import MODELS, matmul_count, matmul_step

TINY = ["--backends", "numpy", "--rows", "120", "--inference-rows", "30", "--repeats", "1",
        "--large-batch", "0"]
STATS = {"min", "median", "samples"}


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torch`` fail, as on a machine without PyTorch."""
    monkeypatch.setitem(sys.modules, "torch", None)


def test_missing_torch_is_a_reason_not_a_crash(no_torch):
    torch, reason = load_torch()
    assert torch is None and "not installed" in reason


def test_quick_run_writes_json_and_markdown(no_torch, tmp_path, capsys):
    json_path, markdown_path = tmp_path / "bench.json", tmp_path / "bench.md"
    status = bench.main(["--quick", *TINY, "--json", str(json_path),
                         "--markdown", str(markdown_path)])
    assert status == 0
    result = json.loads(json_path.read_text())

    assert {"date", "command", "settings", "machine", "torch", "training", "inference", "memory",
            "others_cpu_share"} <= set(result)
    assert {"cpu", "logical_cpus", "python", "numpy", "blas", "torch"} <= set(result["machine"])
    assert result["torch"]["status"] == "skipped"
    assert result["settings"]["repeats"] == 1 and result["settings"]["backends"] == ["numpy"]

    training = result["training"]
    assert [(e["model"], e["backend"], e["batch_size"]) for e in training] == [
        ("chapter", "numpy", 60), ("deep", "numpy", 60)]
    for entry in training:
        assert entry["steps"] == 2 and entry["matmuls_per_step"] in (5, 8)
        assert set(entry["xnn"]) == {"epoch", "fit", "setup"}
        for stats in (*entry["xnn"].values(), entry["floor"]["epoch"],
                      entry["floor_update"]["epoch"]):
            assert set(stats) == STATS and len(stats["samples"]) == 1
        assert entry["torch"]["status"] == "skipped" and entry["xnn_over_torch"] is None
        assert entry["xnn_over_floor"] > 0 and entry["xnn_over_floor_update"] > 0

    inference = result["inference"]
    assert [(e["model"], e["rows"]) for e in inference] == [("chapter", 30), ("deep", 30)]
    for entry in inference:
        assert set(entry["xnn"]["call"]) == STATS and entry["torch"]["status"] == "skipped"

    memory = result["memory"]
    assert [(e["model"], e["rows"]) for e in memory] == [("chapter", 120), ("deep", 120)]
    for entry in memory:
        assert "error" not in entry, entry
        assert entry["data_bytes"] == 120 * 784 * 4 + 120 * 8
        assert entry["params"] == sum(
            (n_in + 1) * n_out for n_in, n_out in _widths(entry["model"]))
        assert entry["fit_extra_rss"] >= 0 and entry["traced_peak"] > 0

    text = markdown_path.read_text()
    assert text in capsys.readouterr().out  # printed as well
    for heading in ("## Training", "## Inference", "## Peak memory", "**Machine:**"):
        assert heading in text
    assert sum(line.startswith("| chapter | numpy |") for line in text.splitlines()) == 3
    assert "PyTorch skipped: PyTorch is not installed" in text


def test_no_torch_flag_skips_pytorch(tmp_path):
    path = tmp_path / "bench.json"
    bench.main([*TINY, "--models", "chapter", "--no-torch", "--no-memory", "--json", str(path)])
    result = json.loads(path.read_text())
    assert result["torch"] == {"status": "skipped", "reason": "--no-torch was given"}
    assert result["memory"] == [] and len(result["training"]) == 1


@pytest.mark.parametrize("arguments", [
    ["--backends", "tensorflow"], ["--models", "resnet"], ["--repeats", "0"], ["--rows", "-1"],
])
def test_impossible_settings_exit_with_a_usage_error(arguments, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(arguments)
    assert stopped.value.code == 2
    assert "xnn bench" in capsys.readouterr().err


class _Shape:
    """Stands in for an array and records the shapes of every product it takes part in."""

    def __init__(self, shape: tuple[int, int], log: list) -> None:
        self.shape, self.log = shape, log

    @property
    def T(self) -> _Shape:
        return _Shape(self.shape[::-1], self.log)

    def __matmul__(self, other: _Shape) -> _Shape:
        self.log.append((self.shape, other.shape))
        return _Shape((self.shape[0], other.shape[1]), self.log)


def test_the_floor_is_the_chapter_models_five_products():
    log: list = []
    matmul_step(_Shape((60, 784), log), [_Shape((784, 89), log), _Shape((89, 10), log)])
    assert log == [
        ((60, 784), (784, 89)),  # X @ W1
        ((60, 89), (89, 10)),  # H @ W2
        ((89, 60), (60, 10)),  # dW2 = Hᵀ @ dY
        ((60, 10), (10, 89)),  # dH = dY @ W2ᵀ
        ((784, 60), (60, 89)),  # dW1 = Xᵀ @ dH (no dX: nobody reads it)
    ]
    assert matmul_count(MODELS["chapter"]) == 5 and matmul_count(MODELS["deep"]) == 8


def test_the_update_floor_writes_each_weight_gradient_into_its_buffer():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 4))
    weights = [rng.standard_normal((4, 3)), rng.standard_normal((3, 2))]
    grads = [np.zeros((4, 3)), np.zeros((3, 2))]
    matmul_step(x, weights, grads)
    hidden = x @ weights[0]
    out = hidden @ weights[1]
    np.testing.assert_allclose(grads[1], hidden.T @ out)
    np.testing.assert_allclose(grads[0], x.T @ (out @ weights[1].T))


def test_the_update_floor_runs_an_epoch():
    from xnn.backends import get_backend
    from xnn.tools.bench.workloads import floor_training, make_data

    run = floor_training(get_backend("numpy"), MODELS["chapter"], make_data(120, seed=5), 60,
                         seed=5, update=True)
    assert run()["epoch"] > 0


def _widths(model: str) -> list[tuple[int, int]]:
    widths = [784, *(spec.neurons for spec in MODELS[model])]
    return list(itertools.pairwise(widths))
