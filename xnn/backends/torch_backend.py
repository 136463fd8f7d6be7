"""PyTorch tensors (CPU, CUDA, Apple MPS) through ``array-api-compat``, without autograd.

The model's maths runs on :mod:`array_api_compat.torch` (the Array API over torch tensors) and
the hot loops on :class:`~xnn.backends.torch_kernels.TorchKernels`. No tensor xnn makes requires
grad, so torch records no graph; a user's tensor that requires grad is read through a detached
view and never written.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from xnn.backends.base import Backend, host_array, on_device
from xnn.backends.dtypes import resolve_dtype

__all__ = ["TorchBackend", "torch_device_name"]


def torch_device_name(device: Any) -> str:
    """``"cpu"``, ``"cuda:0"``, ``"mps"``: a torch device as xnn names it (with its index)."""
    if device.type == "cuda":
        return f"cuda:{0 if device.index is None else device.index}"
    return device.type


class TorchBackend(Backend):
    """torch tensors on one device: ``"torch"`` (CPU), ``"torch:cuda:N"`` or ``"torch:mps"``.

    On the CPU, NumPy data is used in place (``torch.from_numpy``, no copy, none counted); on a
    GPU, host data crosses once, counted like CuPy's. Arrays of another device are refused,
    never copied silently; DLPack-capable arrays on the same device (CuPy on CUDA) are taken
    without a copy.
    """

    library = "torch"

    def __init__(self, torch: ModuleType, compat: ModuleType, device: Any) -> None:
        from xnn.backends.torch_kernels import TorchKernels

        self.torch = torch
        device = torch.device(device)
        if device.type == "cuda" and device.index is None:
            device = torch.device("cuda", torch.cuda.current_device())
        super().__init__(compat, TorchKernels(compat, torch), device)
        self.name = "torch" if device.type == "cpu" else f"torch:{torch_device_name(device)}"
        self.on_host = device.type == "cpu"  # host data is then shared, not copied

    def synchronize(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            self.torch.mps.synchronize()

    def check_dtype(self, dtype: Any) -> None:
        """Refuse float64 on MPS, which has no 64-bit floating point."""
        if self.device.type == "mps" and resolve_dtype(dtype) == "float64":
            raise ValueError(
                "dtype='float64' is not possible on backend 'torch:mps': Apple's Metal "
                "(MPS) has no 64-bit floating point; use dtype='float32'"
            )

    # -- conversions -----------------------------------------------------------------------
    @property
    def array_type(self) -> type:
        return self.torch.Tensor

    def owns(self, x: Any) -> bool:
        return isinstance(x, self.torch.Tensor) and x.device == self.device and not x.requires_grad

    def asarray(self, x: Any, dtype: Any = None) -> Any:
        """Like :meth:`Backend.asarray`, plus: a tensor on another device is refused (naming
        both), one that requires grad is read detached, and a DLPack array on this device
        (a CuPy array on CUDA, NumPy on the CPU) is taken without a copy."""
        torch = self.torch
        if isinstance(x, torch.Tensor):
            x = x.detach()
            if x.device != self.device:
                raise ValueError(
                    f"the array is a torch tensor on {torch_device_name(x.device)}, but the "
                    f"model is on {self.name!r} ({torch_device_name(self.device)}); move one of "
                    f"them first (tensor.to(...) or model.to(...)): xnn never copies silently"
                )
            return self.cast(x, dtype)
        if on_device(x):  # a CuPy array on this CUDA device: no copy (else a clear error)
            return self.cast(self.from_dlpack(x), dtype)
        if not self.on_host:
            return super().asarray(x, dtype)
        host = host_array(x)
        if dtype is None and host.dtype.kind == "f":
            dtype = self.dtype(host.dtype.name)
        return self.cast(torch.from_numpy(host) if host.flags.writeable else torch.tensor(host),
                         dtype)

    def from_dlpack(self, x: Any) -> Any:
        if isinstance(x, self.torch.Tensor):  # a tensor of another device: say which
            return self.asarray(x)
        return super().from_dlpack(x)

    def _from_dlpack(self, x: Any) -> Any:
        return self.torch.from_dlpack(x)

    def to_numpy(self, x: Any) -> np.ndarray:
        if not self.on_host:
            return super().to_numpy(x)
        return x.detach().numpy().copy()  # a copy the caller owns, as on every backend

    def copy(self, x: Any) -> Any:
        return x.clone()

    def astype(self, x: Any, dtype: Any) -> Any:
        return x.to(dtype)

    def arange(self, n: int) -> Any:
        return self.torch.arange(n, device=self.device)

    def zeros(self, shape: int | tuple[int, ...], dtype: Any) -> Any:
        return self.torch.zeros(shape, dtype=dtype, device=self.device)

    def itemsize(self, dtype: Any) -> int:
        return dtype.itemsize

    def kind(self, x: Any) -> str:
        dtype = x.dtype
        if dtype.is_floating_point:
            return "f"
        if dtype == self.torch.bool:
            return "b"
        return "u" if dtype == self.torch.uint8 else "i"

    def dtype(self, name: Any) -> Any:
        return getattr(self.torch, resolve_dtype(name))

    def _from_host(self, x: np.ndarray, dtype: Any) -> Any:
        if dtype is not None and self.itemsize(dtype) < x.dtype.itemsize:
            x = x.astype(resolve_dtype(dtype))  # cast on the host: half the bytes cross
        if not x.flags.writeable:  # torch.from_numpy warns about read-only memory
            x = x.copy()
        return self.torch.from_numpy(x).to(self.device, dtype=dtype)

    def _to_host(self, x: Any) -> np.ndarray:
        return x.detach().cpu().numpy()
