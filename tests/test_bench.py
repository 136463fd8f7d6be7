"""The benchmark's smoke test: the shape of its JSON and markdown, never its speed.

Where JAX or PyTorch is installed, also that their contenders do xnn's arithmetic.
"""

from __future__ import annotations

import itertools
import json
import sys

import numpy as np
import pytest

from xnn import SGDMomentum
from xnn.tools import bench
from xnn.tools.bench import jax_runner
from xnn.tools.bench.pytorch import load_torch, torch_compile_training, torch_model, torch_step
from xnn.tools.bench.timing import COMPILED, compile_contender
from xnn.tools.bench.workloads import (
    LR,
    MODELS,
    MOMENTUM,
    LayerSpec,
    make_data,
    matmul_count,
    matmul_step,
    xnn_model,
)

TINY = ["--backends", "numpy", "--rows", "120", "--inference-rows", "30", "--repeats", "1",
        "--large-batch", "0"]
STATS = {"min", "median", "samples"}


@pytest.fixture
def no_torch(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import torch`` fail, as on a machine without PyTorch."""
    monkeypatch.setitem(sys.modules, "torch", None)


@pytest.fixture
def no_jax(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make ``import jax`` fail, as on a machine without JAX."""
    monkeypatch.setitem(sys.modules, "jax", None)


def test_missing_torch_or_jax_is_a_reason_not_a_crash(no_torch, no_jax):
    for load in (load_torch, jax_runner.load_jax):
        module, reason = load()
        assert module is None and "not installed" in reason


def test_a_failing_compiler_is_a_skip_with_its_cause():
    def compiling():
        raise RuntimeError("no C++ compiler found\nmore detail")

    runner, entry = compile_contender("cpu", "", compiling)
    assert runner is None and entry == {
        "status": "skipped", "reason": "compiling failed: RuntimeError: no C++ compiler found"}
    assert compile_contender(None, "why", compiling)[1] == {"status": "skipped", "reason": "why"}


def test_quick_run_writes_json_and_markdown(no_torch, no_jax, tmp_path, capsys):
    json_path, markdown_path = tmp_path / "bench.json", tmp_path / "bench.md"
    status = bench.main(["--quick", *TINY, "--json", str(json_path),
                         "--markdown", str(markdown_path)])
    assert status == 0
    result = json.loads(json_path.read_text())

    assert {"date", "command", "settings", "machine", "torch", "jax", "training", "inference",
            "memory", "others_cpu_share"} <= set(result)
    assert {"cpu", "logical_cpus", "python", "numpy", "blas", "torch"} <= set(result["machine"])
    assert result["torch"]["status"] == "skipped" and result["jax"]["status"] == "skipped"
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
        for name in ("torch", *COMPILED):
            assert entry[name]["status"] == "skipped" and entry[f"xnn_over_{name}"] is None
        assert "not installed" in entry["jax_scan"]["reason"]
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
    for heading in ("## Training", "## Training against compiled contenders", "## Inference",
                    "## Peak memory", "**Machine:**"):
        assert heading in text
    # training, compiled contenders, optimizers, inference and memory: one row each
    assert sum(line.startswith("| chapter | numpy |") for line in text.splitlines()) == 5
    for heading in ("xnn / torch.compile", "xnn / JAX jit", "xnn / JAX scan"):
        assert heading in text
    for note in ("PyTorch skipped: PyTorch is not installed",
                 "torch.compile skipped: PyTorch is not installed",
                 "JAX skipped: JAX is not installed"):
        assert sum(line.startswith(note) for line in text.splitlines()) == 1, note


def test_no_torch_flag_skips_pytorch(tmp_path):
    path = tmp_path / "bench.json"
    bench.main([*TINY, "--models", "chapter", "--no-torch", "--no-jax", "--no-memory", "--json",
                str(path)])
    result = json.loads(path.read_text())
    assert result["torch"] == {"status": "skipped", "reason": "--no-torch was given"}
    assert result["memory"] == [] and len(result["training"]) == 1
    assert result["training"][0]["torch_compile"]["reason"] == "--no-torch was given"


def test_no_jax_and_no_compile_flags_skip_them(tmp_path):
    path = tmp_path / "bench.json"
    bench.main([*TINY, "--models", "chapter", "--no-jax", "--no-compile", "--no-memory",
                "--json", str(path)])
    result = json.loads(path.read_text())
    entry = result["training"][0]
    assert result["jax"]["status"] == "skipped" and entry["jax_jit"] == entry["jax_scan"] == {
        "status": "skipped", "reason": "--no-jax was given"}
    if result["torch"]["status"] == "ok":
        assert entry["torch_compile"]["reason"] == "--no-compile was given"


@pytest.mark.parametrize("arguments", [
    ["--backends", "tensorflow"], ["--models", "resnet"], ["--repeats", "0"], ["--rows", "-1"],
    ["--seed", "-1"],
])
def test_impossible_settings_exit_with_a_usage_error(arguments, capsys):
    with pytest.raises(SystemExit) as stopped:
        bench.main(arguments)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("xnn bench: error: ") and err.count("\n") == 1  # one line


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
    from xnn.tools.bench.workloads import floor_training

    run = floor_training(get_backend("numpy"), MODELS["chapter"], make_data(120, seed=5), 60,
                         seed=5, update=True)
    assert run()["epoch"] > 0


# -- the compiled contenders do xnn's arithmetic (only where JAX / PyTorch are installed) --------
STEPS, BATCH = 3, 60
DATA = make_data(STEPS * BATCH, 3)


def _xnn_steps() -> tuple[list[np.ndarray], list[float], list[np.ndarray]]:
    """xnn's chapter model on DATA's STEPS batches in order: initial params, losses, final."""
    net = xnn_model(MODELS["chapter"], "numpy", seed=3)
    net.forward(DATA.X[:1])  # builds the parameters
    initial = [np.array(p) for p in net.params()]
    optimizer, losses = SGDMomentum(LR, momentum=MOMENTUM), []
    optimizer.net = net
    for first in range(0, STEPS * BATCH, BATCH):
        rows = slice(first, first + BATCH)
        losses.append(float(net.train_batch(DATA.X[rows], DATA.y[rows])))
        optimizer.step()
    return initial, losses, [np.array(p) for p in net.params()]


def _jax(layers: tuple, batch_size: int, initial: list[np.ndarray]) -> tuple:
    """JAX, its jitted step and epoch for ``layers``, and a state starting from ``initial``."""
    jax = pytest.importorskip("jax")
    params = [tuple(initial[i:i + 2]) for i in range(0, len(initial), 2)]
    velocity = [tuple(np.zeros_like(p) for p in layer) for layer in params]
    state = (params, velocity, jax.random.PRNGKey(0), np.float32(0))
    return (jax, jax.jit(jax_runner.jax_step(jax, layers)),
            jax.jit(jax_runner.jax_epoch(jax, layers, batch_size)), state)


def test_jax_jit_steps_and_a_scanned_epoch_compute_xnns_losses():
    initial, losses, final = _xnn_steps()
    jax, step, epoch, state = _jax(MODELS["chapter"], BATCH, initial)
    y, rows = DATA.y.astype(np.int32), np.arange(STEPS * BATCH, dtype=np.int32)
    scanned, got = epoch(state, DATA.X, y, rows), []
    for first in range(0, STEPS * BATCH, BATCH):
        before = float(state[3])
        state = step(state, DATA.X, y, rows[first:first + BATCH])
        got.append((float(state[3]) - before) / BATCH)
    np.testing.assert_allclose(got, losses, rtol=1e-4)
    np.testing.assert_allclose(float(scanned[3]) / rows.size, np.mean(losses), rtol=1e-4)
    for params in (state[0], scanned[0]):
        for want, have in zip(final, jax.tree_util.tree_leaves(params), strict=True):
            np.testing.assert_allclose(np.asarray(have), want, rtol=1e-4, atol=1e-6)


def test_jax_scan_takes_a_partial_last_batch_as_the_jit_loop_does():
    layers, data = (LayerSpec(8, True, 0.8), LayerSpec(10)), make_data(130, 4)  # 60, 60, 10
    initial = [p for layer in jax_runner.init_params(layers, 4) for p in layer]
    jax, step, epoch, looped = _jax(layers, 60, initial)
    order, y = np.random.default_rng(4).permutation(130).astype(np.int32), data.y.astype(np.int32)
    scanned = epoch(looped, data.X, y, order)  # dropout too: the same masks, in the same order
    for first in range(0, 130, 60):
        looped = step(looped, data.X, y, order[first:first + 60])
    for want, have in zip(*map(jax.tree_util.tree_leaves, (looped, scanned)), strict=True):
        np.testing.assert_allclose(np.asarray(have), np.asarray(want), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("training", [jax_runner.jax_jit_training, jax_runner.jax_scan_training])
def test_the_jax_runners_compile_apart_and_time_epochs(training):
    jax = pytest.importorskip("jax")
    device, reason = jax_runner.jax_device(jax, "numpy", "")
    assert device is not None, reason
    run, compile_seconds = training(jax, device, MODELS["chapter"], make_data(130, 5), 60, 5)
    assert compile_seconds > 0 and run()["epoch"] > 0 and run()["epoch"] > 0


def test_the_jax_init_is_xnns_glorot_normal():
    (W1, B1), (W2, B2) = jax_runner.init_params(MODELS["chapter"], 0)
    assert W1.shape == (784, 89) and B1.shape == (1, 89) and W2.shape == (89, 10)
    assert W1.dtype == B2.dtype == np.float32 and abs(W1.std() - (2 / 873) ** 0.5) < 2e-3


def test_a_compiled_torch_step_computes_xnns_losses():
    torch = pytest.importorskip("torch")
    initial, losses, _ = _xnn_steps()
    X, y = torch.from_numpy(DATA.X), torch.from_numpy(DATA.y)
    torch.compiler.reset()
    for compiled in (False, True):
        model = torch_model(torch, MODELS["chapter"], "cpu")
        with torch.no_grad():
            for index, linear in enumerate(model[::2]):  # the Linear modules
                linear.weight.copy_(torch.from_numpy(initial[2 * index].T))
                linear.bias.copy_(torch.from_numpy(initial[2 * index + 1][0]))
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
        step = torch_step(model, optimizer, torch.nn.CrossEntropyLoss())
        step = torch.compile(step, dynamic=False) if compiled else step
        got = [float(step(X[first:first + BATCH], y[first:first + BATCH]))
               for first in range(0, STEPS * BATCH, BATCH)]
        np.testing.assert_allclose(got, losses, rtol=1e-4)


def test_the_torch_compile_runner_compiles_apart_and_times_epochs():
    torch = pytest.importorskip("torch")
    run, compile_seconds = torch_compile_training(torch, "cpu", MODELS["chapter"],
                                                  make_data(130, 5), 60, 5)
    assert compile_seconds > 0 and run()["epoch"] > 0 and run()["epoch"] > 0


def _widths(model: str) -> list[tuple[int, int]]:
    widths = [784, *(spec.neurons for spec in MODELS[model])]
    return list(itertools.pairwise(widths))
