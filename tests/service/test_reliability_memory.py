"""Bounded memory per request (docs/security.md): large-but-allowed uploads and bodies, at once, on a live server.

Six concurrent 4096x4096 16-bit PNGs (each within VAEGAN_MAX_PIXELS) and six concurrent 8 MiB
/decode bodies of 1024 rows x 4096 numbers (within VAEGAN_MAX_UPLOAD_BYTES) must raise the
server's peak resident memory (VmHWM) by less than 200 MiB in all, and leave it ready.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.service.helpers import image_bytes
from tests.service.live_server import LiveServer

MIB = 1024
LIMIT_KIB = 200 * MIB


def sixteen_bit_png(side: int = 4096) -> bytes:
    """A side x side 16-bit grey PNG (a gradient: a small file that decodes to side^2 16-bit pixels)."""
    row = np.linspace(0, 65535, side, dtype=np.uint16)
    pixels = np.broadcast_to(row, (side, side)).copy()  # (H, W) uint16
    buffer = io.BytesIO()
    image = Image.fromarray(pixels)  # uint16: mode "I;16"
    assert image.mode == "I;16"
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_large_uploads_and_bodies_at_once_stay_within_200_mib(bundles: Path, tmp_path: Path) -> None:
    png = sixteen_bit_png()
    decode_body = b'{"z": [' + b",".join([b"[" + b",".join([b"0"] * 4096) + b"]"] * 1024) + b"]}"
    assert len(decode_body) < 10 * 1024 * 1024  # within VAEGAN_MAX_UPLOAD_BYTES' default
    with (
        LiveServer(bundles, tmp_path / "serve.log", log_level="warning") as server,
        httpx.Client(base_url=server.base, timeout=120) as client,
    ):
        # Warm up both paths, so first-call allocations are not counted as the requests' cost.
        client.post("/reconstruct", content=image_bytes(size=(300, 300)), headers={"Content-Type": "image/png"})
        client.post("/decode", json={"z": [[0.0] * 32]})
        before = server.rss_kb("VmHWM")

        def upload(_: int) -> int:
            return client.post("/reconstruct", content=png, headers={"Content-Type": "image/png"}).status_code

        def decode(_: int) -> int:
            return client.post("/decode", content=decode_body, headers={"Content-Type": "application/json"}).status_code

        with ThreadPoolExecutor(12) as pool:
            uploads, decodes = pool.map(upload, range(6)), pool.map(decode, range(6))
            assert set(uploads) == {200} and set(decodes) == {413}
        grown = server.rss_kb("VmHWM") - before
        assert grown < LIMIT_KIB, f"peak resident memory grew by {grown / MIB:.0f} MiB"
        assert client.get("/readyz").status_code == 200
