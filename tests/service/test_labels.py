"""Classes in the API: /sample?label=, /sample/grid, /edit and labels on the conditional routes."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from service import latents
from tests.service.helpers import DIGITS, export_digits, image_bytes, serve

JSON = {"Accept": "application/json"}
MEANS = np.random.default_rng(0).normal(size=(10, 32)).astype(np.float32)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    models_dir = tmp_path_factory.mktemp("class-models")
    export_digits(models_dir, "cond", conditional=True, means=np.zeros((10, 32), np.float32))
    export_digits(models_dir, "means", conditional=False, means=MEANS)
    export_digits(models_dir, "plain", conditional=False, means=None)
    return models_dir


@pytest.fixture(scope="module")
def cond(models: Path) -> Iterator[TestClient]:
    yield from serve(models, "cond")


@pytest.fixture(scope="module")
def means(models: Path) -> Iterator[TestClient]:
    yield from serve(models, "means")


@pytest.fixture(scope="module")
def plain(models: Path) -> Iterator[TestClient]:
    yield from serve(models, "plain")


def png(data: str | bytes) -> np.ndarray:
    raw = base64.b64decode(data) if isinstance(data, str) else data
    return np.asarray(Image.open(io.BytesIO(raw)))


def test_model_lists_the_classes_and_how_labels_work(cond: TestClient, means: TestClient, plain: TestClient) -> None:
    for client, conditional, method, classes in (
        (cond, True, "conditional", list(DIGITS)),
        (means, False, "class-mean", list(DIGITS)),
        (plain, False, None, []),
    ):
        body = client.get("/model").json()
        assert (body["conditional"], body["label_method"], body["classes"]) == (conditional, method, classes)


def test_conditional_sample_by_label_decodes_with_that_label(cond: TestClient) -> None:
    r = cond.get("/sample", params={"n": 4, "label": "7", "seed": 5}, headers=JSON)
    assert r.status_code == 200 and r.headers["X-Label-Method"] == "conditional"
    body = r.json()
    assert body["labels"] == ["7"] * 4 and body["label_method"] == "conditional"
    np.testing.assert_allclose(body["latents"], latents.prior(5, 4, 32), rtol=1e-6)
    # The same latents through /decode with label 7 (by index) give the same images; label 1 does not.
    same = cond.post("/decode", json={"z": body["latents"], "labels": [7]}, headers=JSON).json()
    other = cond.post("/decode", json={"z": body["latents"], "labels": ["1"]}, headers=JSON).json()
    assert same["images"] == body["images"] and other["images"] != body["images"]


def test_conditional_sample_without_a_label_draws_labels_from_the_seed(cond: TestClient) -> None:
    first = cond.get("/sample", params={"n": 16, "seed": 9}, headers=JSON).json()
    again = cond.get("/sample", params={"n": 16, "seed": 9}, headers=JSON).json()
    assert first["labels"] == again["labels"] and len(set(first["labels"])) > 1


def test_class_mean_sample_shifts_the_prior_to_the_class_mean(means: TestClient) -> None:
    r = means.get("/sample", params={"n": 3, "label": "3", "seed": 2, "temperature": 0.5}, headers=JSON)
    assert r.status_code == 200 and r.headers["X-Label-Method"] == "class-mean"
    np.testing.assert_allclose(r.json()["latents"], MEANS[3] + latents.prior(2, 3, 32, 0.5), rtol=1e-5)


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"label": "10"}, "no class of this model"),
        ({"label": "seven"}, "0..9"),
        ({"label": "-1"}, "no class"),
        ({"label": "x" * 65}, "at most 64"),
    ],
)
def test_bad_labels_are_422_naming_the_classes(cond: TestClient, params: dict[str, str], needle: str) -> None:
    r = cond.get("/sample", params=params)
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_a_label_on_a_bundle_without_classes_is_422_saying_why(plain: TestClient) -> None:
    for r in (plain.get("/sample", params={"label": "3"}), plain.get("/sample/grid")):
        assert r.status_code == 422 and "unlabelled data" in r.json()["detail"]
    r = plain.post("/edit", params={"to": "3"}, content=image_bytes(), headers={"Content-Type": "image/png"})
    assert r.status_code == 422 and "no classes" in r.json()["detail"]


@pytest.mark.parametrize("name", ["cond", "means"])
def test_sample_grid_has_one_row_per_class(request: pytest.FixtureRequest, name: str) -> None:
    client: TestClient = request.getfixturevalue(name)
    r = client.get("/sample/grid", params={"per_class": 3, "seed": 1})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    grid = png(r.content)
    body = client.get("/sample/grid", params={"per_class": 3, "seed": 1}, headers=JSON).json()
    assert body["labels"] == [d for d in DIGITS for _ in range(3)]
    z = np.asarray(body["latents"]).reshape(10, 3, 32)
    if name == "cond":  # the same z down each column, the label changes by row
        np.testing.assert_allclose(z, np.broadcast_to(z[0], z.shape))
    assert grid.shape[0] > grid.shape[1] * 2  # ten rows of three
    big = client.get("/sample/grid", params={"per_class": 7})
    assert big.status_code == 422 and "VAEGAN_MAX_SAMPLES" in big.json()["detail"]


def test_conditional_edit_keeps_the_style_and_blends_the_label(cond: TestClient) -> None:
    params = {"to": "8", "from": "3", "steps": 3}
    r = cond.post("/edit", params=params, content=image_bytes(), headers={"Content-Type": "image/png", **JSON})
    assert r.status_code == 200 and r.headers["X-Label-Method"] == "conditional"
    body = r.json()
    assert body["edit"] == {"source": "3", "target": "8", "strengths": [0.0, 0.5, 1.0]}
    assert len(body["images"]) == 3 and len({tuple(z) for z in body["latents"]}) == 1  # one z, three labels
    strip = cond.post("/edit", params={"to": "8"}, files={"file": ("x.png", image_bytes(), "image/png")})
    assert strip.status_code == 200 and png(strip.content).shape[1] > png(strip.content).shape[0] * 3


def test_class_mean_edit_adds_the_attribute_vector(means: TestClient) -> None:
    headers = {"Content-Type": "image/png", **JSON}
    body = means.post("/edit", params={"to": "8", "steps": 5}, content=image_bytes(), headers=headers).json()
    z = np.asarray(body["latents"])
    source = DIGITS.index(body["edit"]["source"])
    assert np.argmin(((MEANS - z[0]) ** 2).sum(axis=1)) == source  # from: the nearest class mean
    assert body["edit"]["strengths"] == [0.0, 0.5, 1.0, 1.5, 2.0]
    np.testing.assert_allclose(z[-1] - z[0], 2 * (MEANS[8] - MEANS[source]), atol=1e-4)


@pytest.mark.parametrize(
    ("params", "needle"),
    [({}, "to"), ({"to": "11"}, "no class"), ({"to": "1", "from": "x"}, "from"), ({"to": "1", "steps": 1}, "steps")],
)
def test_bad_edit_parameters_are_422(means: TestClient, params: dict[str, object], needle: str) -> None:
    r = means.post("/edit", params=params, content=image_bytes(), headers={"Content-Type": "image/png"})
    assert r.status_code == 422 and needle in r.json()["detail"]


def test_conditional_routes_need_a_label_and_unconditional_ones_refuse_it(cond: TestClient, means: TestClient) -> None:
    image = {"content": image_bytes(), "headers": {"Content-Type": "image/png"}}
    for route in ("/reconstruct", "/encode"):
        missing = cond.post(route, **image)
        assert missing.status_code == 422 and "class-conditional" in missing.json()["detail"]
        assert cond.post(route, params={"label": "4"}, **image).status_code == 200
        stray = means.post(route, params={"label": "4"}, **image)
        assert stray.status_code == 422 and "unconditional" in stray.json()["detail"]
    z = latents.prior(0, 2, 32).tolist()
    assert cond.post("/decode", json={"z": z}).status_code == 422
    wrong = cond.post("/decode", json={"z": z, "labels": [1, 2, 3]})
    assert wrong.status_code == 422 and "one per latent" in wrong.json()["detail"]
    for bad in ([True], [1.5], []):
        assert cond.post("/decode", json={"z": z, "labels": bad}).status_code == 422
    ends = {"a": z[0], "b": z[1]}
    assert cond.post("/interpolate", json=ends).status_code == 422
    assert cond.post("/interpolate", params={"label": "2", "steps": 3}, json=ends).status_code == 200


def test_label_values_never_become_metric_labels(cond: TestClient) -> None:
    cond.get("/sample", params={"n": 1, "label": "5"})
    cond.get("/sample/grid", params={"per_class": 1})
    text = cond.get("/metrics").text
    assert 'route="/sample/grid"' in text and 'label="5"' not in text


def test_conditional_reconstruct_decodes_the_mean_with_the_same_label(cond: TestClient) -> None:
    """/reconstruct's single trip (encoder then decoder) hands the label to both networks."""
    image = {"content": image_bytes(), "headers": {"Content-Type": "image/png", **JSON}}
    answer = cond.post("/reconstruct", params={"label": "4"}, **image).json()
    mu = cond.post("/encode", params={"label": "4"}, **image).json()["mu"]
    decoded = cond.post("/decode", json={"z": [mu], "labels": [4]}, headers=JSON).json()
    np.testing.assert_allclose(answer["latents"][0], mu, rtol=1e-5, atol=1e-6)
    ours, theirs = (np.asarray(Image.open(io.BytesIO(base64.b64decode(b["images"][0])))) for b in (answer, decoded))
    assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= 1
