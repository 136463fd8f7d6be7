"""The parity machinery: numpy against array_api_strict (a CPU stand-in for a GPU), and cupy."""

from __future__ import annotations

import json
import subprocess
import sys
import types
from collections.abc import Callable

import numpy as np
import pytest

from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh
from xnn.backends import BACKEND_NAMES, registry
from xnn.tools import parity_command as parity
from xnn.tools.parity import Tolerance, check_parity
from xnn.tools.parity_command import main
from xnn.tools.testing import backend_params

pytest_plugins = ["pytester"]

PAIR = ("numpy", "array_api_strict")
STEPS = 6


class PlantedMomentum(SGDMomentum):
    """SGDMomentum that calls ``plant(net)`` right after its ``at_step``-th step."""

    def __init__(self, at_step: int, plant: Callable[[NeuralNetwork], None]) -> None:
        super().__init__(0.1, momentum=0.9)
        self.at_step, self.plant, self.taken = at_step, plant, 0

    def step(self) -> None:
        super().step()
        self.taken += 1
        if self.taken == self.at_step:
            self.plant(self.net)


def small_model(backend: str, dtype: str, plant_on: str | None = None, at_step: int = 0,
                plant: Callable[[NeuralNetwork], None] | None = None):
    """20 → 16 Tanh (dropout 0.8) → 8 Tanh → 3; the optimizer on ``plant_on`` misbehaves."""
    layers = [Dense(16, Tanh(), dropout=0.8, weight_init="glorot"), Dense(8, Tanh()), Dense(3)]
    net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=7, backend=backend, dtype=dtype)
    if backend == plant_on:
        return net, PlantedMomentum(at_step, plant)
    return net, SGDMomentum(0.1, momentum=0.9)


def scale_param(index: int, factor: float) -> Callable[[NeuralNetwork], None]:
    """A plant that multiplies the ``index``-th parameter by ``factor``, in place."""
    def plant(net: NeuralNetwork) -> None:
        param = list(net.params())[index]
        param[...] = param * factor
    return plant


def reseed_masks(net: NeuralNetwork) -> None:
    """A plant that draws every later dropout mask from another seed."""
    net.reseed_dropout(99)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    return rng.standard_normal((90, 20)), rng.integers(0, 3, 90)


def run(data, dtype: str = "float64", **planted) -> parity.ParityReport:
    X, y = data
    return check_parity(lambda b, d: small_model(b, d, **planted), X, y, PAIR, steps=STEPS,
                        dtype=dtype, batch_size=16, seed=5)


# -- agreement ----------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("other", [p for p in backend_params() if p.values[0] != "numpy"])
def test_every_backend_agrees_with_numpy(data, other, dtype):
    X, y = data
    report = check_parity(small_model, X, y, ("numpy", other), steps=STEPS, dtype=dtype,
                          batch_size=16, seed=5)
    assert report.passed and report.reference == "numpy", report.format()
    (comparison,) = report.comparisons
    assert comparison.backend == other and comparison.divergence is None
    assert [s.step for s in comparison.steps] == list(range(STEPS + 1))
    assert all(len(losses) == STEPS for losses in report.losses.values())
    assert [d.name for d in comparison.params] == [
        "layers[0].W", "layers[0].B", "layers[1].W", "layers[1].B", "layers[2].W", "layers[2].B"]
    assert comparison.params[0].shape == (20, 16)


def test_float64_agrees_to_1e_12(data):
    (comparison,) = run(data).comparisons
    assert max(d.max_rel for d in comparison.params) <= 1e-12
    assert max(s.loss_rel for s in comparison.steps[1:]) <= 1e-12
    assert comparison.final_loss_rel <= 1e-12 and comparison.accuracy_diff == 0


# -- planted divergences --------------------------------------------------------------------
@pytest.mark.parametrize("step", [1, 3])
def test_perturbed_parameter_is_named_with_its_step(data, step):
    report = run(data, plant_on="array_api_strict", at_step=step, plant=scale_param(2, 1 + 1e-6))
    assert not report.passed
    divergence = report.comparisons[0].divergence
    assert (divergence.step, divergence.name) == (step, "layers[1].W")
    assert divergence.rel > divergence.allowed == pytest.approx(1e-10 * step)
    failures = {d.name: d.first_failure for d in report.comparisons[0].params}
    assert failures["layers[1].W"] == step
    assert failures["layers[0].W"] == step + 1  # the loss and the rest follow a step later
    # that step's loss came before the perturbation: equal up to the backends' rounding
    assert report.comparisons[0].steps[step].loss_rel < 1e-14


def test_perturbation_below_the_tolerance_passes(data):
    assert run(data, plant_on="array_api_strict", at_step=2, plant=scale_param(2, 1 + 1e-14)
               ).passed


def test_other_dropout_masks_diverge_at_the_next_step(data):
    report = run(data, plant_on="array_api_strict", at_step=2, plant=reseed_masks)
    comparison = report.comparisons[0]
    assert comparison.divergence.step == 3
    assert comparison.divergence.name.startswith("layers[")
    assert comparison.steps[3].loss_rel > 1e-6 and comparison.steps[2].passed


def test_perturbed_reference_is_found_too(data):
    report = run(data, plant_on="numpy", at_step=2, plant=scale_param(5, 1.01))
    assert (report.comparisons[0].divergence.step,
            report.comparisons[0].divergence.name) == (2, "layers[2].B")


def test_metrics_mode_judges_only_final_metrics(data):
    X, y = data
    build = lambda b, d: small_model(b, d, "array_api_strict", 1, scale_param(0, 1 + 1e-9))  # noqa: E731
    loose = Tolerance(per_step=1e-12, final_loss=1e-3, accuracy=0.05)
    steps = check_parity(build, X, y, PAIR, steps=STEPS, tolerance=loose)
    metrics = check_parity(build, X, y, PAIR, steps=STEPS, tolerance=loose, compare="metrics")
    assert not steps.passed and steps.comparisons[0].metrics_passed
    assert metrics.passed and metrics.comparisons[0].divergence is not None


def test_report_text_and_json(data):
    report = run(data, plant_on="array_api_strict", at_step=2, plant=scale_param(2, 1.001))
    text = report.format()
    assert "DIVERGED: array_api_strict left numpy at step 2 in layers[1].W" in text
    assert text.endswith("FAIL: numpy vs array_api_strict in float64")
    as_json = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert as_json["passed"] is False
    assert as_json["comparisons"][0]["divergence"]["name"] == "layers[1].W"


# -- bad input --------------------------------------------------------------------------------
def test_bad_arguments_are_refused(data):
    X, y = data
    with pytest.raises(ValueError, match="two or more distinct"):
        check_parity(small_model, X, y, ("numpy", "numpy"))
    with pytest.raises(ValueError, match="returned a model on 'numpy'"):
        check_parity(lambda b, d: small_model("numpy", d), X, y, PAIR, steps=1)
    with pytest.raises(ValueError, match="compare must be"):
        check_parity(small_model, X, y, PAIR, compare="final")


# -- the command --------------------------------------------------------------------------------
def cli(*args: str) -> int:
    return main([*PAIR, "--steps", "2", "--rows", "120", "--batch-size", "30", *args])


def test_command_passes_and_writes_json(tmp_path, capsys):
    path = tmp_path / "parity.json"
    assert cli("--model", "deep", "--dtype", "float32", "--json", str(path)) == parity.EXIT_OK
    assert "PASS: numpy vs array_api_strict in float32" in capsys.readouterr().out
    written = json.loads(path.read_text())
    assert written["passed"] is True and written["model"] == "deep"
    assert written["tolerance"]["per_step"] == 1e-5 and len(written["losses"]["numpy"]) == 2


def test_command_fails_naming_parameter_and_step(monkeypatch, tmp_path, capsys):
    planted = types.SimpleNamespace(
        name="planted", description="a perturbed parameter",
        build=lambda b, d, seed: small_model(b, d, "array_api_strict", 1, scale_param(4, 1.01)))
    monkeypatch.setitem(parity.MODELS, "chapter", planted)
    rows = np.random.default_rng(0).standard_normal((1120, 20))
    monkeypatch.setattr(parity, "synthetic_mnist", lambda n, seed: (rows[:n], np.arange(n) % 3))
    path = tmp_path / "parity.json"
    assert cli("--json", str(path)) == parity.EXIT_FAILED
    assert "at step 1 in layers[2].W" in capsys.readouterr().out
    assert json.loads(path.read_text())["comparisons"][0]["divergence"]["step"] == 1


def test_command_unavailable_backend_is_one_line_and_exit_3(monkeypatch, capsys):
    monkeypatch.setattr(registry, "_CACHE", {})
    monkeypatch.setitem(sys.modules, "cupy", None)  # `import cupy` now raises ImportError
    assert main(["numpy", "cupy", "--steps", "1"]) == parity.EXIT_UNAVAILABLE
    err = capsys.readouterr().err
    assert err.startswith("xnn parity: ") and "cupy" in err and err.count("\n") == 1


@pytest.mark.parametrize("args", [["numpy"], ["numpy", "tpu"], ["numpy", "torch:tpu"],
                                  [*PAIR, "--steps", "0"]])
def test_command_usage_errors_exit_2(args, capsys):
    assert main(args) == parity.EXIT_USAGE
    assert "xnn parity" in capsys.readouterr().err


# -- the pytest plugin --------------------------------------------------------------------------
def test_plugin_runs_a_test_per_backend(pytester, monkeypatch):
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")  # the same, installed or not
    pytester.makepyfile("""
        import pytest

        def test_each(xnn_backend):
            assert xnn_backend.name in ("numpy", "array_api_strict", "cupy", "torch",
                                        "torch:cuda:0")

        @pytest.mark.parametrize("xnn_backend", ["numpy"], indirect=True)
        def test_pinned(xnn_backend):
            assert xnn_backend.name == "numpy"

        @pytest.fixture
        def backend():
            return "the user's own fixture"

        def test_no_clash(backend):
            assert backend == "the user's own fixture"
    """)
    result = pytester.runpytest("-p", "xnn.tools.pytest_plugin", "--strict-markers", "-rs", "-v")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("skipped", 0) == len(BACKEND_NAMES) + 3
    result.stdout.fnmatch_lines(["*test_each?numpy? PASSED*", "*test_each?array_api_strict?*"])
    if outcomes.get("skipped"):
        result.stdout.fnmatch_lines(["*SKIPPED*cupy: *"])


def test_import_xnn_imports_no_pytest():
    code = "import sys, xnn, xnn.tools.parity, xnn.tools.testing; print('pytest' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.parametrize(("other", "message"), [
    ([Dense(5)], r"layers\[0\]\.W \(20, 5\) against layers\[0\]\.W \(20, 3\)"),
    ([Dense(4), Dense(3)], r"layers\[0\]\.W \(20, 4\) against layers\[0\]\.W \(20, 3\)"),
    ([Dense(3), Dense(3)], "4 parameters against 2"),
])
def test_models_that_differ_between_backends_are_refused(data, other, message):
    X, y = data

    def build(backend, dtype):
        layers = [Dense(3)] if backend == PAIR[0] else other
        net = NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=1, backend=backend, dtype=dtype)
        return net, SGDMomentum(0.1, momentum=0.9)

    with pytest.raises(ValueError, match=f"different models on 'numpy' and "
                                         f"'array_api_strict': {message}"):
        check_parity(build, X, y, PAIR, steps=2, batch_size=16)
