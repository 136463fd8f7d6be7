"""Atomic file writes: a reader sees the old file or the whole new one, never a partial one.

The bytes go to a temporary file beside the target, ``.NAME.PID.RANDOM.part``, which is fsynced
and renamed over the target. A symbolic link is followed (its target is replaced, the link
stays), an existing file keeps its permission bits, and the temporary files that a killed writer
of the same target left behind are removed by the next write.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["STALE_AFTER", "atomic_write", "remove_stale_parts"]

STALE_AFTER = 60.0  # seconds since its last write before a dead writer's temp file is removed


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "wb",
                 **open_kwargs: Any) -> Iterator[IO[Any]]:
    """Write to a temporary file beside ``path``'s target; on success fsync and rename it there."""
    target = Path(os.path.realpath(path))  # through symbolic links: replace the file, not a link
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target)
    fd, temp = tempfile.mkstemp(prefix=f".{target.name}.{os.getpid()}.", suffix=".part",
                                dir=target.parent)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temp, _permissions(target))  # mkstemp makes 0600
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def remove_stale_parts(target: str | os.PathLike[str]) -> list[Path]:
    """Delete the temp files of writes to ``target`` whose process is gone; return them.

    Only names of :func:`atomic_write`'s pattern for this target are touched, and only when the
    process id in the name no longer exists and the file is older than :data:`STALE_AFTER`
    (so a writer on another host or in another PID namespace is left alone while it writes).
    POSIX only: elsewhere nothing is removed.
    """
    target = Path(target)
    if os.name != "posix":
        return []
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[a-z0-9_]+\.part")
    removed = []
    try:
        entries = list(os.scandir(target.parent))
    except OSError:
        return []
    for entry in entries:
        match = pattern.fullmatch(entry.name)
        if match is None or _alive(int(match[1])):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and time.time() - info.st_mtime > STALE_AFTER:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:  # gone already, or not ours to delete: leave it
            continue
    return removed


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists (when unsure: yes)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: it exists, as another user's
        return True
    return True


def _permissions(target: Path) -> int:
    """The existing file's permission bits, else those a plain ``open()`` would give."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode) & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's file-creation mask (read by setting and restoring it)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
