"""A network as a file (``save``/``load``) and as an ordinary Python object (pickle, deepcopy)."""

from __future__ import annotations

import os
from typing import Any

from xnn.backends import Backend, BackendUnavailableError, get_backend, to_numpy
from xnn.core.random import BookStreams
from xnn.nn.checkpoint import CheckpointError, read_checkpoint, write_checkpoint

__all__ = ["Persistent"]


class Persistent:
    """What :class:`~xnn.nn.network.NeuralNetwork` inherits to be saved, loaded and pickled."""

    # -- an ordinary Python object: pickle and copy.deepcopy -------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """Configuration, parameters as host arrays, the backend by name, the streams' places."""
        return {"layers": self.layers, "loss": self.loss, "seed": self.seed,
                "backend": self.backend.name, "fused": getattr(self.backend, "fused", False),
                "dtype": self.dtype, "streams": self.streams, "params": self.state_dict(),
                "masks": {i: m.state_dict() for i, m in self.mask_streams().items()},
                "book": self._streams.state_dict() if isinstance(self._streams, BookStreams)
                else None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Rebuilt on the backend it was pickled on (a clear error if that is unusable here)."""
        try:
            backend = get_backend(state["backend"], fused=state["fused"])
        except BackendUnavailableError as exc:
            raise BackendUnavailableError(
                f"this model was pickled on backend {state['backend']!r}, which cannot run "
                f"here: {exc}; load it with NeuralNetwork.load after model.save, choosing a "
                "backend") from exc
        self.__init__(state["layers"], state["loss"], seed=state["seed"], backend=backend,
                      dtype=state["dtype"], streams=state["streams"])
        if state["params"]:
            self.load_state_dict(state["params"])
        masks = self.mask_streams()
        for index, mask_state in state["masks"].items():
            masks[index].load_state_dict(mask_state)
        if state["book"] is not None:
            self._streams.load_state_dict(state["book"])

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write architecture, hyper-parameters, dtype, parameters and buffers to ``path``."""
        buffers = {} if self.store is None else self.store.buffer_state_dict()
        write_checkpoint(self, path, [to_numpy(p) for p in self.params()], buffers)

    @classmethod
    def load(cls, path: str | os.PathLike[str],
             backend: str | Backend | None = None) -> Any:
        """A model saved with :meth:`save`, on ``backend`` (whatever it was saved on)."""
        saved = read_checkpoint(path)
        model = cls(saved.layers, saved.loss, backend=backend, **saved.options)
        if saved.n_features is not None:
            names = list(model._layout(saved.n_features))
            try:
                model.load_state_dict({**dict(zip(names, saved.params, strict=True)),
                                       **saved.buffers}, saved.n_features)
            except ValueError as exc:
                raise CheckpointError(f"{path}: {exc}") from exc
        return model

