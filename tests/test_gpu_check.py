"""``scripts/gpu-check.sh --dry-run`` end to end: array_api_strict stands in for the GPU.

The script runs on a copy of the project without ``.git`` (as on a lent GPU machine), with quick
settings: 2 parity steps, a tiny benchmark, and the inner pytest narrowed by ``PYTEST_ADDOPTS``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STAGES = ["probe", "tests", "parity-chapter-float64", "parity-deep-float64", "fused-parity",
          "fused-tests", "parity-chapter-float32", "parity-deep-float32", "torch-parity",
          "dask-cuda", "benchmarks", "benchmarks-fused"]
QUICK = {
    "XNN_GPU_CHECK_PARITY_STEPS": "2",
    "XNN_GPU_CHECK_BENCH_ARGS": "--quick --models chapter --rows 300 --inference-rows 60 "
                                "--repeats 1 --large-batch 0 --no-torch --no-jax --no-memory",
    "XNN_GPU_CHECK_BUDGET": "150",
    "PYTEST_ADDOPTS": "-k test_backend",
}


def _bash_4() -> bool:
    bash = shutil.which("bash")
    return bash is not None and subprocess.run(
        [bash, "-c", "((BASH_VERSINFO[0] >= 4))"], check=False).returncode == 0


pytestmark = [
    pytest.mark.skipif(not _bash_4(), reason="needs bash 4 or later"),
    pytest.mark.skipif(shutil.which("timeout") is None, reason="needs timeout (coreutils)"),
    pytest.mark.skipif(importlib.util.find_spec("array_api_strict") is None,
                       reason="the dry run needs array_api_strict (pip install array-api-strict)"),
    pytest.mark.skipif(os.environ.get("XNN_GPU_CHECK_RUNNING") == "1",
                       reason="inside scripts/gpu-check.sh already"),
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """What travels to a GPU machine: the scripts, the package and its tests; no ``.git``."""
    copy = tmp_path / "project"
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".hypothesis")
    for folder in ("scripts", "xnn", "tests"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=junk)
    shutil.copy2(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def environment(**changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("XNN_", "PYTEST_", "CUPY_")) and k != "PYTHONPATH"}
    env.update(QUICK, PYTHON=sys.executable, PYTHONUNBUFFERED="1", **changes)
    return env


def stage_rows(report: str) -> dict[str, tuple[str, str]]:
    """The summary table: stage -> (result, notes)."""
    rows = {}
    for line in report.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) >= 4 and cells[0] in STAGES:
            rows[cells[0]] = (cells[1], "|".join(cells[3:]).strip())
    return rows


def test_dry_run_passes_every_stage_and_reports(project, tmp_path):
    (project / ".xnn-commit").write_text("abc1234-dirty\n")
    report = tmp_path / "report" / "gpu-report.md"
    start = time.monotonic()
    run = subprocess.run(["bash", str(project / "scripts" / "gpu-check.sh"), "--dry-run",
                          str(report)], env=environment(), capture_output=True, text=True,
                         timeout=240, check=False)
    elapsed = time.monotonic() - start
    assert run.returncode == 0, run.stderr[-3000:]
    text = report.read_text()
    rows = stage_rows(text)
    assert list(rows) == STAGES, text[:3000]
    for stage, (result, notes) in rows.items():
        assert result == "passed" or (result == "skipped" and notes), (stage, result, notes)
    assert text.startswith("# GPU check: works"), text[:500]
    assert "commit `abc1234` (with uncommitted changes) (from .xnn-commit)" in text
    assert "array_api_strict: an elementwise kernel and a matrix product ran" in text
    assert "PASS: numpy vs array_api_strict in float64" in text  # parity's own verdict
    assert re.search(r"\| dask-cuda \| passed \| \d+ \| 2 runs on tcp://", text), text[-3000:]
    if importlib.util.find_spec("torch") is not None:
        assert "PASS: numpy vs torch in float64" in text
    seconds = int(re.search(r"; (\d+)s in all \(budget 150s\)", text).group(1))
    assert seconds <= elapsed + 1
    assert [p.name for p in report.parent.iterdir()] == ["gpu-report.md"]  # no scratch left
    assert "report written to" in run.stderr


def test_the_report_is_written_after_each_stage_and_survives_a_kill(project, tmp_path):
    # The inner pytest waits (for at most 60 s) in the one test PYTEST_ADDOPTS gives it, so
    # the tests stage is certainly running when the report first shows the probe.
    pid_file = tmp_path / "pytest.pid"
    waiting = tmp_path / "waiting" / "test_waits.py"
    waiting.parent.mkdir()
    waiting.write_text(
        "import os, pathlib, time\n\n\n"
        "def test_waits():\n"
        f"    pathlib.Path({str(pid_file)!r}).write_text(str(os.getpid()))\n"
        "    time.sleep(60)\n"
    )
    report = tmp_path / "gpu-report.md"
    script = subprocess.Popen(["bash", str(project / "scripts" / "gpu-check.sh"), "--dry-run",
                               str(report)], env=environment(PYTEST_ADDOPTS=str(waiting)),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        while not pid_file.exists() and time.monotonic() < deadline and script.poll() is None:
            time.sleep(0.1)
        assert pid_file.exists(), "the inner pytest never started"
        text = report.read_text()  # written before the tests stage began
        assert text.startswith("# GPU check: INCOMPLETE: 1 of 12 stages done"), text[:500]
        assert "commit unknown" in text
        assert stage_rows(text)["probe"][0] == "passed"
        assert stage_rows(text)["tests"][0] == "running"

        script.send_signal(signal.SIGTERM)
        _, stderr = script.communicate(timeout=30)
    finally:
        if script.poll() is None:  # the signal lets the script stop its stage, then KILL
            script.terminate()
            try:
                script.wait(timeout=15)
            except subprocess.TimeoutExpired:
                script.kill()
                script.wait()
    assert script.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    text = report.read_text()
    assert text.startswith("# GPU check: INCOMPLETE: interrupted by SIGTERM during tests\n")
    rows = stage_rows(text)
    assert rows["probe"][0] == "passed"
    assert rows["tests"][0] == "INTERRUPTED"
    assert {rows[stage][0] for stage in STAGES[2:]} == {"not run yet"}
    pid = int(pid_file.read_text())
    for _ in range(50):  # the stage's processes were stopped with the script
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail("the inner pytest outlived the interrupted script")


def test_a_spent_budget_skips_stages_and_the_verdict_says_incomplete(project, tmp_path):
    # Under 10 s left, no stage starts: with 9 s in all, only the probe runs.
    report = tmp_path / "gpu-report.md"
    run = subprocess.run(["bash", str(project / "scripts" / "gpu-check.sh"), str(report)],
                         env=environment(XNN_GPU_CHECK_BACKENDS="numpy array_api_strict",
                                         XNN_GPU_CHECK_BUDGET="9", XNN_COMMIT="feedbee"),
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1, run.stderr[-3000:]
    text = report.read_text()
    rows = stage_rows(text)
    assert list(rows) == STAGES, text[:3000]
    assert "`scripts/gpu-check.sh --dry-run`" in text  # the knob made it a dry run
    assert "commit `feedbee` (from XNN_COMMIT)" in text
    assert all(rows[stage] == ("skipped", "not started: the time budget (9s) is spent")
               for stage in STAGES[1:]), rows
    if rows["probe"][0] == "passed":  # (a very slow machine may need more than 9 s for it)
        assert text.startswith("# GPU check: INCOMPLETE: nothing failed, but tests"), text[:500]
