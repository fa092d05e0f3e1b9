"""The dashboard in a real browser, opened the way a user opens it: `/hitl dashboard`
typed in the sandbox, the private link clicked, then watched while a decision lands.

The stack is `hitl dev --no-demo` (stand-in, Bolt app on uvicorn, a real worker). The
seeded history is filed and decided through the client; the Slack figures come from the
worker's real calls to the stand-in, one of them answered 429.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import skip_reason

_REASON = skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

from hitl_sandbox.dev import DevStack  # noqa: E402
from hitl_sandbox.workspace import TEAM_ID, Message  # noqa: E402
from playwright.sync_api import Browser, Page, expect  # noqa: E402

from bot import dashauth  # noqa: E402
from bot.dashauth import TokenKind  # noqa: E402
from tests.browser.conftest import TIMEZONE  # noqa: E402
from tests.browser.support import open_sandbox  # noqa: E402
from tests.helpers import eventually  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "dashboard.png"
DASHBOARD_VIEWPORT = {"width": 1400, "height": 1000}


def _seed(stack: DevStack) -> dict[str, str]:
    """A small history: 2 deploys approved, 1 rejected, 1 email vetoed, 2 requests waiting."""
    a = stack.approvals
    stack.stand_in.faults.ratelimit("chat.postMessage", times=1, retry_after=1)
    ids = {}
    for n in range(3):
        ids[f"deploy{n}"] = a.request(action="deploy", summary=f"Deploy v1.{n}", mode="gate").id
    ids["email"] = a.request(action="send_email", summary="Mail 200 customers", mode="override", window=600).id
    ids["wait1"] = a.request(action="deploy", summary="Deploy v2.0", mode="gate").id
    ids["wait2"] = a.request(action="send_email", summary="Mail 3 customers", mode="gate", channel="C0ENGLEADS").id
    a.decide(ids["deploy0"], "approve", by="U0BOB")
    a.decide(ids["deploy1"], "approve", by="U0CAROL")
    a.decide(ids["deploy2"], "reject", by="U0BOB", comment="not on a Friday")
    a.decide(ids["email"], "veto", by="U0CAROL", comment="wrong list")
    # Filed in a burst, the waiting ones may go out on a digest card (the Slack figures
    # are what matters here); once both are on screen, the 429 has been answered.
    for key in ("wait1", "wait2"):
        _on_screen(stack, ids[key], timeout=30)
    return ids


def _on_screen(stack: DevStack, request_id: str, timeout: float) -> Message:
    """The message showing the request: its own card, or a digest card listing it."""
    workspace = stack.stand_in.workspace

    def find() -> Message | None:
        for channel in ("C0APPROVALS", "C0ENGLEADS"):
            for message in workspace.messages(channel, include_replies=False):
                payload: dict[str, Any] = (message.metadata or {}).get("event_payload") or {}
                if payload.get("id") == request_id or request_id in (payload.get("ids") or []):
                    return message
        return None

    return workspace.wait_for(find, timeout, what=f"a card showing {request_id}")


def _open_from_slack(page: Page, stack: DevStack) -> Page:
    """Type /hitl dashboard in the sandbox and follow the private link it answers with."""
    open_sandbox(page, stack)
    box = page.get_by_role("textbox", name="Message")
    box.fill("/hitl dashboard")
    box.press("Enter")
    reply = page.locator("#messages .msg.ephemeral").last
    expect(reply).to_contain_text("a link only you can see, valid for 10 minutes")
    with page.context.expect_page() as opened:
        reply.get_by_role("link", name="Open the hitl dashboard").click()
    dash = opened.value
    dash.wait_for_load_state()
    expect(dash).to_have_url(stack.bot.base_url + "/dashboard")  # the token left the address bar
    return dash


def test_dashboard_opened_from_slack_shows_the_history_and_updates_live(
    browser: Browser, stack: DevStack
) -> None:
    ids = _seed(stack)
    context = browser.new_context(viewport=DASHBOARD_VIEWPORT, timezone_id=TIMEZONE, locale="en-GB")
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        dash = _open_from_slack(page, stack)
        dash.on("pageerror", lambda exc: errors.append(str(exc)))
        tid = dash.get_by_test_id

        expect(tid("pending-total")).to_have_text("2")
        expect(tid("pending-C0APPROVALS-gate")).to_have_text("1")
        expect(tid("pending-C0ENGLEADS-gate")).to_have_text("1")
        expect(tid(f"waiting-{ids['wait1']}")).to_contain_text("deploy")
        expect(tid("final-approved")).to_have_text("2")
        expect(tid("final-rejected")).to_have_text("1")
        expect(tid("final-vetoed")).to_have_text("1")
        expect(tid("decided-deploy")).to_have_text("3")
        expect(tid("decided-send_email")).to_have_text("1")
        expect(tid("crit-deploy-decisions")).to_contain_text("3 of 100")
        expect(tid("crit-deploy-approved_unedited")).to_contain_text("67%")
        expect(tid("why-deploy")).to_contain_text("needs 97 more decisions")
        expect(tid("slack-ratelimited")).to_have_text("1")
        expect(dash.locator("#decision-time svg")).to_be_visible()
        expect(dash.locator("#outcomes svg")).to_be_visible()

        # A decision lands: the page follows without a reload (the marker survives).
        dash.evaluate("window.__sameDocument = true")
        stack.approvals.decide(ids["wait1"], "approve", by="U0BOB")
        expect(tid("pending-total")).to_have_text("1")
        expect(tid("final-approved")).to_have_text("3")
        expect(tid("decided-deploy")).to_have_text("4")
        expect(tid(f"waiting-{ids['wait1']}")).to_have_count(0)
        assert dash.evaluate("window.__sameDocument") is True
        _save_screenshot(dash)
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def _save_screenshot(page: Page) -> None:
    """The README's picture: kept when missing or when HITL_UPDATE_SCREENSHOT=1."""
    shot = page.screenshot(full_page=True)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HITL_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)


def _refused(page: Page, stack: DevStack, query: str, status: int, title: str) -> None:
    resp = page.goto(stack.bot.base_url + "/dashboard" + query)
    assert resp is not None and resp.status == status
    expect(page.get_by_test_id("refused")).to_have_text(title)
    assert "Traceback" not in page.content()
    expect(page.locator("#queue")).to_have_count(0)


def test_missing_expired_forged_and_misdirected_tokens_are_refused(page: Page, stack: DevStack) -> None:
    key = dashauth.signing_key(stack.approvals.settings)
    assert key is not None
    _refused(page, stack, "", 401, "Open the dashboard from Slack")
    expired = dashauth.mint(key, TEAM_ID, "U0ALICE", TokenKind.LINK, 600, now=time.time() - 601)
    _refused(page, stack, f"?token={expired}", 401, "This link has expired")
    other_team = dashauth.mint(key, "T0ELSEWHERE", "U0ALICE", TokenKind.LINK, 600)
    _refused(page, stack, f"?token={other_team}", 403, "Wrong workspace")
    # HITL_ADMINS is U0ALICE in the sandbox: Bob's token (however it was made) is refused.
    bob = dashauth.mint(key, TEAM_ID, "U0BOB", TokenKind.LINK, 600)
    _refused(page, stack, f"?token={bob}", 403, "Not for you")
    forged = dashauth.mint(b"not the server's key", TEAM_ID, "U0ALICE", TokenKind.LINK, 600)
    _refused(page, stack, f"?token={forged}", 401, "This link is not valid")
    good = dashauth.mint(key, TEAM_ID, "U0ALICE", TokenKind.LINK, 600)
    body, _, sig = good.partition(".")
    as_bob = dashauth.mint(key, TEAM_ID, "U0BOB", TokenKind.LINK, 600).partition(".")[0]
    _refused(page, stack, f"?token={as_bob}.{sig}", 401, "This link is not valid")  # claims swapped
    # A link is not a session: the cookie must come from the server's own exchange.
    page.context.add_cookies([{"name": dashauth.COOKIE, "value": good, "url": stack.bot.base_url + "/dashboard"}])
    _refused(page, stack, "", 401, "This link is not valid")
    # The good link itself works, and its session then serves the panels.
    page.context.clear_cookies()
    resp = page.goto(stack.bot.base_url + f"/dashboard?token={body}.{sig}")
    assert resp is not None and resp.status == 200
    expect(page.locator("#queue")).to_contain_text("Queue")


def test_hitl_dashboard_for_someone_not_allowed_gives_no_link(page: Page, stack: DevStack) -> None:
    open_sandbox(page, stack, user="U0BOB")
    box = page.get_by_role("textbox", name="Message")
    box.fill("/hitl dashboard")
    box.press("Enter")
    reply = page.locator("#messages .msg.ephemeral").last
    expect(reply).to_contain_text("The dashboard is open to the people in HITL_DASHBOARD_USERS")
    expect(reply.get_by_role("link")).to_have_count(0)


def test_metrics_endpoint_of_the_sandbox(stack: DevStack) -> None:
    """`make demo` users can point Prometheus at the bot."""
    import urllib.request

    stack.approvals.request(action="deploy", summary="Deploy", mode="gate")
    text = eventually(
        lambda: urllib.request.urlopen(stack.bot.base_url + "/metrics", timeout=10).read().decode(), 10, "metrics"
    )
    assert 'hitl_requests_created_total{action="deploy",mode="gate"} 1.0' in text
