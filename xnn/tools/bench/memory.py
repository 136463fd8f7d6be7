"""Peak memory of a full ``fit``, measured in a fresh interpreter so earlier runs do not count."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path
from typing import Any

from xnn.backends import get_backend
from xnn.tools.bench.workloads import MODELS, fit_one_epoch, make_data, xnn_trainer

__all__ = ["measure_memory", "memory_in_subprocess"]

_CHILD = ("import json, sys; from xnn.tools.bench.memory import measure_memory; "
          "print(json.dumps(measure_memory(*json.loads(sys.argv[1]))))")


def measure_memory(backend_name: str, model: str, rows: int, batch_size: int,
                   seed: int) -> dict[str, Any]:
    """Peak memory of one ``fit(epochs=1)`` in this process, beyond the data already there.

    ``fit_extra_rss``: the OS's peak resident size during the fit (VmHWM, reset just before)
    minus the resident size just before it. ``traced_peak``: the peak of the NumPy and Python
    allocations made during the fit (tracemalloc). ``device_pool_growth``: how much CuPy's
    memory pool grew.
    """
    backend = get_backend(backend_name)
    data = make_data(rows, seed)
    trainer = xnn_trainer(MODELS[model], backend_name, seed)
    X, y = backend.asarray(data.X), backend.asarray(data.y)
    pool = backend.xp.get_default_memory_pool() if backend.library == "cupy" else None
    pool_before = pool.total_bytes() if pool is not None else 0
    peak_reset = _reset_peak_rss()
    rss_before = _rss()
    tracemalloc.start()
    fit_one_epoch(trainer, X, y, batch_size, seed)
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    peak_rss = _peak_rss()
    params = sum(math.prod(p.shape) for p in trainer.net.params())
    return {
        "model": model, "backend": backend_name, "rows": rows, "batch_size": batch_size,
        "data_bytes": int(data.X.nbytes + data.y.nbytes), "params": params,
        "model_bytes": 4 * params, "rss_before_fit": rss_before, "peak_rss": peak_rss,
        "peak_rss_since": "fit start" if peak_reset else "process start",
        "fit_extra_rss": peak_rss - rss_before, "traced_peak": traced_peak,
        "device_pool_growth": pool.total_bytes() - pool_before if pool is not None else None,
    }


def memory_in_subprocess(backend_name: str, model: str, rows: int, batch_size: int,
                         seed: int) -> dict[str, Any]:
    """:func:`measure_memory` in a fresh interpreter; on failure, the error's last line."""
    root = str(Path(__file__).resolve().parents[2])  # the directory holding the xnn package
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    arguments = json.dumps([backend_name, model, rows, batch_size, seed])
    done = subprocess.run([sys.executable, "-c", _CHILD, arguments], capture_output=True,
                          text=True, check=False,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(paths)})
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": model, "backend": backend_name, "rows": rows, "error": last}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _rss() -> int:
    """Resident set size of this process now, in bytes (Linux; 0 elsewhere)."""
    return _status_kib("VmRSS") * 1024


def _reset_peak_rss() -> bool:
    """Restart the peak-RSS count (VmHWM) from the current RSS; False where Linux cannot.

    Needed because a child's ``ru_maxrss`` starts at its parent's size when it was spawned.
    """
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def _peak_rss() -> int:
    """Peak resident set size of this process since the last reset, in bytes."""
    peak = _status_kib("VmHWM") * 1024
    if peak:
        return peak
    try:
        import resource  # Unix only
    except ImportError:
        return 0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else 1024 * peak  # macOS counts bytes, Linux KiB


def _status_kib(key: str) -> int:
    """A ``kB`` field of /proc/self/status (0 where there is none)."""
    try:
        text = Path("/proc/self/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return int(value.split()[0])
    return 0
