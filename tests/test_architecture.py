"""The layers of the package and their rules (docs/architecture.md), checked on the source.

- a layer imports only the layers below it: backends ← core ← nn, data ← train ← tools;
- no import cycle between modules (lazy imports inside functions count too);
- no module of xnn/ is longer than 300 lines;
- nothing in a training step looks a backend up by array type: the lookups a ``fit`` makes do
  not grow with the number of steps;
- the pytest plugin imports nothing else of xnn (nor NumPy) until its fixture is used.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import xnn
from xnn import Dense, NeuralNetwork, SGDMomentum, SoftmaxCrossEntropy, Tanh, Trainer

PACKAGE = Path(xnn.__file__).resolve().parent
ALLOWED = {  # layer → the layers it may import
    "backends": {"backends"},
    "core": {"backends", "core"},
    "nn": {"backends", "core", "nn"},
    "data": {"backends", "core", "data"},
    "train": {"backends", "core", "nn", "train"},
    "tools": {"backends", "core", "nn", "data", "train", "tools", "facade"},
}
FACADE = {"__init__", "__main__", "datasets", "preprocessing", "schedules", "testing",
          "pytest_plugin", "sklearn", "sweep"}
MAX_LINES = 300


def _modules() -> dict[str, Path]:
    modules = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(("xnn", *parts))] = path
    return modules


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The xnn modules ``path`` imports (``from a import b`` names a.b when b is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
    return {name for name in found if name == "xnn" or name.startswith("xnn.")}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in FACADE):
        return "facade"
    return parts[1]


def test_every_module_belongs_to_a_layer():
    layers = {_layer(module) for module in MODULES}
    assert layers <= {*ALLOWED, "facade"}, layers - {*ALLOWED, "facade"}


def test_layers_import_only_the_layers_below():
    offenders = []
    for module, path in MODULES.items():
        layer = _layer(module)
        if layer == "facade":
            continue
        for imported in _imports(path):
            if _layer(imported) not in ALLOWED[layer]:
                offenders.append(f"{module} ({layer}) imports {imported}")
    assert not offenders, "\n".join(offenders)


def test_no_import_cycles():
    graph = {module: _imports(path) - {module} for module, path in MODULES.items()}
    for module in graph:  # a package's __init__ is imported with each of its modules
        parent = module.rpartition(".")[0]
        if parent in graph:
            graph[module] = graph[module] - {parent} if module in graph[parent] else graph[module]
    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(module: str, path: list[str]) -> bool:
        state[module] = 1
        for imported in sorted(graph.get(module, ())):
            if state.get(imported) == 1:
                cycle.extend([*path[path.index(imported):], imported])
                return True
            if imported not in state and visit(imported, [*path, imported]):
                return True
        state[module] = 2
        return False

    for module in sorted(graph):
        if module not in state and visit(module, [module]):
            break
    assert not cycle, " → ".join(cycle)


def test_modules_are_short():
    long = {module: n for module, path in MODULES.items()
            if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_a_fit_looks_backends_up_a_fixed_number_of_times(backend, monkeypatch, rng):
    """Kernels are handed to operations when they are built; steps never look them up."""
    from xnn.backends import registry

    calls = []
    for name in ("array_namespace", "backend_of", "kernels_for"):
        original = getattr(registry, name)

        def counted(*args, _original=original, _name=name):
            calls.append(_name)
            return _original(*args)

        for module in list(sys.modules.values()):
            if getattr(module, "__name__", "").startswith("xnn") and \
                    getattr(module, name, None) is original:
                monkeypatch.setattr(module, name, counted)

    X, y = rng.standard_normal((48, 5)), rng.integers(0, 3, 48)

    def lookups(epochs: int) -> int:
        calls.clear()
        net = NeuralNetwork([Dense(6, Tanh(), dropout=0.8), Dense(3)], SoftmaxCrossEntropy(),
                            backend=backend, dtype="float64")
        Trainer(net, SGDMomentum(0.1)).fit(X, y, X, y, epochs=epochs, eval_every=1,
                                           batch_size=4, verbose=False)
        return len(calls)

    assert lookups(1) == lookups(3)  # 12 steps an epoch: none of them looks anything up


def test_the_pytest_plugin_imports_nothing_until_used():
    code = ("import sys, xnn.tools.pytest_plugin, xnn.pytest_plugin; "
            "print(sorted(m for m in sys.modules if m.startswith('xnn') or m == 'numpy'))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == [
        "['xnn',", "'xnn.pytest_plugin',", "'xnn.tools',", "'xnn.tools.pytest_plugin']"]


def test_importing_xnn_is_lazy_and_complete():
    code = ("import sys, xnn; before = 'xnn.nn.network' in sys.modules; "
            "names = [getattr(xnn, n) for n in xnn.__all__]; print(before, len(names))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.split() == ["False", str(len(xnn.__all__))]
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        xnn.Nope  # noqa: B018


def test_the_architecture_doc_names_every_layer():
    text = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    for layer in ALLOWED:
        assert f"xnn/{layer}/" in text
