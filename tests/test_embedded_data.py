"""The embedded MNIST digits: verified by sha256, parsed from IDX, split 8000 / 2000."""

from __future__ import annotations

import gzip
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest

from trainer.mnist import (
    EMBEDDED_DIR,
    EMBEDDED_SHA256,
    HELDOUT_SLICE,
    TRAIN_SLICE,
    DataError,
    load_embedded_mnist,
    parse_idx,
    read_idx,
)

IMAGES, LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    return load_embedded_mnist()


@pytest.fixture
def data_copy(tmp_path: Path) -> Path:
    """A private copy of the embedded files, safe to corrupt."""
    for name in EMBEDDED_SHA256:
        shutil.copy(EMBEDDED_DIR / name, tmp_path / name)
    return tmp_path


def test_loader_returns_the_10000_genuine_test_digits(digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = digits
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,)
    assert labels.min() == 0 and labels.max() == 9
    assert set(np.unique(labels)) == set(range(10))
    assert images.max() == 255 and images.min() == 0
    assert labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # the well-known start of t10k


def test_train_and_held_out_slices_are_8000_and_2000_disjoint(digits: tuple[np.ndarray, np.ndarray]) -> None:
    _, labels = digits
    train, held = range(10000)[TRAIN_SLICE], range(10000)[HELDOUT_SLICE]
    assert (len(train), len(held)) == (8000, 2000)
    assert set(train).isdisjoint(held) and len(set(train) | set(held)) == 10000
    assert len(labels[TRAIN_SLICE]) == 8000 and len(labels[HELDOUT_SLICE]) == 2000


def test_a_verified_copy_loads(data_copy: Path, digits: tuple[np.ndarray, np.ndarray]) -> None:
    images, labels = load_embedded_mnist(data_copy)
    assert np.array_equal(images, digits[0]) and np.array_equal(labels, digits[1])


@pytest.mark.parametrize("name", [IMAGES, LABELS])
def test_loader_rejects_a_file_whose_sha256_differs(data_copy: Path, name: str) -> None:
    path = data_copy / name
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # flip one bit
    path.write_bytes(bytes(raw))
    with pytest.raises(DataError, match="sha256") as err:
        load_embedded_mnist(data_copy)
    assert name in str(err.value)


def test_loader_rejects_a_missing_file_naming_it(data_copy: Path) -> None:
    (data_copy / LABELS).unlink()
    with pytest.raises(DataError, match="not found") as err:
        load_embedded_mnist(data_copy)
    assert LABELS in str(err.value)


def _idx(array: np.ndarray, type_code: int) -> bytes:
    """Encode an IDX file by hand: magic 0x0000TTDD, big-endian int32 dims, big-endian data."""
    header = bytes([0, 0, type_code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_parse_idx_reads_a_hand_made_file() -> None:
    a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(parse_idx(_idx(a, 0x08)), a)
    b = np.array([[-1, 70000], [3, -4]], dtype=np.int32)
    assert np.array_equal(parse_idx(_idx(b, 0x0C)), b)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">i", 2) + b"ab", "bad magic"),
        (b"\x00", "bad magic"),
        (b"\x00\x00\x42\x01" + struct.pack(">i", 2) + b"ab", "unknown IDX element type"),
        (b"\x00\x00\x08\x03" + struct.pack(">i", 2), "truncated IDX header"),
        (b"\x00\x00\x08\x01" + struct.pack(">i", 5) + b"abc", "body holds 3 bytes"),
        (b"\x00\x00\x08\x01" + struct.pack(">i", 2) + b"abc", "body holds 3 bytes"),
    ],
)
def test_parse_idx_rejects_malformed_files(data: bytes, message: str) -> None:
    with pytest.raises(DataError, match=message) as err:
        parse_idx(data, "digits.idx")
    assert "digits.idx" in str(err.value)


def test_read_idx_rejects_a_bad_gzip_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "broken.idx.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="gzip") as err:
        read_idx(path)
    assert "broken.idx.gz" in str(err.value)


def test_read_idx_decompresses_gz_files(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.uint8).reshape(2, 3)
    path = tmp_path / "small.idx.gz"
    path.write_bytes(gzip.compress(_idx(a, 0x08)))
    assert np.array_equal(read_idx(path), a)
