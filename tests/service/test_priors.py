"""Priors in the API (docs/api.md, "Priors"): /sample?prior=, /sample/grid, /model/prior and the drift signal."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from prior_fixtures import info_of, random_prior

from service import latents
from service.app import create_app
from tests.service.helpers import export_digits, image_bytes, serve, settings_for

JSON = {"Accept": "application/json"}
PRIOR = random_prior(32, seed=4, m=3, classes=10, mk=2)
MEANS = np.random.default_rng(0).normal(size=(10, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models_dir = tmp_path_factory.mktemp("prior-models")
    export_digits(models_dir, "fitted", conditional=False, means=MEANS, prior=(PRIOR, info_of(PRIOR)))
    export_digits(models_dir, "plain", conditional=False, means=MEANS)
    return models_dir


@pytest.fixture(scope="module")
def fitted(models: Path) -> Iterator[TestClient]:
    yield from serve(models, "fitted")


@pytest.fixture(scope="module")
def plain(models: Path) -> Iterator[TestClient]:
    yield from serve(models, "plain")


def test_sample_draws_from_the_fitted_prior_by_default(fitted: TestClient) -> None:
    r = fitted.get("/sample", params={"n": 5, "seed": 9, "temperature": 0.7}, headers=JSON)
    assert r.status_code == 200 and r.headers["X-Prior"] == "fitted" and r.json()["prior"] == "fitted"
    eps, u = latents.noise(9, 5, 32, 0.7)
    np.testing.assert_allclose(r.json()["latents"], PRIOR.mixture.draw(eps, u), rtol=1e-5, atol=1e-5)
    png = fitted.get("/sample", params={"n": 5, "seed": 9, "temperature": 0.7})
    assert png.headers["content-type"] == "image/png" and png.headers["X-Prior"] == "fitted"


def test_standard_is_exactly_the_papers_normal(fitted: TestClient, plain: TestClient) -> None:
    """prior=standard decodes z ~ N(0, I) as /sample did before priors; a bundle without one does by default."""
    a = fitted.get("/sample", params={"n": 4, "seed": 5, "prior": "standard"}, headers=JSON)
    b = plain.get("/sample", params={"n": 4, "seed": 5}, headers=JSON)
    assert a.headers["X-Prior"] == b.headers["X-Prior"] == "standard"
    np.testing.assert_array_equal(a.json()["latents"], latents.prior(5, 4, 32))
    np.testing.assert_array_equal(b.json()["latents"], latents.prior(5, 4, 32))
    assert a.json()["images"] == b.json()["images"]  # the same networks (seeded) decode the same z


def test_the_same_seed_gives_the_same_samples(fitted: TestClient) -> None:
    first, again = (fitted.get("/sample", params={"n": 3, "seed": 11}).content for _ in range(2))
    assert first == again


def test_label_draws_from_its_class_mixture(fitted: TestClient, plain: TestClient) -> None:
    r = fitted.get("/sample", params={"n": 6, "seed": 2, "label": "3"}, headers=JSON)
    assert r.headers["X-Label-Method"] == "class-prior" and r.headers["X-Prior"] == "fitted"
    eps, u = latents.noise(2, 6, 32)
    np.testing.assert_allclose(r.json()["latents"], PRIOR.classes[3].draw(eps, u), rtol=1e-5, atol=1e-5)
    standard = fitted.get("/sample", params={"n": 6, "seed": 2, "label": "3", "prior": "standard"}, headers=JSON)
    assert standard.headers["X-Label-Method"] == "class-mean" and standard.headers["X-Prior"] == "standard"
    np.testing.assert_allclose(standard.json()["latents"], MEANS[3] + eps, rtol=1e-5)
    old = plain.get("/sample", params={"n": 6, "seed": 2, "label": "3"}, headers=JSON)
    assert old.headers["X-Label-Method"] == "class-mean"


def test_grid_rows_draw_from_each_class_with_the_same_noise_down_columns(fitted: TestClient) -> None:
    r = fitted.get("/sample/grid", params={"per_class": 3, "seed": 7}, headers=JSON)
    assert r.status_code == 200 and r.headers["X-Prior"] == "fitted"
    z = np.asarray(r.json()["latents"]).reshape(10, 3, 32)
    eps, u = latents.noise(7, 3, 32)
    for k in (0, 9):
        np.testing.assert_allclose(z[k], PRIOR.classes[k].draw(eps, u), rtol=1e-5, atol=1e-5)


def test_bad_prior_requests_are_refused(fitted: TestClient, plain: TestClient) -> None:
    r = plain.get("/sample", params={"prior": "fitted"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameter" and "no fitted prior" in r.json()["detail"]
    r = fitted.get("/sample", params={"prior": "uniform"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_parameter"
    assert plain.get("/sample/grid", params={"prior": "fitted"}).status_code == 422


def test_model_summarises_and_exposes_the_prior(fitted: TestClient, plain: TestClient) -> None:
    model = fitted.get("/model").json()
    assert model["default_prior"] == "fitted" and model["label_method"] == "class-prior"
    assert model["prior"]["components"] == 3 and model["prior"]["class_components"] == 2
    params = fitted.get("/model/prior").json()
    np.testing.assert_allclose(params["scale_tril"], PRIOR.mixture.scale_tril, rtol=1e-6)
    assert np.asarray(params["class_locs"]).shape == (10, 2, 32) and len(params["reference"]) == 101
    assert plain.get("/model").json()["default_prior"] == "standard"
    r = plain.get("/model/prior")
    assert r.status_code == 404 and r.json()["error"] == "not_found"


def test_encode_and_reconstruct_report_the_log_density(fitted: TestClient, plain: TestClient) -> None:
    image = {"file": ("d.png", image_bytes(), "image/png")}
    encoded = fitted.post("/encode", files=image).json()
    variance = np.exp(np.asarray([encoded["logvar"]]))
    expected = PRIOR.mixture.posterior_log_density(np.asarray([encoded["mu"]]), variance)[0]
    assert encoded["log_density"] == pytest.approx(expected, rel=1e-6)
    assert encoded["typicality"] == pytest.approx(float(PRIOR.typicality(np.array([expected]))[0]))
    recon = fitted.post("/reconstruct", files=image, headers=JSON).json()
    assert recon["log_density"] == [pytest.approx(expected, rel=1e-6)]
    assert "log_density" not in plain.post("/encode", files=image).json()
    metrics = fitted.get("/metrics").text
    assert 'vaegan_input_typicality_count{model="fitted"} 2.0' in metrics


def test_a_bad_prior_file_keeps_the_model_out_of_service_naming_it(models: Path, tmp_path: Path) -> None:
    """A prior.npz that passes its checksum but not validation (weights not summing to 1): 503 naming the file."""
    folder = Path(shutil.copytree(models / "fitted", tmp_path / "fitted"))
    version = next(p for p in folder.iterdir() if p.is_dir())
    arrays = {**PRIOR.arrays(), "weights": PRIOR.arrays()["weights"] * 2}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (version / "prior.npz").write_bytes(buffer.getvalue())
    manifest = json.loads((version / "manifest.json").read_text())
    manifest["files"]["prior.npz"] = hashlib.sha256(buffer.getvalue()).hexdigest()
    (version / "manifest.json").write_text(json.dumps(manifest))
    app = create_app(settings_for(tmp_path, model_name="fitted"))
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/readyz")
        assert r.status_code == 503 and "prior.npz" in r.json()["detail"] and "sum to 1" in r.json()["detail"]
