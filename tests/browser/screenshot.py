"""``make screenshots``: the playground after a person's first minute, written to docs/img/playground.png.

Serves both published bundles (the mnist32 VAE-GAN first, so shown; the conditional one in the model
picker), drops an MNIST "3" and draws a "7", walks the path between them, moves the 7 towards an 8 in
the edit panel, and takes a full-page screenshot. Also measures the time from navigation to the first
sample grid over a few cold loads (a new browser context each), and prints it with the page's size.

    python -m tests.browser.screenshot [OUT.png] [--loads 5]
"""

from __future__ import annotations

import argparse
import gzip
import io
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from service.playground import STATIC_DIR
from tests.browser.harness import (
    NO_CHROMIUM,
    REPO,
    VIEWPORT,
    chromium_path,
    draw,
    drop_file,
    launch,
    mnist_digit_png,
    open_playground,
    pretrained_server,
    settled,
)
from tests.service.helpers import CONDITIONAL_NAME, PRETRAINED_NAME


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=REPO / "docs/img/playground.png")
    parser.add_argument("--loads", type=int, default=5, help="cold page loads timed to the first sample grid")
    return parser.parse_args(argv)


def first_minute(page: Page, base: str) -> None:
    """Drop a digit as the path's start, draw another as its end and edit it, put the path's slider half way."""
    open_playground(page, base)
    drop_file(page, "three.png", "image/png", mnist_digit_png(3))
    settled(page, "draw")
    page.click("#to-a")
    expect(page.locator("#end-a")).to_have_text("upload three.png")
    page.click("#clear")
    draw(page)
    page.click("#to-b")
    expect(page.locator("#end-b")).to_have_text("drawing")
    settled(page, "interpolate")
    page.click("#to-edit")
    settled(page, "edit")
    page.select_option("#edit-from", "7")
    expect(page.locator("#edit-source")).to_have_text("drawing: class 7")
    page.focus("#slider")
    page.keyboard.press("Home")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    expect(page.locator("#strip img.current")).to_have_attribute("alt", "step 4")
    page.locator("#slider").blur()  # no focus ring in the picture


def time_first_grid(browser: Browser, base: str, loads: int) -> list[float]:
    """Milliseconds from navigation to the first sample grid, one cold load (new context) each."""
    times = []
    for _ in range(loads):
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        times.append(open_playground(context.new_page(), base))
        context.close()
    return times


def save_png(png: bytes, out: Path) -> None:
    """The screenshot with a 256-colour palette: the page is flat colours and grey digits, a third of the bytes."""
    out.parent.mkdir(parents=True, exist_ok=True)
    Image.open(io.BytesIO(png)).convert("RGB").quantize(256).save(out, optimize=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if chromium_path() is None:
        sys.stderr.write(NO_CHROMIUM + "\n")
        return 2
    with (
        tempfile.TemporaryDirectory() as tmp,
        pretrained_server(Path(tmp) / "serve.log", names=f"{PRETRAINED_NAME},{CONDITIONAL_NAME}") as server,
        sync_playwright() as playwright,
    ):
        browser = launch(playwright)
        times = time_first_grid(browser, server.base, args.loads)
        context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = context.new_page()
        first_minute(page, server.base)
        save_png(page.screenshot(full_page=True), args.out)
        browser.close()
    files = list(STATIC_DIR.iterdir())
    size = sum(p.stat().st_size for p in files)
    zipped = sum(len(gzip.compress(p.read_bytes(), 9)) for p in files)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"page: {size} bytes, {zipped} gzipped (html + css + js, {len(files)} files, each gzipped alone)")
    spread = f"{min(times):.0f}-{max(times):.0f} ms over {len(times)} cold loads"
    print(f"first sample grid: median {statistics.median(times):.0f} ms after navigation ({spread})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
