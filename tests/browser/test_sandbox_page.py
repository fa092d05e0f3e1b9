"""The sandbox page in a real browser: what a team evaluating hitl-router clicks first.

Every click goes from Chromium to the page API, from there signed to the real Bolt app,
and the result comes back through the stand-in's workspace over the event stream. No
sleeps: Playwright's ``expect`` waits for the page, ``Workspace.wait_for`` for the stand-in.
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.browser.chromium import skip_reason

_REASON = skip_reason()
if _REASON:
    pytest.skip(_REASON, allow_module_level=True)

from hitl_sandbox import demo_agent  # noqa: E402
from hitl_sandbox.dev import DevStack  # noqa: E402
from playwright.sync_api import Page, expect  # noqa: E402

from hitl.client import RequestHandle  # noqa: E402
from hitl.models import Decision  # noqa: E402
from tests.browser.support import card_locator, card_of, open_sandbox  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "docs" / "sandbox.png"


class Waiter:
    """An agent blocked in ``req.wait()`` on another thread, as a real agent would be."""

    def __init__(self, handle: RequestHandle, timeout: float = 30.0) -> None:
        self.decision: Decision | None = None
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(handle, timeout), daemon=True)
        self._thread.start()

    def _run(self, handle: RequestHandle, timeout: float) -> None:
        try:
            self.decision = handle.wait(timeout=timeout)
        except BaseException as exc:  # handed to the test thread
            self.error = exc

    def result(self, timeout: float = 15.0) -> Decision:
        """The decision the agent got (the thread returns as soon as Redis says so)."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the waiting client did not return"
        if self.error is not None:
            raise self.error
        assert self.decision is not None
        return self.decision


def _gate(stack: DevStack, **overrides: Any) -> RequestHandle:
    kwargs: dict[str, Any] = dict(
        action="send_email",
        summary="Send the overdue-invoice reminder to 200 customers",
        params={"template": "overdue", "recipients": 200},
        risk="high",
        reversible=True,
        requested_by="U0DAVE",
        mode="gate",
        timeout=600,
    )
    kwargs.update(overrides)
    return stack.approvals.request(**kwargs)


def _save_screenshot(page: Page) -> None:
    """The README's picture: written when missing or when HITL_UPDATE_SCREENSHOT=1.

    Taken on every run either way (so it keeps working); it is only kept in docs/ on
    request, so an ordinary test run leaves the work tree as it was.
    """
    shot = page.screenshot(full_page=False)
    assert shot[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("HITL_UPDATE_SCREENSHOT") == "1" or not SCREENSHOT.exists():
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        SCREENSHOT.write_bytes(shot)


def test_card_appears_and_approve_returns_to_the_waiting_client(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack)
    filed = {sample.name: handle for sample, handle in demo_agent.file_requests(stack.approvals, run="run-41")}
    email = filed["email"]
    waiter = Waiter(email)

    card = card_locator(page, card_of(stack, email.id))
    expect(card).to_contain_text("Approval needed: send_email")
    expect(card).to_contain_text("Send the overdue-invoice reminder to 200 customers")
    for name, handle in filed.items():
        if name != "deploy":  # the deploy goes to #eng-leads
            expect(card_locator(page, card_of(stack, handle.id))).to_be_visible()
    expect(page.locator('#channel-list [data-channel="C0ENGLEADS"] .badge')).to_have_text("1")

    card.get_by_role("button", name="Approve").click()
    confirm = page.get_by_role("alertdialog")
    expect(confirm).to_contain_text("This cannot be undone")  # irreversible: Slack's confirm dialog
    confirm.get_by_role("button", name="Approve").click()

    expect(card).to_contain_text("Approved: send_email")
    expect(card).to_contain_text("Approved by @alice")
    expect(card.get_by_role("button", name="Approve")).to_have_count(0)
    decision = waiter.result()
    assert decision.status == "approved"
    assert decision.approved is True
    assert decision.by == ["U0ALICE"]


def test_quorum_needs_two_different_approvers(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack)
    filed = {sample.name: handle for sample, handle in demo_agent.file_requests(stack.approvals, run="run-42")}
    deploy = filed["deploy"]
    waiter = Waiter(deploy)
    card = card_locator(page, card_of(stack, deploy.id))
    for handle in filed.values():
        card_of(stack, handle.id)

    page.locator('#channel-list [data-channel="C0ENGLEADS"]').click()
    expect(card).to_contain_text("Approval needed: deploy")
    expect(card).to_contain_text("@leads")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("1 of 2 approvals: @alice")
    expect(card.get_by_role("button", name="Approve")).to_be_visible()
    card.get_by_role("button", name="Approve").click()  # twice by one person counts once
    expect(page.locator("#messages .msg.ephemeral").last).to_contain_text("Nothing changed")
    page.locator("#messages .msg.ephemeral").last.get_by_role("button", name="Dismiss").click()
    page.mouse.move(1, 1)
    _save_screenshot(page)

    page.get_by_label("Acting as").select_option("U0BOB")
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("Approved: deploy")
    decision = waiter.result()
    assert decision.status == "approved"
    assert decision.by == ["U0ALICE", "U0BOB"]


def test_reject_opens_the_modal_and_the_reason_reaches_the_client(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack)
    handle = _gate(stack)
    waiter = Waiter(handle)
    card = card_locator(page, card_of(stack, handle.id))
    card.get_by_role("button", name="Reject").click()

    modal = page.get_by_role("dialog", name="Reject request")
    expect(modal).to_be_visible()
    reason = modal.get_by_label("Reason")
    expect(reason).to_be_focused()  # focus_on_load
    # Blank reasons pass Slack's client check but the app answers response_action=errors.
    reason.fill("   ")
    modal.get_by_role("button", name="Reject").click()
    expect(modal.get_by_role("alert")).to_contain_text("Please say why")
    expect(modal).to_be_visible()

    why = "Only email customers more than 30 days overdue & <not> the rest"
    reason.fill(why)
    modal.get_by_role("button", name="Reject").click()
    expect(modal).to_be_hidden()
    expect(card).to_contain_text("Rejected: send_email")
    expect(card).to_contain_text("Rejected by @alice")
    expect(card).to_contain_text("Only email customers more than 30 days overdue & <not> the rest")

    decision = waiter.result()
    assert decision.status == "rejected"
    assert decision.approved is False
    assert decision.comment == why


def test_hitl_status_typed_in_the_page_shows_the_queue(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack, user="U0BOB")
    first = _gate(stack)
    second = _gate(stack, action="deploy", summary="Deploy v1.2 to production", channel="C0ENGLEADS")
    expect(card_locator(page, card_of(stack, first.id))).to_be_visible()
    card_of(stack, second.id)

    box = page.get_by_role("textbox", name="Message")
    box.fill("/hitl status")
    box.press("Enter")

    reply = page.locator("#messages .msg.ephemeral").last
    expect(reply).to_contain_text("Only visible to you")
    expect(reply).to_contain_text("Approval queue")
    expect(reply).to_contain_text("Waiting")
    expect(reply).to_contain_text("#agent-approvals: 1")
    expect(reply).to_contain_text("#eng-leads: 1")
    expect(box).to_have_value("")
    # Only Bob sees it: nothing was posted to the channel, and Alice's view has no reply.
    assert all(not m.user.startswith("U0BOB") for m in stack.stand_in.workspace.messages("C0APPROVALS"))
    page.get_by_label("Acting as").select_option("U0ALICE")
    expect(page.locator("#messages .msg.ephemeral")).to_have_count(0)

    box.fill("/nope")
    box.press("Enter")
    expect(page.locator("#messages .msg.notice").last).to_contain_text("/nope is not a valid command")


def test_acting_as_the_requester_is_refused(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack)
    handle = _gate(stack, requested_by="U0DAVE")
    card = card_locator(page, card_of(stack, handle.id))
    expect(card).to_contain_text("Approval needed: send_email")

    page.get_by_label("Acting as").select_option("U0DAVE")
    expect(page).to_have_url(re.compile(r"[?&]as=U0DAVE"))
    card.get_by_role("button", name="Approve").click()
    refusal = page.locator("#messages .msg.ephemeral").last
    expect(refusal).to_contain_text("Only visible to you")
    expect(refusal).to_contain_text("Nothing changed")
    expect(card).to_contain_text("Approval needed: send_email")
    assert handle.status() == "pending"

    # Someone else may: Bob approves, and the same card turns green for everyone.
    page.get_by_label("Acting as").select_option("U0BOB")
    expect(page.locator("#messages .msg.ephemeral")).to_have_count(0)  # Dave's note was Dave's
    card.get_by_role("button", name="Approve").click()
    expect(card).to_contain_text("Approved by @bob")
    assert handle.wait(timeout=5).by == ["U0BOB"]


def test_block_kit_and_mrkdwn_render_safely(stack: DevStack, page: Page) -> None:
    """Formatting comes out as Slack shows it; agent text never becomes markup."""
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    open_sandbox(page, stack, channel="C0GENERAL")
    workspace = stack.stand_in.workspace
    text = (
        "*bold* _italic_ ~gone~ `code` <https://example.com/docs?a=1&amp;b=2|the docs> "
        "<@U0BOB> <@U0ALICE> <!subteam^S0LEADS> <#C0ENGLEADS> "
        "<!date^1700000000^{date_short} at {time}|14 Nov 2023> <javascript:alert(1)|click>\n"
        ">quoted line\n```block of code```"
    )
    parent = workspace.post_message(
        "C0GENERAL",
        "fallback",
        blocks=[
            {"type": "header", "text": {"type": "plain_text", "text": "A header"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "divider"},
            {"type": "section", "fields": [{"type": "mrkdwn", "text": "*Risk*\nHigh"}]},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": "a context line"}]},
        ],
    )
    message = page.locator(f'#messages .msg[data-ts="{parent.ts}"]')
    expect(message.locator(".b-header")).to_have_text("A header")
    expect(message.locator("strong").first).to_have_text("bold")
    expect(message.locator("em").first).to_have_text("italic")
    expect(message.locator("del")).to_have_text("gone")
    expect(message.locator("code").first).to_have_text("code")
    expect(message.locator("pre")).to_have_text("block of code")
    expect(message.locator("blockquote")).to_have_text("quoted line")
    link = message.get_by_role("link", name="the docs")
    expect(link).to_have_attribute("href", "https://example.com/docs?a=1&b=2")
    expect(message.locator(".mention", has_text="@bob")).to_be_visible()
    expect(message.locator(".mention.me")).to_have_text("@alice")
    expect(message.locator(".mention", has_text="@leads")).to_be_visible()
    expect(message.locator(".mention", has_text="#eng-leads")).to_be_visible()
    expect(message.locator("time.date")).to_have_text("Nov 14, 2023 at 22:13")  # London, en-GB
    expect(message.get_by_role("link", name="click")).to_have_count(0)  # no javascript: links
    expect(message.locator("hr")).to_have_count(1)
    expect(message.locator(".b-context")).to_have_text("a context line")

    # A thread: the reply shows under its parent, in the thread pane.
    workspace.post_message("C0GENERAL", "a reply in the thread", thread_ts=parent.ts, user="U0BOB")
    message.get_by_role("button", name="1 reply").click()
    expect(page.locator("#thread-messages")).to_contain_text("a reply in the thread")

    # Hostile agent text on a real card: shown as typed, never as HTML or pings.
    hostile = "<img src=x onerror=alert(1)> <script>alert(2)</script> <!channel> *not bold*"
    handle = _gate(stack, summary=hostile, channel="C0GENERAL")
    card = card_locator(page, card_of(stack, handle.id))
    expect(card).to_contain_text("<img src=x onerror=alert(1)> <script>alert(2)</script> <!channel>")
    expect(page.locator("#messages img")).to_have_count(0)
    expect(page.locator("#messages script")).to_have_count(0)
    expect(card.locator(".mention.broadcast")).to_have_count(0)
    assert alerts == []


def test_app_home_lists_what_waits_for_the_viewer(stack: DevStack, page: Page) -> None:
    open_sandbox(page, stack, user="U0BOB")
    handle = _gate(stack, action="deploy", summary="Deploy v1.2 to production")
    card_of(stack, handle.id)
    page.locator('[data-app="hitl-bot"]').click()
    home = page.locator("#home")
    expect(home).to_contain_text("Waiting for you")
    expect(home).to_contain_text("Deploy v1.2 to production")
    home.get_by_role("button", name="Approve").click()
    card = card_locator(page, card_of(stack, handle.id))
    page.locator('#channel-list [data-channel="C0APPROVALS"]').click()
    expect(card).to_contain_text("Approved by @bob")
    # Slack sends app_home_opened each time the tab opens; the app redraws it.
    page.locator('[data-app="hitl-bot"]').click()
    expect(home).to_contain_text("Nothing is waiting for you")
