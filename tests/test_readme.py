"""README.md runs as written: every ```python block, in order, in one namespace, in a fresh
interpreter whose working directory is a temporary one; nothing is filled in by hand, only
environment variables are set (one BLAS thread, no network, a private data cache). Where a
```text block follows a python block, it is that block's output: the same lines, the same
words and integers, and numbers with a decimal point within a few percent (BLAS libraries
round differently)."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
MARK = "----- README block at line "
NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
BUDGET = 20.0  # seconds the whole README may take

RUNNER = f"""
import json, sys
namespace = {{"__name__": "__readme__"}}
for line, code in json.load(open(sys.argv[1], encoding="utf-8")):
    print({MARK!r} + str(line), flush=True)
    exec(compile("\\n" * (line - 1) + code, {str(README)!r}, "exec"), namespace)
    sys.stdout.flush()
"""


def fenced_blocks(text: str) -> list[tuple[str, int, str]]:
    """(language, line of the first code line, code) of every fenced block, in order."""
    return [(match.group(1), text.count("\n", 0, match.start(2)) + 1, match.group(2))
            for match in FENCE.finditer(text)]


def python_blocks() -> list[tuple[int, str]]:
    blocks = [(line, code) for language, line, code in fenced_blocks(README.read_text("utf-8"))
              if language == "python"]
    for module in ("sklearn", "torch"):  # the sections on scikit-learn and torch need them
        if importlib.util.find_spec(module) is None:
            blocks = [(line, code) for line, code in blocks if f"import {module}" not in code
                      and f"from {module}" not in code and f"xnn.{module}" not in code]
    return blocks


def expected_outputs() -> dict[int, str]:
    """Line of a python block → the ```text block that follows it (its output)."""
    blocks = fenced_blocks(README.read_text("utf-8"))
    return {line: following[2] for (language, line, _), following in itertools.pairwise(blocks)
            if language == "python" and following[0] == "text"}


def same_output(actual: str, expected: str) -> bool:
    """The same lines, words and integers; decimals within 5% (or 2 units of the last digit)."""
    got, want = actual.strip().splitlines(), expected.strip().splitlines()
    if len(got) != len(want):
        return False
    for line, model in zip(got, want, strict=True):
        if NUMBER.split(line) != NUMBER.split(model):  # the words, and as many numbers
            return False
        for a, b in zip(NUMBER.findall(line), NUMBER.findall(model), strict=True):
            if "." not in b:
                if a != b:
                    return False
                continue
            decimals = len(b.partition(".")[2])
            if abs(float(a) - float(b)) > max(0.05 * abs(float(b)), 2 * 10.0**-decimals):
                return False
    return True


def test_every_python_block_compiles():
    for line, code in python_blocks():
        compile("\n" * (line - 1) + code, str(README), "exec")


def test_the_comparison_of_outputs():
    assert same_output("Validation loss after 10 epochs is 0.080\n", "Validation loss after "
                       "10 epochs is 0.079")
    assert not same_output("Validation loss after 20 epochs is 0.079", "Validation loss after "
                           "10 epochs is 0.079")
    assert not same_output("loss 0.5", "loss 0.079")
    assert not same_output("a\nb", "a")


@pytest.mark.slow
def test_the_readme_runs_as_written(tmp_path):
    blocks = python_blocks()
    assert blocks, "README.md has no python blocks"
    script = tmp_path / "blocks.json"
    script.write_text(json.dumps(blocks), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("XNN_")}
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               XNN_OFFLINE="1", XNN_DATA_DIR=str(tmp_path / "cache"), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    work = tmp_path / "work"
    work.mkdir()
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", RUNNER, str(script)], cwd=work, env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    outputs = {int(chunk.partition("\n")[0]): chunk.partition("\n")[2]
               for chunk in result.stdout.split(MARK)[1:]}
    assert sorted(outputs) == [line for line, _ in blocks]
    shown = expected_outputs()
    assert shown, "README.md shows no output (```text after a python block)"
    for line, expected in shown.items():
        if line in outputs:
            assert same_output(outputs[line], expected), (
                f"README.md:{line} printed\n{outputs[line]}\nbut the README shows\n{expected}")
    print(f"README.md ran in {seconds:.1f} s")  # the budget is {BUDGET} s, on a quiet machine
    assert seconds < 10 * BUDGET, f"README.md took {seconds:.0f} s"
