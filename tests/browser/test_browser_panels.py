"""The playground's edit, class grid, model picker, links, downloads and accessibility in headless Chromium,
against a live ``vaegan-serve`` of both published bundles: mnist32-vaegan (class means, a fitted prior) listed
first, so the default, and mnist32-cvaegan (conditional, no fitted prior).
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import httpx
import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.harness import (
    VIEWPORT,
    Watch,
    assert_accessible,
    download,
    drop_file,
    mnist_digit_png,
    open_playground,
    pixels,
    pretrained_server,
    settled,
)
from tests.service.helpers import CONDITIONAL_NAME, PRETRAINED_NAME

CLASSES = [str(k) for k in range(10)]
API = (
    "/models",
    "/model",
    "/sample",
    "/sample/grid",
    "/reconstruct",
    "/similarity",
    "/encode",
    "/interpolate",
    "/edit",
)


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "serve.log"
    with pretrained_server(log, names=f"{PRETRAINED_NAME},{CONDITIONAL_NAME}") as server:
        yield server.base


def query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def decoded(png: bytes) -> np.ndarray:
    """A PNG's pixels as the page reads them back: (H, W, 4) uint8."""
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def enter(page: Page, selector: str, value: str) -> None:
    """Type a value into a control and leave it, as a person does: the control's change event fires."""
    page.fill(selector, value)
    page.locator(selector).blur()


def call_path(page: Page, panel: str) -> str:
    """The request a panel shows under its picture (``GET /sample?...`` -> ``/sample?...``)."""
    return page.inner_text(f"#{panel}-call").split()[1]


def is_sample_panel(url: str) -> bool:
    return "/sample?" in url and "nrow=" in url  # the random digits and ends ask /sample too, without nrow


def test_a_copied_link_reproduces_the_requests_and_pixels_in_a_fresh_page(browser: Browser, page: Page, base: str):
    open_playground(page, base)
    enter(page, "#seed", "1234")
    page.fill("#temperature", "0.7")
    with page.expect_response(lambda r: is_sample_panel(r.url) and "label=3" in r.url) as answered:
        page.select_option("#label", "3")
    settled(page, "sample")
    asked = query(answered.value.url)
    assert (asked["seed"], asked["temperature"], asked["label"]) == ("1234", "0.7", "3")
    link, shown = page.url, {sel: pixels(page, sel) for sel in ("#grid", "#classes-grid", "#edit-frame", "#frame")}
    assert query(link)["seed"] == "1234" and query(link)["model"] == PRETRAINED_NAME

    fresh = browser.new_context(viewport=VIEWPORT).new_page()  # type: ignore[arg-type]
    watch = Watch.on(fresh)
    with fresh.expect_request(lambda r: is_sample_panel(r.url)) as again:
        open_playground(fresh, base, "?" + urlsplit(link).query)
    assert urlsplit(again.value.url)[2:4] == urlsplit(answered.value.url)[2:4]  # the same path and query
    for selector, before in shown.items():
        assert np.array_equal(pixels(fresh, selector), before), selector
    assert fresh.is_hidden("#link-notice") and watch.console == [] and watch.failed == []
    fresh.context.close()


def test_every_result_downloads_as_the_png_it_shows_named_for_what_it_is(page: Page, base: str) -> None:
    open_playground(page, base)
    for panel, image, name in [
        ("sample", "#grid", f"vaegan-{PRETRAINED_NAME}-samples-seed1-n16-t1-priorfitted.png"),
        ("classes", "#classes-grid", f"vaegan-{PRETRAINED_NAME}-class-grid-seed1-per6-t1-priorfitted.png"),
    ]:
        saved = download(page, f"#{panel}-download")
        assert saved == (name, httpx.get(base + call_path(page, panel)).content)  # the API's answer to the call shown
        assert np.array_equal(decoded(saved[1]), pixels(page, image))

    drop_file(page, "three.png", "image/png", mnist_digit_png(3))
    settled(page, "draw")
    name, data = download(page, "#recon-download")
    assert name == f"vaegan-{PRETRAINED_NAME}-reconstruction-three.png"
    assert np.array_equal(decoded(data), pixels(page, "#recon"))

    # The strips: exactly the API's PNG for the call the panel shows, made again here from the link's seeds.
    model = {"model": PRETRAINED_NAME}
    link = query(page.url)
    digit = httpx.get(f"{base}/sample", params={"n": 1, "seed": link["edit-seed"], **model}).content
    name, data = download(page, "#edit-download")
    assert name.startswith(f"vaegan-{PRETRAINED_NAME}-edit-seed{link['edit-seed']}-from") and "-to8-frames7" in name
    assert data == httpx.post(base + call_path(page, "edit"), files={"file": ("d.png", digit, "image/png")}).content
    assert decoded(data).shape[1] > 7 * pixels(page, "#edit-frame").shape[1]  # seven frames side by side
    ends = {
        end: httpx.get(
            f"{base}/sample", params={"n": 1, "seed": link[end], **model}, headers={"Accept": "application/json"}
        ).json()["latents"][0]
        for end in ("a", "b")
    }
    name, data = download(page, "#path-download")
    assert name == f"vaegan-{PRETRAINED_NAME}-path-fromseed{link['a']}-toseed{link['b']}-steps10-linear.png"
    assert data == httpx.post(base + call_path(page, "interpolate"), json=ends).content


def test_the_edit_panel_shows_a_strip_of_the_requested_length(page: Page, base: str) -> None:
    # A fixed digit: a random one may already be a 2, whose strip towards 2 is one frame repeated.
    open_playground(page, base, "?edit-seed=1")
    page.select_option("#edit-to", "2")
    with page.expect_response(lambda r: "/edit?" in r.url and "steps=5" in r.url and "to=2" in r.url) as answered:
        enter(page, "#edit-steps", "5")
    settled(page, "edit")
    assert answered.value.json()["edit"]["target"] == "2" and answered.value.json()["label_method"] == "class-mean"
    frames = [
        pixels(page, f"#edit-strip img:nth-child({i + 1})") for i in range(page.locator("#edit-strip img").count())
    ]
    assert len(frames) == 5
    source = pixels(page, "#edit-input")
    assert all(not np.array_equal(frame, source) for frame in frames)
    assert all(not np.array_equal(frames[i], frames[j]) for i in range(5) for j in range(i))
    page.focus("#edit-slider")
    page.keyboard.press("Home")
    expect(page.locator("#edit-strength")).to_have_text("strength 0, frame 1 of 5")
    page.keyboard.press("End")
    expect(page.locator("#edit-strength")).to_have_text("strength 2, frame 5 of 5")
    assert np.array_equal(pixels(page, "#edit-frame"), frames[4])
    expect(page).to_have_url(re.compile(r"[?&]strength=4(&|$)"))
    assert query(page.url)["to"] == "2" and query(page.url)["edit-steps"] == "5"


def test_the_edit_panel_takes_panel_ones_image(page: Page, base: str) -> None:
    open_playground(page, base)
    drop_file(page, "three.png", "image/png", mnist_digit_png(3))
    settled(page, "draw")
    with page.expect_response(lambda r: "/edit?" in r.url) as answered:
        page.click("#to-edit")
    settled(page, "edit")
    assert answered.value.status == 200
    expect(page.locator("#edit-source")).to_contain_text("upload three.png: class ")
    assert np.array_equal(pixels(page, "#edit-input"), pixels(page, "#input"))
    assert "edit-seed" not in query(page.url)  # an upload is no part of a link


def test_the_class_grid_shows_classes_times_per_class(page: Page, base: str) -> None:
    open_playground(page, base)
    assert page.get_attribute("#per-class", "max") == "6"  # 10 classes x 6 within VAEGAN_MAX_SAMPLES (64)
    with page.expect_response(lambda r: "/sample/grid?" in r.url and "per_class=4" in r.url):
        enter(page, "#per-class", "4")
    settled(page, "classes")
    path = base + call_path(page, "classes")
    answer = httpx.get(path, headers={"Accept": "application/json"}).json()
    assert answer["labels"] == [c for c in CLASSES for _ in range(4)] and len(answer["images"]) == 40
    assert np.array_equal(pixels(page, "#classes-grid"), decoded(httpx.get(path).content))
    with page.expect_response(lambda r: "/sample/grid?" in r.url and "prior=standard" in r.url) as answered:
        page.select_option("#classes-prior", "standard")
    settled(page, "classes")
    assert answered.value.headers["x-prior"] == "standard" and query(page.url)["grid-prior"] == "standard"


def test_switching_models_changes_the_card_and_every_next_request(page: Page, base: str) -> None:
    watch = Watch.on(page)
    open_playground(page, base)
    assert page.is_visible("#model-field")
    assert page.eval_on_selector_all("#model option", "os => os.map(o => o.value)") == [
        PRETRAINED_NAME,
        CONDITIONAL_NAME,
    ]
    assert page.inner_text("#card-model") == PRETRAINED_NAME and page.is_visible("#prior-field")
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if urlsplit(r.url).path in API else None)
    with page.expect_request(lambda r: is_sample_panel(r.url)) as sampled:
        page.select_option("#model", CONDITIONAL_NAME)
    assert query(sampled.value.url)["model"] == CONDITIONAL_NAME and "prior" not in query(sampled.value.url)
    expect(page.locator("#card-model")).to_have_text(CONDITIONAL_NAME)
    page.wait_for_selector("main:not(:has(section[aria-busy]))")
    assert page.inner_text("#card-prior") == "N(0, I) only" and "conditional" in page.inner_text("#card-classes")
    assert page.is_hidden("#prior-field") and page.is_hidden("#classes-prior-field")  # no fitted prior
    assert page.is_visible("#draw-label-field") and page.is_visible("#path-label-field")  # the networks need a class
    assert "conditional model" in page.inner_text("#edit-method")
    assert query(page.url)["model"] == CONDITIONAL_NAME
    with page.expect_request(lambda r: "/reconstruct?" in r.url) as reconstructed:
        drop_file(page, "three.png", "image/png", mnist_digit_png(3))
    assert query(reconstructed.value.url) == {"label": "0", "model": CONDITIONAL_NAME}
    settled(page, "draw")
    assert {query(url).get("model") for url in asked if "/models" not in url} == {CONDITIONAL_NAME}
    assert {"/sample/grid", "/edit", "/interpolate", "/reconstruct"} <= {urlsplit(url).path for url in asked}
    page.select_option("#model", PRETRAINED_NAME)
    expect(page.locator("#card-model")).to_have_text(PRETRAINED_NAME)
    page.wait_for_selector("#prior-field:not([hidden])")
    assert watch.console == [] and watch.failed == []


def test_a_link_with_values_the_page_cannot_take_says_so(page: Page, base: str) -> None:
    with page.expect_request(lambda r: is_sample_panel(r.url)) as sampled:
        open_playground(page, base, "?model=nope&n=999&label=x&edit-seed=abc&colour=red&seed=7")
    notice = page.inner_text("#link-notice")
    for part in [
        f"model=nope (this service serves {PRETRAINED_NAME}, {CONDITIONAL_NAME})",
        "n=999 (Value must be less than or equal to 64)",
        "label=x (not one of any, 0, 1,",
        "edit-seed=abc (not a seed)",
        "colour (unknown here)",
    ]:
        assert part in notice
    assert query(sampled.value.url) == {
        "n": "16", "seed": "7", "temperature": "1", "nrow": "4", "prior": "fitted", "model": PRETRAINED_NAME,
    }  # fmt: skip
    assert page.inner_text("#card-model") == PRETRAINED_NAME


def test_every_control_has_a_name_and_the_panels_work_from_the_keyboard(page: Page, base: str) -> None:
    open_playground(page, base)
    unnamed = page.evaluate(
        """() => [...document.querySelectorAll("input, select, button, canvas, img")]
            .filter((e) => !e.closest("[hidden]"))
            .filter((e) => !((e.labels && [...e.labels].some((l) => l.textContent.trim()))
                || e.getAttribute("aria-label") || e.getAttribute("alt")
                || (e.tagName === "BUTTON" && e.textContent.trim())))
            .map((e) => e.id || e.outerHTML.slice(0, 80))"""
    )
    assert unnamed == []
    old = page.get_attribute("#classes-grid", "src")
    page.focus("#classes-new-seed")
    with page.expect_response(lambda r: "/sample/grid?" in r.url):
        page.keyboard.press("Enter")
    settled(page, "classes")
    assert page.get_attribute("#classes-grid", "src") != old
    page.focus("#slider")
    page.keyboard.press("End")
    expect(page.locator("#strip img.current")).to_have_attribute("alt", "step 9")
    expect(page).to_have_url(re.compile(r"[?&]at=9(&|$)"))  # the link follows the slider


def test_axe_finds_no_serious_or_critical_violation_with_every_panel_shown(page: Page, base: str) -> None:
    open_playground(page, base)  # the model picker shows: this server lists two models
    assert page.is_visible("#model-field")
    assert_accessible(page)
    # What the first look hides: a link's notice, an API error, the conditional model's class fields.
    open_playground(page, base, "?colour=red")
    drop_file(page, "notes.txt", "text/plain", b"not an image")
    page.wait_for_selector("#draw-error:not([hidden])")
    page.select_option("#model", CONDITIONAL_NAME)
    page.wait_for_selector("#draw-label-field:not([hidden])")
    page.wait_for_selector("main:not(:has(section[aria-busy]))")
    assert page.is_visible("#link-notice") and page.is_visible("#draw-error")
    assert_accessible(page)
