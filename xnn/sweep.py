"""Many runs on many machines: every experiment × every seed on a Dask cluster.

``xnn.sweep.run(names, seeds, *, out, workers=None, scheduler=None, **run_options)`` returns
(records, summary rows) and writes ``out/runs.jsonl`` and ``out/summary.md``/``.csv``/``.png``;
``xnn sweep`` is the same from the command line. Needs ``dask[distributed]`` (``pip install
-e ".[distributed]"``). See docs/scale-out.md and :mod:`xnn.tools.sweep_run`.
"""

from xnn.tools.sweep import RunsFailed, SchedulerUnreachable, main, parse_seeds, run

__all__ = ["RunsFailed", "SchedulerUnreachable", "main", "parse_seeds", "run"]
