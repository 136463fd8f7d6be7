"""Training checkpoints: a whole :class:`TrainingState` in one ``.npz``, and what it belongs to.

The file holds the state's arrays (``param/0.W`` …, ``optimizer/velocity``, ``best_params``,
``best_buffers``) and one JSON document (``meta``): the epoch, the optimizer's step, the random
streams' positions, early stopping's best loss, the History, and a *fingerprint*: the
configuration of the model, the optimizer and the fit, and a SHA-256 of each data array. It is
written atomically (write, fsync, rename) and read with ``allow_pickle=False``. Resuming with
other data or another configuration is refused, naming what differs; another backend is fine.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from xnn.backends import on_device, to_numpy
from xnn.core.files import atomic_write
from xnn.nn.checkpoint import CheckpointError, read_arrays
from xnn.train.history import History
from xnn.train.state import TrainingState

__all__ = ["FORMAT", "data_fingerprint", "differences", "fit_fingerprint", "read_matching",
           "read_training_checkpoint", "resume_path", "write_training_checkpoint"]

FORMAT = "xnn-training-1"
_SAMPLED_ROWS = 4096  # rows of a device array hashed (its whole bytes are hashed on the host)


def data_fingerprint(x: Any) -> dict[str, Any]:
    """Shape, dtype and SHA-256 of ``x`` as the caller gave it (device arrays: of up to
    4096 rows spread over it, copied to the host; host data: all of it)."""
    if on_device(x):
        rows = max(1, x.shape[0] // _SAMPLED_ROWS) if x.ndim else 1
        sample = to_numpy(x[::rows, ...] if x.ndim else x)
        return {"shape": [int(n) for n in x.shape], "dtype": str(sample.dtype),
                "sha256": _sha256(sample), "sampled": True}
    host = np.ascontiguousarray(x)
    return {"shape": list(host.shape), "dtype": str(host.dtype), "sha256": _sha256(host)}


def fit_fingerprint(net: Any, optim: Any, data: tuple[Any, ...],
                    **fit: Any) -> dict[str, Any]:
    """What a checkpoint belongs to: the data, the model, the optimizer and the fit's settings
    (not the backend: a run may resume on another)."""
    names = ("X_train", "y_train", "X_test", "y_test")
    return {"data": {n: data_fingerprint(a) for n, a in zip(names, data, strict=True)
                     if a is not None},
            "model": {"layers": [repr(layer) for layer in net.layers], "loss": repr(net.loss),
                      "seed": net.seed, "dtype": net.dtype, "streams": net.streams},
            "optimizer": optim.config(), "fit": fit}


def resume_path(resume: str | os.PathLike[str] | None,
                checkpoint: str | os.PathLike[str] | None) -> Path | None:
    """The file to resume from: ``resume``, or with ``"auto"`` the checkpoint if it exists."""
    if resume is None:
        return None
    if isinstance(resume, str) and resume == "auto":
        if checkpoint is None:
            raise ValueError('resume="auto" needs checkpoint=PATH (the file to resume from)')
        return Path(checkpoint) if Path(checkpoint).exists() else None
    if not Path(resume).is_file():
        raise FileNotFoundError(f"resume={str(resume)!r}: no such checkpoint file (pass "
                                'resume="auto" with checkpoint=PATH to start afresh then)')
    return Path(resume)


def read_matching(path: Path, fingerprint: dict[str, Any]) -> TrainingState:
    """The state saved at ``path``, refused when it belongs to other data or configuration."""
    state, saved = read_training_checkpoint(path)
    differ = differences(saved, fingerprint)
    if differ:
        raise ValueError(f"cannot resume from {path}: it belongs to another run; "
                         + "; ".join(differ))
    return state


def differences(saved: dict[str, Any], current: dict[str, Any], prefix: str = "") -> list[str]:
    """Each entry of two fingerprints that differs, as ``"key: saved → now"`` lines."""
    found = []
    for key in sorted(set(saved) | set(current)):
        old, new = saved.get(key), current.get(key)
        if isinstance(old, dict) and isinstance(new, dict):
            found += differences(old, new, f"{prefix}{key}.")
        elif old != new:
            found.append(f"{prefix}{key}: {_short(old)} in the checkpoint, {_short(new)} now")
    return found


def write_training_checkpoint(path: str | os.PathLike[str], state: TrainingState,
                              fingerprint: dict[str, Any]) -> None:
    """Write ``state`` and its ``fingerprint`` to ``path``, atomically."""
    arrays = {f"param/{name}": a for name, a in state.params.items()}
    if state.optimizer is not None:
        arrays.update({f"optimizer/{n}": a for n, a in state.optimizer["arrays"].items()})
    if state.best_params is not None:  # the store's values, and its buffers (added later)
        arrays["best_params"] = state.best_params["values"]
        arrays["best_buffers"] = state.best_params["buffers"]
    history = state.history
    meta = {"epoch": state.epoch, "streams": state.streams, "fingerprint": fingerprint,
            "schedule": state.schedule,
            "optimizer_step": None if state.optimizer is None else state.optimizer["step"],
            "best_loss": None if math.isinf(state.best_loss) else state.best_loss,
            "history": {"records": history.records, "best_epoch": history.best_epoch,
                        "best_val_loss": history.best_val_loss,
                        "stopped_early": history.stopped_early}}
    with atomic_write(path) as file:
        np.savez(file, format=np.array(FORMAT), meta=np.array(json.dumps(meta)), **arrays)


def read_training_checkpoint(path: str | os.PathLike[str]) -> tuple[TrainingState,
                                                                     dict[str, Any]]:
    """The state saved at ``path`` and its fingerprint (``CheckpointError`` if unreadable)."""
    contents = read_arrays(path)  # headers checked before anything is allocated
    if "format" not in contents or str(contents["format"]) != FORMAT:
        raise CheckpointError(f"{path} is not an {FORMAT} file")
    try:
        meta = json.loads(str(contents["meta"]))
        state = _state(meta, contents)
    except (ValueError, KeyError, TypeError) as exc:
        raise CheckpointError(f"{path} is not a readable training checkpoint: {exc}") from exc
    return state, meta["fingerprint"]


def _state(meta: dict[str, Any], contents: dict[str, np.ndarray]) -> TrainingState:
    params = {n.partition("/")[2]: a for n, a in contents.items() if n.startswith("param/")}
    optimizer = None
    if meta["optimizer_step"] is not None:
        optimizer = {"step": meta["optimizer_step"], "arrays": {
            n.partition("/")[2]: a for n, a in contents.items() if n.startswith("optimizer/")}}
    saved = meta["history"]
    history = History(saved["records"], saved["best_epoch"], saved["best_val_loss"],
                      saved["stopped_early"])
    best_loss = math.inf if meta["best_loss"] is None else meta["best_loss"]
    streams = {"order": meta["streams"]["order"],
               "masks": {int(i): s for i, s in meta["streams"]["masks"].items()}}
    best = None
    if "best_params" in contents:  # files from before buffers have no best_buffers: none
        values = contents["best_params"]
        best = {"values": values, "buffers": contents.get("best_buffers", values[:0])}
    return TrainingState(meta["epoch"], params, optimizer, streams, best_loss, best, history,
                         meta.get("schedule", {}))


def _sha256(array: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8)).hexdigest()


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
