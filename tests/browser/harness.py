"""The browser side of the playground tests and of ``make screenshots``: Chromium, a served bundle, the page's actions.

Playwright (PyPI) drives the system's Chromium (Debian package ``chromium``) through
``executable_path``: Playwright's own browser download needs the internet, which CI lacks.
"""

from __future__ import annotations

import base64
import gzip
import io
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from axe_playwright_python.sync_playwright import Axe
from PIL import Image
from playwright.sync_api import Browser, Page, Playwright

from tests.checkout import REPO
from tests.service.helpers import PRETRAINED, PRETRAINED_NAME
from tests.service.live_server import LiveServer

NO_CHROMIUM = "no Chromium binary (apt-get install chromium, or set VAEGAN_CHROMIUM): browser tests skipped"
VIEWPORT = {"width": 1280, "height": 1000}

# A "7" in canvas pixels (the pad is 280 x 280): the top bar, then the downstroke.
SEVEN = (((80, 60), (200, 60)), ((200, 60), (130, 225)))


def mnist_digit_png(label: int) -> bytes:
    """The first embedded MNIST test digit (data/mnist, IDX files) with ``label``, as a 28 x 28 PNG."""
    labels = gzip.decompress((REPO / "data/mnist/t10k-labels-idx1-ubyte.gz").read_bytes())[8:]  # 8-byte header
    images = gzip.decompress((REPO / "data/mnist/t10k-images-idx3-ubyte.gz").read_bytes())[16:]  # 16-byte header
    index = labels.index(label)
    digit = np.frombuffer(images[index * 784 : (index + 1) * 784], np.uint8).reshape(28, 28)
    buffer = io.BytesIO()
    Image.fromarray(digit).save(buffer, format="PNG")
    return buffer.getvalue()


def chromium_path() -> str | None:
    """The Chromium to drive: $VAEGAN_CHROMIUM, else the first of chromium, chromium-browser on PATH."""
    if os.environ.get("VAEGAN_CHROMIUM"):
        return os.environ["VAEGAN_CHROMIUM"]
    return shutil.which("chromium") or shutil.which("chromium-browser")


def launch(playwright: Playwright) -> Browser:
    """Headless Chromium (Playwright passes --no-sandbox, which running as root needs)."""
    return playwright.chromium.launch(executable_path=chromium_path(), args=["--disable-gpu"])


def pretrained_version() -> str:
    return (PRETRAINED / PRETRAINED_NAME / "LATEST").read_text().strip()


def pretrained_server(
    log: Path, models_dir: Path = PRETRAINED, names: str = PRETRAINED_NAME, **settings: Any
) -> LiveServer:
    """``vaegan-serve`` on a free port of the pretrained bundle, or of ``names`` (a comma list), from ``models_dir``."""
    return LiveServer(models_dir, log, model_name=names, log_level="warning", **settings)


def publish_copy(models_dir: Path, version: str) -> None:
    """Publish the pretrained bundle into ``models_dir`` as ``version`` (folder renamed into place, then LATEST)."""
    from model_core.bundle import set_latest

    root = models_dir / PRETRAINED_NAME
    staging = root / f".tmp-{version}"
    shutil.copytree(PRETRAINED / PRETRAINED_NAME / pretrained_version(), staging)
    manifest = json.loads((staging / "manifest.json").read_text())
    (staging / "manifest.json").write_text(json.dumps({**manifest, "version": version}))
    staging.rename(root / version)
    set_latest(models_dir, PRETRAINED_NAME, version)


@dataclass
class Watch:
    """What went wrong on a page: console errors, uncaught exceptions, failed requests, error answers."""

    console: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    @classmethod
    def on(cls, page: Page) -> Watch:
        watch = cls()
        page.on("console", lambda m: watch.console.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: watch.console.append(f"uncaught: {e}"))
        page.on("requestfailed", lambda r: watch.failed.append(f"{r.url}: {r.failure}"))
        page.on("response", lambda r: watch.failed.append(f"{r.url}: {r.status}") if r.status >= 400 else None)
        return watch


def open_playground(page: Page, base: str, query: str = "") -> float:
    """Load the page (``query``: a link's), wait for every panel's first answer; ms from navigation to first grid."""
    page.set_default_timeout(20_000)
    page.goto(f"{base}/{query}")
    page.wait_for_selector("#grid:not([hidden])")
    page.wait_for_selector("#frame:not([hidden])")
    page.wait_for_selector("main:not(:has(section[aria-busy]))")  # every panel's first answer on screen
    return float(page.evaluate("performance.getEntriesByName('first-sample-grid')[0].startTime"))


def download(page: Page, button: str) -> tuple[str, bytes]:
    """Click a download button; the file name the page suggests and the file's bytes."""
    with page.expect_download() as started:
        page.click(button)
    path = started.value.path()
    return started.value.suggested_filename, Path(path).read_bytes()


def settled(page: Page, panel: str) -> None:
    """Until the panel's latest request has its answer on screen (the page marks it aria-busy until then)."""
    page.wait_for_selector(f"#{panel}:not([aria-busy])")


def draw(page: Page, strokes: tuple[tuple[tuple[float, float], ...], ...] = SEVEN) -> None:
    """Draw polylines on the pad with the mouse (canvas pixels), a press each; wait for the last one's answer."""
    box = page.locator("#pad").bounding_box()
    assert box is not None
    for stroke in strokes:
        (x, y), rest = stroke[0], stroke[1:]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in rest:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()  # each stroke's end asks for a reconstruction
    settled(page, "draw")


def pixels(page: Page, selector: str) -> np.ndarray:
    """The decoded pixels of an ``<img>`` (natural size) as (H, W, 4) uint8, read back through a canvas."""
    data_url = page.eval_on_selector(
        selector,
        """img => {
            const canvas = document.createElement("canvas");
            canvas.width = img.naturalWidth;
            canvas.height = img.naturalHeight;
            canvas.getContext("2d").drawImage(img, 0, 0);
            return canvas.toDataURL("image/png");
        }""",
    )
    png = base64.b64decode(data_url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGBA"))


def wait_new_image(page: Page, selector: str, old_src: str) -> None:
    """Until the ``<img>`` shows another source than ``old_src``, loaded and visible."""
    page.wait_for_function(
        "([sel, old]) => { const img = document.querySelector(sel);"
        " return img.src !== old && img.complete && img.naturalWidth > 0 && !img.hidden; }",
        arg=[selector, old_src],
    )


def broken_images(page: Page) -> list[str]:
    """Visible images that failed to decode (what a person would see as a broken picture)."""
    found: list[str] = page.evaluate(
        "Array.from(document.images).filter(i => !i.hidden && i.complete && i.naturalWidth === 0)"
        ".map(i => i.id || i.alt)"
    )
    return found


def drop_file(page: Page, name: str, media_type: str, data: bytes) -> None:
    """Drop a file on the drawing pad, as a person dragging it from their desktop would."""
    transfer = page.evaluate_handle(
        """([name, type, b64]) => {
            const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [name, media_type, base64.b64encode(data).decode()],
    )
    page.dispatch_event("#pad", "drop", {"dataTransfer": transfer})


def assert_accessible(page: Page) -> None:
    """axe-core finds no serious or critical violation on the page as shown; else each one's id, impact, nodes.

    axe-core comes inside the axe-playwright-python wheel and is injected through Playwright, which the page's
    CSP does not govern; nothing is fetched. Hidden elements are not scanned: call this in each state to check.
    """
    results = Axe().run(page).response
    assert "color-contrast" in {rule["id"] for rule in results["passes"]}, "axe checked no text's contrast"
    found = [
        f"{rule['id']} ({rule['impact']}): {rule['help']}; nodes: "
        + ", ".join(" ".join(map(str, node["target"])) for node in rule["nodes"])
        for rule in results["violations"]
        if rule["impact"] in ("serious", "critical")
    ]
    assert not found, "axe-core:\n" + "\n".join(found)
