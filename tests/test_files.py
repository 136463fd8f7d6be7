"""Atomic writes: all or nothing, with the permissions a plain open() would give."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time

import pytest

from xnn.core.files import STALE_AFTER, atomic_write


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


def test_resaving_keeps_the_existing_files_mode(tmp_path):
    path = tmp_path / "secret.npz"
    path.write_bytes(b"old")
    os.chmod(path, 0o600)
    with atomic_write(path) as file:
        file.write(b"new")
    assert path.read_bytes() == b"new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_saving_through_a_symlink_writes_its_target(tmp_path):
    (tmp_path / "real").mkdir()
    target = tmp_path / "real" / "model.npz"
    target.write_bytes(b"old")
    link = tmp_path / "model.npz"
    link.symlink_to(target)
    with atomic_write(link) as file:
        file.write(b"new")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in (tmp_path / "real").iterdir()) == ["model.npz"]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


@pytest.mark.skipif(os.name != "posix", reason="stale temp files are cleaned on POSIX only")
def test_a_killed_writers_temp_file_is_removed_by_the_next_write(tmp_path):
    path = tmp_path / "m.npz"
    old = time.time() - 2 * STALE_AFTER
    dead, live = _dead_pid(), os.getpid()
    names = {
        "orphan": f".m.npz.{dead}.abc_12xy.part",  # a killed save: removed
        "fresh": f".m.npz.{dead}.fresh123.part",  # dead but just written: kept for now
        "live": f".m.npz.{live}.live1234.part",  # a writer that is still running: kept
        "other": f".m.npz.bak.{dead}.abcdefgh.part",  # another target's: kept
        "unrelated": f"m.npz.{dead}.abcdefgh.part",  # not our pattern: kept
    }
    for key, name in names.items():
        (tmp_path / name).write_bytes(b"partial")
        if key != "fresh":
            os.utime(tmp_path / name, (old, old))
    with atomic_write(path) as file:
        file.write(b"x")
    left = {p.name for p in tmp_path.iterdir()}
    assert left == {"m.npz", *names.values()} - {names["orphan"]}


def test_temp_file_names_carry_the_pid(tmp_path):
    with atomic_write(tmp_path / "a.txt", "w") as file:
        seen = [p.name for p in tmp_path.iterdir()]
        file.write("x")
    [name] = seen
    assert name.startswith(f".a.txt.{os.getpid()}.") and name.endswith(".part")
