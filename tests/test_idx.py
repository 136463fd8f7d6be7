"""The IDX reader refuses a header corrupted in any one of its bytes (gzipped or not)."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import numpy as np
import pytest

from xnn.data.idx import read_idx, write_idx

SHAPE = (2, 3, 4)  # header: 2 zero bytes, type code, 3 dimensions, 3 × 4 size bytes
HEADER = 4 + 4 * len(SHAPE)


def _expected_error(position: int) -> str:
    if position < 2:
        return "not an IDX file \\(bad magic number"
    if position == 2:
        return "unknown IDX type code 0xf7"
    if position == 3:
        return "truncated IDX header"  # 0x03 ^ 0xff = 252 dimensions
    return "truncated IDX payload"  # a size grown by the flipped bits


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("position", range(HEADER))
def test_every_header_byte_is_checked(tmp_path: Path, suffix: str, position: int) -> None:
    write_idx(tmp_path / "good", np.arange(24, dtype=np.uint8).reshape(SHAPE))
    raw = bytearray((tmp_path / "good").read_bytes())
    assert len(raw) == HEADER + 24
    raw[position] ^= 0xFF
    bad = tmp_path / f"bad{suffix}"
    bad.write_bytes(gzip.compress(bytes(raw)) if suffix else bytes(raw))
    with pytest.raises(ValueError, match=f"^{re.escape(str(bad))}: {_expected_error(position)}"):
        read_idx(bad)


@pytest.mark.parametrize("magic", [b"\x00\x01", b"\x01\x00", b"\x80\x00", b"\x00\x80"])
def test_either_magic_byte_alone_is_refused(tmp_path: Path, magic: bytes) -> None:
    write_idx(tmp_path / "good", np.arange(6, dtype=np.int16))
    raw = (tmp_path / "good").read_bytes()
    (tmp_path / "bad").write_bytes(magic + raw[2:])
    with pytest.raises(ValueError, match="bad magic number"):
        read_idx(tmp_path / "bad")


@pytest.mark.parametrize(("dimension", "size"), [(0, 1), (0, 3), (1, 2), (1, 4), (2, 3), (2, 5)])
def test_a_size_off_by_one_is_refused(tmp_path: Path, dimension: int, size: int) -> None:
    """A dimension one too small or too large: the payload no longer matches the header."""
    write_idx(tmp_path / "good", np.arange(24, dtype=np.uint8).reshape(SHAPE))
    raw = bytearray((tmp_path / "good").read_bytes())
    raw[4 + 4 * dimension: 8 + 4 * dimension] = size.to_bytes(4, "big")
    (tmp_path / "bad").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"truncated IDX payload|unexpected bytes after"):
        read_idx(tmp_path / "bad")


def test_a_valid_header_of_another_type_reads_as_that_type(tmp_path: Path) -> None:
    """The type code decides the dtype: 0x08 (uint8) changed to 0x09 (int8) is still valid."""
    write_idx(tmp_path / "good", np.array([1, 200, 3], dtype=np.uint8))
    raw = bytearray((tmp_path / "good").read_bytes())
    raw[2] = 0x09
    (tmp_path / "other").write_bytes(bytes(raw))
    x = read_idx(tmp_path / "other")
    assert x.dtype == np.int8
    np.testing.assert_array_equal(x, [1, 200 - 256, 3])
