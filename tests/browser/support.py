"""Helpers for the browser tests: open the page, find a request's card in the stand-in and on the page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hitl_sandbox.dev import DevStack
from hitl_sandbox.workspace import Message

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


def open_sandbox(page: Page, stack: DevStack, user: str = "U0ALICE", channel: str | None = None) -> None:
    """Load the page acting as ``user`` and wait until it is live."""
    from playwright.sync_api import expect

    query = f"?as={user}" + (f"&channel={channel}" if channel else "")
    page.goto(stack.page_url + query)
    expect(page.locator("#conn")).to_have_text("● live")


def card_of(stack: DevStack, request_id: str, timeout: float = 15.0) -> Message:
    """The request's card once the worker has posted it (found by its message metadata)."""
    workspace = stack.stand_in.workspace

    def find() -> Message | None:
        for channel in ("C0APPROVALS", "C0ENGLEADS", "C0GENERAL"):
            for message in workspace.messages(channel, include_replies=False):
                payload: dict[str, Any] = (message.metadata or {}).get("event_payload") or {}
                if payload.get("id") == request_id:
                    return message
        return None

    return workspace.wait_for(find, timeout, what=f"the card of {request_id}")


def card_locator(page: Page, message: Message) -> Locator:
    """The card's node on the page (keyed by its ts, which survives chat.update)."""
    return page.locator(f'#messages .msg[data-ts="{message.ts}"]')
