"""With Redis unreachable the bot says so, in Slack, and records nothing it cannot keep.

Uses its own redis-server (never the shared one), started and stopped here; the data lives
in an append-only file so the restart brings it back for the last checks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions
from slack_sdk import WebClient

from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from bot.slack.blocks import cards
from bot.slack.blocks.cards import build_card
from bot.slack.replies import DB_DOWN, NOT_RECORDED
from hitl import Approvals
from hitl.embedded import EmbeddedRedis
from tests.conftest import make_settings
from tests.slack.conftest import CHANNEL, SECRET, TOKEN, Bot


@dataclass
class Outage:
    bot: Bot
    redis: EmbeddedRedis
    card_ts: str
    request_id: str


@pytest.fixture
def outage(slack: SlackStandIn, prefix: str, tmp_path) -> Iterator[Outage]:
    with EmbeddedRedis(persistent=True, data_dir=str(tmp_path)) as private:
        settings = make_settings(private.url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
                                 slack_api_url=slack.url, default_channel=CHANNEL, admins=["U0ALICE"])
        approvals = Approvals(settings=settings)
        client = WebClient(token=TOKEN, base_url=slack.url)
        req = approvals.request(action="deploy", summary="ship it")
        text, blocks = build_card(approvals.store.get(req.id))
        posted = client.chat_postMessage(channel=CHANNEL, text=text, blocks=blocks)
        web = build_web_app(approvals, bolt=build_app(settings, approvals=approvals, client=client),
                            signing_secret=SECRET)
        server = WebServer(web, host="127.0.0.1", port=0).start()
        try:
            yield Outage(Bot(server.url, slack, approvals, Interactions(slack.workspace)), private,
                         posted["ts"], req.id)
        finally:
            server.stop()
            approvals.close()


def test_commands_say_the_database_is_unreachable(outage: Outage) -> None:
    outage.redis.stop()
    for text in ("status", "list", f"show {outage.request_id}", "list mine", "pause"):
        reply = outage.bot.command(text)  # asserts HTTP 200
        assert reply["text"] == DB_DOWN, text
        assert reply["response_type"] == "ephemeral"


def test_a_click_that_cannot_be_recorded_says_so_and_a_retry_works(outage: Outage) -> None:
    bot, ws = outage.bot, outage.bot.slack.workspace
    outage.redis.stop()
    for action in (cards.ACTION_APPROVE, cards.ACTION_REJECT):
        status, _ = bot.interact(bot.interactions.click(CHANNEL, outage.card_ts, action, user_id="U0BOB"))
        assert status == 200
    notes = ws.wait_for(lambda: (e := ws.ephemerals(user="U0BOB")) and len(e) >= 2 and e, 15.0,
                        what="two notes to Bob")
    assert all(n.text == NOT_RECORDED for n in notes)
    assert ws.top_view("U0BOB") is None
    outage.redis.start()
    assert bot.approvals.store.get(outage.request_id).status.value == "pending"  # nothing was recorded
    status, _ = bot.interact(bot.interactions.click(CHANNEL, outage.card_ts, cards.ACTION_APPROVE, user_id="U0BOB"))
    assert status == 200
    assert bot.approvals.get(outage.request_id).wait(timeout=10).by == ["U0BOB"]


def test_a_form_sent_while_the_database_is_down_shows_the_decision_was_not_recorded(outage: Outage) -> None:
    bot = outage.bot
    status, _ = bot.interact(bot.interactions.click(CHANNEL, outage.card_ts, cards.ACTION_REJECT, user_id="U0BOB"))
    assert status == 200
    from bot.slack.blocks import views

    view = bot.open_view("U0BOB", views.VIEW_REJECT)
    outage.redis.stop()
    status, body = bot.interact(bot.interactions.submit(view.id, {"reason": "wrong customer"}))
    assert status == 200
    assert json.loads(body) == {"response_action": "errors", "errors": {"reason": NOT_RECORDED}}
    outage.redis.start()
    assert bot.approvals.store.get(outage.request_id).status.value == "pending"
