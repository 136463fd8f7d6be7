"""Parity's arithmetic and bookkeeping on planted, exactly known parameters and losses.

Each test builds a tiny model on numpy and array_api_strict whose optimizer sets chosen values
right after a step, so every relative difference, worst step, divergence and final metric has a
closed form (see docs/mutation/xnn.tools.parity.md for the mutants these tests kill).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from xnn import SGD, Dense, NeuralNetwork, SoftmaxCrossEntropy, Tanh
from xnn.tools.parity import Divergence, Tolerance, check_parity

PAIR = ("numpy", "array_api_strict")
REF, OTHER = PAIR
Plant = Callable[[NeuralNetwork], None]


class Planted(SGD):
    """SGD(0.1) that calls ``plants[k](net)`` right after its k-th step."""

    def __init__(self, plants: dict[int, Plant]) -> None:
        super().__init__(0.1)
        self.plants, self.taken = plants, 0

    def step(self) -> None:
        super().step()
        self.taken += 1
        if self.taken in self.plants:
            self.plants[self.taken](self.net)


def set_params(W=None, B=None) -> Plant:
    """A plant that overwrites W and/or B of a one-layer model with the given values."""
    def plant(net: NeuralNetwork) -> None:
        for param, value in zip(net.params(), (W, B), strict=True):
            if value is not None:
                host = np.asarray(value, dtype=np.float64).reshape(tuple(param.shape))
                param[...] = net.backend.asarray(host, param.dtype)
    return plant


def scale_weights(factor: float) -> Plant:
    def plant(net: NeuralNetwork) -> None:
        W = next(iter(net.params()))
        W[...] = W * factor
    return plant


def both(*plants: Plant) -> Plant:
    def plant(net: NeuralNetwork) -> None:
        for each in plants:
            each(net)
    return plant


def one_layer(plants: dict[tuple[str, int], Plant] | None = None, *, dropout=1.0,
              tripled_loss: bool = False):
    """build_model: Dense(3) on SoftmaxCrossEntropy; ``plants[(backend, k)]`` runs after step
    k on that backend; ``tripled_loss``: the other backend reports 3 × its training loss (its
    gradients, hence its parameters, stay the reference's)."""
    plants = plants or {}

    def build(backend: str, dtype: str):
        net = NeuralNetwork([Dense(3, dropout=dropout)], SoftmaxCrossEntropy(), seed=7,
                            backend=backend, dtype=dtype)
        if tripled_loss and backend == OTHER:
            real = net.train_batch
            net.train_batch = lambda X, y: real(X, y) * 3
        return net, Planted({k: p for (b, k), p in plants.items() if b == backend})
    return build


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    return rng.standard_normal((12, 3)), rng.integers(0, 3, 12)


def parity(data, build, steps=1, **options):
    X, y = data
    return check_parity(build, X, y, PAIR, steps=steps, batch_size=4, **options)


# -- the defaults and what the report says it ran -----------------------------------------------
def test_the_default_run_is_50_steps_of_60_rows():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((120, 3)), rng.integers(0, 3, 120)
    rows: list[int] = []

    def build(backend, dtype):
        net, optimizer = one_layer()(backend, dtype)
        if backend == REF:
            real = net.train_batch
            net.train_batch = lambda X, y: rows.append(X.shape[0]) or real(X, y)
        return net, optimizer

    report = check_parity(build, X, y, PAIR)
    assert (report.steps, report.batch_size, rows) == (50, 60, [60] * 50)
    assert len(report.losses[REF]) == len(report.losses[OTHER]) == 50
    assert report.format().splitlines()[0] == (
        "parity of array_api_strict against numpy (reference): float64, 50 steps of 60 rows, "
        "seed 20190119")


def test_a_given_tolerance_is_the_one_applied(data):
    """B differs by 0.5 / 2 = 0.25 relative: over the default 1e-10, within 0.5 per step."""
    tolerance = Tolerance(per_step=0.5, final_loss=10.0, accuracy=1.0)
    build = one_layer({(REF, 1): set_params(B=[2, 0, 0]), (OTHER, 1): set_params(B=[2.5, 0, 0])})
    report = parity(data, build, tolerance=tolerance)
    assert report.passed and report.tolerance == tolerance
    assert [s.allowed for s in report.comparisons[0].steps] == [0.5, 0.5]
    assert report.comparisons[0].params[1].max_rel == 0.25


# -- a parameter's relative difference: max|p − r| / max|r| -------------------------------------
@pytest.mark.parametrize(("ref_B", "other_B", "rel", "delta"), [
    ([0.25, -0.125, 0], [0.5, -0.125, 0], 1.0, 0.25),  # max|r| < 1
    ([-2, 1, 0], [-2, 1, 0.5], 0.25, 0.5),  # max|r| > 1, taken in absolute value
    ([1, 0, 0], [1.5, 0, 0], 0.5, 0.5),  # max|r| = 1
    ([1, 0, 0], [2, 0, 0], 1.0, 1.0),  # a difference of exactly 1
    ([0, 0, 0], [0.5, 0, 0], math.inf, 0.5),  # a zero reference: infinitely far
    ([0, 0, 0], [0, 0, 0], 0.0, 0.0),  # zero on both: equal
])
def test_relative_difference_of_a_planted_parameter(data, ref_B, other_B, rel, delta):
    build = one_layer({(REF, 1): set_params(B=ref_B), (OTHER, 1): set_params(B=other_B)})
    comparison = parity(data, build).comparisons[0]
    bias = comparison.params[1]
    assert (bias.name, bias.max_abs, bias.max_rel) == ("layers[0].B", delta, rel)
    if rel == 0:
        assert comparison.divergence is None and bias.worst_step == 0
        assert bias.first_failure is None
    else:
        assert comparison.steps[1].param_rel == rel
        assert comparison.divergence == Divergence(1, "layers[0].B", rel, 1e-10)
        assert (bias.worst_step, bias.first_failure) == (1, 1)


def test_the_report_names_the_planted_parameter(data):
    build = one_layer({(REF, 1): set_params(B=[0.25, -0.125, 0]),
                       (OTHER, 1): set_params(B=[0.5, -0.125, 0])})
    lines = parity(data, build).format().splitlines()
    assert ("DIVERGED: array_api_strict left numpy at step 1 in layers[0].B: relative "
            "difference 1.00e+00 > allowed 1.0e-10") in lines
    assert "array_api_strict  layers[0].B    1x3  2.50e-01  1.00e+00        1              1" \
        in lines


def test_the_worst_step_is_the_first_to_reach_the_largest_difference(data):
    plants = {(REF, k): set_params(B=[1, 0, 0]) for k in (1, 2)}
    plants |= {(OTHER, k): set_params(B=[1.5, 0, 0]) for k in (1, 2)}
    comparison = parity(data, one_layer(plants), steps=2).comparisons[0]
    assert comparison.steps[1].param_rel == 0.5
    bias = comparison.params[1]
    assert (bias.max_rel, bias.worst_step, bias.first_failure) == (0.5, 1, 1)


def test_a_nan_parameter_is_the_worst_difference(data):
    """W 1 % off and B NaN at the same step: NaN ranks above every number."""
    build = one_layer({(OTHER, 1): both(scale_weights(1.01), set_params(B=[math.nan, 0, 0]))})
    report = parity(data, build)
    comparison = report.comparisons[0]
    assert math.isnan(comparison.steps[1].param_rel) and not report.passed
    weights, bias = comparison.params
    assert weights.max_rel == pytest.approx(0.01, rel=1e-9) and weights.first_failure == 1
    assert math.isnan(bias.max_abs) and math.isnan(bias.max_rel)
    assert (bias.worst_step, bias.first_failure) == (1, 1)
    divergence = comparison.divergence
    assert (divergence.step, divergence.name) == (1, "layers[0].B")
    assert math.isnan(divergence.rel)


# -- the loss: |l − r| / |r| --------------------------------------------------------------------
def test_a_loss_that_alone_diverges_is_named_loss(data):
    """Three times the reference's loss, the same parameters: (3r − r) / r = 2."""
    report = parity(data, one_layer(tripled_loss=True))
    comparison = report.comparisons[0]
    assert comparison.steps[1].loss_rel == pytest.approx(2.0, rel=1e-12)
    assert comparison.steps[1].param_rel <= 1e-12
    assert comparison.divergence == Divergence(1, "loss", pytest.approx(2.0, rel=1e-12), 1e-10)
    assert ("DIVERGED: array_api_strict left numpy at step 1 in loss: relative difference "
            "2.00e+00 > allowed 1.0e-10") in report.format().splitlines()


def test_a_parameter_exactly_at_the_allowed_difference_has_not_failed(data):
    """B at rel 0.5 = allowed (0.5 × step 1) passes; the step fails on the loss alone."""
    build = one_layer({(REF, 1): set_params(B=[1, 0, 0]), (OTHER, 1): set_params(B=[1.5, 0, 0])},
                      tripled_loss=True)
    tolerance = Tolerance(per_step=0.5, final_loss=10.0, accuracy=1.0)
    comparison = parity(data, build, tolerance=tolerance).comparisons[0]
    assert comparison.steps[1].param_rel == 0.5 and not comparison.steps[1].passed
    assert comparison.params[1].first_failure is None
    assert (comparison.divergence.step, comparison.divergence.name) == (1, "loss")


# -- models that do not match -------------------------------------------------------------------
def test_a_model_with_more_parameters_on_the_other_backend_is_refused(data):
    """Not compared on the parameters the two happen to share."""
    def build(backend, dtype):
        layers = [Dense(4, Tanh()), Dense(3)] + ([Dense(3)] if backend == OTHER else [])
        return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=7, backend=backend,
                             dtype=dtype), SGD(0.1)

    with pytest.raises(ValueError):
        parity(data, build)


def test_one_backend_name_is_not_two_backends(data):
    with pytest.raises(ValueError, match="two or more distinct backends, got 'numpy'"):
        check_parity(one_layer(), *data, "numpy")


def test_backends_are_checked_before_any_model_is_built(data):
    built: list[str] = []

    def build(backend, dtype):
        built.append(backend)
        return one_layer()(backend, dtype)

    with pytest.raises(ValueError, match="unknown backend 'tpu'"):
        check_parity(build, *data, ("numpy", "tpu"))
    assert built == []


# -- models with other parameters ---------------------------------------------------------------
def test_a_batch_norm_model_agrees(data):
    """γ is named Scale; β starts at 0 on both backends, which is no difference."""
    def build(backend, dtype):
        layers = [Dense(4, Tanh(), batch_norm=True), Dense(3)]
        return NeuralNetwork(layers, SoftmaxCrossEntropy(), seed=7, backend=backend,
                             dtype=dtype), SGD(0.1)

    report = parity(data, build, steps=2)
    assert report.passed, report.format()
    comparison = report.comparisons[0]
    assert [(d.name, d.shape) for d in comparison.params] == [
        ("layers[0].W", (3, 4)), ("layers[0].Scale", (1, 4)), ("layers[0].B", (1, 4)),
        ("layers[1].W", (4, 3)), ("layers[1].B", (1, 3))]
    assert comparison.steps[0].param_rel == 0.0


def test_an_empty_parameter_has_no_difference():
    """No input features: W is 0 × 3, and agrees."""
    X, y = np.zeros((12, 0)), np.arange(12) % 3
    report = parity((X, y), one_layer(), steps=2)
    assert report.passed
    weights = report.comparisons[0].params[0]
    assert (weights.shape, weights.max_abs, weights.max_rel) == ((0, 3), 0.0, 0.0)


# -- the final metrics --------------------------------------------------------------------------
# After step 1 each backend's W is 2 × a permutation and B = 0, so with dropout 0.5 (× 0.5 at
# inference) a one-hot row x gets logits x·P: one logit 1, two 0. The reference predicts a
# row's own column, the other the next one. Loss of a row: log(e + 2) − 1 where predicted
# right, log(e + 2) where not.
X_VAL = np.array([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 0]])
Y_VAL = np.array([0, 1, 2, 1])  # the reference gets rows 0-2 right, the other only row 3
REF_LOSS, OTHER_LOSS = math.log(math.e + 2) - 3 / 4, math.log(math.e + 2) - 1 / 4


def planted_final_model():
    return one_layer({(REF, 1): set_params(W=2 * np.eye(3), B=[0, 0, 0]),
                      (OTHER, 1): set_params(W=2 * np.roll(np.eye(3), 1, axis=1), B=[0, 0, 0])},
                     dropout=0.5)


@pytest.mark.parametrize("labels", ["classes", "one-hot"])
def test_final_metrics_are_inference_metrics_on_the_validation_data(data, labels):
    X, _ = data
    y_val = Y_VAL if labels == "classes" else np.eye(3)[Y_VAL]
    report = check_parity(planted_final_model(), X, np.full(12, 2), PAIR, steps=1, batch_size=4,
                          validation=(X_VAL, y_val))
    assert report.metrics[REF].accuracy == 0.75 and report.metrics[OTHER].accuracy == 0.25
    assert report.metrics[REF].loss == pytest.approx(REF_LOSS, rel=1e-12)
    assert report.metrics[OTHER].loss == pytest.approx(OTHER_LOSS, rel=1e-12)
    comparison = report.comparisons[0]
    assert comparison.accuracy_diff == 0.5
    assert comparison.final_loss_rel == pytest.approx(0.5 / REF_LOSS, rel=1e-12)
    assert not comparison.metrics_passed


def final_verdict(data, tolerance: Tolerance) -> bool:
    X, _ = data
    report = check_parity(planted_final_model(), X, np.full(12, 2), PAIR, steps=1, batch_size=4,
                          validation=(X_VAL, Y_VAL), tolerance=tolerance, compare="metrics")
    return report.comparisons[0].metrics_passed


# the final loss is 0.5 / REF_LOSS = 0.62 relative apart, the accuracy 0.5
@pytest.mark.parametrize(("final_loss", "accuracy", "passed"), [
    (1.0, 0.5, True),  # the accuracy exactly at its tolerance
    (1.0, 0.25, False),  # the accuracy alone too far apart
    (0.5, 0.5, False),  # the loss alone too far apart
    (1.0, 0.5 - 1e-12, True),  # within the 1e-12 allowed for rounding: (0.5 − 1e-12) + 1e-12 = 0.5
])
def test_final_metrics_verdict(data, final_loss, accuracy, passed):
    tolerance = Tolerance(per_step=1.0, final_loss=final_loss, accuracy=accuracy)
    assert final_verdict(data, tolerance) is passed


def test_a_final_loss_exactly_at_its_tolerance_passes(data):
    X, _ = data
    report = check_parity(planted_final_model(), X, np.full(12, 2), PAIR, steps=1, batch_size=4,
                          validation=(X_VAL, Y_VAL), tolerance=Tolerance(1.0, 1.0, 1.0))
    rel = report.comparisons[0].final_loss_rel
    assert rel == pytest.approx(0.5 / REF_LOSS, rel=1e-12)
    assert final_verdict(data, Tolerance(per_step=1.0, final_loss=rel, accuracy=1.0))
