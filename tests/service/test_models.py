"""Several bundles in one process (docs/api.md, "Several models"): the list, model=, readiness, isolation."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from model_core.bundle import set_latest
from service.app import create_app
from service.settings import Settings
from tests.service.helpers import export_digits, export_mnist32, settings_for


@pytest.fixture(scope="module")
def two_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mnist (unconditional, v1 and v2 published, LATEST v1) and cdigits (conditional) side by side."""
    models_dir = tmp_path_factory.mktemp("models")
    export_mnist32(models_dir, "v1", seed=0)
    export_mnist32(models_dir, "v2", seed=1, update_latest=False)
    export_digits(models_dir, "cdigits", conditional=True, means=None)
    return models_dir


def serve(models_dir: Path, names: str, **overrides) -> Iterator[TestClient]:
    app = create_app(settings_for(models_dir, model_name=names, max_wait_ms=1.0, **overrides))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def client(two_models: Path) -> Iterator[TestClient]:
    yield from serve(two_models, "mnist,cdigits")


def test_models_lists_both_in_order_with_the_first_as_default(client: TestClient) -> None:
    listed = client.get("/models").json()["models"]
    assert [(m["name"], m["default"], m["ready"]) for m in listed] == [("mnist", True, True), ("cdigits", False, True)]
    assert (listed[0]["conditional"], listed[1]["conditional"], listed[1]["classes"]) == (False, True, 10)
    ready = client.get("/readyz").json()
    assert ready["model"] == "mnist" and set(ready["models"]) == {"mnist", "cdigits"}


def test_every_route_serves_the_model_it_names(client: TestClient) -> None:
    assert client.get("/model").json()["conditional"] is False  # the default: the first listed
    assert client.get("/model", params={"model": "cdigits"}).json()["conditional"] is True
    labelled = client.get("/sample", params={"model": "cdigits", "n": 2, "label": "3", "seed": 1})
    assert labelled.status_code == 200 and labelled.headers["X-Label-Method"] == "conditional"
    refused = client.get("/sample", params={"n": 2, "label": "3", "seed": 1})  # mnist has no classes
    assert refused.status_code == 422
    z = [[0.0] * 32]
    assert client.post("/decode?model=cdigits", json={"z": z, "labels": ["7"]}).status_code == 200
    assert client.post("/decode", json={"z": z}).status_code == 200


def test_an_unknown_model_is_a_404_naming_the_served_ones(client: TestClient) -> None:
    for method, path in (("GET", "/sample"), ("GET", "/model"), ("POST", "/decode")):
        response = client.request(method, path, params={"model": "nope"}, json={"z": [[0.0] * 32]})
        assert response.status_code == 404, path
        body = response.json()
        assert body["error"] == "unknown_model" and "mnist, cdigits" in body["detail"]
    assert client.get("/sample", params={"model": "../etc"}).status_code == 422  # not a bundle name at all


def test_metrics_carry_a_model_label_per_configured_model(client: TestClient) -> None:
    client.get("/sample", params={"model": "cdigits", "n": 1, "label": "1"})
    text = client.get("/metrics").text
    counts = [
        line.split()[-1]
        for line in text.splitlines()
        if line.startswith('vaegan_batch_size_count{model="cdigits",network="decoder"}')
    ]
    assert counts and float(counts[0]) >= 1  # the decoder's calls are counted under cdigits
    assert 'vaegan_queue_depth{model="mnist",network="encoder"}' in text
    info = [line for line in text.splitlines() if line.startswith("vaegan_model_info{")]
    assert len(info) == 2 and any('model="cdigits"' in line for line in info)
    assert "vaegan_ready 1.0" in text


def test_star_serves_every_bundle_in_the_folder(two_models: Path) -> None:
    for client in serve(two_models, "*"):
        assert sorted(m["name"] for m in client.get("/models").json()["models"]) == ["cdigits", "mnist"]
        assert client.get("/readyz").status_code == 200


def test_a_bad_bundle_is_reported_and_absent_while_the_others_serve(two_models: Path, tmp_path: Path) -> None:
    models_dir = Path(shutil.copytree(two_models, tmp_path / "models"))
    version = (models_dir / "cdigits" / "LATEST").read_text().strip()
    decoder = models_dir / "cdigits" / version / "decoder.onnx"
    decoder.write_bytes(decoder.read_bytes()[:-1] + b"\0")  # its checksum no longer matches
    for client in serve(models_dir, "mnist,cdigits"):
        ready = client.get("/readyz")
        assert (
            ready.status_code == 503 and "cdigits" in ready.json()["detail"] and "mnist:" not in ready.json()["detail"]
        )
        listed = {m["name"]: m for m in client.get("/models").json()["models"]}
        assert listed["mnist"]["ready"] and not listed["cdigits"]["ready"] and listed["cdigits"]["version"] is None
        assert "sha256" in listed["cdigits"]["reason"] or "checksum" in listed["cdigits"]["reason"]
        assert client.get("/sample", params={"n": 1}).status_code == 200
        assert client.get("/sample", params={"n": 1, "model": "cdigits"}).status_code == 503
        assert "vaegan_ready 0.0" in client.get("/metrics").text


def test_one_model_reloads_under_load_while_the_other_keeps_its_version(two_models: Path, tmp_path: Path) -> None:
    models_dir = Path(shutil.copytree(two_models, tmp_path / "models"))
    for client in serve(models_dir, "mnist,cdigits", reload_interval_s=0.05):
        before = client.get("/readyz").json()["models"]

        def sample(i: int, client: TestClient = client) -> int:
            model = "mnist" if i % 2 else "cdigits"
            params = {"n": 1, "seed": i, "model": model} | ({"label": "2"} if model == "cdigits" else {})
            return client.get("/sample", params=params).status_code

        with ThreadPoolExecutor(4) as pool:
            first = pool.map(sample, range(40))
            set_latest(models_dir, "mnist", "v2")
            statuses = list(first) + list(pool.map(sample, range(40, 200)))
        assert set(statuses) == {200}
        for _ in range(100):
            after = client.get("/readyz").json()["models"]
            if after["mnist"] == "v2":
                break
            time.sleep(0.05)  # a deadline guard: the watcher polls every 0.05 s
        assert after == {"mnist": "v2", "cdigits": before["cdigits"]}
        assert 'vaegan_model_reloads_total{model="mnist",result="success"} 1.0' in client.get("/metrics").text


@pytest.mark.parametrize(
    ("names", "problem"),
    [
        ("mnist,mnist", "named twice"),
        ("mnist,../x", "invalid model name"),
        (" , ", "invalid model name .* at least one model"),
    ],
)
def test_model_name_lists_are_checked(names: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Settings(model_name=names)


def test_a_pinned_version_needs_a_single_model() -> None:
    assert Settings(model_name="mnist", model_version="v2").model_name_list() == ["mnist"]
    with pytest.raises(ValidationError, match="single model"):
        Settings(model_name="mnist,cdigits", model_version="v2")
    assert Settings(model_name=" mnist , cdigits ").model_name_list() == ["mnist", "cdigits"]
    assert Settings(model_name="*").model_name_list() == []
