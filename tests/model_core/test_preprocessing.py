"""The shared preprocessing: every Pillow mode, each step against a reference computed another way."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model_core.bundle import Preprocessing
from model_core.preprocessing import gaussian_blur, preprocess, preprocess_u8, to_channels

REPO = Path(__file__).resolve().parents[2]
MODES = ["1", "L", "LA", "P", "PA", "RGB", "RGBA", "CMYK", "I;16", "I", "F", "YCbCr"]
MNIST32 = Preprocessing(channels=1, height=32, width=32, fit=(28, 28), pad=(2, 2, 2, 2), resize_filter="bilinear")
CROP_BLUR_RGB = Preprocessing(
    channels=3, height=16, width=16, fit=(16, 16), crop=(4, 3, 20, 20), crop_source=(30, 26), blur_sigma=0.8
)


def random_image(mode: str, size: tuple[int, int], seed: int = 0) -> Image.Image:
    """A seeded (W, H) = ``size`` image in Pillow ``mode``."""
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
@pytest.mark.parametrize("spec", [MNIST32, CROP_BLUR_RGB], ids=["mnist32", "crop-blur-rgb"])
def test_every_mode_gives_the_models_input(mode: str, spec: Preprocessing) -> None:
    """uint8 pixels for the trainer, and the same pixels as u8 / 127.5 - 1 for the service."""
    for size in [(26, 30), (41, 17)]:
        img = random_image(mode, size)
        pixels = preprocess_u8(img, spec)
        x = preprocess(img, spec)
        assert pixels.dtype == np.uint8 and pixels.shape == (spec.channels, spec.height, spec.width)
        assert x.dtype == np.float32 and x.shape == pixels.shape
        np.testing.assert_allclose(x, pixels.astype(np.float32) / 127.5 - 1.0, atol=1e-6)


def test_value_range_maps_0_and_255_to_its_ends() -> None:
    spec = MNIST32.model_copy(update={"value_range": (0.0, 1.0)})
    x = preprocess(Image.new("L", (28, 28), 255), spec)
    assert x[0, 0, 0] == 0.0 and x[0, 16, 16] == 1.0  # padding at low, white content at high


def test_alpha_composited_on_black_background() -> None:
    assert to_channels(Image.new("RGBA", (1, 1), (200, 100, 50, 128)), 3).getpixel((0, 0)) == (100, 50, 25)
    x = preprocess(Image.new("RGBA", (28, 28), (255, 255, 255, 0)), MNIST32)
    assert x.min() == x.max() == -1.0  # all background


def test_16_bit_scaled_not_clipped() -> None:
    assert np.asarray(to_channels(Image.fromarray(np.array([[0, 65535]], dtype=np.uint16)), 1)).tolist() == [[0, 255]]
    x = preprocess(Image.fromarray(np.full((28, 28), 32768, dtype="<u2")), MNIST32)
    assert x[0, 16, 16] == pytest.approx(128 / 127.5 - 1, abs=1e-6)  # mid-grey, where convert("L") would give white


def test_invert_flips_content_not_background() -> None:
    x = preprocess(Image.new("L", (28, 28), 0), MNIST32.model_copy(update={"invert": True}))
    assert x[0, 16, 16] == 1.0 and x[0, 0, 0] == -1.0  # content white, padding stays background


def test_padding_is_background_around_the_unchanged_content() -> None:
    digit = np.random.default_rng(0).integers(0, 256, (28, 28), dtype=np.uint8)
    pixels = preprocess_u8(Image.fromarray(digit, "L"), MNIST32)  # 28x28 already: no resize
    np.testing.assert_array_equal(pixels[0], np.pad(digit, 2))


def test_crop_applies_only_to_images_of_the_crop_source_size() -> None:
    rows, cols = np.meshgrid(np.arange(30), np.arange(26), indexing="ij")
    image = Image.fromarray(np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8))  # (30, 26, 3)
    spec = CROP_BLUR_RGB.model_copy(update={"fit": (20, 20), "blur_sigma": None})
    out = preprocess_u8(image, spec)  # (3, 20, 20): cropped, no blur, no resize
    np.testing.assert_array_equal(out[0], rows[4:24, 3:23])
    np.testing.assert_array_equal(out[1], cols[4:24, 3:23])
    other_size = Image.new("RGB", (20, 24), (7, 7, 7))
    assert (preprocess_u8(other_size, spec.model_copy(update={"fit": (24, 20)})) == 7).all()  # not cropped


def test_nearest_resize_repeats_pixels() -> None:
    small = np.random.default_rng(0).integers(0, 256, (4, 4), dtype=np.uint8)
    spec = Preprocessing(channels=1, height=8, width=8, fit=(8, 8), resize_filter="nearest")
    np.testing.assert_array_equal(preprocess_u8(Image.fromarray(small, "L"), spec)[0], small.repeat(2, 0).repeat(2, 1))


def test_gaussian_blur_of_an_impulse_is_the_sampled_kernel() -> None:
    sigma = math.sqrt(148 / 64) / 2
    impulse = np.zeros((21, 21, 1), np.uint8)
    impulse[10, 10] = 255
    blurred = gaussian_blur(impulse, sigma)[:, :, 0].astype(float)
    r = math.ceil(4 * sigma)
    g = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    expected = 255 * np.outer(g, g) / g.sum() ** 2
    np.testing.assert_allclose(blurred[10 - r : 11 + r, 10 - r : 11 + r], expected, atol=0.5 + 1e-9)
    assert blurred.sum() == pytest.approx(255, abs=r * r)


def test_gaussian_blur_keeps_a_flat_image_flat_to_its_edges() -> None:
    flat = np.full((9, 7, 3), 77, np.uint8)  # symmetric edges: nothing darkens the border
    np.testing.assert_array_equal(gaussian_blur(flat, 1.3), flat)


def test_imports_without_torch() -> None:
    """The service image has no torch: both modules import with every torch import refused."""
    code = """
import sys

class RefuseTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError(f"{name} is blocked in this test")
        return None

sys.meta_path.insert(0, RefuseTorch())
import model_core.bundle, model_core.preprocessing
try:
    import torch
except ImportError:
    pass
else:
    sys.exit("the finder did not block torch")
"""
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
