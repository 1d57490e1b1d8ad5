"""service.settings: VAEGAN_* environment variables, safe defaults, refused values."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from service.__main__ import http_stack
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


def test_http_stack_auto_is_httptools_and_uvloop_when_installed() -> None:
    """The serve extras install both; "auto" must pick them, an explicit choice is kept."""
    pytest.importorskip("httptools")
    pytest.importorskip("uvloop")
    assert http_stack(Settings()) == ("httptools", "uvloop")
    assert http_stack(Settings(http="h11", loop="asyncio")) == ("h11", "asyncio")
