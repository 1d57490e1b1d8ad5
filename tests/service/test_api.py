"""Every endpoint and its error paths, through the app with its lifespan (TestClient)."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.service.helpers import image_bytes

Z = 32  # mnist32 latent_dim
JSON = {"Accept": "application/json"}


def png_image(response_content: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(response_content))
    assert img.format == "PNG"
    return img


def assert_error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"error", "detail", "request_id"} and body["error"] == code, body
    assert "Traceback" not in body["detail"]
    return body


# Health and model.


def test_health_endpoints(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready == {"status": "ready", "model": "mnist", "version": "v1", "models": {"mnist": "v1"}}
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_model_shows_manifest_and_provider(client: TestClient) -> None:
    body = client.get("/model").json()
    assert body["manifest"]["version"] == "v1" and body["manifest"]["latent_dim"] == Z
    assert body["provider"] == "CPUExecutionProvider"
    assert body["session_options"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    assert body["batching"]["enabled"] is True and body["limits"]["max_samples"] == 64


def test_docs_and_openapi(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    for path in ("/reconstruct", "/sample", "/encode", "/decode", "/interpolate", "/similarity", "/model", "/readyz"):
        assert path in schema["paths"], path


# /sample


def test_sample_png_grid_and_seed_echo(client: TestClient) -> None:
    response = client.get("/sample", params={"n": 16, "nrow": 4, "seed": 7})
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert response.headers["x-seed"] == "7" and response.headers["x-model-version"] == "v1"
    img = png_image(response.content)
    assert img.size == (4 * 34 + 2, 4 * 34 + 2) and img.mode == "L"  # 4x4 cells of 32 + 2 px gaps


def test_sample_seeded_is_repeatable(client: TestClient) -> None:
    first = client.get("/sample", params={"n": 4, "seed": 123}).content
    assert client.get("/sample", params={"n": 4, "seed": 123}).content == first
    assert client.get("/sample", params={"n": 4, "seed": 124}).content != first


def test_sample_draws_and_returns_a_seed_that_replays(client: TestClient) -> None:
    drawn = client.get("/sample", params={"n": 3}, headers=JSON).json()
    assert isinstance(drawn["seed"], int)
    again = client.get("/sample", params={"n": 3, "seed": drawn["seed"]}, headers=JSON).json()
    assert again["images"] == drawn["images"] and again["latents"] == drawn["latents"]


def test_sample_json(client: TestClient) -> None:
    body = client.get("/sample", params={"n": 3, "seed": 1, "scale": 2}, headers=JSON).json()
    assert len(body["images"]) == 3 and np.asarray(body["latents"]).shape == (3, Z)
    assert png_image(base64.b64decode(body["images"][0])).size == (64, 64)
    assert body["model_version"] == "v1"


def test_sample_temperature_scales_latents(client: TestClient) -> None:
    cold = np.asarray(client.get("/sample?n=2&seed=3&temperature=0.5", headers=JSON).json()["latents"])
    warm = np.asarray(client.get("/sample?n=2&seed=3&temperature=1.0", headers=JSON).json()["latents"])
    np.testing.assert_allclose(cold * 2, warm, rtol=1e-6)


@pytest.mark.parametrize(
    "query",
    [
        "n=0",
        "n=65",
        "n=abc",
        "temperature=0",
        "temperature=-1",
        "temperature=nan",
        "temperature=inf",
        "seed=-1",
        "nrow=0",
        "scale=0",
        "scale=17",
    ],
)
def test_sample_bad_parameters(client: TestClient, query: str) -> None:
    assert_error(client.get(f"/sample?{query}"), 422, "invalid_parameter")


def test_sample_output_pixel_limit(make_client) -> None:
    with make_client(max_output_pixels=100_000) as c:
        body = assert_error(c.get("/sample?n=64&scale=8"), 422, "invalid_parameter")
        assert "pixels" in body["detail"]


# /reconstruct and /encode


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16"])
def test_reconstruct_every_pillow_mode(client: TestClient, mode: str) -> None:
    fmt = "JPEG" if mode == "CMYK" else "PNG"
    data = image_bytes(mode, (40, 30), fmt=fmt)
    response = client.post("/reconstruct", files={"file": (f"x.{fmt.lower()}", data, f"image/{fmt.lower()}")})
    assert response.status_code == 200, response.text
    assert png_image(response.content).size == (32, 32)


@pytest.mark.parametrize(
    "fmt,media",
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp"), ("BMP", "image/bmp"), ("GIF", "image/gif")],
)
def test_reconstruct_raw_body_formats(client: TestClient, fmt: str, media: str) -> None:
    response = client.post("/reconstruct", content=image_bytes("L", fmt=fmt), headers={"Content-Type": media})
    assert response.status_code == 200, response.text


def test_reconstruct_json_has_latent(client: TestClient) -> None:
    body = client.post("/reconstruct", content=image_bytes(), headers={"Content-Type": "image/png", **JSON}).json()
    assert len(body["images"]) == 1 and np.asarray(body["latents"]).shape == (1, Z)


def test_reconstruct_uses_posterior_mean(client: TestClient) -> None:
    headers = {"Content-Type": "image/png", **JSON}
    mean = client.post("/reconstruct", content=image_bytes(), headers=headers).json()["latents"]
    mu = client.post("/encode", content=image_bytes(), headers={"Content-Type": "image/png"}).json()["mu"]
    np.testing.assert_allclose(mean[0], mu, rtol=1e-5, atol=1e-6)
    sampled = client.post("/reconstruct?sample=true&seed=5", content=image_bytes(), headers=headers).json()
    assert sampled["seed"] == 5 and sampled["latents"] != mean


def test_encode(client: TestClient) -> None:
    headers = {"Content-Type": "image/png"}
    body = client.post("/encode", content=image_bytes(), headers=headers).json()
    assert len(body["mu"]) == Z and len(body["logvar"]) == Z and "z" not in body
    sampled = client.post("/encode?sample=true&seed=9", content=image_bytes(), headers=headers).json()
    again = client.post("/encode?sample=true&seed=9", content=image_bytes(), headers=headers).json()
    assert sampled["seed"] == 9 and len(sampled["z"]) == Z and sampled["z"] == again["z"]
    eps = (np.asarray(sampled["z"]) - np.asarray(body["mu"])) / np.exp(0.5 * np.asarray(body["logvar"]))
    np.testing.assert_allclose(eps, np.random.default_rng(9).standard_normal(Z, dtype=np.float32), atol=1e-4)


def test_exif_orientation_is_applied(client: TestClient) -> None:
    """An image stored sideways with EXIF 'rotate 90' encodes like the upright image."""
    upright = Image.new("L", (28, 28))
    upright.paste(255, (4, 4, 24, 10))  # a horizontal bar near the top
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a camera would store for orientation 6
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    buffers = []
    for img, kwargs in ((upright, {}), (stored, {"exif": exif.tobytes()}), (stored, {})):
        buffer = io.BytesIO()
        img.save(buffer, format="PNG", **kwargs)
        buffers.append(buffer.getvalue())
    mus = [client.post("/encode", content=b, headers={"Content-Type": "image/png"}).json()["mu"] for b in buffers]
    np.testing.assert_allclose(mus[0], mus[1], atol=1e-6)
    assert not np.allclose(mus[0], mus[2], atol=1e-6)


# Image errors


def test_undecodable_images(client: TestClient) -> None:
    png = image_bytes()
    cases = [
        b"",
        b"not an image",
        b"<svg xmlns='http://www.w3.org/2000/svg'/>",
        png[: len(png) // 2],
        image_bytes(fmt="TIFF"),
    ]
    for data in cases:
        assert_error(
            client.post("/reconstruct", content=data, headers={"Content-Type": "image/png"}), 400, "undecodable_image"
        )


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height, with one tiny IDAT: decodes only by inflating a bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_too_many_pixels_refused_from_the_header(client: TestClient) -> None:
    bomb = _png_header(50_000, 50_000)  # 2.5 Gpx claimed in 100 bytes
    body = assert_error(
        client.post("/reconstruct", content=bomb, headers={"Content-Type": "image/png"}), 413, "payload_too_large"
    )
    assert "pixels" in body["detail"] or "decompression" in body["detail"].lower()


def test_pixel_limit_setting(make_client) -> None:
    with make_client(max_pixels=999) as c:
        response = c.post("/encode", content=image_bytes(size=(40, 25)), headers={"Content-Type": "image/png"})
        assert "1000 pixels" in assert_error(response, 413, "payload_too_large")["detail"]


def test_body_limit_by_content_length_and_while_streaming(make_client) -> None:
    with make_client(max_upload_bytes=4096) as c:
        big = image_bytes("RGB", (200, 200), fmt="BMP")
        assert len(big) > 4096
        assert_error(
            c.post("/reconstruct", content=big, headers={"Content-Type": "image/bmp"}), 413, "payload_too_large"
        )

        def chunks():  # no Content-Length: chunked transfer, counted as it arrives
            for i in range(0, len(big), 1000):
                yield big[i : i + 1000]

        assert_error(
            c.post("/reconstruct", content=chunks(), headers={"Content-Type": "image/bmp"}), 413, "payload_too_large"
        )
        boundary = "vaegan-test-boundary"
        multipart = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="x.bmp"\r\n'
                f"Content-Type: image/bmp\r\n\r\n"
            ).encode()
            + big
            + f"\r\n--{boundary}--\r\n".encode()
        )

        def multipart_chunks():
            for i in range(0, len(multipart), 1000):
                yield multipart[i : i + 1000]

        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        assert_error(c.post("/reconstruct", content=multipart_chunks(), headers=headers), 413, "payload_too_large")
        assert c.post("/reconstruct", content=image_bytes(), headers={"Content-Type": "image/png"}).status_code == 200


def test_unsupported_media_types(client: TestClient) -> None:
    assert_error(
        client.post("/reconstruct", content=b"x", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"
    )
    assert_error(client.post("/reconstruct", content=image_bytes()), 415, "unsupported_media_type")
    files = {"file": ("x.txt", b"hello", "text/html")}
    assert_error(client.post("/reconstruct", files=files), 415, "unsupported_media_type")
    assert_error(
        client.post("/decode", content=b"{}", headers={"Content-Type": "text/plain"}), 415, "unsupported_media_type"
    )
    two = {"Content-Type": "image/png"}
    assert_error(client.post("/similarity", content=image_bytes(), headers=two), 415, "unsupported_media_type")


def test_multipart_field_missing(client: TestClient) -> None:
    response = client.post("/reconstruct", files={"image": ("x.png", image_bytes(), "image/png")})
    assert "'file'" in assert_error(response, 422, "invalid_parameter")["detail"]
    response = client.post("/similarity", files={"a": ("x.png", image_bytes(), "image/png")})
    assert "'b'" in assert_error(response, 422, "invalid_parameter")["detail"]


def test_malformed_multipart(client: TestClient) -> None:
    response = client.post("/reconstruct", content=b"--zz\r\ngarbage", headers={"Content-Type": "multipart/form-data"})
    assert_error(response, 400, "bad_request")


# /decode


def test_decode_grid_and_json(client: TestClient) -> None:
    z = np.random.default_rng(0).standard_normal((5, Z)).tolist()
    response = client.post("/decode?nrow=5", json={"z": z})
    assert response.status_code == 200 and png_image(response.content).size == (5 * 34 + 2, 36)
    body = client.post("/decode", json={"z": z}, headers=JSON).json()
    assert len(body["images"]) == 5


def test_decode_matches_sample(client: TestClient) -> None:
    sampled = client.get("/sample?n=2&seed=11", headers=JSON).json()
    decoded = client.post("/decode", json={"z": sampled["latents"]}, headers=JSON).json()
    assert decoded["images"] == sampled["images"]


@pytest.mark.parametrize(
    "body",
    [
        '{"z": [[NaN' + ", 0" * 31 + "]]}",
        '{"z": [[Infinity' + ", 0" * 31 + "]]}",
        '{"z": [[1e9' + ", 0" * 31 + "]]}",
        '{"z": [[0, 0]]}',
        '{"z": []}',
        '{"z": "x"}',
        "{}",
        "not json",
        '{"z": ' + "[" * 5000 + "]" * 5000 + "}",
    ],
)
def test_decode_bad_latents(client: TestClient, body: str) -> None:
    response = client.post("/decode", content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 422, "invalid_parameter")


def test_decode_too_many_rows(client: TestClient) -> None:
    response = client.post("/decode", json={"z": [[0.0] * Z] * 65})
    assert "limit is 64" in assert_error(response, 422, "invalid_parameter")["detail"]


# /interpolate and /similarity


def test_interpolate_latents(client: TestClient) -> None:
    a, b = [0.0] * Z, [1.0] * Z
    body = client.post("/interpolate?steps=5", json={"a": a, "b": b}, headers=JSON).json()
    path = np.asarray(body["latents"])
    assert path.shape == (5, Z)
    np.testing.assert_allclose(path[:, 0], [0, 0.25, 0.5, 0.75, 1.0], atol=1e-6)
    strip = client.post(
        "/interpolate?steps=4&method=slerp", json={"a": [1.0] + [0.0] * (Z - 1), "b": [0.0, 1.0] + [0.0] * (Z - 2)}
    )
    assert png_image(strip.content).size == (4 * 34 + 2, 36)  # one row by default


def test_interpolate_images(client: TestClient) -> None:
    files = {"a": ("a.png", image_bytes("L"), "image/png"), "b": ("b.png", image_bytes("RGB", (50, 50)), "image/png")}
    body = client.post("/interpolate?steps=3", files=files, headers=JSON).json()
    assert len(body["images"]) == 3
    mu_a = client.post("/encode", content=image_bytes("L"), headers={"Content-Type": "image/png"}).json()["mu"]
    np.testing.assert_allclose(body["latents"][0], mu_a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("query", ["steps=1", "steps=65", "method=cubic"])
def test_interpolate_bad_parameters(client: TestClient, query: str) -> None:
    response = client.post(f"/interpolate?{query}", json={"a": [0.0] * Z, "b": [0.0] * Z})
    assert_error(response, 422, "invalid_parameter")


def test_interpolate_wrong_width(client: TestClient) -> None:
    assert_error(client.post("/interpolate", json={"a": [0.0] * 3, "b": [0.0] * 3}), 422, "invalid_parameter")


def test_similarity(client: TestClient) -> None:
    a, b = image_bytes("L"), image_bytes("L", fmt="BMP")  # the same pixels, two encodings
    other = image_bytes("RGB", (60, 20))
    same = client.post("/similarity", files={"a": ("a.png", a, "image/png"), "b": ("b.bmp", b, "image/bmp")}).json()
    assert same["learned_distance"] == 0 and same["pixel_distance"] == 0
    differ = client.post("/similarity", files={"a": ("a.png", a, "image/png"), "b": ("b.png", other, "image/png")})
    body = differ.json()
    assert body["learned_distance"] > 0 and body["pixel_distance"] > 0
    assert body["pixels"] == 32 * 32 and body["features"] > 0
    assert body["pixel_mse"] == pytest.approx(2 * body["pixel_distance"] / body["pixels"])


# Routing errors


def test_not_found_and_method_not_allowed(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found")
    assert_error(client.delete("/sample"), 405, "method_not_allowed")
    assert_error(client.get("/reconstruct"), 405, "method_not_allowed")
