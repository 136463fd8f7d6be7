"""All of a network's parameters as views of one flat array, and their gradients of another."""

from __future__ import annotations

import math
from collections.abc import Sequence

from xnn.backends import Backend
from xnn.nn.operations import ParamOperation

__all__ = ["FlatParameters"]


class FlatParameters:
    """Packs the parameters of ``operations`` into :attr:`values` and their gradients into
    :attr:`grads`, both 1-d, and makes each operation's ``param``/``param_grad`` a view of them.

    An optimizer then updates the whole model with one pass of each kernel (one fused launch on
    CuPy) instead of one per parameter, and the backward pass writes every gradient straight
    into :attr:`grads`. The per-operation arrays stay the public face (``net.params()``).
    """

    def __init__(self, operations: Sequence[ParamOperation], backend: Backend) -> None:
        if not operations:
            raise ValueError("no parameters to pack")
        xp = backend.xp
        dtype = operations[0].param.dtype
        shapes = [tuple(op.param.shape) for op in operations]
        total = sum(math.prod(shape) for shape in shapes)
        self.values = backend.zeros(total, dtype)
        self.grads = backend.zeros(total, dtype)
        self.operations = tuple(operations)
        offset = 0
        for op, shape in zip(self.operations, shapes, strict=True):
            size = math.prod(shape)
            param = xp.reshape(self.values[offset:offset + size], shape)
            grad = xp.reshape(self.grads[offset:offset + size], shape)
            param[...] = op.param
            old_grad = getattr(op, "param_grad", None)
            if old_grad is not None and tuple(old_grad.shape) == shape:
                grad[...] = old_grad
            op.param, op.param_grad = param, grad
            offset += size
        self._views = [(op.param, op.param_grad) for op in self.operations]

    def packs(self, operations: Sequence[ParamOperation]) -> bool:
        """Whether ``operations`` are exactly the ones packed here, still using the views."""
        if len(operations) != len(self.operations):
            return False
        for op, packed, (param, grad) in zip(operations, self.operations, self._views,
                                             strict=True):
            if op is not packed or op.param is not param or op.param_grad is not grad:
                return False
        return True

    @property
    def size(self) -> int:
        """Number of scalars in all the parameters together."""
        return int(self.values.shape[0])

    def __repr__(self) -> str:
        return f"FlatParameters({len(self.operations)} arrays, {self.size} values)"

