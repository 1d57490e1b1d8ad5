"""The playground page as the service serves it: routes, headers, the static folder's bounds, the setting.

What it does in a browser is tested in tests/browser/.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.playground import CONTENT_SECURITY_POLICY, STATIC_DIR
from service.settings import Settings
from tests.service.helpers import settings_for

STATIC_FILES = sorted(p.name for p in STATIC_DIR.iterdir())
MEDIA_TYPES = {".html": "text/html", ".css": "text/css", ".js": "text/javascript"}


@pytest.fixture(scope="module")
def no_model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """An app with nothing to serve: the page must still load (it says the model is not ready)."""
    app = create_app(settings_for(tmp_path_factory.mktemp("empty")))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_page_headers(response) -> None:
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert response.headers["x-content-type-options"] == "nosniff"


@pytest.mark.parametrize("path", ["/", "/playground"])
def test_the_page_is_served_with_a_strict_policy(no_model: TestClient, path: str) -> None:
    response = no_model.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert_page_headers(response)
    assert response.content == (STATIC_DIR / "index.html").read_bytes()
    assert no_model.head(path).status_code == 200


def test_the_policy_allows_nothing_from_elsewhere_and_no_inline_code() -> None:
    directives = dict(d.split(" ", 1) for d in CONTENT_SECURITY_POLICY.split("; "))
    assert directives["default-src"] == "'none'"
    assert directives["script-src"] == directives["style-src"] == "'self'"  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert "http" not in CONTENT_SECURITY_POLICY and "*" not in CONTENT_SECURITY_POLICY


@pytest.mark.parametrize("name", STATIC_FILES)
def test_every_static_file_is_served_with_its_type_and_the_policy(no_model: TestClient, name: str) -> None:
    response = no_model.get(f"/static/{name}")
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] == MEDIA_TYPES[Path(name).suffix]
    assert_page_headers(response)


@pytest.mark.parametrize(
    "path",
    [
        "/static/",  # no directory listing
        "/static/%2e%2e/app.py",
        "/static/..%2fsettings.py",
        "/static/%2fetc%2fpasswd",
        "/static//etc/passwd",
        "/static/..%5capp.py",
        "/static/missing.js",
    ],
)
def test_the_static_mount_serves_only_its_folder(no_model: TestClient, path: str) -> None:
    response = no_model.get(path)
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"


class _Tags(HTMLParser):
    """Every start tag of a document with its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def test_the_page_holds_no_inline_code_and_loads_only_its_own_files() -> None:
    """What the policy would block must not be there: it would break the page, not protect it."""
    parser = _Tags()
    html = (STATIC_DIR / "index.html").read_text()
    parser.feed(html)
    assert all("src" in attrs for tag, attrs in parser.tags if tag == "script")
    assert "<style" not in html
    for tag, attrs in parser.tags:
        assert "style" not in attrs, tag
        assert not [a for a in attrs if a.startswith("on")], tag
    loaded = [attrs.get("src") or attrs.get("href") for tag, attrs in parser.tags if tag in ("script", "link")]
    assert {"static/playground.css", "static/playground.js"} <= set(loaded)
    for ref in loaded:
        assert ref == "data:," or (STATIC_DIR / Path(ref or "").relative_to("static")).is_file(), ref


@pytest.mark.parametrize("name", STATIC_FILES)
def test_no_static_file_reaches_another_origin_or_evaluates_strings(name: str) -> None:
    text = (STATIC_DIR / name).read_text()
    assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.IGNORECASE)
    assert not re.search(r"\beval\(|new Function|innerHTML|document\.write|@import", text)


def test_the_page_calls_only_the_public_api(no_model: TestClient) -> None:
    script = "".join((STATIC_DIR / name).read_text() for name in STATIC_FILES if name.endswith(".js"))
    literals = re.findall(r"(?:call\(|getJSON\(|route\()\s*[`\"]([a-z/]+)", script)  # the paths it requests
    called = set(literals)
    assert called >= {"models", "model", "sample", "sample/grid", "edit", "reconstruct", "similarity", "encode"}
    assert "interpolate" in called
    public = {path.lstrip("/") for path in no_model.get("/openapi.json").json()["paths"]}
    assert called <= public
    assert not public & {"", "playground"}  # the page itself stays out of the API's schema


def test_the_page_counts_in_the_request_metrics_by_route(no_model: TestClient) -> None:
    no_model.get("/static/playground.js")
    no_model.get("/static/%2e%2e/app.py")
    metrics = no_model.get("/metrics").text
    assert 'route="/static",status="200"' in metrics
    assert 'route="/static",status="404"' in metrics


@pytest.mark.parametrize("path", ["/", "/playground", "/static/playground.js", "/static/index.html"])
def test_the_setting_turns_the_page_off(tmp_path: Path, path: str) -> None:
    app = create_app(settings_for(tmp_path, playground=False))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert client.get("/healthz").status_code == 200  # the API is still there


def test_the_setting_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().playground is True
    monkeypatch.setenv("VAEGAN_PLAYGROUND", "false")
    assert Settings().playground is False


@pytest.mark.parametrize("name", STATIC_FILES)
def test_every_static_file_stays_small(name: str) -> None:
    """The 300-line bound of docs/architecture.md ("Layers") holds for the page's files too: one module
    per panel, one job per file."""
    assert len((STATIC_DIR / name).read_text().splitlines()) <= 300


def test_every_panel_is_a_module_that_the_entry_mounts() -> None:
    entry = (STATIC_DIR / "playground.js").read_text()
    panels = sorted(re.findall(r'import \{ mount as \w+ \} from "\./(\w+)\.js"', entry))
    assert panels == ["draw", "edit", "grid", "interpolate", "models", "sample"]
    for panel in panels:
        assert "export function mount(" in (STATIC_DIR / f"{panel}.js").read_text(), panel
