"""What a parity check found: per-step and per-parameter differences, the verdict, and the
plain-text and JSON forms of the report (see :mod:`xnn.tools.parity` for the check itself)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

__all__ = ["TOLERANCES", "Comparison", "Divergence", "Metrics", "ParamDiff", "ParityReport",
           "StepDiff", "Tolerance"]


@dataclass(frozen=True)
class Tolerance:
    """Allowed relative differences: ``per_step`` × k after step k; final loss; accuracy."""

    per_step: float
    final_loss: float
    accuracy: float  # absolute, as a fraction: 0.01 is one percentage point

    def allowed(self, step: int) -> float:
        """The relative difference allowed after ``step`` (step 0 gets one step's worth)."""
        return self.per_step * max(step, 1)


TOLERANCES = {
    "float64": Tolerance(per_step=1e-10, final_loss=1e-8, accuracy=0.01),
    "float32": Tolerance(per_step=1e-5, final_loss=1e-2, accuracy=0.02),
}


@dataclass
class Metrics:
    """Loss and accuracy of a trained model, in inference mode."""

    loss: float
    accuracy: float


@dataclass
class StepDiff:
    """One step against the reference: the loss's and the worst parameter's differences."""

    step: int
    loss_rel: float | None  # None at step 0, before any loss
    param_rel: float
    allowed: float

    @property
    def passed(self) -> bool:
        """Whether the loss and every parameter are within ``allowed`` (NaN never is)."""
        return self.param_rel <= self.allowed and (
            self.loss_rel is None or self.loss_rel <= self.allowed)


@dataclass
class ParamDiff:
    """One parameter's largest difference from the reference, over all steps."""

    name: str  # "layers[1].W"
    shape: tuple[int, ...]
    max_abs: float = 0.0
    max_rel: float = 0.0
    worst_step: int = 0
    first_failure: int | None = None


@dataclass
class Divergence:
    """Where a backend first left the tolerance: the step and the parameter (or "loss")."""

    step: int
    name: str
    rel: float
    allowed: float


@dataclass
class Comparison:
    """One backend against the reference."""

    backend: str
    params: list[ParamDiff]
    steps: list[StepDiff] = field(default_factory=list)
    divergence: Divergence | None = None
    final_loss_rel: float = 0.0
    accuracy_diff: float = 0.0
    metrics_passed: bool = True


@dataclass
class ParityReport:
    """What :func:`check_parity` found; :attr:`passed` is the verdict under ``tolerance``."""

    reference: str
    backends: list[str]
    dtype: str
    steps: int
    batch_size: int
    seed: int
    compare: str
    tolerance: Tolerance
    losses: dict[str, list[float]]
    metrics: dict[str, Metrics]
    comparisons: list[Comparison]

    @property
    def passed(self) -> bool:
        """Every step (unless ``compare="metrics"``) and the final metrics within tolerance."""
        return all(c.metrics_passed and (self.compare == "metrics" or c.divergence is None)
                   for c in self.comparisons)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (NaN and infinities become strings)."""
        return _json_safe({**dataclasses.asdict(self), "passed": self.passed})

    def format(self) -> str:
        """The report as plain-text tables, ending with the verdict."""
        return "\n\n".join("\n".join(part) for part in (
            _header(self), _step_table(self), _param_table(self), _metric_lines(self),
            _verdicts(self)))


def _json_safe(value: Any) -> Any:
    """``value`` with every NaN or infinity replaced by its string, for strict JSON readers."""
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


# -- the text report -----------------------------------------------------------------------
def _header(report: ParityReport) -> list[str]:
    t = report.tolerance
    return [f"parity of {', '.join(report.backends[1:])} against {report.reference} "
            f"(reference): {report.dtype}, {report.steps} steps of {report.batch_size} rows, "
            f"seed {report.seed}",
            f"tolerance: relative difference <= {t.per_step:.0e} x step; final loss "
            f"{t.final_loss:.0e} relative, accuracy {100 * t.accuracy:g} points; judged on "
            f"{report.compare}"]


def _step_table(report: ParityReport) -> list[str]:
    heads = ["step", *(f"loss {name}" for name in report.backends)]
    for name in report.backends[1:]:
        heads += [f"loss rel {name}", f"param rel {name}"]
    rows = []
    for step in range(report.steps + 1):
        records = [c.steps[step] for c in report.comparisons]
        cells = [str(step), *(_num(report.losses[name][step - 1] if step else None, ".8f")
                              for name in report.backends)]
        for record in records:
            cells += [_num(record.loss_rel), _num(record.param_rel)]
        ok = "ok" if all(r.passed for r in records) else "FAIL"
        rows.append([*cells, _num(records[0].allowed, ".1e"), ok])
    return _table([*heads, "allowed", ""], rows)


def _param_table(report: ParityReport) -> list[str]:
    heads = ["backend", "parameter", "shape", "max abs", "max rel", "at step", "first failure"]
    rows = [[c.backend, d.name, "x".join(map(str, d.shape)), _num(d.max_abs), _num(d.max_rel),
             str(d.worst_step), "-" if d.first_failure is None else str(d.first_failure)]
            for c in report.comparisons for d in c.params]
    return _table(heads, rows)


def _metric_lines(report: ParityReport) -> list[str]:
    lines = [f"final {name}: loss {m.loss:.8f}, accuracy {100 * m.accuracy:.2f}%"
             for name, m in report.metrics.items()]
    for c in report.comparisons:
        lines.append(f"final {c.backend} vs {report.reference}: loss rel {_num(c.final_loss_rel)}"
                     f", accuracy {100 * c.accuracy_diff:.2f} points apart: "
                     f"{'ok' if c.metrics_passed else 'FAIL'}")
    return lines


def _verdicts(report: ParityReport) -> list[str]:
    lines = []
    for c in report.comparisons:
        if (d := c.divergence) is not None:
            judged = "" if report.compare == "steps" else " (not judged: --compare metrics)"
            lines.append(f"DIVERGED: {c.backend} left {report.reference} at step {d.step} in "
                         f"{d.name}: relative difference {_num(d.rel)} > allowed "
                         f"{_num(d.allowed, '.1e')}{judged}")
        if not c.metrics_passed:
            lines.append(f"DIVERGED: the final metrics of {c.backend} and {report.reference}")
    verdict = "PASS" if report.passed else "FAIL"
    return [*lines, f"{verdict}: {' vs '.join(report.backends)} in {report.dtype}"]


def _num(value: float | None, spec: str = ".2e") -> str:
    return "-" if value is None else format(value, spec)


def _table(heads: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(map(len, column)) for column in zip(heads, *rows, strict=True)]
    return ["  ".join(cell.rjust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
            for line in (heads, *rows)]
