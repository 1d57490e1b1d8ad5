"""Datasets: embedded digits, IDX files the test writes itself, folders of mixed images, CelebA."""

from __future__ import annotations

import gzip
import hashlib
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from trainer import mnist
from trainer import preprocessing_specs as specs
from trainer.config import UsageError
from trainer.datasets import ImageArrayDataset, ResumableSampler, digits_in_model_range, load_dataset

SPEC_KEYS = {
    "channels",
    "height",
    "width",
    "value_range",
    "fit",
    "pad",
    "resize_filter",
    "crop",
    "crop_source",
    "blur_sigma",
    "invert",
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array, written independently of the parser under test."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_dataset(folder: Path, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Four small gzip IDX files in ``folder``; returns what each holds."""
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (12, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, (12,), dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, (5,), dtype=np.uint8),
    }
    for name, array in arrays.items():
        (folder / name).write_bytes(gzip.compress(idx_bytes(array)))
    return arrays


def test_embedded_mnist_is_padded_to_32_with_background() -> None:
    data = load_dataset("embedded-mnist", channels=1, size=32, data_dir=Path("unused"))
    assert data.train.shape == (8000, 1, 32, 32) and data.heldout.shape == (2000, 1, 32, 32)
    assert set(data.preprocessing) == SPEC_KEYS
    assert data.preprocessing["fit"] == [28, 28] and data.preprocessing["pad"] == [2, 2, 2, 2]
    digits, _ = mnist.load_embedded_mnist()
    np.testing.assert_array_equal(data.heldout[:10, 0, 2:30, 2:30], digits[8000:8010])
    assert not data.heldout[:, :, :2].any() and not data.heldout[:, :, :, 30:].any()  # the pad is background 0


def test_digits_in_model_range_pads_to_32_and_scales_to_minus_one_one() -> None:
    images = np.zeros((2, 28, 28), dtype=np.uint8)
    images[0, 0, 0], images[1, 27, 27], images[1, 5, 5] = 255, 255, 51
    x = digits_in_model_range(images)
    assert x.shape == (2, 1, 32, 32) and x.dtype == torch.float32
    assert x[0, 0, 2, 2] == 1.0 and x[1, 0, 29, 29] == 1.0  # 2 pixels of padding on each side
    assert abs(float(x[1, 0, 7, 7]) - (-0.6)) < 1e-7  # 51 / 127.5 - 1
    assert int((x == -1).sum()) == 2 * 32 * 32 - 3  # the rest, padding included, is background -1


def test_digits_for_paper64_are_resized_to_three_channels() -> None:
    from trainer.datasets import _digits_to_array

    digits, _ = mnist.load_embedded_mnist()
    spec = specs.mnist_spec(channels=3, size=64)
    out = _digits_to_array(digits[:3], spec)
    assert out.shape == (3, 3, 64, 64) and spec["fit"] == [64, 64] and spec["pad"] == [0, 0, 0, 0]
    assert np.array_equal(out[:, 0], out[:, 1]) and np.array_equal(out[:, 0], out[:, 2])


def test_idx_files_written_here_are_found_verified_and_parsed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arrays = write_idx_dataset(tmp_path / "mnist", np.random.default_rng(0))
    sums = {name: hashlib.sha256((tmp_path / "mnist" / name).read_bytes()).hexdigest() for name in arrays}
    monkeypatch.setitem(mnist.REMOTE_SHA256, "mnist", sums)
    folder = mnist.fetch_idx_dataset("mnist", tmp_path, mirrors=("http://127.0.0.1:9/",), retries=1)
    train, test = mnist.load_idx_dataset(folder)
    np.testing.assert_array_equal(train, arrays["train-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(test, arrays["t10k-images-idx3-ubyte.gz"])
    np.testing.assert_array_equal(
        mnist.read_idx(folder / "train-labels-idx1-ubyte.gz"), arrays["train-labels-idx1-ubyte.gz"]
    )


@pytest.mark.parametrize(
    ("payload", "needle"),
    [
        (gzip.compress(idx_bytes(np.zeros((2, 28, 28), np.uint8))[:-5]), "IDX body holds"),
        (gzip.compress(b"\x01\x02\x08\x03" + bytes(12)), "bad magic"),
        (gzip.compress(b"\x00\x00\x42\x01" + bytes(8)), "unknown IDX element type"),
        (b"this is not gzip at all", "not a valid gzip file"),
    ],
    ids=["short-body", "bad-magic", "element-type", "not-gzip"],
)
def test_corrupt_idx_files_are_named_in_the_error(tmp_path: Path, payload: bytes, needle: str) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(payload)
    with pytest.raises(mnist.DataError, match=needle):
        mnist.read_idx(path)


def test_offline_download_says_which_files_to_place_where(tmp_path: Path) -> None:
    with pytest.raises(mnist.DataError) as info:
        mnist.fetch_idx_dataset("fashion-mnist", tmp_path, mirrors=("http://127.0.0.1:9/",), retries=2, backoff_s=0.0)
    message = str(info.value)
    assert "\n" not in message
    assert all(name in message for name in mnist.IDX_FILES)
    assert str((tmp_path / "fashion-mnist").resolve()) in message
    assert not list((tmp_path / "fashion-mnist").iterdir())  # no partial file left behind


def test_a_placed_file_with_the_wrong_sha256_is_refused(tmp_path: Path) -> None:
    write_idx_dataset(tmp_path / "mnist", np.random.default_rng(1))
    with pytest.raises(mnist.DataError, match=r"does not match the expected .*delete it to download it again"):
        mnist.fetch_idx_dataset("mnist", tmp_path, mirrors=())


def write_mixed_folder(root: Path) -> int:
    """Images in many Pillow modes, two corrupt files and a non-image; returns the good count."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    (root / "nested" / "deeper").mkdir(parents=True)
    Image.fromarray(rgb).save(root / "rgb.png")
    Image.fromarray(rgb).convert("L").save(root / "nested" / "grey.jpg")
    Image.fromarray(rgb).convert("RGBA").save(root / "nested" / "rgba.png")
    Image.fromarray(rgb).convert("P").save(root / "nested" / "deeper" / "palette.gif")
    Image.fromarray(rgb).convert("CMYK").save(root / "cmyk.jpg")
    Image.fromarray(rgb).convert("1").save(root / "bilevel.bmp")
    Image.fromarray(rgb).convert("LA").save(root / "la.png")
    Image.fromarray((rng.integers(0, 65536, (20, 20))).astype(np.uint16)).save(root / "sixteen.png")
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
    full = (root / "rgb.png").read_bytes()
    (root / "truncated.png").write_bytes(full[: len(full) // 2])
    (root / "README.txt").write_text("not an image, not counted")
    return 8


@pytest.mark.parametrize(("channels", "size"), [(1, 32), (3, 64)])
def test_folder_converts_every_mode_and_counts_corrupt_files(tmp_path: Path, channels: int, size: int) -> None:
    good = write_mixed_folder(tmp_path)
    data = load_dataset(f"folder:{tmp_path}", channels=channels, size=size, data_dir=tmp_path)
    assert data.skipped == 2
    assert len(data.train) + len(data.heldout) == good and len(data.heldout) == 1
    assert data.train.shape[1:] == (channels, size, size) and data.train.dtype == np.uint8
    assert data.preprocessing["fit"] == [size, size] and data.preprocessing["crop"] is None


def test_celeba_crop_takes_rows_40_188_and_cols_15_163() -> None:
    rows, cols = np.meshgrid(np.arange(218), np.arange(178), indexing="ij")
    image = Image.fromarray(np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8))
    spec = specs.preprocessing_spec(3, 148, crop=specs.CELEBA_CROP, crop_source=specs.CELEBA_SOURCE)
    out = specs.preprocess(image, spec)  # (3, 148, 148): no blur, no resize
    assert out.shape == (3, 148, 148)
    assert (out[0, 0, 0], out[0, -1, 0], out[1, 0, 0], out[1, 0, -1]) == (40, 187, 15, 162)


def test_celeba_spec_is_the_papers_preprocessing() -> None:
    spec = specs.celeba_spec(channels=3, size=64)
    assert set(spec) == SPEC_KEYS
    assert spec["crop"] == [40, 15, 148, 148] and spec["crop_source"] == [218, 178]
    assert spec["blur_sigma"] == pytest.approx(math.sqrt(148 / 64) / 2)
    assert spec["resize_filter"] == "bicubic" and spec["fit"] == [64, 64] and spec["pad"] == [0, 0, 0, 0]
    face = Image.fromarray(np.random.default_rng(0).integers(0, 256, (218, 178, 3), dtype=np.uint8))
    assert specs.preprocess(face, spec).shape == (3, 64, 64)


def test_data_order_is_a_function_of_seed_and_epoch() -> None:
    def order(seed: int, epoch: int, start: int = 0, rank: int = 0, world: int = 1) -> list[int]:
        sampler = ResumableSampler(ImageArrayDataset(np.zeros((20, 1, 2, 2), np.uint8)), seed, rank, world)
        sampler.set_position(epoch, start)
        return list(sampler)

    assert order(0, 1) == order(0, 1) and order(0, 1) != order(0, 2) and order(0, 1) != order(1, 1)
    assert order(0, 1, start=6) == order(0, 1)[6:]
    shards = order(0, 1, rank=0, world=2) + order(0, 1, rank=1, world=2)
    assert sorted(shards) == list(range(20))


def test_unknown_dataset_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="unknown dataset"):
        load_dataset("cifar10", 1, 32, Path("data"))
