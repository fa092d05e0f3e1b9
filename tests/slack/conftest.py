"""The real Bolt app over HTTP, signed like Slack, against the Slack stand-in.

`bot` starts: the stand-in (Slack's Web API), the Bolt app inside `hitl bot`'s ASGI app
on uvicorn, and a real `hitl worker` process that posts and updates cards.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions, SignedRequest, signed_command, signed_event, signed_interaction
from hitl_sandbox.workspace import Message
from slack_sdk import WebClient

from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from hitl import Approvals
from tests.conftest import make_settings
from tests.helpers import start_worker, stop

SECRET = "test-signing-secret"
TOKEN = "xoxb-test-token"
CHANNEL = "C0APPROVALS"


@dataclass
class Bot:
    url: str
    slack: SlackStandIn
    approvals: Approvals
    interactions: Interactions

    # -- sending what Slack sends -------------------------------------------------------
    def send(self, signed: SignedRequest) -> tuple[int, str]:
        req = urllib.request.Request(self.url, data=signed.body, headers=signed.headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def interact(self, payload: dict[str, Any]) -> tuple[int, str]:
        return self.send(signed_interaction(SECRET, payload))

    def click(self, request_id: str, action_id: str, user: str = "U0ALICE") -> tuple[int, str]:
        card = self.card(request_id)
        return self.interact(self.interactions.click(card.channel, card.ts, action_id, user_id=user))

    def command(self, text: str, user: str = "U0ALICE") -> dict[str, Any]:
        status, body = self.send(signed_command(SECRET, self.interactions.command("/hitl", text, user_id=user)))
        assert status == 200, body
        return json.loads(body)

    def event(self, payload: dict[str, Any]) -> tuple[int, str]:
        return self.send(signed_event(SECRET, payload))

    # -- reading what Slack shows -------------------------------------------------------
    def card(self, request_id: str, timeout: float = 10.0) -> Message:
        """The request's card, once the worker has posted it."""
        ws = self.slack.workspace
        return ws.wait_for(lambda: self._find(request_id), timeout, what=f"card of {request_id}")

    def _find(self, request_id: str) -> Message | None:
        for ch in (CHANNEL, "C0ENGLEADS", "C0GENERAL"):
            for msg in self.slack.workspace.messages(ch, include_replies=False):
                payload = (msg.metadata or {}).get("event_payload") or {}
                if payload.get("id") == request_id or request_id in (payload.get("ids") or []):
                    return msg
        return None

    def card_when(self, request_id: str, check, timeout: float = 10.0) -> Message:
        """Wait until the card satisfies `check` (the worker updates it in place)."""

        def ready() -> Message | None:
            msg = self._find(request_id)
            return msg if msg is not None and check(msg) else None

        return self.slack.workspace.wait_for(ready, timeout, what=f"card of {request_id} to change")

    def ephemeral_for(self, user: str, timeout: float = 5.0) -> str:
        ws = self.slack.workspace
        found = ws.wait_for(lambda: ws.ephemerals(user=user), timeout, what=f"an ephemeral for {user}")
        return found[-1].text

    def open_view(self, user: str, callback_id: str, timeout: float = 5.0):
        ws = self.slack.workspace
        def top():
            view = ws.top_view(user)
            return view if view is not None and view.callback_id == callback_id else None

        return ws.wait_for(top, timeout, what=f"a {callback_id} view for {user}")


def buttons(msg: Message) -> set[str]:
    """The action ids of the card's buttons."""
    return {
        e.get("action_id") for b in msg.blocks or [] if b.get("type") == "actions" for e in b["elements"]
    }


def decidable(msg: Message) -> bool:
    """Whether the card still offers a decision."""
    from bot.slack.blocks import cards

    deciding = {cards.ACTION_APPROVE, cards.ACTION_REJECT, cards.ACTION_EDIT, cards.ACTION_VETO,
                cards.ACTION_CONFIRM, cards.ACTION_WOULD_APPROVE, cards.ACTION_WOULD_REJECT}
    return bool(buttons(msg) & deciding)


def card_text(msg: Message) -> str:
    """Every text of a card, joined: what a reviewer reads."""
    return json.dumps(msg.blocks, ensure_ascii=False)


@pytest.fixture
def slack() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=TOKEN) as stand_in:
        yield stand_in


@pytest.fixture
def bot(redis_url: str, prefix: str, slack: SlackStandIn) -> Iterator[Bot]:
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
        slack_api_url=slack.url, default_channel=CHANNEL, admins=["U0ALICE"],
    )
    approvals = Approvals(settings=settings)
    client = WebClient(token=TOKEN, base_url=slack.url)
    app = build_app(settings, approvals=approvals, client=client)
    web = build_web_app(approvals, bolt=app, signing_secret=SECRET)
    server = WebServer(web, host="127.0.0.1", port=0).start()
    worker = start_worker(
        redis_url, prefix, SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.url, HITL_DEFAULT_CHANNEL=CHANNEL,
        HITL_TIMER_LEASE="2",
    )
    try:
        yield Bot(server.url, slack, approvals, Interactions(slack.workspace))
    finally:
        stop(worker)
        server.stop()
        approvals.close()
