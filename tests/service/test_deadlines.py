"""Inference deadlines (VAEGAN_INFERENCE_TIMEOUT_S, docs/security.md): a hanging call is a 504, and calls
that keep hanging take the service out of readiness until one answers again."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from service.app import create_app
from tests.service.helpers import settings_for


async def hang(rows: np.ndarray) -> list[np.ndarray]:
    await asyncio.sleep(60)  # an ONNX Runtime call that never returns, as far as the request can tell
    raise AssertionError("unreachable")


def test_a_hanging_call_is_a_504_and_repeated_ones_turn_readiness_off(bundles: Path) -> None:
    app = create_app(settings_for(bundles, inference_timeout_s=0.3, stalled_after=2))
    with TestClient(app, raise_server_exceptions=False) as client:
        runtime = app.state.models.current
        working = runtime.runners["decoder"]
        runtime.runners["decoder"] = hang
        start = time.monotonic()
        first = client.get("/sample", params={"n": 2, "seed": 1})
        assert first.status_code == 504 and time.monotonic() - start < 0.3 + 2
        assert first.json()["error"] == "inference_timeout" and "VAEGAN_INFERENCE_TIMEOUT_S" in first.json()["detail"]
        assert client.get("/readyz").status_code == 200  # one timeout: still ready
        assert client.get("/sample", params={"n": 2}).status_code == 504
        stalled = client.get("/readyz")
        assert stalled.status_code == 503 and "stalled" in stalled.json()["detail"]
        assert 'vaegan_inference_timeouts_total{model="mnist",network="decoder"} 2.0' in client.get("/metrics").text
        runtime.runners["decoder"] = working  # the call answers again: ready again
        assert client.get("/sample", params={"n": 2}).status_code == 200
        assert client.get("/readyz").status_code == 200
