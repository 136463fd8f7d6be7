"""Choosing a backend by name, and finding the backend of an array (outside the training path).

A model resolves its backend once, when it is built (or moved); its operations are handed that
backend's kernels then, so nothing in a training step looks anything up by array type.
:func:`backend_of` and :func:`kernels_for` serve host-side helpers and operations used on their
own, outside a model.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend
from xnn.backends.kernels import Kernels

__all__ = [
    "BACKEND_NAMES",
    "DEVICE_NAMES",
    "BackendUnavailableError",
    "array_namespace",
    "available_backends",
    "backend_of",
    "from_dlpack",
    "get_backend",
    "kernels_for",
    "parse_backend_name",
    "to_numpy",
]

BACKEND_NAMES = ("numpy", "cupy", "array_api_strict", "torch")  # the libraries
DEVICE_NAMES = ("torch:cuda", "torch:mps")  # and, with an index: "torch:cuda:N", "cupy:N"
FUSED_VARIABLE = "XNN_CUPY_FUSED"  # "1": CuPy's fused kernels (opt-in until GPU-verified)
TORCH_HINT = "pip install 'xnn-dlfs[torch]' (in the xnn checkout: pip install -e '.[torch]')"


class BackendUnavailableError(RuntimeError):
    """A known backend that cannot run on this machine (missing package or device)."""


_CACHE: dict[tuple[str, str | None, bool], Backend] = {}


def parse_backend_name(name: str) -> tuple[str, str | None]:
    """``(library, device)`` of a backend name: ``"torch:cuda:1"`` → ``("torch", "cuda:1")``,
    ``"cupy:2"`` → ``("cupy", "2")``, ``"numpy"`` → ``("numpy", None)``; ``ValueError`` for
    anything else (``argparse`` can use it as a ``type``)."""
    if not isinstance(name, str):
        raise TypeError(f"backend must be a name or a Backend, got {type(name).__name__}")
    library, _, device = name.partition(":")
    if library in ("numpy", "array_api_strict", "auto") and not device:
        return library, None
    if library == "cupy" and (not device or device.isdigit()):
        return library, device or None
    if library == "torch":
        kind, _, index = device.partition(":")
        if (kind in ("", "cpu", "mps") and not index) or (kind == "cuda" and (
                not index or index.isdigit())):
            return library, None if kind in ("", "cpu") else device
    known = ", ".join(repr(n) for n in (*BACKEND_NAMES, *DEVICE_NAMES, "auto"))
    raise ValueError(f"unknown backend {name!r}; known backends are {known}, "
                     "'torch:cuda:N' and 'cupy:N' for CUDA device N")


def get_backend(name: str | Backend | None = None, *, fused: bool | None = None) -> Backend:
    """The backend called ``name``; ``None`` means ``$XNN_BACKEND``, else ``"numpy"``.

    Names: ``"numpy"``, ``"cupy"`` (the current CUDA device) or ``"cupy:N"``,
    ``"array_api_strict"``, ``"torch"`` (CPU), ``"torch:cuda"``/``"torch:cuda:N"``,
    ``"torch:mps"``. ``"auto"`` picks CuPy when a CUDA device is usable, else torch on CUDA,
    else NumPy. ``fused`` selects CuPy's fused kernels (default: ``$XNN_CUPY_FUSED == "1"``,
    read at each call). A ``Backend`` is returned as it is.
    """
    if isinstance(name, Backend):
        return name
    if name is None:
        name = os.environ.get("XNN_BACKEND") or "numpy"
    library, device = parse_backend_name(name)
    if library == "auto":
        library, device = parse_backend_name(_auto())
    if fused is None:
        fused = os.environ.get(FUSED_VARIABLE) == "1"
    key = (library, device, bool(fused) and library == "cupy")
    if key not in _CACHE:
        _CACHE[key] = _make_backend(*key)
    return _CACHE[key]


def _auto() -> str:
    return next((name for name in ("cupy", "torch:cuda") if _usable(name)), "numpy")


def available_backends() -> list[str]:
    """Names of the backends that can run on this machine: those of :data:`BACKEND_NAMES`,
    then each further CUDA device (``"cupy:1"``, …), torch's CUDA devices and MPS."""
    names = [name for name in BACKEND_NAMES if _usable(name)]
    if "cupy" in names:
        count = get_backend("cupy").xp.cuda.runtime.getDeviceCount()
        names += [f"cupy:{index}" for index in range(1, count)]
    if "torch" in names:
        torch = get_backend("torch").torch
        if torch.cuda.is_available():
            names += ["torch:cuda", *(f"torch:cuda:{i}" for i in range(1,
                                                                        torch.cuda.device_count()))]
        names += [name for name in ("torch:mps",) if _usable(name)]
    return names


def _usable(name: str) -> bool:
    try:
        get_backend(name)
    except BackendUnavailableError:
        return False
    return True


def _make_backend(library: str, device: str | None, fused: bool) -> Backend:
    if library == "numpy":
        from xnn.backends.numpy_backend import NumPyBackend

        return NumPyBackend()
    if library == "cupy":
        from xnn.backends.cupy_backend import CuPyBackend

        return CuPyBackend(_import_cupy(device), fused, None if device is None else int(device))
    if library == "torch":
        from xnn.backends.torch_backend import TorchBackend

        torch, compat = _import_torch(device or "cpu")
        return TorchBackend(torch, compat, device or "cpu")
    from xnn.backends.strict_backend import StrictBackend

    strict = _import_optional(
        "array_api_strict",
        "pip install array-api-strict (or, in the xnn checkout: pip install -e '.[test]')"
    )
    return StrictBackend(strict)


def _import_optional(module: str, how: str) -> ModuleType:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"backend needs the package {module!r}, which is not installed ({exc}); "
            f"install it with: {how}"
        ) from exc


def _import_torch(device: str) -> tuple[ModuleType, ModuleType]:
    """torch and array-api-compat's namespace for it, with ``device`` checked usable."""
    torch = _import_optional("torch", TORCH_HINT)
    compat = _import_optional("array_api_compat.torch", TORCH_HINT)
    kind, _, index = device.partition(":")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
            raise BackendUnavailableError(
                f"PyTorch {torch.__version__} finds no usable CUDA device ({build}); install a "
                "CUDA build of torch or use backend='torch' (CPU)")
        if index and int(index) >= torch.cuda.device_count():
            raise BackendUnavailableError(
                f"torch:{device}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise BackendUnavailableError(
            "PyTorch's MPS device is not available: it needs Apple silicon, macOS 12.3 or "
            "newer and a torch build with MPS; use backend='torch' (CPU)")
    return torch, compat


def _import_cupy(device: str | None = None) -> ModuleType:
    cupy = _import_optional(
        "cupy",
        "pip install -e '.[cuda12]' or -e '.[cuda13]' in the xnn checkout, matching your CUDA "
        "driver (from PyPI: pip install 'xnn-dlfs[cuda12]')",
    )
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver/runtime missing or broken
        raise BackendUnavailableError(
            f"CuPy is installed but no CUDA device is usable: {exc}. "
            "Check the NVIDIA driver (nvidia-smi) or use backend='numpy'."
        ) from exc
    if count < 1:
        raise BackendUnavailableError(
            "CuPy is installed but no CUDA device was found; use backend='numpy'."
        )
    if device is not None and int(device) >= count:
        raise BackendUnavailableError(f"cupy:{device}: this machine has {count} CUDA device(s)")
    with cupy.cuda.Device(None if device is None else int(device)):  # None: the current one
        _probe_cupy(cupy)
    return cupy


def _probe_cupy(cupy: ModuleType) -> None:
    """Run one elementwise kernel and one matmul, so a missing NVRTC or CUDA toolkit is one
    clear error here instead of a failure in every later operation."""
    try:
        x = cupy.arange(6, dtype=cupy.float32).reshape(2, 3)
        total = float((cupy.tanh(x) * 2 + 1).sum()) + float((x @ x.T).sum())
    except Exception as exc:
        raise BackendUnavailableError(
            f"CuPy found a CUDA device but cannot run kernels on it ({type(exc).__name__}: "
            f"{exc}); check that the CUDA toolkit/NVRTC matches the cupy-cuda package"
        ) from exc
    if total != total:  # NaN: a broken device or library
        raise BackendUnavailableError("CuPy's probe computed NaN on the CUDA device")


# -- arrays of any backend (host-side helpers; never in the training path) ------------------
def array_namespace(x: Any) -> ModuleType:
    """The array module that ``x`` belongs to: ``numpy``, ``cupy``, ``array_api_strict``, or
    ``array_api_compat.torch`` for a torch tensor."""
    if isinstance(x, np.ndarray):
        return np
    module = type(x).__module__.partition(".")[0]
    if module in ("numpy", "cupy", "array_api_strict"):
        return importlib.import_module(module)
    if module == "torch":
        return backend_of(x).xp
    raise TypeError(f"expected an array of NumPy, CuPy, array-api-strict or torch, "
                    f"got {type(x)!r}")


def backend_of(x: Any) -> Backend:
    """The backend whose array ``x`` is (a torch tensor's: the backend of its device)."""
    if type(x).__module__.startswith("torch"):
        from xnn.backends.torch_backend import torch_device_name

        device = torch_device_name(x.device)
        return get_backend("torch" if device == "cpu" else f"torch:{device}")
    if type(x).__module__.startswith("cupy") and x.device.id != x.device.__class__().id:
        return get_backend(f"cupy:{x.device.id}")  # not the current device
    return get_backend(array_namespace(x).__name__)


def from_dlpack(x: Any, backend: str | Backend | None = None) -> Any:
    """``x`` (a NumPy, CuPy, torch, JAX… array) as an array of ``backend`` without a copy,
    through DLPack: a torch CUDA tensor for ``"cupy"``, a CuPy array for ``"torch:cuda"``, a
    NumPy array for ``"torch"``. ``ValueError`` when it is on another device (copy it
    explicitly then). Results go the other way with the other library's ``from_dlpack``:
    ``torch.from_dlpack(model.forward(X))``."""
    return get_backend(backend).from_dlpack(x)


def kernels_for(x: Any) -> Kernels:
    """The kernels for arrays like ``x``: for operations used on their own, outside a model."""
    return backend_of(x).kernels


def to_numpy(x: Any) -> np.ndarray:
    """A NumPy copy of an array of any backend (or of host data), owned by the caller."""
    if isinstance(x, np.ndarray | np.generic | float | int | list | tuple):
        return np.array(x, copy=True)
    return backend_of(x).to_numpy(x)
