"""Imaging: guarded decoding of uploads, then the shared preprocessing (tests/model_core/test_preprocessing.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from model_core.bundle import Preprocessing
from model_core.preprocessing import preprocess
from service import imaging
from service.errors import BadImage, PayloadTooLarge
from tests.service.helpers import MNIST32_PREPROCESSING, image_bytes


def test_load_input_is_the_decoded_image_through_the_manifests_record() -> None:
    spec = Preprocessing(**MNIST32_PREPROCESSING)
    data = image_bytes(size=(40, 30))
    x = imaging.load_input(data, spec, max_pixels=10**6)
    assert x.dtype == np.float32 and x.shape == (1, 32, 32)
    np.testing.assert_array_equal(x, preprocess(Image.open(io.BytesIO(data)), spec))


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
