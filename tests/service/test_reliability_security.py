"""Security settings: the models folder cannot be escaped, CORS is opt-in, every limit is a setting.

Related tests elsewhere: both images run as a non-root user
(tests/docker/test_dockerfiles.py::test_final_stage_is_lean_and_runs_as_a_non_root_user); a bundle
whose checksums fail is never served
(tests/service/test_serving_in_process.py::test_tampered_bundle_at_start_is_never_served).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service import __main__ as serve
from service.app import create_app
from service.settings import Settings
from tests.checkout import REPO, checkout_env

# The limits an operator tightens; docs/security.md lists each with its default.
LIMITS = (
    "max_upload_bytes",
    "max_pixels",
    "max_output_pixels",
    "max_samples",
    "max_large_decodes",
    "max_batch",
    "max_queue",
    "max_wait_ms",
    "inference_threads",
    "shutdown_grace_s",
    "reload_interval_s",
)
ESCAPES = [
    ("MODEL_NAME", "../x"),
    ("MODEL_NAME", ".."),
    ("MODEL_NAME", "a/b"),
    ("MODEL_NAME", "/etc"),
    ("MODEL_NAME", ".hidden"),
    ("MODEL_NAME", "x\\..\\y"),
    ("MODEL_NAME", ""),
    ("MODEL_VERSION", "../v1"),
    ("MODEL_VERSION", "../../etc/passwd"),
    ("MODEL_VERSION", "v1/.."),
]


@pytest.mark.parametrize("field,value", ESCAPES)
def test_model_name_and_version_cannot_leave_the_models_folder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], field: str, value: str
) -> None:
    monkeypatch.setenv(f"VAEGAN_{field}", value)
    assert serve.main(["--port", "0"]) == 2  # refused before anything listens or loads
    err = capsys.readouterr().err
    assert err.startswith("vaegan-serve: invalid settings:") and f"invalid model {field.split('_')[1].lower()}" in err


def test_vaegan_serve_refuses_an_escaping_name_at_start(tmp_path: Path) -> None:
    env = checkout_env(VAEGAN_MODELS_DIR=str(tmp_path), VAEGAN_MODEL_NAME="../outside")
    command = [str(Path(sys.executable).with_name("vaegan-serve")), "--port", "0"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "invalid model name '../outside'" in result.stderr


def test_latest_naming_a_folder_outside_is_refused(make_client, models_dir: Path) -> None:
    """LATEST is data on disk: a version in it that climbs out (to a real bundle) is not followed."""
    outside = models_dir.parent / "outside"
    (models_dir / "mnist" / "v2").rename(outside)
    (models_dir / "mnist" / "LATEST").write_text("../../outside\n")
    with make_client(models_dir) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and "invalid model version '../../outside'" in response.json()["detail"]
        assert client.get("/sample").status_code == 503


def test_manifest_file_names_cannot_climb_out(make_client, models_dir: Path) -> None:
    manifest_path = models_dir / "mnist" / "v1" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["../v2/encoder.onnx"] = manifest["files"]["encoder.onnx"]
    manifest_path.write_text(json.dumps(manifest))
    with make_client(models_dir) as client:
        response = client.get("/readyz")
        assert (
            response.status_code == 503 and "invalid model file name '../v2/encoder.onnx'" in response.json()["detail"]
        )


PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}


def test_cors_is_off_by_default(make_client) -> None:
    with make_client() as client:
        preflight = client.options("/reconstruct", headers=PREFLIGHT)
        simple = client.get("/healthz", headers={"Origin": "https://app.example"})
    assert preflight.status_code == 405 and preflight.json()["error"] == "method_not_allowed"
    for response in (preflight, simple):
        assert not any(name.lower().startswith("access-control-") for name in response.headers)


def test_cors_allows_only_the_configured_origins(
    bundles: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VAEGAN_CORS_ORIGINS", "https://app.example, https://other.example")
    monkeypatch.setenv("VAEGAN_MODELS_DIR", str(bundles))
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as client:
        allowed = client.options("/reconstruct", headers=PREFLIGHT)
        simple = client.get("/sample?n=1&seed=1", headers={"Origin": "https://app.example"})
        foreign = client.options("/reconstruct", headers={**PREFLIGHT, "Origin": "https://evil.example"})
        foreign_simple = client.get("/healthz", headers={"Origin": "https://evil.example"})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "POST" in allowed.headers["access-control-allow-methods"]
    assert simple.headers["access-control-allow-origin"] == "https://app.example"
    assert "X-Seed" in simple.headers["access-control-expose-headers"]
    assert foreign.status_code == 400 and "access-control-allow-origin" not in foreign.headers
    assert "access-control-allow-origin" not in foreign_simple.headers


def test_every_limit_is_a_setting_with_a_documented_default(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = (REPO / "docs" / "security.md").read_text()
    defaults = Settings()
    for name in LIMITS:
        env = f"VAEGAN_{name.upper()}"
        default = getattr(defaults, name)
        row = next((line for line in docs.splitlines() if f"`{env}`" in line), None)
        assert row is not None, f"docs/security.md does not list {env}"
        shown = f"{default:g}" if isinstance(default, float) else str(default)
        assert f"`{shown}`" in row, (env, shown, row)
        field = Settings.model_fields[name]
        assert any(hasattr(m, "ge") or hasattr(m, "gt") for m in field.metadata), f"{name} has no lower bound"
        monkeypatch.setenv(env, str(default * 2 if default else 1))
        assert getattr(Settings(), name) != default, env  # the environment sets it
    assert defaults.max_upload_bytes <= 16 << 20 and defaults.max_pixels <= 4096 * 4096
    assert defaults.max_samples <= 64 and defaults.cors_origins == []
