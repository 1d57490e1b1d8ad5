"""service.rendering: pixels from model outputs, grids, and PNG-or-JSON content negotiation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service import rendering
from service.errors import InvalidParameter


def test_to_uint8_and_png_grid() -> None:
    images = np.stack([np.full((1, 4, 4), v, np.float32) for v in (-1.0, 0.0, 1.0)])  # (3, 1, 4, 4)
    pixels = rendering.to_uint8(images, (-1.0, 1.0))
    assert pixels.shape == (3, 4, 4, 1) and list(pixels[:, 0, 0, 0]) == [0, 128, 255]
    canvas = np.asarray(Image.open(io.BytesIO(rendering.png_grid(pixels, nrow=2, scale=2))))
    assert canvas.shape == (2 * 10 + 2, 2 * 10 + 2)  # 2x2 cells of 8 pixels, 2-pixel gaps around them
    assert canvas[2, 12] == 128 and canvas[12, 2] == 255 and canvas[12, 12] == 0 and canvas[0, 0] == 0


def test_png_grid_of_one_image_is_the_image_alone() -> None:
    pixels = np.arange(6, dtype=np.uint8).reshape(1, 2, 3, 1)
    image = np.asarray(Image.open(io.BytesIO(rendering.png_grid(pixels, nrow=8, scale=2))))
    assert image.tolist() == [[0, 0, 1, 1, 2, 2]] * 2 + [[3, 3, 4, 4, 5, 5]] * 2


def test_check_output_size_refuses_grids_over_the_limit() -> None:
    rendering.check_output_size(3, 4, 4, 2, 2, max_pixels=22 * 22)  # exactly the limit: allowed
    with pytest.raises(InvalidParameter, match="22x22 = 484 pixels"):
        rendering.check_output_size(3, 4, 4, 2, 2, max_pixels=22 * 22 - 1)


@pytest.mark.parametrize(
    "accept,expected",
    [
        (None, False),
        ("*/*", False),
        ("image/png", False),
        ("application/json", True),
        ("application/json, */*", True),
        ("image/png, application/json", False),
        ("image/png;q=0.5, application/json", True),
        ("application/json;q=0", False),
        ("text/html, application/json;q=0.9, */*;q=0.8", True),
    ],
)
def test_wants_json(accept: str | None, expected: bool) -> None:
    assert rendering.wants_json(accept) is expected


@pytest.mark.parametrize("channels", [1, 3])
def test_png_round_trips_through_pillow(channels: int) -> None:
    """The hand-written encoder's PNGs decode (Pillow) to the very pixels, greyscale and RGB."""
    pixels = np.random.default_rng(0).integers(0, 256, (7, 5, channels), dtype=np.uint8)
    img = Image.open(io.BytesIO(rendering.png(pixels)))
    assert img.format == "PNG" and img.mode == ("L" if channels == 1 else "RGB") and img.size == (5, 7)
    assert (np.asarray(img).reshape(7, 5, channels) == pixels).all()


def test_to_uint8_maps_nan_to_low_and_clips_infinities() -> None:
    images = np.array([np.nan, np.inf, -np.inf, 5.0, -5.0, 0.0], np.float32).reshape(1, 1, 1, 6)
    assert rendering.to_uint8(images, (-1.0, 1.0)).ravel().tolist() == [0, 255, 0, 255, 0, 128]
