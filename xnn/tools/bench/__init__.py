"""``xnn bench``: xnn's training and inference against PyTorch, JAX and the bare matmuls.

    xnn bench [--quick] [--backends numpy,cupy] [--repeats 5] [--json PATH] [--markdown PATH]

Times are wall-clock (``time.perf_counter``), taken in one process with the contenders
alternating (xnn, PyTorch, torch.compile, JAX jit, JAX scan, floor, floor + update, xnn, …)
after one untimed warm-up call each, so that drift and noisy neighbours hit all of them alike.
The compiled contenders compile first, timed apart. benchmarks/README.md says what each number
means.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from xnn.backends import (
    BackendUnavailableError,
    available_backends,
    get_backend,
    parse_backend_name,
)
from xnn.core.files import atomic_write
from xnn.tools.arguments import EXIT_UNAVAILABLE, Parser, integer, output_file
from xnn.tools.bench.jax_runner import load_jax
from xnn.tools.bench.machine import cpu_counters, machine_info, others_share
from xnn.tools.bench.memory import memory_in_subprocess
from xnn.tools.bench.pytorch import load_torch, on_gpu
from xnn.tools.bench.report import markdown
from xnn.tools.bench.timing import Frameworks, bench_inference, bench_training
from xnn.tools.bench.workloads import MODELS, make_data

__all__ = ["Settings", "load_frameworks", "main", "run"]

# array_api_strict: a correctness stand-in for a GPU, not a speed target; torch on the CPU:
# PyTorch's own CPU kernels are a contender of every run already (--backends torch adds it)
_NOT_BY_DEFAULT = ("array_api_strict", "torch")


@dataclass
class Settings:
    """What one benchmark run measures."""

    backends: list[str]
    models: list[str] = field(default_factory=lambda: list(MODELS))
    repeats: int = 5
    rows: int = 60_000
    inference_rows: int = 10_000
    inference_calls: int = 10
    batch_size: int = 60
    large_batch: int = 4096  # GPU backends only; 0 skips it
    torch: bool = True
    torch_compile: bool = True
    jax: bool = True
    memory: bool = True
    seed: int = 20190119


def run(settings: Settings, command: str = "xnn bench",
        log: Callable[[str], None] = lambda line: None) -> dict[str, Any]:
    """Measure everything ``settings`` asks for; the result as a JSON-ready dict."""
    counters = cpu_counters()
    frameworks = load_frameworks(settings)
    torch, jax = frameworks.torch, frameworks.jax
    data = make_data(settings.rows, settings.seed)
    X_inference = make_data(settings.inference_rows, settings.seed + 1).X
    result: dict[str, Any] = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command, "settings": asdict(settings), "machine": machine_info(torch),
        "torch": {"status": "ok" if torch else "skipped", "reason": frameworks.why_no_torch},
        "jax": {"status": "ok" if jax else "skipped", "reason": frameworks.why_no_jax,
                "version": jax.__version__ if jax else None},
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "training": [], "inference": [], "memory": [],
    }
    for backend, model, batch_size in _training_cases(settings):
        log(f"training: {model} on {backend}, batch {batch_size}")
        result["training"].append(bench_training(backend, model, batch_size, data,
                                                 settings.repeats, settings.seed, frameworks))
    for backend in settings.backends:
        for model in settings.models:
            log(f"inference: {model} on {backend}")
            result["inference"].append(bench_inference(
                backend, model, X_inference, settings.inference_calls, settings.repeats,
                settings.seed, frameworks))
            if settings.memory:
                log(f"memory: {model} on {backend} (fresh process)")
                result["memory"].append(memory_in_subprocess(
                    backend, model, settings.rows, settings.batch_size, settings.seed))
    result["others_cpu_share"] = others_share(counters, cpu_counters())
    return result


def load_frameworks(settings: Settings) -> Frameworks:
    """The libraries ``settings`` compares with, each imported only if wanted and installed."""
    torch, why_no_torch = load_torch() if settings.torch else (None, "--no-torch was given")
    jax, why_no_jax = load_jax() if settings.jax else (None, "--no-jax was given")
    return Frameworks(torch, why_no_torch, "" if settings.torch_compile else
                      "--no-compile was given", jax, why_no_jax)


def _training_cases(settings: Settings) -> Iterator[tuple[str, str, int]]:
    """(backend, model, batch size): the usual batch, plus a large one on GPU backends."""
    for backend in settings.backends:
        batches = [settings.batch_size]
        if on_gpu(backend) and settings.large_batch:
            batches.append(settings.large_batch)
        for model in settings.models:
            for batch_size in batches:
                yield backend, model, batch_size


def main(argv: list[str] | None = None) -> int:
    """Run ``xnn bench`` with ``argv`` (default: the command line); returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)  # a usage error exits with status 2, in one line
    try:
        settings = _settings(args)
    except ValueError as exc:
        parser.error(str(exc))
    except BackendUnavailableError as exc:
        print(f"xnn bench: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    words = sys.argv[1:] if argv is None else argv
    result = run(settings, " ".join(["xnn bench", *words]),
                 log=lambda line: print(f"[bench] {line}", file=sys.stderr, flush=True))
    text = markdown(result)
    print(text)
    for path, content in ((args.json, json.dumps(result, indent=2) + "\n"),
                          (args.markdown, text)):
        if path:
            with atomic_write(path, "w", encoding="utf-8") as file:
                file.write(content)
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = Parser(prog="xnn bench",
                    description="Time xnn's training and inference against PyTorch, JAX and "
                                "the bare matrix products (benchmarks/README.md says what each "
                                "number means).",
                    epilog="exit status: 0 done, 2 bad arguments, 3 a backend that cannot run "
                           "here")
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: 6000 rows, 1000 inference rows, 1 repeat, to check "
                             "that everything runs; its times and ratios are not comparable "
                             "with a full run's (a tenth of the data fits in the CPU caches, "
                             "and one round is one noisy sample)")
    parser.add_argument("--backends", default=None,
                        help="comma-separated xnn backends, e.g. numpy,torch (default: every "
                             "available one except array_api_strict and torch on the CPU)")
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated models (default and choices: {','.join(MODELS)})")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timed rounds after the warm-up (default 5; --quick 1)")
    parser.add_argument("--rows", type=int, default=None,
                        help="training rows (default 60000; --quick 6000)")
    parser.add_argument("--inference-rows", type=int, default=None,
                        help="rows per inference pass (default 10000; --quick 1000)")
    parser.add_argument("--batch-size", type=int, default=60,
                        help="training batch size (default: %(default)s, the book's)")
    parser.add_argument("--large-batch", type=int, default=4096,
                        help="extra batch size timed on GPU backends (0: none; default: "
                             "%(default)s)")
    parser.add_argument("--no-torch", action="store_true",
                        help="do not time PyTorch (eager nor compiled)")
    parser.add_argument("--no-compile", action="store_true",
                        help="do not time torch.compile (its first compile takes a while)")
    parser.add_argument("--no-jax", action="store_true", help="do not time JAX")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory measurement")
    parser.add_argument("--seed", type=integer(0), default=20190119,
                        help="seed of the data and the models (default: %(default)s)")
    parser.add_argument("--json", metavar="PATH", type=output_file,
                        help="also write the result as JSON")
    parser.add_argument("--markdown", metavar="PATH", type=output_file,
                        help="also write the markdown report")
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    """Settings from parsed arguments; ValueError or BackendUnavailableError when impossible."""
    quick = args.quick
    settings = Settings(
        backends=_backends(args.backends), models=_split(args.models),
        repeats=_pick(args.repeats, 1 if quick else 5),
        rows=_pick(args.rows, 6_000 if quick else 60_000),
        inference_rows=_pick(args.inference_rows, 1_000 if quick else 10_000),
        inference_calls=2 if quick else 10, batch_size=args.batch_size,
        large_batch=args.large_batch, torch=not args.no_torch,
        torch_compile=not args.no_compile, jax=not args.no_jax, memory=not args.no_memory,
        seed=args.seed,
    )
    unknown = sorted(set(settings.models) - set(MODELS))
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(MODELS)}")
    for name in ("repeats", "rows", "inference_rows", "batch_size"):
        if getattr(settings, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be at least 1")
    if settings.large_batch < 0:
        raise ValueError("--large-batch must be 0 (none) or a batch size")
    return settings


def _backends(text: str | None) -> list[str]:
    """The backends to time: the named ones (each must run here), else the available ones."""
    if text is None:
        return [name for name in available_backends() if name not in _NOT_BY_DEFAULT]
    names = _split(text)
    for name in names:
        parse_backend_name(name)  # ValueError: an unknown name, and the known ones
        get_backend(name)  # raises BackendUnavailableError, saying what is missing
    return names


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _pick(value: int | None, default: int) -> int:
    return default if value is None else value
