"""Bad input on every endpoint: generated requests, the hostile file corpus, endless bodies, bad latents.

Whatever a client sends, the answer is never a 5xx or a traceback: it is a success, or a 4xx with
the JSON error body ``{"error", "detail"}``. Counts of what was tried and answered are printed at
the end of the module (``pytest -s``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.data import make_hostile
from tests.service.helpers import image_bytes

Z = 32  # mnist32 latent_dim
CORPUS_DIR = make_hostile.HERE
IMAGE_ROUTES = ("/reconstruct", "/encode")
ENDPOINTS = (
    ("POST", "/reconstruct"),
    ("POST", "/encode"),
    ("POST", "/decode"),
    ("POST", "/interpolate"),
    ("POST", "/similarity"),
    ("GET", "/sample"),
    ("GET", "/model"),
    ("GET", "/readyz"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
)
POSTS = tuple(path for method, path in ENDPOINTS if method == "POST")
QUERY_NAMES = ("n", "seed", "temperature", "nrow", "scale", "sample", "steps", "method", "x", "")
HEADER_NAME = st.text(alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20).map(lambda s: "x-" + s)
HEADER_VALUE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=60)
CONTENT_TYPES = (
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/bmp",
    "application/json",
    "multipart/form-data",
    "multipart/form-data; boundary=zz",
    "application/octet-stream",
    "text/plain",
    "",
)
TRIED: Counter[str] = Counter()  # kind of generated input -> requests sent
ANSWERED: Counter[int] = Counter()  # status -> count


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nbad-input requests: {sum(TRIED.values())} {dict(TRIED)}; statuses {dict(sorted(ANSWERED.items()))}")


def check(response: Any, kind: str) -> None:
    """No 5xx; every error is the JSON error body, without a traceback."""
    TRIED[kind] += 1
    ANSWERED[response.status_code] += 1
    assert response.status_code < 500, response.text[:500]
    assert "Traceback" not in response.text and 'File "' not in response.text
    if response.status_code >= 400:
        assert response.headers["content-type"] == "application/json", response.headers
        body = response.json()
        assert set(body) == {"error", "detail", "request_id"}, body
        assert isinstance(body["error"], str) and isinstance(body["detail"], str) and body["detail"]


# The hostile corpus.


def test_committed_corpus_is_what_the_script_makes(tmp_path: Path) -> None:
    """tests/data/hostile/ is current: regenerate with ``python tests/data/make_hostile.py``."""
    make_hostile.main(tmp_path)
    committed = json.loads((CORPUS_DIR / make_hostile.INDEX).read_text())
    fresh = json.loads((tmp_path / make_hostile.INDEX).read_text())
    assert sorted(p.name for p in CORPUS_DIR.iterdir()) == sorted(p.name for p in tmp_path.iterdir())
    same_pillow = committed["pillow"] == fresh["pillow"]
    for item in make_hostile.CORPUS:
        if same_pillow or not item.pillow:  # Pillow's encoders may change their bytes between releases
            assert (CORPUS_DIR / item.name).read_bytes() == (tmp_path / item.name).read_bytes(), item.name
        assert committed["files"][item.name]["status"] == item.status
    total = sum(p.stat().st_size for p in CORPUS_DIR.iterdir())
    assert total < 100_000 and max(p.stat().st_size for p in CORPUS_DIR.iterdir()) < 20_000


@pytest.mark.parametrize("item", make_hostile.CORPUS, ids=lambda item: item.name)
def test_hostile_file_gets_its_status(client: TestClient, item: make_hostile.Hostile) -> None:
    """Each file, as a raw body on /reconstruct and as a multipart file on /encode."""
    data = (CORPUS_DIR / item.name).read_bytes()
    raw = client.post("/reconstruct", content=data, headers={"Content-Type": item.media_type})
    part = client.post("/encode", files={"file": (item.name, data, item.media_type)})
    for route, response in (("/reconstruct", raw), ("/encode", part)):
        check(response, "corpus file")
        assert response.status_code == item.status, (route, item.why, response.text[:300])
    if item.status == 413:
        assert raw.json()["error"] == "payload_too_large" and "pixels" in raw.json()["detail"]
    elif item.status == 400:
        assert raw.json()["error"] == "undecodable_image"
    else:
        assert raw.headers["content-type"] == "image/png" and len(part.json()["mu"]) == Z


def test_exif_rotated_jpeg_is_turned_upright(client: TestClient) -> None:
    """The corpus's rotated JPEG encodes closer to the upright picture than the same file without EXIF."""
    import io

    import numpy as np
    from PIL import Image

    rotated = (CORPUS_DIR / "jpeg_exif_rotated.jpg").read_bytes()
    stripped = io.BytesIO()
    Image.open(io.BytesIO(rotated)).save(stripped, format="PNG")  # the stored pixels, orientation lost
    upright = io.BytesIO()
    make_hostile._picture().save(upright, format="PNG")

    def mu(data: bytes) -> np.ndarray:
        return np.asarray(client.post("/encode", content=data, headers={"Content-Type": "image/png"}).json()["mu"])

    def mu_jpeg(data: bytes) -> np.ndarray:
        return np.asarray(client.post("/encode", content=data, headers={"Content-Type": "image/jpeg"}).json()["mu"])

    reference = mu(upright.getvalue())
    assert np.linalg.norm(mu_jpeg(rotated) - reference) < np.linalg.norm(mu(stripped.getvalue()) - reference)


# Bodies over the limit are cut off while they arrive.


def call_asgi(
    client: TestClient,
    method: str,
    path: str,
    *,
    query: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
    chunks: Iterator[bytes] | None = None,
) -> tuple[int, bytes, int]:
    """Call the app (in the client's event loop) with raw scope values and a chunked body.

    Returns the status, the response body and the request bytes the app pulled from ``chunks``.
    """
    pulled, sent = 0, []
    chunks = chunks if chunks is not None else iter(())

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        body = next(chunks, None)
        if body is None:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += len(body)
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"testserver"), *(headers or [])],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    assert client.portal is not None
    client.portal.call(client.app, scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], body, pulled


class Raw:
    """A response from ``call_asgi`` with the attributes ``check`` reads."""

    def __init__(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.status_code, self.content = status, body
        self.text = body.decode("utf-8", "replace")
        self.headers = headers

    def json(self) -> Any:
        return json.loads(self.content)


def call_raw(client: TestClient, method: str, path: str, **kwargs: Any) -> Raw:
    status, body, _ = call_asgi(client, method, path, **kwargs)
    is_json = body[:1] == b"{" and status >= 400
    return Raw(status, body, {"content-type": "application/json" if is_json else "?"})


def endless(prefix: bytes, limit: int = 256 << 20) -> Iterator[bytes]:
    """``prefix``, then 64 KiB chunks of zeros; fails the test if more than ``limit`` bytes are pulled."""
    yield prefix
    for _ in range(limit // 65536):
        yield b"\0" * 65536
    raise AssertionError(f"the app kept reading past {limit} bytes")


@pytest.mark.parametrize(
    "path,content_type,prefix",
    [
        ("/reconstruct", "image/png", make_hostile.PNG_MAGIC),
        (
            "/reconstruct",
            "multipart/form-data; boundary=b",
            b'--b\r\nContent-Disposition: form-data; name="file"\r\n\r\n',
        ),
        ("/similarity", "multipart/form-data; boundary=b", b'--b\r\nContent-Disposition: form-data; name="a"\r\n\r\n'),
        ("/decode", "application/json", b'{"z": [[' + b"0," * 100),
    ],
    ids=["raw", "multipart", "multipart-two-files", "json"],
)
def test_endless_body_is_cut_off_at_the_limit(make_client, path: str, content_type: str, prefix: bytes) -> None:
    limit = 1 << 20
    with make_client(max_upload_bytes=limit) as client:
        chunked = [(b"content-type", content_type.encode()), (b"transfer-encoding", b"chunked")]
        status, body, pulled = call_asgi(client, "POST", path, headers=chunked, chunks=endless(prefix))
        assert client.get("/readyz").status_code == 200  # still serving
    assert status == 413 and json.loads(body)["error"] == "payload_too_large", body
    assert pulled <= limit + 65536 + len(prefix), pulled  # read no further than the chunk that crossed the limit


# Generated requests on every endpoint (hypothesis).


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    endpoint=st.sampled_from(POSTS),
    content_type=st.one_of(st.sampled_from(CONTENT_TYPES), HEADER_VALUE),
    body=st.one_of(
        st.binary(max_size=4096),
        st.sampled_from([b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"{}", b"[]", b"null"]).flatmap(
            lambda magic: st.binary(max_size=512).map(lambda tail: magic + tail)
        ),
    ),
)
def test_arbitrary_bodies(client: TestClient, endpoint: str, content_type: str, body: bytes) -> None:
    check(client.post(endpoint, content=body, headers={"Content-Type": content_type}), "body bytes")


QUERY = st.dictionaries(
    st.one_of(st.sampled_from(QUERY_NAMES), st.text(max_size=8)),
    st.one_of(
        st.sampled_from(["0", "-1", "1e309", "nan", "inf", "-inf", "9" * 40, "true", "", "0x10", "1.5"]),
        st.integers(-(2**70), 2**70).map(str),
        st.floats(allow_nan=True, allow_infinity=True).map(str),
        st.text(max_size=20),
    ),
    max_size=5,
)
HEADERS = st.dictionaries(HEADER_NAME, HEADER_VALUE, max_size=4).flatmap(
    lambda extra: st.one_of(st.none(), HEADER_VALUE, st.sampled_from(["application/json", "image/png", "*/*"])).map(
        lambda accept: {**extra, **({} if accept is None else {"Accept": accept})}
    )
)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(endpoint=st.sampled_from(ENDPOINTS), query=QUERY, headers=HEADERS)
def test_arbitrary_query_strings_and_headers(
    client: TestClient, endpoint: tuple[str, str], query: dict[str, str], headers: dict[str, str]
) -> None:
    """A valid body for the route (so parameters reach inference), anything in the query and headers."""
    method, path = endpoint
    if path in ("/reconstruct", "/encode"):
        response = client.post(
            path, params=query, headers=headers, files={"file": ("x.png", image_bytes(), "image/png")}
        )
    elif path == "/similarity":
        two = {"a": ("a.png", image_bytes(), "image/png"), "b": ("b.png", image_bytes(), "image/png")}
        response = client.post(path, params=query, headers=headers, files=two)
    elif path == "/decode":
        response = client.post(path, params=query, headers=headers, json={"z": [[0.5] * Z] * 2})
    elif path == "/interpolate":
        response = client.post(path, params=query, headers=headers, json={"a": [0.0] * Z, "b": [1.0] * Z})
    else:
        response = client.request(method, path, params=query, headers=headers)
    check(response, "query and headers")


@settings(max_examples=60, deadline=None)
@given(
    endpoint=st.sampled_from(ENDPOINTS),
    query=st.one_of(st.binary(max_size=60), st.text(alphabet="%&=;+#/ abfn019", max_size=40).map(str.encode)),
    headers=st.lists(st.tuples(st.binary(min_size=1, max_size=20), st.binary(max_size=60)), max_size=4),
)
def test_raw_query_strings_and_headers(
    client: TestClient, endpoint: tuple[str, str], query: bytes, headers: list[tuple[bytes, bytes]]
) -> None:
    """Bytes no HTTP client would send: broken percent-escapes, no UTF-8, odd header names and values."""
    method, path = endpoint
    lowered = [(name.lower(), value) for name, value in headers]
    check(call_raw(client, method, path, query=query, headers=lowered, chunks=iter([b"x"])), "raw query and headers")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.floats() | st.integers(-(2**80), 2**80) | st.text(max_size=10),
    lambda children: st.lists(children, max_size=6) | st.dictionaries(st.text(max_size=5), children, max_size=4),
    max_leaves=60,
)
LATENT_DOCUMENTS = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries({"z": JSON_VALUES}),
    st.fixed_dictionaries({"a": JSON_VALUES, "b": JSON_VALUES}),
    st.lists(st.lists(st.floats(), min_size=Z, max_size=Z), min_size=1, max_size=3).map(lambda z: {"z": z}),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(["/decode", "/interpolate"]), document=LATENT_DOCUMENTS)
def test_arbitrary_json(client: TestClient, path: str, document: Any) -> None:
    body = json.dumps(document, allow_nan=True)  # NaN and Infinity as Python writes them
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    check(response, "JSON documents")
    if response.status_code != 200:
        assert response.status_code == 422 and response.json()["error"] == "invalid_parameter"


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    path=st.sampled_from(["/reconstruct", "/encode", "/similarity", "/interpolate"]),
    parts=st.lists(
        st.tuples(
            st.sampled_from(["file", "a", "b", "x", ""]),
            st.text(max_size=12),
            st.sampled_from(["image/png", "image/jpeg", "text/html", "application/octet-stream", "", "a/b"]),
            st.one_of(st.binary(max_size=256), st.just(image_bytes())),
        ),
        max_size=4,
    ),
)
def test_arbitrary_multipart(client: TestClient, path: str, parts: list[tuple[str, str, str, bytes]]) -> None:
    files = [(field, (filename, data, media)) for field, filename, media, data in parts]
    check(client.post(path, files=files or {"file": ("x", b"", "image/png")}), "multipart forms")


# Latents: every way to be wrong is a 422 that says what is wrong.


def post_json(client: TestClient, path: str, text: str) -> Any:
    return client.post(path, content=text, headers={"Content-Type": "application/json"})


def row(first: str) -> str:
    return "[" + first + ", 0" * (Z - 1) + "]"


@pytest.mark.parametrize(
    "path,text,needle",
    [
        ("/decode", '{"z": [' + row("NaN") + "]}", "finite"),
        ("/decode", '{"z": [' + row("Infinity") + "]}", "finite"),
        ("/decode", '{"z": [' + row("-Infinity") + "]}", "finite"),
        ("/decode", '{"z": [' + row("1e400") + "]}", "finite"),
        ("/decode", '{"z": [' + row("1e9") + "]}", "less than or equal to 1000"),
        ("/decode", '{"z": [' + row("-1e9") + "]}", "greater than or equal to -1000"),
        ("/decode", '{"z": [' + row('"one"') + "]}", "valid number"),
        ("/decode", '{"z": [' + row('"1"') + "]}", "valid number"),
        ("/decode", '{"z": [' + row("true") + "]}", "valid number"),
        ("/decode", '{"z": [[0, 0, 0]]}', "latent_dim"),
        ("/decode", '{"z": [[' + ", ".join(["0"] * (Z + 1)) + "]]}", "latent_dim"),
        ("/decode", '{"z": [' + ", ".join([row("0")] * 65) + "]}", "limit is 64"),
        ("/decode", '{"z": [[' + ", ".join(["0"] * 5000) + "]]}", "at most 4096"),
        ("/decode", '{"z": [' + row("0") + "], " + '"x": ' + "[" * 10_000 + "]" * 10_000 + "}", ""),
        ("/decode", '{"z": [' + row("0"), "EOF"),
        ("/decode", "\xff\xfe", ""),
        ("/interpolate", '{"a": ' + row("NaN") + ', "b": ' + row("0") + "}", "finite"),
        ("/interpolate", '{"a": ' + row("0") + ', "b": [1, 2]}', "latent_dim"),
        ("/interpolate", '{"a": ' + row("1e300") + ', "b": ' + row("0") + "}", "less than or equal to 1000"),
        ("/interpolate", '{"a": ' + row("0") + "}", "b: Field required"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None,
)
def test_bad_latents_are_422_with_a_clear_detail(client: TestClient, path: str, text: str, needle: str) -> None:
    response = post_json(client, path, text)
    check(response, "latent documents")
    assert response.status_code == 422, response.text[:300]
    detail = response.json()["detail"]
    assert response.json()["error"] == "invalid_parameter" and len(detail) < 2000
    assert needle in detail, detail


@pytest.mark.parametrize(
    "text",
    [
        '{"z": [' + ", ".join([row("0")] * 1025) + "]}",  # 1,025 rows: more than any valid body holds
        '{"z": ' + "[" * 100_000 + "]" * 100_000 + "}",
    ],
    ids=["1025 rows", "100k nesting"],
)
def test_latent_bodies_longer_than_any_valid_one_are_413_before_parsing(client: TestClient, text: str) -> None:
    """docs/api.md: a JSON body over its largest valid form is refused before parsing (docs/security.md)."""
    response = post_json(client, "/decode", text)
    check(response, "latent documents")
    assert response.status_code == 413 and "this route takes at most" in response.json()["detail"]


def test_enormous_json_under_the_body_limit(client: TestClient) -> None:
    """9.6 MB of numbers in one document: within the upload limit, refused unparsed for its length."""
    text = '{"z": [' + ", ".join(["[" + ", ".join(["0.123456789"] * Z) + "]"] * 23_000) + "]}"
    assert 8 << 20 < len(text) < 10 << 20
    response = post_json(client, "/decode", text)
    check(response, "latent documents")
    assert response.status_code == 413 and "this route takes at most" in response.json()["detail"]
    too_big = post_json(client, "/decode", text + " " * (2 << 20))
    check(too_big, "latent documents")
    assert too_big.status_code == 413
