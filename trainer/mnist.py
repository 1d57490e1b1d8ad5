"""IDX files (the MNIST format) and the 10,000 embedded digits shipped with the repository."""

from __future__ import annotations

import gzip
import hashlib
from pathlib import Path

import numpy as np

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
EMBEDDED_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
TRAIN_SLICE = slice(0, 8000)  # digits 0-7999 train
HELDOUT_SLICE = slice(8000, 10000)  # digits 8000-9999 are held out for evaluation

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A dataset file is missing, corrupt or not what it claims to be."""


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: Path, expected: str) -> None:
    """Raise DataError naming the file when its sha256 is not ``expected``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    actual = sha256_of(path)
    if actual != expected:
        raise DataError(f"{path}: sha256 {actual} does not match the expected {expected}")


def parse_idx(data: bytes, name: str = "<idx>") -> np.ndarray:
    """Parse an IDX file (uncompressed bytes): magic 0x0000TTDD, DD big-endian int32 dims, then data."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{name}: not an IDX file (bad magic)")
    type_code, ndim = data[2], data[3]
    if type_code not in _IDX_DTYPES:
        raise DataError(f"{name}: unknown IDX element type 0x{type_code:02x}")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated IDX header")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[type_code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(data) - header != expected:
        raise DataError(f"{name}: IDX body holds {len(data) - header} bytes, shape {shape} needs {expected}")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file, gzip-compressed when its name ends in .gz."""
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise DataError(f"{path}: not a valid gzip file ({exc})") from exc
    return parse_idx(raw, str(path))


def load_embedded_mnist(directory: Path = EMBEDDED_DIR) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 embedded digits: images (10000, 28, 28) uint8 and labels (10000,) uint8, verified."""
    for name, digest in EMBEDDED_SHA256.items():
        verify_sha256(directory / name, digest)
    images = read_idx(directory / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(directory / "t10k-labels-idx1-ubyte.gz")
    if images.shape != (10000, 28, 28) or labels.shape != (10000,):
        raise DataError(f"{directory}: unexpected shapes {images.shape} and {labels.shape}")
    return images, labels


def to_model_range(images: np.ndarray, size: int = 32) -> np.ndarray:
    """uint8 digits (N, 28, 28) -> float32 (N, 1, size, size) in [-1, 1], zero-padded (background -1)."""
    pad = (size - images.shape[-1]) // 2
    x = images.astype(np.float32) / 127.5 - 1.0
    x = np.pad(
        x,
        ((0, 0), (pad, size - images.shape[-1] - pad), (pad, size - images.shape[-2] - pad)),
        constant_values=-1.0,
    )
    return x[:, None]  # (N, 1, size, size)
