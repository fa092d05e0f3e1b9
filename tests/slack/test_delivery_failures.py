"""Slack failing during delivery and updates: retried, nothing lost, never a second card."""

from __future__ import annotations

from bot import cards
from tests.slack.conftest import CHANNEL, Bot, decidable


def _posts(bot: Bot) -> list:
    return [c for c in bot.slack.workspace.calls("chat.postMessage") if c.args.get("channel") == CHANNEL]


def _cards(bot: Bot, request_id: str) -> list:
    return [
        m for m in bot.slack.workspace.messages(CHANNEL, include_replies=False)
        if ((m.metadata or {}).get("event_payload") or {}).get("id") == request_id
    ]


def test_rate_limited_post_is_retried_after_retry_after(bot: Bot) -> None:
    bot.slack.faults.ratelimit("chat.postMessage", times=2, retry_after=1)
    req = bot.approvals.request(action="a", summary="s")
    bot.card(req.id, timeout=20)
    assert len(_posts(bot)) == 3  # two 429s, then the card
    assert len(_cards(bot, req.id)) == 1


def test_server_errors_during_post_and_update_are_retried(bot: Bot) -> None:
    bot.slack.faults.error("chat.postMessage", 500, times=3)
    req = bot.approvals.request(action="a", summary="s")
    bot.card(req.id, timeout=30)
    bot.slack.faults.error("chat.update", 503, times=3)
    bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    assert req.wait(timeout=10).status == "approved"
    bot.card_when(req.id, lambda m: not decidable(m), timeout=30)
    assert len(_cards(bot, req.id)) == 1


def test_a_post_whose_answer_was_lost_is_found_not_posted_again(bot: Bot) -> None:
    bot.slack.faults.drop_after("chat.postMessage")
    req = bot.approvals.request(action="a", summary="s")
    ws = bot.slack.workspace
    ws.wait_for(lambda: ws.calls("conversations.history"), 20, what="the worker to look for the lost card")
    bot.approvals.decide(req.id, "approve", by="U0ALICE")
    bot.card_when(req.id, lambda m: not decidable(m), timeout=20)
    assert len(_cards(bot, req.id)) == 1


def test_a_connection_cut_before_slack_answered_posts_once(bot: Bot) -> None:
    bot.slack.faults.drop("chat.postMessage")
    req = bot.approvals.request(action="a", summary="s")
    bot.card(req.id, timeout=20)
    assert len(_cards(bot, req.id)) == 1


def test_a_permanent_error_is_audited_and_not_retried_forever(bot: Bot, conn, prefix) -> None:
    req = bot.approvals.request(action="a", summary="s", channel="C0NOSUCH")
    from tests.helpers import events, eventually

    failed = eventually(
        lambda: [e for e in events(conn, prefix, req.id) if e["type"] == "undeliverable"], 20, "the failure"
    )
    assert failed[0]["error"] == "channel_not_found"
    assert req.status() == "pending"  # the request itself is untouched: /hitl list still shows it
