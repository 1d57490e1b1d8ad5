"""Imaging: guarded decoding, every Pillow mode, and the trainer's preprocessing reproduced exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model_core.bundle import Preprocessing
from service import imaging
from service.errors import BadImage, PayloadTooLarge
from tests.service.conftest import MNIST32_PREPROCESSING, image_bytes
from trainer import imaging as trainer_imaging

MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]
CELEBA_LIKE = {
    **MNIST32_PREPROCESSING,
    "channels": 3,
    "height": 16,
    "width": 16,
    "fit": [16, 16],
    "pad": [0, 0, 0, 0],
    "resize_filter": "bicubic",
    "crop": [4, 3, 20, 20],
    "crop_source": [30, 26],
    "blur_sigma": 0.8,
}


def random_image(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    rgba = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 4), dtype=np.uint8), "RGBA")
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65536, (size[1], size[0])).astype("<u2"))
    if mode == "I":
        return Image.fromarray(rng.integers(0, 65536, (size[1], size[0])).astype(np.int32))
    if mode == "F":
        return Image.fromarray(rng.uniform(0, 255, (size[1], size[0])).astype(np.float32))
    if mode == "PA":
        return rgba.convert("P").convert("PA")
    return rgba.convert(mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("spec", [MNIST32_PREPROCESSING, CELEBA_LIKE], ids=["mnist32", "crop-blur-rgb"])
def test_preprocess_matches_the_trainer(mode: str, spec: dict) -> None:
    """The service's pipeline equals trainer.imaging.preprocess (u8 / 127.5 - 1) on every mode."""
    for size in [(26, 30), (41, 17)]:
        img = random_image(mode, size)
        expected = trainer_imaging.preprocess(img, spec).astype(np.float32) / 127.5 - 1.0  # (C, H, W)
        got = imaging.preprocess(img, Preprocessing(**spec))
        assert got.dtype == np.float32 and got.shape == (spec["channels"], spec["height"], spec["width"])
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_blur_matches_the_trainer() -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (23, 19, 3), dtype=np.uint8)
    np.testing.assert_array_equal(imaging.gaussian_blur(pixels, 0.76), trainer_imaging.gaussian_blur(pixels, 0.76))


def test_alpha_composited_on_black_background() -> None:
    transparent = Image.new("RGBA", (28, 28), (255, 255, 255, 0))
    x = imaging.preprocess(transparent, Preprocessing(**MNIST32_PREPROCESSING))
    assert x.min() == x.max() == -1.0  # all background


def test_16_bit_scaled_not_clipped() -> None:
    half = Image.fromarray(np.full((28, 28), 32768, dtype="<u2"))
    x = imaging.preprocess(half, Preprocessing(**MNIST32_PREPROCESSING))
    assert x[0, 16, 16] == pytest.approx(128 / 127.5 - 1, abs=1e-6)  # mid-grey, where convert("L") would give white


def test_invert_flips_content_not_background() -> None:
    spec = Preprocessing(**{**MNIST32_PREPROCESSING, "invert": True})
    x = imaging.preprocess(Image.new("L", (28, 28), 0), spec)
    assert x[0, 16, 16] == 1.0 and x[0, 0, 0] == -1.0  # content white, padding stays background


def test_open_image_limits() -> None:
    with pytest.raises(PayloadTooLarge):
        imaging.open_image(image_bytes(size=(100, 100)), max_pixels=9999)
    assert imaging.open_image(image_bytes(size=(100, 100)), max_pixels=10000).size == (100, 100)
    for bad in (b"", b"GIF89a", b"\x89PNG\r\n\x1a\n" + b"\0" * 30, image_bytes(fmt="TIFF"), image_bytes(fmt="ICO")):
        with pytest.raises(BadImage):
            imaging.open_image(bad, max_pixels=10**6)


def test_animated_gif_uses_first_frame() -> None:
    frames = [Image.new("L", (28, 28), 0), Image.new("L", (28, 28), 255)]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    x = imaging.load_input(buffer.getvalue(), Preprocessing(**MNIST32_PREPROCESSING), 10**6)
    assert x.max() == -1.0


def test_check_preprocessing() -> None:
    assert imaging.check_preprocessing(Preprocessing(**MNIST32_PREPROCESSING)) is None
    broken = Preprocessing(**{**MNIST32_PREPROCESSING, "pad": [0, 0, 0, 0]})
    assert "does not give 32x32" in (imaging.check_preprocessing(broken) or "")


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=2048),
    prefix=st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"RIFF\0\0\0\0WEBPVP8 "]),
)
def test_arbitrary_bytes_only_fail_as_client_errors(data: bytes, prefix: bytes) -> None:
    """Whatever arrives, decoding either succeeds or says 400/413: never another exception."""
    try:
        x = imaging.load_input(prefix + data, Preprocessing(**MNIST32_PREPROCESSING), max_pixels=4096 * 4096)
    except (BadImage, PayloadTooLarge):
        return
    assert x.shape == (1, 32, 32) and np.isfinite(x).all()
