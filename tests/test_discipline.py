"""Project rules that code review alone would miss."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "xnn"

# Modules that may use NumPy: the backend layer, host-side randomness, test helpers, and tools
# that handle host data (datasets, checkpoints, the command line).
HOST_SIDE = {"random.py", "testing.py", "__main__.py", "pytest_plugin.py", "datasets.py",
             "checkpoint.py", "checkpoints.py", "preprocessing.py"}
HOST_SIDE_PACKAGES = {"backends", "data", "tools"}


def _imports_numpy(path: Path) -> list[int]:
    return _imports_of(path, ("numpy",))


def test_model_maths_never_touches_numpy():
    """Operations, layers, losses, optimizers, dropout and trainer go through ``xp`` only."""
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] in HOST_SIDE_PACKAGES or relative.name in HOST_SIDE:
            continue
        if lines := _imports_numpy(path):
            offenders[str(relative)] = lines
    assert not offenders, f"numpy imported outside the backend layer: {offenders}"
    trainer = PACKAGE / "train" / "trainer.py"
    assert trainer.exists() and not _imports_numpy(trainer)


def test_ci_runs_the_readme_test_command():
    """`.ci/run` runs exactly the test command the README gives a newcomer."""
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"^TEST_COMMAND=(.+)$", ci, flags=re.MULTILINE)
    assert match, ".ci/run must define TEST_COMMAND"
    command = shlex.split(match.group(1))[0]
    assert command in readme


def _imports_of(path: Path, modules: tuple[str, ...]) -> list[int]:
    lines = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        if any(name.partition(".")[0] in modules for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_backend_layer_knows_the_device_libraries():
    """torch, array-api-compat and CuPy are imported in xnn/backends only (the benchmark's
    PyTorch and JAX contenders aside), so the model maths stays backend-free."""
    libraries = ("torch", "array_api_compat", "cupy", "cupyx")
    offenders = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "backends" or relative.parts[:2] == ("tools", "bench"):
            continue
        if lines := _imports_of(path, libraries):
            offenders[str(relative)] = lines
    assert not offenders, f"a device library imported outside xnn/backends: {offenders}"
    assert _imports_of(PACKAGE / "backends" / "torch_backend.py", ("numpy",))  # the test sees
