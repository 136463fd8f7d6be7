"""One parameter store per model: every parameter in one flat array, every gradient in another,
and the layers' buffers (state that is not trained, such as running statistics) in a third."""

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

    :attr:`buffers` holds what layers keep but do not train (``"1.running_mean"``, …, named
    slots in :attr:`buffer_slots`): optimizers never see it (they update :attr:`values` from
    :attr:`grads`), while :meth:`state_dict`, :meth:`to` and :meth:`snapshot` carry it along.
    """

    def __init__(self, backend: Backend, dtype: str, shapes: Mapping[str, tuple[int, ...]],
                 lineage: object | None = None,
                 buffer_shapes: Mapping[str, tuple[int, ...]] | None = None) -> None:
        if not shapes:
            raise ValueError("no parameters to store")
        self.backend, self.dtype = backend, dtype
        self.slots, size = _slots(shapes)
        self.buffer_slots, buffer_size = _slots(buffer_shapes or {})
        clash = set(self.slots) & set(self.buffer_slots)
        if clash:
            raise ValueError(f"buffer_shapes names {sorted(clash)}, which are parameters")
        float_dtype = backend.dtype(dtype)
        self.values = backend.zeros(size, float_dtype)
        self.grads = backend.zeros(size, float_dtype)
        self.scratch = backend.zeros(size, float_dtype)
        self.buffers = backend.zeros(buffer_size, float_dtype)
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
        return self._view(self.values, self.slots[name])

    def grad(self, name: str) -> Any:
        """The gradient of parameter ``name`` as a view of :attr:`grads`."""
        return self._view(self.grads, self.slots[name])

    def buffer(self, name: str) -> Any:
        """Buffer ``name`` as a view of :attr:`buffers` (writes go into the store)."""
        return self._view(self.buffers, self.buffer_slots[name])

    def names(self) -> Iterator[str]:
        """The parameters' names, in order."""
        return iter(self.slots)

    def state_dict(self) -> dict[str, Any]:
        """Every parameter, then every buffer, as a host array by name (one device→host copy
        for the parameters, one for the buffers if any)."""
        return {**self._host(self.values, self.slots), **self.buffer_state_dict()}

    def buffer_state_dict(self) -> dict[str, Any]:
        """Every buffer as a host array, by name (empty without buffers)."""
        return self._host(self.buffers, self.buffer_slots) if self.buffer_slots else {}

    def load_state_dict(self, arrays: Mapping[str, Any]) -> None:
        """Set every parameter and buffer from ``arrays`` (host or this backend's, by name;
        names and shapes checked before anything is written)."""
        slots = {**self.slots, **self.buffer_slots}
        mismatched = set(slots) ^ set(arrays)
        if mismatched:
            raise ValueError(f"arrays {sorted(mismatched)} do not match the parameters and "
                             f"buffers {list(slots)}")
        for name, slot in slots.items():
            if tuple(arrays[name].shape) != slot.shape:
                kind = "parameter" if name in self.slots else "buffer"
                raise ValueError(f"{kind} {name!r} has shape {tuple(arrays[name].shape)}, "
                                 f"expected {slot.shape}")
        dtype = self.backend.dtype(self.dtype)
        for name, slot in slots.items():
            flat = self.values if name in self.slots else self.buffers
            self._view(flat, slot)[...] = self.backend.asarray(arrays[name], dtype)

    def snapshot(self) -> dict[str, Any]:
        """Device copies of :attr:`values` and :attr:`buffers`, for :meth:`restore`."""
        copy = self.backend.copy
        return {"values": copy(self.values), "buffers": copy(self.buffers)}

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Put back the ``"values"`` and ``"buffers"`` of :meth:`snapshot` (this backend's
        arrays, or host arrays; sizes checked before anything is written)."""
        arrays = {"values": self.values, "buffers": self.buffers}
        for name, flat in arrays.items():
            if tuple(snapshot[name].shape) != tuple(flat.shape):
                raise ValueError(f"snapshot[{name!r}] has shape {tuple(snapshot[name].shape)}, "
                                 f"expected {tuple(flat.shape)}")
        for name, flat in arrays.items():
            flat[...] = self.backend.asarray(snapshot[name], self.backend.dtype(self.dtype))

    def to(self, backend: Backend) -> ParameterStore:
        """The same parameters and buffers on ``backend`` (gradients start at zero there)."""
        moved = ParameterStore(backend, self.dtype, {n: s.shape for n, s in self.slots.items()},
                               self.lineage,
                               {n: s.shape for n, s in self.buffer_slots.items()})
        # the host copies already have the store's dtype, as have the arrays they fill
        moved.values[...] = backend.asarray(self.backend.to_numpy(self.values))
        if self.buffer_slots:
            moved.buffers[...] = backend.asarray(self.backend.to_numpy(self.buffers))
        return moved

    def _view(self, flat: Any, slot: Slot) -> Any:
        return self.backend.xp.reshape(flat[slot.start:slot.stop], slot.shape)

    def _host(self, flat: Any, slots: Mapping[str, Slot]) -> dict[str, Any]:
        host = self.backend.to_numpy(flat)
        return {name: host[s.start:s.stop].reshape(s.shape) for name, s in slots.items()}

    def __repr__(self) -> str:
        buffers = f", {len(self.buffer_slots)} buffers" if self.buffer_slots else ""
        return (f"ParameterStore({len(self.slots)} arrays, {self.size} values{buffers}, "
                f"{self.backend.name}, {self.dtype})")


def _slots(shapes: Mapping[str, tuple[int, ...]]) -> tuple[dict[str, Slot], int]:
    """Consecutive slots for ``shapes``, in order, and their total size."""
    slots, start = {}, 0
    for name, shape in shapes.items():
        stop = start + math.prod(shape)
        slots[name] = Slot(start, stop, tuple(shape))
        start = stop
    return slots, start
