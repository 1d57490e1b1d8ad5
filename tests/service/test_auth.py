"""API keys (service/auth.py, docs/security.md): every route of the OpenAPI schema needs one, health does not."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from service import auth
from service.app import create_app
from service.settings import Settings
from tests.service.helpers import settings_for
from tests.service.live_server import LiveServer, free_port

KEYS = ["k" * 16 + "-first", "k" * 16 + "-second"]
OPEN = ["/healthz", "/readyz", "/v2/health/live", "/v2/health/ready", "/", "/playground", "/static/playground.js"]


@pytest.fixture(scope="module")
def keyed(bundles: Path) -> Iterator[TestClient]:
    app = create_app(settings_for(bundles, api_keys=KEYS, max_wait_ms=1.0))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def schema_operations(client: TestClient) -> list[tuple[str, str]]:
    """(method, path) of every operation in the app's OpenAPI schema."""
    schema = client.app.openapi()  # type: ignore[attr-defined]
    return [(method.upper(), path) for path, item in schema["paths"].items() for method in item]


def test_every_schema_route_but_health_needs_a_key(keyed: TestClient) -> None:
    operations = schema_operations(keyed)
    assert len(operations) >= 15
    for method, path in operations:
        url = path.replace("{model_name}", "mnist")
        refused = keyed.request(method, url)
        if path in auth.OPEN_PATHS:
            assert refused.status_code != 401, (method, path)
            continue
        assert refused.status_code == 401, (method, path, refused.text)
        assert refused.json()["error"] == "unauthorized" and refused.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = keyed.request(method, url, headers={"Authorization": "Bearer " + "x" * 22})
        assert wrong.status_code == 401 and "unknown API key" in wrong.json()["detail"]
        for headers in ({"Authorization": f"Bearer {KEYS[1]}"}, {"X-API-Key": KEYS[0]}):
            assert keyed.request(method, url, headers=headers).status_code != 401, (method, path)


def test_health_and_the_page_answer_without_a_key(keyed: TestClient) -> None:
    for path in OPEN:
        assert keyed.get(path).status_code == 200, path


def test_metrics_and_the_schema_need_a_key(keyed: TestClient) -> None:
    for path in ("/metrics", "/openapi.json", "/docs"):
        assert keyed.get(path).status_code == 401, path
        assert keyed.get(path, headers={"X-API-Key": KEYS[0]}).status_code == 200, path


def test_cors_preflights_pass(bundles: Path) -> None:
    settings = settings_for(bundles, api_keys=KEYS, cors_origins=["https://app.example"])
    with TestClient(create_app(settings)) as client:
        headers = {"Origin": "https://app.example", "Access-Control-Request-Method": "POST"}
        assert client.options("/reconstruct", headers=headers).status_code == 200


def test_every_key_is_compared_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    """hmac.compare_digest for each configured key, even after one matched: no early exit to time."""
    calls: list[bytes] = []

    def spy(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return a == b

    monkeypatch.setattr(auth.hmac, "compare_digest", spy)
    middleware = auth.ApiKeyMiddleware(app=None, keys=KEYS)  # type: ignore[arg-type]
    assert middleware.accepts(KEYS[0].encode()) and len(calls) == 2
    assert not middleware.accepts(b"nope") and not middleware.accepts(None)


def test_keys_come_from_the_environment_and_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    keys_file = tmp_path / "keys"
    keys_file.write_text("# one key a line\n" + "f" * 20 + "\n\n")
    monkeypatch.setenv("VAEGAN_API_KEYS", f"{KEYS[0]}, {KEYS[1]}")
    monkeypatch.setenv("VAEGAN_API_KEYS_FILE", str(keys_file))
    assert Settings().keys() == [*KEYS, "f" * 20]
    with pytest.raises(ValidationError, match="shorter than 16"):
        Settings(api_keys=["short"])


def test_no_keys_no_checks_and_docs_can_be_turned_off(bundles: Path) -> None:
    with TestClient(create_app(settings_for(bundles, docs=False))) as client:
        assert client.get("/model").status_code == 200
        assert client.get("/docs").status_code == 404 and client.get("/openapi.json").status_code == 404


def test_a_live_server_with_keys_serves_metrics_on_their_own_port(bundles: Path, tmp_path: Path) -> None:
    """VAEGAN_METRICS_PORT: Prometheus scrapes there without a key while the API port needs one."""
    metrics_port = free_port()
    with LiveServer(bundles, tmp_path / "serve.log", api_keys=KEYS[0], metrics_port=metrics_port) as server:
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.base}/metrics", timeout=10)
        assert refused.value.code == 401
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as scraped:
            assert b"vaegan_ready 1.0" in scraped.read()
        assert server.stop() == 0


def test_a_keys_file_that_cannot_serve_stops_the_start(bundles: Path, tmp_path: Path) -> None:
    (tmp_path / "keys").write_text("short\n")
    server = LiveServer(bundles, tmp_path / "serve.log", api_keys_file=tmp_path / "keys")
    assert server.process.wait(timeout=60) == 2
    assert "shorter than 16" in server.log_text()
