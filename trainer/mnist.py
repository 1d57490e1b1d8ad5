"""IDX files (the MNIST format): the 10,000 embedded digits, and MNIST / Fashion-MNIST downloads."""

from __future__ import annotations

import gzip
import os
import shutil
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np

from model_core.bundle import sha256_file

EMBEDDED_DIR = Path(__file__).resolve().parent.parent / "data" / "mnist"
EMBEDDED_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
}
TRAIN_SLICE = slice(0, 8000)  # digits 0-7999 train
HELDOUT_SLICE = slice(8000, 10000)  # digits 8000-9999 are held out for evaluation
# embedded-mnist:tune, the split that choices are tuned on, so 8000-9999 only ever score the final runs.
TUNE_TRAIN_SLICE = slice(0, 7000)
TUNE_HELDOUT_SLICE = slice(7000, 8000)

_IDX_DTYPES: dict[int, Any] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(Exception):
    """A dataset file is missing, corrupt or not what it claims to be."""


def verify_sha256(path: Path, expected: str) -> None:
    """Raise DataError naming the file when its sha256 is not ``expected``."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    actual = sha256_file(path)
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


# The two downloadable datasets of the seed: published sha256 of the gzip archives, and mirrors
# tried in order (the original yann.lecun.com host refuses most automated downloads nowadays).
IDX_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)
REMOTE_SHA256 = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        **EMBEDDED_SHA256,
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "08dc20ab1689590a0bcd66e874647b6ee8464e2d501b5a3f1f78831db19a3fdc",
        "train-labels-idx1-ubyte.gz": "b0197879cbda89f3dc7b894f9fd52b858e68ea4182b6947c9d8c2b67e5f18dcc",
        "t10k-images-idx3-ubyte.gz": "78dcbbfb5a27efaf1b6c1d616caca68560be8766c5bffcb2791df9273a534229",
        "t10k-labels-idx1-ubyte.gz": "42bd18137a62d5998cdeae52bf3a0676ac6b706f5cf8439b47bb5b151ae3dccf",
    },
}
REMOTE_MIRRORS = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    "fashion-mnist": (
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
}


def _download_once(url: str, dest: Path, timeout_s: float) -> None:
    """Stream ``url`` into ``dest`` (overwritten)."""
    request = urllib.request.Request(url, headers={"User-Agent": "vaegan-train"})
    with urllib.request.urlopen(request, timeout=timeout_s) as response, dest.open("wb") as f:
        shutil.copyfileobj(response, f, length=1 << 20)


def download_verified(
    urls: tuple[str, ...], dest: Path, expected: str, retries: int = 3, backoff_s: float = 1.0
) -> None:
    """Fetch ``dest`` from the first mirror that answers with the right sha256; retry with backoff."""
    partial = dest.with_name(dest.name + ".part")
    failures: list[str] = []
    for attempt in range(retries):
        if attempt:
            time.sleep(backoff_s * 2 ** (attempt - 1))  # 1 s, 2 s, 4 s...: polite to the mirrors
        for url in urls:
            try:
                _download_once(url, partial, timeout_s=60.0)
                verify_sha256(partial, expected)
            except (OSError, DataError) as exc:  # URLError and timeouts are OSErrors
                failures.append(f"{url}: {exc}")
                partial.unlink(missing_ok=True)
                continue
            os.replace(partial, dest)
            return
    raise DataError(f"download failed after {retries} tries ({failures[-1] if failures else 'no mirror'})")


def fetch_idx_dataset(
    name: str,
    data_dir: Path,
    mirrors: tuple[str, ...] | None = None,
    retries: int = 3,
    backoff_s: float = 1.0,
) -> Path:
    """Make sure ``data_dir/name`` holds the four verified IDX archives of ``name``; return it."""
    folder = data_dir / name
    sha = REMOTE_SHA256[name]
    missing = [f for f in IDX_FILES if not (folder / f).is_file()]
    for f in IDX_FILES:
        if f not in missing:
            try:
                verify_sha256(folder / f, sha[f])
            except DataError as exc:
                raise DataError(f"{exc}; delete it to download it again") from exc
    if not missing:
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    bases = mirrors if mirrors is not None else REMOTE_MIRRORS[name]
    for i, f in enumerate(missing):
        try:
            download_verified(tuple(b + f for b in bases), folder / f, sha[f], retries, backoff_s)
        except DataError as exc:
            raise DataError(
                f"cannot download {name} ({exc}); offline, place {', '.join(missing[i:])} "
                f"(from {bases[0] if bases else 'a mirror'}) in {folder.resolve()}"
            ) from exc
    return folder


def load_idx_dataset(folder: Path) -> tuple[np.ndarray, np.ndarray]:
    """Train and test images, (N, 28, 28) uint8 each, from a folder holding the four IDX archives."""
    train = read_idx(folder / "train-images-idx3-ubyte.gz")
    test = read_idx(folder / "t10k-images-idx3-ubyte.gz")
    for name, images in (("train", train), ("t10k", test)):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise DataError(f"{folder}: {name} images have shape {images.shape}, {images.dtype}")
    return train, test


def load_idx_labels(folder: Path, train_count: int, test_count: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test labels (N,) uint8 from the folder's IDX archives, one per image."""
    train = read_idx(folder / "train-labels-idx1-ubyte.gz")
    test = read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    for name, labels, count in (("train", train, train_count), ("t10k", test, test_count)):
        if labels.shape != (count,) or labels.dtype != np.uint8 or (labels.size and labels.max() > 9):
            raise DataError(f"{folder}: {name} labels have shape {labels.shape} for {count} images")
    return train, test


DIGIT_NAMES = tuple(str(d) for d in range(10))
# Zalando's names of the ten Fashion-MNIST labels, in label order.
FASHION_NAMES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
