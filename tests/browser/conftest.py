"""Browser tests: Debian's Chromium, driven by Playwright, against the app served on loopback.

Without /usr/bin/chromium these tests are skipped with a notice (or fail, where
SCHOOLGATE_REQUIRE_SERVICES is set, as in CI). Screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from tests.conftest import ROOT
from tests.database import unavailable

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Without these, Chromium reaches for Google's services at start, which this network refuses.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LAPTOP: ViewportSize = {"width": 1280, "height": 860}
PHONE: ViewportSize = {"width": 390, "height": 844}

Screenshot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture(scope="session")
async def chromium() -> AsyncIterator[Browser]:
    if not CHROMIUM.exists():
        unavailable("Chromium", f"{CHROMIUM} is missing (apt-get install chromium)")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield browser
        await browser.close()


@pytest.fixture
async def context(chromium: Browser, live_server: str) -> AsyncIterator[BrowserContext]:
    context = await chromium.new_context(base_url=live_server, viewport=LAPTOP)
    context.set_default_timeout(10_000)
    yield context
    await context.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture
async def phone(chromium: Browser, live_server: str) -> AsyncIterator[BrowserContext]:
    """A second browser, 390 px wide, as on a phone."""
    context = await chromium.new_context(
        base_url=live_server,
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
    )
    context.set_default_timeout(10_000)
    yield context
    await context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Screenshot:
    """Save a full-page screenshot as a test artefact (one per database variant)."""

    async def take(page: Page, name: str) -> Path:
        variant = request.node.callspec.id if hasattr(request.node, "callspec") else "run"
        path = SCREENSHOTS / f"{name}-{variant}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(path), full_page=True)
        return path

    return take
