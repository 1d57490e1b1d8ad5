"""Fixtures of the browser tests: headless Chromium through Playwright, one fresh page per test.

Every test here skips, with one line in the summary, when no Chromium binary exists; a missing
``playwright`` package is a failure (it is in the dev extra).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser.harness import NO_CHROMIUM, VIEWPORT, chromium_path, launch

expect.set_options(timeout=20_000)  # the machine is small and shared: waits are generous, passing tests fast


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Without Chromium every browser test skips with one reason: pytest folds them into one summary line."""
    if chromium_path() is not None:
        return
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here):
            item.add_marker(pytest.mark.skip(reason=NO_CHROMIUM))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One Chromium per test module (Playwright's loop is closed again before other modules run)."""
    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A page in a context of its own (no cache or storage shared between tests)."""
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    yield context.new_page()
    context.close()
