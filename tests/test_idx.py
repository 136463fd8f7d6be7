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


def test_the_magic_number_message_shows_the_first_four_bytes(tmp_path: Path) -> None:
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ValueError, match=r"\(bad magic number empty\)$"):
        read_idx(tmp_path / "empty")
    (tmp_path / "text").write_bytes(b"hello world")
    with pytest.raises(ValueError, match=r"\(bad magic number 68656c6c\)$"):
        read_idx(tmp_path / "text")


def test_an_empty_array_round_trips(tmp_path: Path) -> None:
    """The header alone, with a zero size: nothing is missing."""
    write_idx(tmp_path / "a", np.zeros((0,), dtype=np.uint8))
    assert len((tmp_path / "a").read_bytes()) == 8
    x = read_idx(tmp_path / "a")
    assert x.shape == (0,) and x.dtype == np.uint8


def test_extra_bytes_are_counted(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.arange(6, dtype=np.uint8))
    (tmp_path / "b").write_bytes((tmp_path / "a").read_bytes() + b"\x00\x01")
    with pytest.raises(ValueError, match=r": 2 unexpected bytes after the IDX payload for shape "
                                         r"\(6,\)$"):
        read_idx(tmp_path / "b")


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    """No timestamp in the gzip header (mtime 0): the same array gives the same bytes."""
    write_idx(tmp_path / "a.gz", np.arange(6, dtype=np.uint8))
    raw = (tmp_path / "a.gz").read_bytes()
    assert raw[4:8] == b"\x00\x00\x00\x00"


@pytest.mark.parametrize(("array", "message"), [
    (np.zeros(3, dtype=np.uint16), r"^IDX cannot store dtype uint16 \(uint8, int8, int16, int32, "
                                   r"float32 or float64 only\)$"),
    (np.array(5, dtype=np.uint8), r"^IDX needs 1 to 255 dimensions, got 0$"),
    (np.empty((2**32, 0), dtype=np.uint8),
     r"^IDX dimensions must fit in uint32, got shape \(4294967296, 0\)$"),
])
def test_what_idx_cannot_store(tmp_path: Path, array: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_idx(tmp_path / "a", array)


def test_the_largest_dimension_fits(tmp_path: Path) -> None:
    write_idx(tmp_path / "a", np.empty((2**32 - 1, 0), dtype=np.uint8))
    assert read_idx(tmp_path / "a").shape == (2**32 - 1, 0)


def _images_and_labels(tmp_path: Path, images: np.ndarray, labels: np.ndarray):
    write_idx(tmp_path / "images", images)
    write_idx(tmp_path / "labels", labels)
    return tmp_path / "images", tmp_path / "labels"


@pytest.mark.parametrize("images", [np.zeros((2, 5, 5), dtype=np.uint8),
                                    np.zeros((2, 28, 28), dtype=np.int16),
                                    np.zeros((2, 784), dtype=np.uint8)], ids=["5x5", "int16", "2d"])
def test_images_must_be_28_by_28_bytes(tmp_path: Path, images: np.ndarray) -> None:
    from xnn.data.idx import read_images_and_labels

    files = _images_and_labels(tmp_path, images, np.zeros(2, dtype=np.uint8))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(files[0]))}: expected \(n, 28, 28\) "
                                         r"uint8, got \("):
        read_images_and_labels(*files)


@pytest.mark.parametrize("labels", [np.zeros(2, dtype=np.int16), np.zeros(3, dtype=np.uint8),
                                    np.zeros((2, 1), dtype=np.uint8)], ids=["int16", "3", "2d"])
def test_labels_must_match_the_images(tmp_path: Path, labels: np.ndarray) -> None:
    from xnn.data.idx import read_images_and_labels

    files = _images_and_labels(tmp_path, np.zeros((2, 28, 28), dtype=np.uint8), labels)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(files[1]))}: expected \(2,\) uint8 "
                                         r"to match images, got "):
        read_images_and_labels(*files)


def test_images_and_labels_as_rows_and_int64(tmp_path: Path) -> None:
    from xnn.data.idx import read_images_and_labels

    images = np.arange(2 * 784, dtype=np.uint8).reshape(2, 28, 28)
    x, y = read_images_and_labels(*_images_and_labels(tmp_path, images,
                                                      np.array([7, 3], dtype=np.uint8)))
    assert x.shape == (2, 784) and x.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(x, images.reshape(2, 784))
    np.testing.assert_array_equal(y, [7, 3])
