"""Small pure pieces: settings, latents, rendering, content negotiation."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from service import latents, rendering
from service.settings import Settings


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VAEGAN_MODEL_NAME", "faces")
    monkeypatch.setenv("VAEGAN_MAX_BATCH", "16")
    monkeypatch.setenv("VAEGAN_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings()
    assert settings.model_name == "faces" and settings.max_batch == 16 and settings.model_version == "LATEST"
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert Settings(max_batch=1).batching_enabled is False and Settings(batching=False).batching_enabled is False


def test_settings_defaults_are_safe() -> None:
    settings = Settings()
    assert settings.cors_origins == [] and settings.reload_interval_s == 0
    assert settings.max_upload_bytes <= 16 * 2**20 and settings.max_pixels <= 4096 * 4096


@pytest.mark.parametrize(
    "field,value", [("model_name", "../etc"), ("model_name", ".hidden"), ("model_version", "a/b"), ("max_batch", 0)]
)
def test_settings_refuse_escapes_and_nonsense(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})


def test_prior_is_seeded_and_tempered() -> None:
    a = latents.prior(5, 4, 8)
    np.testing.assert_array_equal(a, latents.prior(5, 4, 8))
    np.testing.assert_allclose(latents.prior(5, 4, 8, temperature=0.5), a * 0.5, rtol=1e-6)
    assert a.dtype == np.float32 and a.shape == (4, 8)


@pytest.mark.parametrize("method", ["linear", "slerp"])
def test_interpolation_ends_and_norm(method: str) -> None:
    a, b = np.array([3.0, 0.0], np.float32), np.array([0.0, 3.0], np.float32)
    path = latents.interpolate(a, b, 5, method)
    np.testing.assert_allclose(path[0], a, atol=1e-6)
    np.testing.assert_allclose(path[-1], b, atol=1e-6)
    norms = np.linalg.norm(path, axis=1)
    if method == "slerp":
        np.testing.assert_allclose(norms, 3.0, rtol=1e-5)  # stays on the shell
    else:
        assert norms[2] < 3.0
    parallel = latents.interpolate(a, a * 2, 3, "slerp")  # degenerate angle: falls back to a line
    np.testing.assert_allclose(parallel[1], a * 1.5, rtol=1e-6)


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
