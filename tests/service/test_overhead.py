"""The per-request fast paths give the same answers as the slow ones they replace.

Small uploads and outputs are decoded and encoded on the event loop (``VAEGAN_INLINE_PIXELS``),
large ones in a thread; /reconstruct runs encoder and decoder in one batch (``ModelRuntime.reconstruct``).
"""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from tests.service.conftest import ClientFactory
from tests.service.helpers import image_bytes

PNG_BODY = {"Content-Type": "image/png"}


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


@pytest.mark.parametrize("batching", [True, False])
def test_inline_and_threaded_paths_answer_alike(make_client: ClientFactory, batching: bool) -> None:
    upload = image_bytes("RGB", size=(300, 200))  # 60,000 pixels: inline by default, threaded at 0
    answers = []
    for inline_pixels in (0, 256 * 256):
        with make_client(inline_pixels=inline_pixels, batching=batching) as client:
            png = client.post("/reconstruct?scale=4", content=upload, headers=PNG_BODY)
            grid = client.get("/sample?n=64&seed=3")  # 64 cells of 32x32 plus gaps: above 65,536 pixels
            assert png.status_code == grid.status_code == 200
            answers.append((pixels(png.content), pixels(grid.content)))
    (png_a, grid_a), (png_b, grid_b) = answers
    assert (png_a == png_b).all() and (grid_a == grid_b).all()


def test_reconstruct_is_encode_then_decode_of_the_mean(make_client: ClientFactory) -> None:
    """One trip through both networks equals /encode followed by /decode of mu."""
    with make_client() as client:
        json = {**PNG_BODY, "Accept": "application/json"}
        answer = client.post("/reconstruct", content=image_bytes(), headers=json).json()
        mu = client.post("/encode", content=image_bytes(), headers=PNG_BODY).json()["mu"]
        decoded = client.post("/decode", json={"z": [mu]}, headers={"Accept": "application/json"}).json()
    np.testing.assert_allclose(answer["latents"][0], mu, rtol=1e-5, atol=1e-6)
    ours, theirs = (pixels(base64.b64decode(body["images"][0])) for body in (answer, decoded))
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1  # float rounding of mu in JSON
