"""Atomic writes: all or nothing, with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat

import pytest

from xnn.core.files import atomic_write


def test_writes_replace_the_file_whole(tmp_path):
    path = tmp_path / "sub" / "out.txt"
    with atomic_write(path, "w") as file:
        file.write("new")
    assert path.read_text() == "new"
    with pytest.raises(RuntimeError), atomic_write(path, "w") as file:
        file.write("half")
        raise RuntimeError("interrupted")
    assert path.read_text() == "new"
    assert [p.name for p in path.parent.iterdir()] == ["out.txt"]


def test_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        with atomic_write(tmp_path / "a.bin") as file:
            file.write(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.bin").stat().st_mode) == 0o640
