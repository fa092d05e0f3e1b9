"""Browser tests: the sandbox page in headless Chromium against the whole product.

Each test gets what ``hitl dev --no-demo`` runs, built from the same pieces
(``hitl_sandbox.dev.start_stack``): the Slack stand-in serving the page, the real Bolt app over
HTTP, a real ``hitl worker`` process, on the suite's Redis under the test's own prefix.
The browser is started once per test module.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from hitl_sandbox.dev import DevStack, running_stack

from tests.browser.chromium import LAUNCH_ARGS, find_chromium, skip_reason

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

VIEWPORT = {"width": 1280, "height": 800}
# Dates on cards are rendered in the browser's zone; fix it so assertions can name times.
TIMEZONE = "Europe/London"
# Playwright's expect() waits up to this long for the page to catch up (ms).
EXPECT_TIMEOUT = 10_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (starting it costs about a second).

    Not per session: Playwright's sync API keeps an asyncio loop running on the main
    thread while it is open, and later tests that call ``asyncio.run()`` would fail.
    """
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=EXPECT_TIMEOUT)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def stack(redis_url: str, prefix: str) -> Iterator[DevStack]:
    """The product as ``hitl dev --no-demo`` runs it, on a free port, isolated by prefix."""
    with running_stack(
        port=0, redis_url=redis_url, prefix=prefix, isolated=True, worker_env={"HITL_TIMER_TICK": "0.05", "HITL_WEBHOOK_FEED_BLOCK": "0.05"}
    ) as running:
        yield running


@pytest.fixture
def page(browser: Browser, stack: DevStack) -> Iterator[Page]:
    """A fresh browser tab (own storage) at Slack's size; fails the test on any JS error."""
    context = browser.new_context(viewport=VIEWPORT, timezone_id=TIMEZONE, locale="en-GB")
    tab = context.new_page()
    errors: list[str] = []
    tab.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        yield tab
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"
