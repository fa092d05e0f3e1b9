"""Slack failing during delivery and updates: retried, nothing lost, never a second card."""

from __future__ import annotations

import json
import signal

from bot.slack.blocks import cards
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


def test_a_worker_killed_while_posting_leaves_one_card_that_shows_the_decision(
    redis_url: str, prefix: str, slack
) -> None:
    """SIGKILL while Slack holds chat.postMessage: the card was made but nobody heard. The
    next worker finds it by its metadata instead of posting a second one, and keeps it in
    step: after approval it shows the decision, with no live buttons."""
    from hitl import Approvals
    from tests.conftest import make_settings
    from tests.helpers import signal_group, start_worker, stop
    from tests.slack.conftest import TOKEN, buttons

    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url, "HITL_DEFAULT_CHANNEL": CHANNEL,
           "HITL_TIMER_LEASE": "2"}
    held = slack.faults.hold("chat.postMessage")
    first = start_worker(redis_url, prefix, **env)
    approvals = Approvals(settings=make_settings(redis_url, prefix))
    second = None
    try:
        req = approvals.request(action="a", summary="killed mid-post")
        assert held.arrived.wait(20), "the worker never posted"
        signal_group(first, signal.SIGKILL)
        first.wait()
        held.release()  # Slack finishes the post; its answer goes nowhere
        ws = slack.workspace
        ws.wait_for(lambda: [m for m in ws.messages(CHANNEL, include_replies=False)], 10, what="the card")
        second = start_worker(redis_url, prefix, **env)
        approvals.decide(req.id, "approve", by="U0ALICE")

        def settled() -> list:
            shown = [
                m for m in ws.messages(CHANNEL, include_replies=False)
                if ((m.metadata or {}).get("event_payload") or {}).get("id") == req.id
            ]
            return shown if shown and not any(decidable(m) for m in shown) else []

        shown = ws.wait_for(settled, 90, what="the card to show the decision")
        assert len(shown) == 1, [m.ts for m in shown]
        assert not buttons(shown[0]) & {cards.ACTION_APPROVE, cards.ACTION_REJECT}
        assert "Approved" in json.dumps(shown[0].blocks)
    finally:
        held.release()
        stop(first)
        if second is not None:
            stop(second)
        approvals.close()

