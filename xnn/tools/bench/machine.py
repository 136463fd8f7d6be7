"""What the numbers were measured on: CPU, cores, NumPy and its BLAS, PyTorch, CuPy and GPU."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from xnn import __version__
from xnn.backends import available_backends, get_backend

__all__ = ["blas_name", "cpu_counters", "cpu_name", "machine_info", "others_share", "threadpools"]


def machine_info(torch: ModuleType | None = None) -> dict[str, Any]:
    """The machine and library versions behind a benchmark run."""
    info: dict[str, Any] = {
        "cpu": cpu_name(), "logical_cpus": os.cpu_count(),
        "usable_cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "platform": platform.platform(), "python": platform.python_version(),
        "xnn": __version__, "numpy": np.__version__, "blas": blas_name(),
        "threadpools": threadpools(), "torch": None, "cupy": None, "gpu": None,
    }
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["torch_blas"] = "MKL" if torch.backends.mkl.is_available() else "not MKL"
    if "cupy" in available_backends():
        cupy = get_backend("cupy").xp
        info["cupy"] = cupy.__version__
        info["gpu"] = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return info


def cpu_name() -> str:
    """The CPU's model name, with family and model numbers, from /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    name = fields.get("model name", platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def blas_name() -> str:
    """The BLAS NumPy was built with, from ``numpy.show_config``."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (KeyError, TypeError, ValueError):
        return "unknown"
    name = f"{blas.get('name', '?')} {blas.get('version', '')}".strip()
    config = blas.get("openblas configuration")
    return f"{name} ({config.strip()})" if config else name


def threadpools() -> list[dict[str, Any]] | None:
    """The native thread pools loaded so far (via threadpoolctl), or ``None`` without it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keys = ("internal_api", "version", "num_threads", "architecture")
    return [{key: pool.get(key) for key in keys} for pool in threadpool_info()]


def cpu_counters() -> tuple[float, float, float] | None:
    """(busy, total) CPU seconds of the whole machine, and those of this process and its children.

    From /proc/stat; steal time counts as busy. ``None`` where there is no /proc/stat.
    """
    try:
        ticks = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    except (OSError, ValueError):
        return None
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle + iowait
    own = os.times()
    return ((sum(ticks) - idle) / hz, sum(ticks) / hz,
            own.user + own.system + own.children_user + own.children_system)


def others_share(start: tuple[float, float, float] | None,
                 end: tuple[float, float, float] | None) -> float | None:
    """The share of all CPUs' time that other processes used between two :func:`cpu_counters`."""
    if start is None or end is None:
        return None
    busy, total, own = (after - before for before, after in zip(start, end, strict=True))
    return max(0.0, (busy - own) / total) if total > 0 else None
