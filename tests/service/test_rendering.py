"""service.rendering: pixels from model outputs, grids, and PNG-or-JSON content negotiation."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service import rendering


def test_to_uint8_and_grid() -> None:
    images = np.stack([np.full((1, 4, 4), v, np.float32) for v in (-1.0, 0.0, 1.0)])  # (3, 1, 4, 4)
    pixels = rendering.to_uint8(images, (-1.0, 1.0))
    assert pixels.shape == (3, 4, 4, 1) and list(pixels[:, 0, 0, 0]) == [0, 128, 255]
    canvas = rendering.grid(pixels, nrow=2, scale=2)
    assert canvas.shape == (*rendering.grid_shape(3, 4, 4, 2, 2), 1) == (2 * 10 + 2, 2 * 10 + 2, 1)
    assert canvas[2, 12, 0] == 128 and canvas[12, 2, 0] == 255 and canvas[12, 12, 0] == 0


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
