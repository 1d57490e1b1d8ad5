"""The playground in headless Chromium, against a real ``vaegan-serve`` of the pretrained mnist32 VAE-GAN.

The last test follows the model's life instead: not ready (the page says so and retries), ready,
then a hot reload.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from playwright.sync_api import FilePayload, Page, Route, expect

from tests.browser.harness import (
    Watch,
    assert_accessible,
    broken_images,
    draw,
    drop_file,
    mnist_digit_png,
    open_playground,
    pixels,
    pretrained_server,
    pretrained_version,
    publish_copy,
    settled,
    wait_new_image,
)
from tests.polling import poll
from tests.service.helpers import PRETRAINED_NAME

NOT_AN_IMAGE = b"plain text, not a picture\n"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pretrained_server(tmp_path_factory.mktemp("serve") / "serve.log") as server:
        yield server.base


def inked(rgba: np.ndarray) -> bool:
    """Bright strokes on a dark ground, not one flat colour: a digit, not a blank picture."""
    grey = rgba[..., :3].astype(float)
    return bool(grey.max() > 128 and grey.std() > 10)


def answer(url: str) -> tuple[int, dict[str, object]]:
    """Status and JSON body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_page_loads_without_errors_and_shows_the_model_card(page: Page, base: str) -> None:
    watch = Watch.on(page)
    open_playground(page, base)
    assert watch.console == []
    assert watch.failed == []
    assert page.inner_text("#card-version") == pretrained_version()
    assert page.inner_text("#card-provider") == "CPUExecutionProvider"
    assert "1,500 steps of batch 64" in page.inner_text("#card-facts")  # the manifest's training budget
    assert "quality_fd_cls" in page.inner_text("#card-metrics")
    assert "decoder.onnx" in page.inner_text("#card-parity")
    assert page.is_visible("#label-field")  # the bundle carries class means: /sample?label= works
    assert page.is_hidden("#reload-notice")
    assert "Ready" in page.inner_text("#status")


def test_a_stroke_on_the_pad_is_reconstructed(page: Page, base: str) -> None:
    open_playground(page, base)
    draw(page)
    assert page.is_visible("#recon")
    assert inked(pixels(page, "#input"))
    assert inked(pixels(page, "#recon"))
    expect(page.locator("#learned")).not_to_have_text("–")
    assert float(page.inner_text("#learned").replace(",", "")) > 0
    assert float(page.inner_text("#pixel").replace(",", "")) > 0


def test_a_dropped_digit_is_reconstructed_and_starts_the_path(page: Page, base: str) -> None:
    open_playground(page, base)
    drop_file(page, "three.png", "image/png", mnist_digit_png(3))
    settled(page, "draw")
    assert inked(pixels(page, "#recon"))
    first = page.get_attribute("#strip img", "src")
    page.click("#to-a")
    expect(page.locator("#end-a")).to_have_text("upload three.png")
    expect(page.locator("#strip img").first).not_to_have_attribute("src", first or "")


def test_new_seed_changes_the_sample_grid(page: Page, base: str) -> None:
    open_playground(page, base)
    old_src, old = page.get_attribute("#grid", "src") or "", pixels(page, "#grid")
    page.click("#new-seed")
    wait_new_image(page, "#grid", old_src)
    assert not np.array_equal(pixels(page, "#grid"), old)
    assert page.input_value("#seed") != "1"
    assert f"seed={page.input_value('#seed')}" in page.inner_text("#sample-call")


def test_the_slider_moves_the_interpolation_frame(page: Page, base: str) -> None:
    open_playground(page, base)
    assert page.locator("#strip img").count() == 10
    old_src, old = page.get_attribute("#frame", "src") or "", pixels(page, "#frame")
    page.focus("#slider")
    page.keyboard.press("End")
    wait_new_image(page, "#frame", old_src)
    assert not np.array_equal(pixels(page, "#frame"), old)
    assert page.get_attribute("#strip img.current", "alt") == "step 9"


def test_a_non_image_shows_the_api_error(page: Page, base: str) -> None:
    """The person reads the service's own words and sees no broken image: a picked text file, then text named .png."""

    def detail(name: str, media_type: str) -> str:
        answer = httpx.post(f"{base}/reconstruct", files={"file": (name, NOT_AN_IMAGE, media_type)})
        assert answer.status_code in (400, 415)
        return str(answer.json()["detail"])

    open_playground(page, base)
    draw(page)  # a reconstruction on screen first: the refusal must take it away
    assert page.is_visible("#recon")
    text_file: FilePayload = {"name": "notes.txt", "mimeType": "text/plain", "buffer": NOT_AN_IMAGE}
    page.set_input_files("#pick", files=[text_file])  # 415: the part says text/plain
    expect(page.locator("#draw-error")).to_have_text(detail("notes.txt", "text/plain"))
    assert page.is_hidden("#recon")
    assert broken_images(page) == []
    drop_file(page, "disguised.png", "image/png", NOT_AN_IMAGE)  # 400: typed as PNG, not one
    expect(page.locator("#draw-error")).to_have_text(detail("disguised.png", "image/png"))
    assert page.is_hidden("#recon")
    assert broken_images(page) == []


def test_the_class_picker_samples_the_chosen_class(page: Page, base: str) -> None:
    """The pretrained bundle lists its classes in /model; picking one asks /sample for that label."""
    open_playground(page, base)
    assert page.is_visible("#label-field")
    assert page.locator("#label option").count() == 11  # "any" and the ten classes
    with page.expect_response(lambda r: "/sample?" in r.url and "label=3" in r.url) as answered:
        page.select_option("#label", "3")
    assert answered.value.status == 200 and answered.value.headers["x-label-method"] == "class-prior"


def test_the_prior_switch_samples_the_papers_normal(page: Page, base: str) -> None:
    """The pretrained bundle has a fitted prior: the grid draws from it; the switch asks for N(0, I)."""
    open_playground(page, base)
    assert page.is_visible("#prior-field") and "prior=fitted" in page.inner_text("#sample-call")
    assert page.inner_text("#card-prior").startswith("fitted: ")
    with page.expect_response(lambda r: "/sample?" in r.url and "prior=standard" in r.url) as answered:
        page.select_option("#prior", "standard")
    assert answered.value.status == 200 and answered.value.headers["x-prior"] == "standard"


def test_no_prior_switch_without_a_fitted_prior(page: Page, base: str) -> None:
    def without_prior(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "prior": None, "default_prior": "standard"})

    page.route("**/model", without_prior)
    open_playground(page, base)
    assert page.is_hidden("#prior-field") and "prior=" not in page.inner_text("#sample-call")
    assert page.inner_text("#card-prior") == "N(0, I) only"


def test_no_class_picker_when_the_model_lists_no_classes(page: Page, base: str) -> None:
    def without_classes(route: Route) -> None:
        response = route.fetch()
        route.fulfill(response=response, json={**response.json(), "classes": []})

    page.route("**/model", without_classes)
    open_playground(page, base)
    assert page.is_hidden("#label-field")
    assert page.is_visible("#classes-none") and page.is_hidden("#classes-grid")  # no class grid, no edits: said so
    assert page.is_visible("#edit-none") and page.is_hidden("#edit-controls")


def test_one_model_has_no_picker_and_no_model_parameter(page: Page, base: str) -> None:
    """A service of one model: every route serves it without ``model=``, and the calls shown stay as short."""
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if "/static/" not in r.url else None)
    open_playground(page, base)
    assert page.is_hidden("#model-field")
    assert len(asked) > 5 and [url for url in asked if "model=" in url] == []
    assert "model=" not in page.url and "model=" not in page.inner_text("#sample-call")


def test_not_ready_then_ready_then_a_hot_reload(page: Page, tmp_path: Path) -> None:
    models = tmp_path / "models"
    (models / PRETRAINED_NAME).mkdir(parents=True)  # nothing published yet
    server = pretrained_server(tmp_path / "serve.log", models_dir=models, reload_interval_s=0.2)
    try:
        poll(lambda: answer(f"{server.base}/healthz")[0] == 200, 30, "/healthz to answer 200")
        page.set_default_timeout(20_000)
        page.goto(f"{server.base}/")

        # Not ready: the page says why, and the panels answer in words.
        page.wait_for_selector("#status.down")
        assert f"not ready: {PRETRAINED_NAME}: model not found" in page.inner_text("#status")
        page.click("#new-seed")
        page.wait_for_selector("#sample-error:not([hidden])")
        assert page.inner_text("#sample-error") == answer(f"{server.base}/readyz")[1]["detail"]

        # Published: the page's retry finds it ready and fills the panels.
        publish_copy(models, "v1")
        page.wait_for_selector("#grid:not([hidden])")
        assert page.inner_text("#card-version") == "v1"
        assert page.is_hidden("#sample-error")
        page.wait_for_selector("#status:not(.down)")

        # A new version swapped in: the next answer says so, the card follows.
        publish_copy(models, "v2")
        poll(lambda: answer(f"{server.base}/readyz")[1].get("version") == "v2", 30, "v2 to be served")
        page.click("#new-seed")
        page.wait_for_selector("#reload-notice:not([hidden])")
        assert "version v2 now answers (was v1)" in page.inner_text("#reload-notice")
        expect(page.locator("#card-version")).to_have_text("v2")
    finally:
        assert server.stop() == 0


def test_a_keyed_service_asks_for_the_key_and_keeps_it_in_the_tab(page: Page, tmp_path: Path) -> None:
    """VAEGAN_API_KEYS: the page loads, asks for a key on the first 401, then every panel works with it."""
    key = "playground-key-0123456789"
    with pretrained_server(tmp_path / "serve.log", api_keys=key) as server:
        page.set_default_timeout(20_000)
        page.goto(f"{server.base}/")
        page.wait_for_selector("#key-form:not([hidden])")
        assert page.is_hidden("#grid")
        assert_accessible(page)  # the key's field too
        page.fill("#api-key", key)
        page.click("#key-form button")
        page.wait_for_selector("#grid:not([hidden])")
        page.wait_for_selector("#frame:not([hidden])")
        assert page.inner_text("#card-version") == pretrained_version() and page.is_hidden("#key-form")
        assert page.evaluate("sessionStorage.getItem('vaegan-api-key')") == key
        page.reload()  # the same tab: the key is still there, no question asked
        page.wait_for_selector("#grid:not([hidden])")
        assert page.is_hidden("#key-form")
