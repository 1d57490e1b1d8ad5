"""The service as a whole: metrics, batching under concurrency, hot reload, tampering, shutdown."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from model_core.bundle import set_latest
from service.__main__ import Server, parse_args
from tests.polling import poll
from tests.service.helpers import export_mnist32, image_bytes

REPO = Path(__file__).resolve().parents[2]


def scrape(client: TestClient) -> dict[str, list]:
    """name -> samples, parsed by Prometheus's own parser."""
    response = client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def sample_value(samples: list, name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_and_name_everything(make_client) -> None:
    with make_client() as client:
        client.get("/sample?n=4&seed=0")
        client.get("/no/such/path")
        client.post("/reconstruct", content=b"junk", headers={"Content-Type": "image/png"})
        families = scrape(client)
    for name in (
        "vaegan_requests",
        "vaegan_request_duration_seconds",
        "vaegan_inference_duration_seconds",
        "vaegan_batch_size",
        "vaegan_queue_depth",
        "vaegan_images_produced",
        "vaegan_model_info",
        "vaegan_model_load_seconds",
        "vaegan_model_reloads",
        "vaegan_ready",
        "vaegan_requests_in_flight",
    ):
        assert name in families, name
    requests = families["vaegan_requests"]
    assert sample_value(requests, "vaegan_requests_total", route="/sample", method="GET", status="200") == 1
    assert sample_value(requests, "vaegan_requests_total", route="<unmatched>", status="404") == 1
    assert sample_value(requests, "vaegan_requests_total", route="/reconstruct", status="400") == 1
    assert sample_value(families["vaegan_images_produced"], "vaegan_images_produced_total", route="/sample") == 4
    info = families["vaegan_model_info"][0]
    assert info.labels == {"model": "mnist", "version": "v1", "provider": "CPUExecutionProvider"} and info.value == 1
    assert sample_value(families["vaegan_ready"], "vaegan_ready") == 1


def test_concurrent_requests_are_batched(make_client) -> None:
    """32 concurrent /sample?n=1 calls reach the decoder in fewer, larger batches."""
    with make_client(max_wait_ms=50.0, max_batch=32) as client:
        with ThreadPoolExecutor(32) as pool:
            statuses = list(pool.map(lambda i: client.get(f"/sample?n=1&seed={i}").status_code, range(32)))
        assert statuses == [200] * 32
        samples = scrape(client)["vaegan_batch_size"]
    runs = sample_value(samples, "vaegan_batch_size_count", network="decoder")
    rows = sample_value(samples, "vaegan_batch_size_sum", network="decoder")
    singles = sample_value(samples, "vaegan_batch_size_bucket", network="decoder", le="1.0")
    assert rows == 32 and runs < 32 and singles < runs, (runs, singles)


def test_batching_off_runs_each_request_alone(make_client) -> None:
    with make_client(batching=False) as client:
        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(lambda i: client.get("/sample?n=2").status_code, range(8))) == {200}
        samples = scrape(client)["vaegan_batch_size"]
        assert client.get("/model").json()["batching"]["enabled"] is False
    assert sample_value(samples, "vaegan_batch_size_count", network="decoder") == 8
    assert sample_value(samples, "vaegan_batch_size_sum", network="decoder") == 16


def test_full_queue_answers_503_with_retry_after(make_client) -> None:
    with make_client(max_queue=4) as client:
        response = client.get("/sample?n=5")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert response.json()["error"] == "overloaded"
        assert sample_value(scrape(client)["vaegan_queue_rejections"], "vaegan_queue_rejections_total") == 1


def test_hot_reload_swaps_to_a_new_version(make_client, models_dir: Path) -> None:
    with make_client(models_dir, reload_interval_s=0.1) as client:
        before = client.get("/sample?n=2&seed=1").content
        set_latest(models_dir, "mnist", "v2")
        poll(lambda: client.get("/model").json()["manifest"]["version"] == "v2", 20, "v2 to be served", 0.05)
        assert client.get("/readyz").json()["version"] == "v2"
        assert client.get("/sample?n=2&seed=1").content != before  # other weights
        families = scrape(client)
    assert sample_value(families["vaegan_model_reloads"], "vaegan_model_reloads_total", result="success") == 1
    assert [s.labels["version"] for s in families["vaegan_model_info"]] == ["v2"]


def test_hot_reload_refuses_a_tampered_version(make_client, models_dir: Path, caplog) -> None:
    bad = models_dir / "mnist" / "v2" / "decoder.onnx"
    bad.write_bytes(bad.read_bytes()[:-1] + b"\0")
    with make_client(models_dir, reload_interval_s=0.1) as client:
        set_latest(models_dir, "mnist", "v2")
        poll(
            lambda: (
                sample_value(scrape(client)["vaegan_model_reloads"], "vaegan_model_reloads_total", result="failure")
                == 1
            ),
            20,
            "a failed reload",
            0.05,
        )
        assert client.get("/readyz").json()["version"] == "v1"  # the old one keeps serving
        assert client.get("/sample?n=1").status_code == 200
    assert any("decoder.onnx has sha256" in r.getMessage() for r in caplog.records)


def test_in_flight_requests_finish_on_the_old_runtime(make_client, models_dir: Path) -> None:
    """Requests that started before a swap complete; those after use the new version."""
    with make_client(models_dir, reload_interval_s=0.05, max_wait_ms=20.0) as client:
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(client.get, "/sample?n=4") for _ in range(64)]
            set_latest(models_dir, "mnist", "v2")
            statuses = [f.result().status_code for f in futures]
        assert statuses == [200] * 64
        poll(lambda: client.get("/model").json()["manifest"]["version"] == "v2", 20, "v2 to be served", 0.05)
        versions = {client.get("/sample?n=1").headers["x-model-version"] for _ in range(3)}
        assert versions == {"v2"}


def test_tampered_bundle_at_start_is_never_served(make_client, models_dir: Path, caplog) -> None:
    target = models_dir / "mnist" / "v1" / "encoder.onnx"
    target.write_bytes(target.read_bytes() + b"x")
    with make_client(models_dir) as client:
        response = client.get("/readyz")
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        body = response.json()
        assert body["error"] == "not_ready" and "encoder.onnx has sha256" in body["detail"]
        assert client.get("/v2/health/ready").status_code == 503
        assert client.get("/healthz").status_code == 200  # alive, just not ready
        for response in (
            client.get("/sample"),
            client.get("/model"),
            client.post("/encode", content=image_bytes(), headers={"Content-Type": "image/png"}),
        ):
            assert response.status_code == 503 and response.json()["error"] == "not_ready"
        assert sample_value(scrape(client)["vaegan_ready"], "vaegan_ready") == 0
    assert any("encoder.onnx" in r.getMessage() and "sha256" in r.getMessage() for r in caplog.records)


def test_missing_model_then_published_is_picked_up(make_client, tmp_path: Path, bundles: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with make_client(empty, reload_interval_s=0.1) as client:
        assert "no LATEST" in client.get("/readyz").json()["detail"]
        export_mnist32(empty, "v9", seed=3)
        poll(lambda: client.get("/readyz").status_code == 200, 20, "ready", 0.05)


def test_pinned_version_setting(make_client) -> None:
    with make_client(model_version="v2") as client:
        assert client.get("/readyz").json()["version"] == "v2"


def test_sigterm_turns_readiness_off_but_keeps_serving(make_client) -> None:
    """What Server.handle_exit does on SIGTERM: /readyz 503 at once; requests still answered."""
    with make_client() as client:
        manager = client.app.state.models
        manager.begin_shutdown()
        response = client.get("/readyz")
        assert response.status_code == 503 and "shutting down" in response.json()["detail"]
        assert client.get("/sample?n=1").status_code == 200


def test_server_handle_exit_flags_the_manager() -> None:
    import uvicorn

    class Manager:
        draining = False

        def begin_shutdown(self) -> None:
            self.draining = True

    manager = Manager()
    server = Server(uvicorn.Config(app=lambda *a: None), manager, delay_s=0.0)  # type: ignore[arg-type]
    server.handle_exit(15, None)
    assert manager.draining and server.should_exit
    assert parse_args(["--port", "9001"]).port == 9001 and parse_args([]).host == "127.0.0.1"


def test_every_error_status_is_documented(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    expected = {
        ("/reconstruct", "post"): {"400", "404", "413", "415", "422", "503"},
        ("/encode", "post"): {"400", "404", "413", "415", "422", "503"},
        ("/similarity", "post"): {"400", "404", "413", "415", "422", "503"},
        ("/interpolate", "post"): {"400", "404", "413", "415", "422", "503"},
        ("/decode", "post"): {"404", "413", "415", "422", "503"},
        ("/sample", "get"): {"404", "422", "503"},
        ("/readyz", "get"): {"503"},
        ("/model", "get"): {"404", "422", "503"},
        ("/v2/models/{model_name}/infer", "post"): {"400", "404", "413", "422", "503", "504"},
        ("/v2/models/{model_name}", "get"): {"404", "503"},
    }
    for (path, method), statuses in expected.items():
        responses = schema["paths"][path][method]["responses"]
        assert statuses <= set(responses), (path, set(responses))
        body = "/ProtocolErrorBody" if path.startswith("/v2/models") else "/ErrorBody"
        for status in statuses:
            ref = responses[status]["content"]["application/json"]["schema"]["$ref"]
            assert ref.endswith(body), (path, status, ref)
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    n = next(p for p in schema["paths"]["/sample"]["get"]["parameters"] if p["name"] == "n")
    assert n["schema"]["maximum"] == 64  # VAEGAN_MAX_SAMPLES, written into the schema
    decode = schema["paths"]["/decode"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert decode["properties"]["z"]["items"]["minItems"] == decode["properties"]["z"]["items"]["maxItems"] == 32
    assert "image/png" in schema["paths"]["/sample"]["get"]["responses"]["200"]["content"]


def test_service_never_imports_torch() -> None:
    code = "import sys, service.app, service.__main__; sys.exit('torch' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO).returncode == 0
    offenders = [p for p in (REPO / "service").rglob("*.py") if "import torch" in p.read_text()]
    assert offenders == []
