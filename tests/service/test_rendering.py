"""service.rendering: pixels from model outputs, grids, and PNG-or-JSON content negotiation."""

from __future__ import annotations

import numpy as np
import pytest

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
