"""A benchmark result as markdown: the machine, then training, inference and memory tables."""

from __future__ import annotations

from typing import Any

from xnn.tools.bench.timing import COMPILED

__all__ = ["markdown"]

COMPILED_LABELS = ("torch.compile", "JAX jit", "JAX scan")  # headings for timing.COMPILED

_BUSY = 0.05  # share of CPU time used by others above which the times are not trusted


def markdown(result: dict[str, Any]) -> str:
    """The result as a markdown document (times are medians, minimum in parentheses)."""
    settings = result["settings"]
    lines = [
        "# xnn benchmark",
        "",
        f"{result['date']}, `{result['command']}`: {settings['repeats']} timed rounds after one "
        "warm-up, contenders alternating. Times are medians (minimum in parentheses); a ratio "
        "below 1 means xnn is faster.",
        "",
        machine_line(result["machine"], result.get("jax")),
        "",
        *contention_lines(result),
        *training_table(result["training"]),
        *compiled_table(result["training"]),
        *optimizer_table(result["training"]),
        *inference_table(result["inference"]),
        *memory_table(result["memory"]),
        *skipped_notes(result),
    ]
    return "\n".join(lines).rstrip() + "\n"


def machine_line(machine: dict[str, Any], jax: dict[str, Any] | None = None) -> str:
    """One paragraph naming the machine and the libraries."""
    parts = [
        f"**Machine:** {machine['cpu']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['usable_cpus']} usable)",
        f"{machine['platform']}",
        f"Python {machine['python']}",
        f"xnn {machine['xnn']}",
        f"NumPy {machine['numpy']} with {machine['blas']}",
    ]
    if machine.get("torch"):
        parts.append(f"PyTorch {machine['torch']} ({machine['torch_threads']} threads, "
                     f"{machine['torch_blas']})")
    if jax and jax.get("version"):
        parts.append(f"JAX {jax['version']}")
    if machine.get("gpu"):
        parts.append(f"CuPy {machine['cupy']} on {machine['gpu']}")
    for pool in machine.get("threadpools") or []:
        name = " ".join(str(pool[key]) for key in ("internal_api", "version") if pool[key])
        kernel = f" ({pool['architecture']} kernels)" if pool["architecture"] else ""
        parts.append(f"{name}: {pool['num_threads']} threads{kernel}")
    return "; ".join(parts) + "."


def contention_lines(result: dict[str, Any]) -> list[str]:
    """How busy the machine was with other work, with a warning when it may skew the times."""
    share = result.get("others_cpu_share")
    if share is None:
        return []
    line = f"Other processes used {100 * share:.0f}% of the CPUs' time during the run"
    if share > _BUSY:
        line += ": **the times are unreliable; rerun on a quiet machine**"
    return [line + ".", ""]


def training_table(entries: list[dict[str, Any]]) -> list[str]:
    """One row per (model, backend, batch size): xnn, PyTorch and the matmul floor per epoch."""
    if not entries:
        return []
    rows = [f"| {e['model']} | {e['backend']} | {e['batch_size']} | {e['steps']} | "
            f"{_time(e['xnn']['epoch'])} | {_seconds(e['xnn']['setup']['median'])} | "
            f"{_time(e['torch'].get('epoch'))} | {_ratio(e['xnn_over_torch'])} | "
            f"{e['matmuls_per_step']} | {_time(e['floor']['epoch'])} | "
            f"{_ratio(e['xnn_over_floor'])} | {_time(e['floor_update']['epoch'])} | "
            f"{_ratio(e['xnn_over_floor_update'])} |" for e in entries]
    return [
        f"## Training: one epoch of {entries[0]['rows']} rows", "",
        "| model | backend | batch | steps | xnn epoch | fit setup | PyTorch epoch | "
        "xnn / PyTorch | matmuls per step | matmul floor | xnn / floor | floor + update | "
        "xnn / (floor + update) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|", *rows, "",
        "*floor + update*: the same products, plus the momentum update of the weights they "
        "read after every step (benchmarks/README.md).", "",
    ]


def compiled_table(entries: list[dict[str, Any]]) -> list[str]:
    """One row per training case: xnn against torch.compile, JAX jit and JAX scan per epoch."""
    if not entries:
        return []
    rows = []
    for e in entries:
        cells = [e["model"], e["backend"], str(e["batch_size"]), _time(e["xnn"]["epoch"])]
        for name in COMPILED:
            part = e.get(name) or {}
            cells += [_time(part.get("epoch")), _compile(part.get("compile")),
                      _ratio(e.get(f"xnn_over_{name}"))]
        rows.append("| " + " | ".join(cells) + " |")
    heads = [f"{label} epoch | {label} compile | xnn / {label}" for label in COMPILED_LABELS]
    return [
        "## Training against compiled contenders: the same epochs", "",
        f"| model | backend | batch | xnn epoch | {' | '.join(heads)} |",
        "|---|---|---:|" + "---:|" * 10, *rows, "",
        "*compile*: seconds spent compiling before the timed rounds (torch.compile: the first "
        "steps of each batch shape; JAX jit: the first step of each shape; JAX scan: "
        "`lower().compile()`), never part of an epoch (benchmarks/README.md).", "",
    ]


def optimizer_table(entries: list[dict[str, Any]]) -> list[str]:
    """SGD momentum against Adam: one update of every parameter, and a training epoch."""
    rows = [f"| {e['model']} | {e['backend']} | {_time(o['momentum_step'])} | "
            f"{_time(o['adam_step'])} | {_ratio(o['adam_over_momentum_step'])} | "
            f"{_time(o['momentum_epoch'])} | {_time(o['adam_epoch'])} | "
            f"{_ratio(o['adam_over_momentum_epoch'])} |"
            for e in entries if (o := e.get("optimizers"))]
    if not rows:
        return []
    return ["## Optimizers: SGD momentum against Adam", "",
            "| model | backend | momentum step | Adam step | Adam / momentum | momentum epoch "
            "| Adam epoch | Adam / momentum |", "|---|---|---:|---:|---:|---:|---:|---:|",
            *rows, "", "*step*: one `optimizer.step()` over all the parameters (gradients "
            "already computed), mean of 200; *epoch*: a training epoch with that optimizer.",
            ""]


def inference_table(entries: list[dict[str, Any]]) -> list[str]:
    """One row per (model, backend): one forward pass in inference mode."""
    if not entries:
        return []
    rows = [f"| {e['model']} | {e['backend']} | {_time(e['xnn']['call'])} | "
            f"{_time(e['torch'].get('call'))} | {_ratio(e['xnn_over_torch'])} | "
            f"{_time(e['floor']['call'])} | {_ratio(e['xnn_over_floor'])} |" for e in entries]
    return [
        f"## Inference: one forward pass over {entries[0]['rows']} rows", "",
        "| model | backend | xnn | PyTorch | xnn / PyTorch | forward matmuls | xnn / floor |",
        "|---|---|---:|---:|---:|---:|---:|", *rows, "",
    ]


def memory_table(entries: list[dict[str, Any]]) -> list[str]:
    """One row per (model, backend): memory of a whole fit next to the data and model sizes."""
    if not entries:
        return []
    rows = []
    for e in entries:
        if "error" in e:
            rows.append(f"| {e['model']} | {e['backend']} | {e['rows']} | failed: {e['error']} "
                        "| | | | |")
            continue
        rows.append(f"| {e['model']} | {e['backend']} | {e['rows']} | {_mib(e['data_bytes'])} | "
                    f"{_mib(e['model_bytes'])} | {_mib(e['fit_extra_rss'])} | "
                    f"{_mib(e['traced_peak'])} | {_mib(e['device_pool_growth'])} |")
    return [
        "## Peak memory of one `fit` (fresh process)", "",
        "| model | backend | rows | training data | model parameters | extra RSS during fit | "
        "traced peak during fit | device pool growth |",
        "|---|---|---:|---:|---:|---:|---:|---:|", *rows, "",
    ]


def skipped_notes(result: dict[str, Any]) -> list[str]:
    """Why each contender was skipped, once per distinct (contender, reason)."""
    labels = {"torch": "PyTorch", "torch_compile": "torch.compile", "jax_jit": "JAX",
              "jax_scan": "JAX"}
    notes: dict[str, None] = {}
    for entry in result["training"] + result["inference"]:
        for name, label in labels.items():
            part = entry.get(name)
            if part and part["status"] == "skipped":
                notes[f"{label} skipped: {part['reason']}"] = None
    return list(notes)


def _time(stat: dict[str, Any] | None) -> str:
    """``median (min)`` with units, or "skipped"."""
    if not stat:
        return "skipped"
    return f"{_seconds(stat['median'])} ({_seconds(stat['min'])})"


def _compile(seconds: float | None) -> str:
    """Compile seconds, or "–" for a skipped contender."""
    return "–" if seconds is None else _seconds(seconds)


def _seconds(value: float) -> str:
    """A duration with a readable unit: s, ms or µs."""
    if abs(value) >= 1.0:
        return f"{value:.2f} s"
    if abs(value) >= 1e-3:
        return f"{value * 1e3:.1f} ms"
    return f"{value * 1e6:.0f} µs"


def _ratio(value: float | None) -> str:
    """A ratio such as ``0.85×``, or "–" when there is nothing to divide by."""
    return "–" if value is None else f"{value:.2f}×"


def _mib(value: int | None) -> str:
    """Bytes in MiB, or "–" when not measured."""
    return "–" if value is None else f"{value / 2**20:.1f} MiB"
