"""One parameter store per model: every parameter in one flat array, every gradient in another."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from xnn.backends import Backend, Kernels

__all__ = ["ParameterStore", "Slot"]


@dataclass(frozen=True)
class Slot:
    """Where one named parameter lies in the flat arrays: ``[start, stop)``, as ``shape``."""

    start: int
    stop: int
    shape: tuple[int, ...]


class ParameterStore:
    """The backend, its kernels, the flat :attr:`values` and :attr:`grads`, and each
    parameter's named :class:`Slot` (``"0.W"``, ``"0.B"``, ``"1.W"``, … in layer order).

    Layers are handed views of their slots when they are built and write gradients into them,
    so an optimizer updates the whole model with one pass per kernel (one launch on CuPy).
    :attr:`scratch` is a work buffer of the same size for ``out=`` kernels. ``lineage`` stays
    the same when the store is moved to another backend (an optimizer's state moves along) and
    is new when a model's parameters are drawn afresh (the optimizer's state starts over).
    """

    def __init__(self, backend: Backend, dtype: str, shapes: Mapping[str, tuple[int, ...]],
                 lineage: object | None = None) -> None:
        if not shapes:
            raise ValueError("no parameters to store")
        self.backend, self.dtype = backend, dtype
        self.slots: dict[str, Slot] = {}
        start = 0
        for name, shape in shapes.items():
            stop = start + math.prod(shape)
            self.slots[name] = Slot(start, stop, tuple(shape))
            start = stop
        float_dtype = backend.dtype(dtype)
        self.values = backend.zeros(start, float_dtype)
        self.grads = backend.zeros(start, float_dtype)
        self.scratch = backend.zeros(start, float_dtype)
        self.lineage = object() if lineage is None else lineage

    @property
    def kernels(self) -> Kernels:
        """The backend's kernels, which every operation of the model runs on."""
        return self.backend.kernels

    @property
    def size(self) -> int:
        """Number of scalars in all the parameters together."""
        return int(self.values.shape[0])

    def value(self, name: str) -> Any:
        """Parameter ``name`` as a view of :attr:`values` (writes go into the store)."""
        return self._view(self.values, name)

    def grad(self, name: str) -> Any:
        """The gradient of parameter ``name`` as a view of :attr:`grads`."""
        return self._view(self.grads, name)

    def names(self) -> Iterator[str]:
        """The parameters' names, in order."""
        return iter(self.slots)

    def state_dict(self) -> dict[str, Any]:
        """Every parameter as a host array, by name (one device→host copy in all)."""
        flat = self.backend.to_numpy(self.values)
        return {name: flat[s.start:s.stop].reshape(s.shape) for name, s in self.slots.items()}

    def load_state_dict(self, arrays: Mapping[str, Any]) -> None:
        """Set every parameter from ``arrays`` (host or this backend's, by name; shapes checked
        before anything is written)."""
        mismatched = set(self.slots) ^ set(arrays)
        if mismatched:
            raise ValueError(f"parameters {sorted(mismatched)} do not match {list(self.slots)}")
        for name, slot in self.slots.items():
            if tuple(arrays[name].shape) != slot.shape:
                raise ValueError(f"parameter {name!r} has shape {tuple(arrays[name].shape)}, "
                                 f"expected {slot.shape}")
        dtype = self.backend.dtype(self.dtype)
        for name in self.slots:
            self.value(name)[...] = self.backend.asarray(arrays[name], dtype)

    def to(self, backend: Backend) -> ParameterStore:
        """The same parameters on ``backend`` (gradients start at zero there)."""
        moved = ParameterStore(backend, self.dtype, {n: s.shape for n, s in self.slots.items()},
                               self.lineage)
        moved.values[...] = backend.asarray(self.backend.to_numpy(self.values),
                                            backend.dtype(self.dtype))
        return moved

    def _view(self, flat: Any, name: str) -> Any:
        slot = self.slots[name]
        return self.backend.xp.reshape(flat[slot.start:slot.stop], slot.shape)

    def __repr__(self) -> str:
        return (f"ParameterStore({len(self.slots)} arrays, {self.size} values, "
                f"{self.backend.name}, {self.dtype})")
