"""Delivery under a slow Slack: deadlines never wait behind it, channels are served side by
side, and a sync is never run twice at once however long it takes."""

from __future__ import annotations

import time

from hitl.keys import Keys
from hitl.placement import Placement
from tests.helpers import eventually
from tests.slack.conftest import CHANNEL, Bot
from workers import queues

CHANNELS = [CHANNEL, "C0ENGLEADS", "C0GENERAL", "C0RANDOM"]


def _shown(bot: Bot, channels: list[str]) -> dict[str, int]:
    seen: dict[str, int] = {}
    for ch in channels:
        for msg in bot.slack.workspace.messages(ch, include_replies=False):
            payload = (msg.metadata or {}).get("event_payload") or {}
            for rid in payload.get("ids") or [payload.get("id")]:
                if rid:
                    seen[rid] = seen.get(rid, 0) + 1
    return seen


def test_deadlines_fire_on_time_while_slack_is_slow(bot: Bot) -> None:
    bot.slack.faults.set_latency(2.0)  # every Web API call takes 2 s
    cards = [bot.approvals.request(action="a", summary=f"card {n}", channel=CHANNELS[n % 3]) for n in range(15)]
    short = [bot.approvals.request(action="a", summary=f"expires {n}", timeout=1.0) for n in range(5)]
    for req in short:
        assert req.wait(timeout=15).status == "expired"
        stored = req.fetch()
        assert stored.decided_at - stored.deadline < 1.5  # as when idle: not behind the Slack calls
    ids = {r.id for r in cards + short}
    bot.slack.workspace.wait_for(lambda: ids <= set(_shown(bot, CHANNELS[:3])), 90, what="every card")


def test_channels_are_served_side_by_side(bot: Bot) -> None:
    bot.slack.faults.set_latency(3.0, "chat.postMessage")
    reqs = [bot.approvals.request(action="a", summary=f"card {n}", channel=ch) for n, ch in enumerate(CHANNELS[:3])]
    ws = bot.slack.workspace
    ws.wait_for(lambda: {r.id for r in reqs} <= set(_shown(bot, CHANNELS[:3])), 30, what="every card")
    posts = sorted(c.at for c in ws.calls("chat.postMessage"))
    assert len(posts) == 3
    assert posts[-1] - posts[0] < 3.0  # the three 3-second posts overlapped


def test_a_slow_sync_is_not_run_again_while_it_runs(bot: Bot, conn, prefix) -> None:
    """The lease (2 s here) is kept while Slack holds the post for 8 s: the sync is not
    handed out again (no job re-queued, no second post, no history lookup)."""
    held = bot.slack.faults.hold("chat.postMessage")
    req = bot.approvals.request(action="a", summary="slow")
    assert held.arrived.wait(20)
    slack_q = queues.queue(conn, prefix, queues.SLACK)
    member = f"{req.id}|sync"
    end = time.monotonic() + 8
    while time.monotonic() < end:
        assert slack_q.count == 0  # nothing re-queued
        score = conn.zscore(f"{prefix}:timers", member)
        assert score is None or score > conn.time()[0] * 1000  # leased: nobody can claim it
        time.sleep(0.2)
    held.release()
    ws = bot.slack.workspace
    ws.wait_for(lambda: _shown(bot, [CHANNEL]).get(req.id), 30, what="the card")
    assert len(ws.calls("chat.postMessage")) == 1
    assert not ws.calls("conversations.history")  # nobody thought the post was lost
    placement = Placement(conn, Keys(prefix))
    eventually(lambda: placement.shown([req.id])[req.id], 10, "the card recorded as drawn")


def test_under_a_backlog_a_digest_takes_over_sooner(bot: Bot) -> None:
    """Six requests waiting several seconds behind a slow post go out as one digest, not as
    six cards one second apart (the 10-request threshold is for a channel that keeps up)."""
    held = bot.slack.faults.hold("chat.postMessage")
    first = bot.approvals.request(action="a", summary="first")
    assert held.arrived.wait(20)
    waiting = [bot.approvals.request(action="a", summary=f"waiting {n}") for n in range(6)]
    time.sleep(4)  # not a wait for an event: the backlog must age while Slack holds the post
    held.release()
    ids = {first.id, *(r.id for r in waiting)}
    ws = bot.slack.workspace
    ws.wait_for(lambda: ids <= set(_shown(bot, [CHANNEL])), 30, what="every request shown")
    posts = [c for c in ws.calls("chat.postMessage") if c.ok]
    assert len(posts) == 2  # the first card, then one digest of the six
    assert all(n == 1 for n in _shown(bot, [CHANNEL]).values())
