"""Request ids and the request log (service/requestlog.py, docs/api.md): echoed, in error bodies, one line each."""

from __future__ import annotations

import io
import json
import logging
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.requestlog import JsonFormatter, RequestIdFilter, TextFormatter, accepted_id
from service.routes.model import public_dataset
from tests.service.live_server import LiveServer

HEX_ID = re.compile(r"[0-9a-f]{32}")


def test_a_valid_client_id_is_echoed(client: TestClient) -> None:
    r = client.get("/sample", params={"n": 1, "seed": 1}, headers={"X-Request-ID": "trace-42:a/b"})
    assert r.status_code == 200 and r.headers["X-Request-ID"] == "trace-42:a/b"


@pytest.mark.parametrize("sent", [None, "", "has space", "x" * 129, "line\u2028break", "ünïcode"])
def test_a_missing_or_unsafe_id_is_replaced(client: TestClient, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-ID": sent.encode("utf-8")}  # raw bytes, as a client may send
    r = client.get("/healthz", headers=headers)
    assert HEX_ID.fullmatch(r.headers["X-Request-ID"])


def test_every_error_body_names_the_request(client: TestClient) -> None:
    for response in (
        client.get("/nowhere", headers={"X-Request-ID": "r1"}),
        client.get("/sample", params={"n": 0}, headers={"X-Request-ID": "r2"}),
        client.post("/reconstruct", content=b"x" * 10, headers={"Content-Type": "text/plain", "X-Request-ID": "r3"}),
    ):
        body = response.json()
        assert response.status_code >= 400 and body["request_id"] == response.headers["X-Request-ID"]


def test_one_access_line_per_request_by_route_template(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="service.access"):
        client.get("/sample", params={"n": 2, "seed": 7}, headers={"X-Request-ID": "abc"})
        client.get("/x%0Aforged%20line", headers={"X-Request-ID": "def"})
    first, second = (r for r in caplog.records if r.name == "service.access")
    assert first.fields["route"] == "/sample" and first.fields["status"] == 200 and first.fields["seed"] == "7"
    assert first.fields["model_version"] and first.fields["duration_ms"] > 0
    assert second.fields["route"] == "<unmatched>" and "\n" not in second.getMessage()


def format_record(formatter: logging.Formatter, message: str, *args: object, rid: str | None = "r-1") -> str:
    record = logging.LogRecord("service", logging.WARNING, __file__, 1, message, args, None)
    record.request_id = rid
    record.fields = {"route": "/sample"}
    return formatter.format(record)


def test_json_lines_hold_the_id_and_fields_and_escape_line_breaks() -> None:
    line = format_record(JsonFormatter(), "path %r then %s", "/a\nb", "raw\nnewline")
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["request_id"] == "r-1" and entry["route"] == "/sample" and entry["level"] == "WARNING"
    assert entry["message"].endswith("raw\nnewline")


def test_text_lines_escape_line_breaks() -> None:
    line = format_record(TextFormatter(), "forged %s", "a\nINFO service: fake")
    assert "\n" not in line and "[r-1]" in line and "a\\nINFO service: fake" in line


def test_the_filter_adds_the_current_id_to_any_logger() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    logger = logging.getLogger("tests.requestlog")
    logger.addHandler(handler)
    try:
        logger.warning("outside any request")
    finally:
        logger.removeHandler(handler)
    assert json.loads(stream.getvalue())["request_id"] is None


def test_accepted_ids() -> None:
    assert accepted_id("A.b_c-1:2/3+4=5@6") == "A.b_c-1:2/3+4=5@6"
    assert HEX_ID.fullmatch(accepted_id("a b"))


def test_a_live_server_logs_one_json_object_per_line(bundles: Path, tmp_path: Path) -> None:
    """VAEGAN_LOG_FORMAT=json: start-up, uvicorn's lines and each request's access line are JSON, ids included."""
    with LiveServer(bundles, tmp_path / "serve.log", log_format="json") as server:
        for path in ("/sample?n=1&seed=3", "/x%0Aforged%20INFO%20line", "/healthz"):
            request = urllib.request.Request(server.base + path, headers={"X-Request-ID": "live-1"})
            try:
                urllib.request.urlopen(request, timeout=10).read()
            except urllib.error.HTTPError as refused:
                assert refused.code == 404
        assert server.stop() == 0
    lines = [line for line in server.log_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "service.access" and e["request_id"] == "live-1"]
    assert [e["route"] for e in access] == ["/sample", "<unmatched>", "/healthz"] and access[0]["seed"] == "3"
    assert any(e["logger"].startswith("uvicorn") for e in entries)


def test_every_answer_says_nosniff(client: TestClient) -> None:
    for response in (client.get("/healthz"), client.get("/nowhere"), client.get("/sample", params={"n": 1})):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/").headers.get_list("X-Content-Type-Options") == ["nosniff"]  # the page's own, once


def test_model_shows_the_dataset_without_the_trainers_paths() -> None:
    assert public_dataset("folder:/home/someone/data/cats") == "folder:cats"
    assert public_dataset("celeba:C:\\\\data\\\\celeba") == "celeba:celeba"
    assert (
        public_dataset("embedded-mnist") == "embedded-mnist"
        and public_dataset("embedded-mnist:tune") == "embedded-mnist:tune"
    )
