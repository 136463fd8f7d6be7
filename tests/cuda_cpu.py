"""CUDA elementwise kernel bodies compiled as C++ (g++) and run on the CPU, for tests.

Each ``ElementwiseSource`` body is put inside the loop CuPy would run it in —
``for (i = 0; i < size; ++i) { body }``, elementwise parameters bound to element ``i`` (inputs
``const``, as CuPy binds them), ``raw`` parameters as plain pointers — for ``T`` = float or
double. Which parameters are numbers rather than arrays is fixed here by name (``SCALARS``).

:class:`StandInCuPy` is a stand-in for the ``cupy`` module on the CPU: NumPy, plus an
``ElementwiseKernel`` that runs the compiled body with CuPy's calling convention, so the
host-side code that calls CuPy's kernels (:class:`xnn.backends.cupy_kernels.CuPyFusedKernels`)
can be checked without a GPU.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import types
from pathlib import Path
from typing import Any

import numpy as np

from xnn.backends.cuda_sources import ElementwiseSource

CTYPES = {"float": np.float32, "double": np.float64}
SCALARS = {"lr", "momentum", "rows", "classes", "wd", "nesterov", "beta1", "beta2", "eps",
           "bc1", "bc2_sqrt", "decoupled", "alpha"}  # passed as numbers, never as arrays

_CACHE = Path(tempfile.gettempdir()) / "xnn-test-kernels"
_PARAM = re.compile(r"^(raw\s+)?(T|int32)\s+(\w+)$")


class CompileError(RuntimeError):
    """The kernel bodies do not compile as C++ (the message holds the compiler's)."""


def params(text: str) -> list[tuple[bool, str, str]]:
    """``"raw T x, int32 n"`` → [(raw, C type, name), ...]."""
    found = []
    for part in text.split(","):
        raw, kind, name = _PARAM.match(part.strip()).groups()
        found.append((bool(raw), "T" if kind == "T" else "int", name))
    return found


def function(key: str, source: ElementwiseSource) -> str:
    """The body in CuPy's loop: inputs read-only (as CuPy binds them), outputs writable."""
    arguments, bindings = ["ptrdiff_t _size"], []
    listed = [(*p, True) for p in params(source.in_params)]
    listed += [(*p, False) for p in params(source.out_params)]
    for raw, ctype, name, is_input in listed:
        const = "const " if is_input else ""
        if raw:
            arguments.append(f"{const}{ctype}* {name}")
        elif name in SCALARS:
            arguments.append(f"const {ctype} {name}")
        else:
            arguments.append(f"{const}{ctype}* _{name}_array")
            bindings.append(f"{const}{ctype}& {name} = _{name}_array[i];")
    return (f'extern "C" void {key}({", ".join(arguments)}) {{\n'
            f"    for (ptrdiff_t i = 0; i < _size; ++i) {{\n        {' '.join(bindings)}\n"
            f"        {source.body}\n    }}\n}}\n")


def compiler() -> str | None:
    """The C++ compiler (g++), or None when there is none."""
    return shutil.which("g++")


def compile_sources(sources: dict[str, ElementwiseSource], ctype: str) -> ctypes.CDLL:
    """Every source compiled for ``T`` = ``ctype`` into one library, a function per key.

    Libraries are kept in the temporary directory under the hash of their code and the
    compiler's command: the same code is compiled once, not in every test process (a mutation
    run starts hundreds, and g++ takes about half a second a library)."""
    code = "\n".join(["#include <cmath>", "#include <cstddef>", "using namespace std;",
                      f"typedef {ctype} T;", *(function(key, s) for key, s in sources.items())])
    command = [compiler() or "g++", "-O1", "-shared", "-fPIC", "-Wall", "-Werror",
               "-Wno-unused-variable"]
    key = hashlib.sha256("\0".join([*command, code]).encode()).hexdigest()[:32]
    _CACHE.mkdir(parents=True, exist_ok=True)
    library = _CACHE / f"{key}.so"
    if not library.is_file():
        with tempfile.TemporaryDirectory(dir=_CACHE) as work:
            source, built = Path(work) / "kernels.cpp", Path(work) / "kernels.so"
            source.write_text(code)
            done = subprocess.run([*command, "-o", str(built), str(source)],
                                  capture_output=True, text=True)
            if done.returncode:
                raise CompileError(done.stderr)
            os.replace(built, library)  # atomic: a process never loads a half-written library
    return ctypes.CDLL(str(library))


def call(library: ctypes.CDLL, dtype: Any, key: str, n: int, *arguments: Any) -> None:
    """Run kernel ``key`` over ``n`` elements; arrays are passed by pointer, and written."""
    scalar = ctypes.c_float if dtype == np.float32 else ctypes.c_double
    converted = [ctypes.c_ssize_t(n)]
    for argument in arguments:
        if isinstance(argument, np.ndarray):
            assert argument.dtype == dtype and argument.flags.c_contiguous
            converted.append(argument.ctypes.data_as(ctypes.c_void_p))
        elif isinstance(argument, int):
            converted.append(ctypes.c_int(argument))
        else:
            converted.append(scalar(argument))
    getattr(library, key)(*converted)


class StandInKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, body, name)`` run by the compiled body.

    Called as CuPy calls it: the inputs in order, then optionally the outputs; a number given
    for an elementwise array parameter is broadcast, arrays are broadcast together, missing
    elementwise outputs are allocated (dtype ``T``: that of the array arguments, which must
    agree) and returned (one output: itself; several: a tuple). Numbers are cast to ``T``.
    """

    def __init__(self, cupy: StandInCuPy, key: str, source: ElementwiseSource) -> None:
        self.cupy, self.key, self.source = cupy, key, source
        self.inputs, self.outputs = params(source.in_params), params(source.out_params)

    def __call__(self, *args: Any) -> Any:
        n_in, n_out = len(self.inputs), len(self.outputs)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"{self.source.name}: wrong number of arguments: {len(args)} "
                            f"(expected {n_in} or {n_in + n_out})")
        given = list(args) + [None] * (n_in + n_out - len(args))
        listed = self.inputs + self.outputs
        dtypes = {a.dtype for a, (_, kind, _) in zip(given, listed, strict=True)
                  if isinstance(a, np.ndarray) and kind == "T"}
        if len(dtypes) != 1:
            raise TypeError(f"{self.source.name}: the T arrays must share one float dtype, "
                            f"got {dtypes}")
        dtype = dtypes.pop()
        elementwise = [a for a, (raw, _, _) in zip(given, listed, strict=True)
                       if not raw and isinstance(a, np.ndarray)]
        shape = np.broadcast_shapes(*(a.shape for a in elementwise)) if elementwise else None
        if shape is None:
            raise TypeError(f"{self.source.name}: no elementwise array to set the size")
        converted, write_back, outputs = [], [], []
        for index, (value, (raw, kind, name)) in enumerate(zip(given, listed, strict=True)):
            is_output = index >= n_in
            if name in SCALARS and not raw:
                if isinstance(value, np.ndarray) or value is None:
                    raise TypeError(f"{self.source.name}: {name} is passed as a number here")
                converted.append(int(value) if kind == "int" else float(value))
                continue
            if value is None and not is_output:
                raise TypeError(f"{self.source.name}: input {name} is None")
            if value is None:  # an output to allocate
                if raw:
                    raise TypeError(f"{self.source.name}: raw output {name} must be given")
                value = np.empty(shape, dtype=dtype)
            elif not isinstance(value, np.ndarray):
                if raw:
                    raise TypeError(f"{self.source.name}: raw {name} must be an array")
                value = np.full(shape, value, dtype=dtype)
            if raw:  # indexed by the flat C-order index, whatever the layout
                contiguous = np.ascontiguousarray(value)
            else:
                if value.shape != shape and is_output:
                    raise ValueError(f"{self.source.name}: output {name} has shape "
                                     f"{value.shape}, the arguments broadcast to {shape}")
                contiguous = np.ascontiguousarray(np.broadcast_to(value, shape))
            if is_output:
                outputs.append(value)
                if contiguous is not value:
                    write_back.append((value, contiguous))
            converted.append(contiguous)
        self.cupy.calls.append(self.source.name)
        library = self.cupy.libraries[dtype]
        call(library, dtype, self.key, int(np.prod(shape)), *converted)
        for target, result in write_back:
            target[...] = result.reshape(target.shape)
        return outputs[0] if len(outputs) == 1 else tuple(outputs)


class StandInCuPy(types.ModuleType):
    """NumPy under CuPy's name, whose ``ElementwiseKernel`` runs the compiled C++ bodies.

    ``libraries`` maps a NumPy dtype to the library compiled from ``sources`` for it; a kernel
    is found by its parameters and body, so a body the library lacks fails at construction.
    """

    def __init__(self, sources: dict[str, ElementwiseSource],
                 libraries: dict[Any, ctypes.CDLL]) -> None:
        super().__init__("cupy_stand_in")
        self.libraries = libraries
        self._keys = {(s.in_params, s.out_params, s.body): key for key, s in sources.items()}
        self._sources = sources
        self.built: list[str] = []  # the names of the kernels made, in order
        self.calls: list[str] = []  # the names of the kernels run, in order

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)

    def ElementwiseKernel(self, in_params: str, out_params: str, operation: str,
                          name: str) -> StandInKernel:
        key = self._keys.get((in_params, out_params, operation))
        if key is None:
            raise KeyError(f"no compiled body for kernel {name!r}")
        self.built.append(name)
        return StandInKernel(self, key, self._sources[key])
