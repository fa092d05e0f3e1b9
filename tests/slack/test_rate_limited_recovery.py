"""Recovering a card whose post answer was lost, under Slack's limits for apps outside the
Marketplace (since 2026-03-03: conversations.history one call a minute per channel, at
most 15 messages a call). The stand-in enforces them; CardSync runs in the test's thread
(no worker) except in the last test, where a worker is killed mid-post."""

from __future__ import annotations

import itertools
import json
import signal
import time
from collections.abc import Iterator

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient

from bot.slack.blocks import cards
from bot.slack.delivery import METADATA_TYPE, CardSync, SyncOutcome
from hitl import Approvals
from hitl.keys import Keys
from hitl.placement import Placement, PostClaim
from hitl.store import now_ms
from tests.conftest import make_settings
from tests.slack.conftest import CHANNEL, TOKEN, buttons, decidable


@pytest.fixture
def limited() -> Iterator[SlackStandIn]:
    with SlackStandIn(bot_token=TOKEN, non_marketplace=True) as stand_in:
        yield stand_in


def _card_sync(redis_url: str, prefix: str, slack: SlackStandIn, **overrides: object) -> tuple[CardSync, Approvals]:
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_api_url=slack.url, default_channel=CHANNEL, **overrides
    )
    approvals = Approvals(settings=settings)
    return CardSync(approvals.store, Placement(approvals.redis, Keys(prefix)), settings), approvals


def _lost_post(sync: CardSync, approvals: Approvals, slack: SlackStandIn, *, made: bool = True) -> str:
    """A request whose card post went out (when `made`) but whose answer never came back."""
    req = approvals.request(action="a", summary="lost answer", channel=CHANNEL)
    assert sync.placement.claim_post(req.id, "dead-worker", now_ms(), stale_ms=60_000, ttl=600) is PostClaim.MINE
    if made:
        WebClient(token=TOKEN, base_url=slack.url).chat_postMessage(
            channel=CHANNEL, text="lost answer", metadata={"event_type": METADATA_TYPE, "event_payload": {"id": req.id}},
        )
    sync.placement.mark_uncertain([req.id], 600)
    return req.id


def _cards(slack: SlackStandIn, request_id: str) -> list:
    return [
        m for m in slack.workspace.messages(CHANNEL, include_replies=False)
        if ((m.metadata or {}).get("event_payload") or {}).get("id") == request_id
    ]


def _reads(slack: SlackStandIn) -> list:
    return [c for c in slack.workspace.calls("conversations.history") if c.args.get("channel") == CHANNEL]


def test_a_lost_card_is_found_by_one_read_of_at_most_15_messages(redis_url: str, prefix: str, limited) -> None:
    sync, approvals = _card_sync(redis_url, prefix, limited)
    try:
        rid = _lost_post(sync, approvals, limited)
        assert sync.sync_channel([rid])[rid].outcome is SyncOutcome.FOUND
        assert not limited.workspace.calls("chat.postMessage")[1:]  # only the lost post itself
        reads = _reads(limited)
        assert len(reads) == 1 and int(reads[0].args["limit"]) <= 15
        approvals.decide(rid, "approve", by="U0ALICE")
        sync.sync_channel([rid])
        (card,) = _cards(limited, rid)
        assert not decidable(card) and "Approved" in json.dumps(card.blocks)
        assert len(_reads(limited)) == 1  # the card is known now: no second read
    finally:
        approvals.close()


def test_a_read_answering_429_leaves_the_request_uncertain_not_posted_twice(
    redis_url: str, prefix: str, limited
) -> None:
    sync, approvals = _card_sync(redis_url, prefix, limited)
    try:
        rid = _lost_post(sync, approvals, limited)
        limited.faults.ratelimit("conversations.history", retry_after=30)
        result = sync.sync_channel([rid])[rid]
        assert result.outcome is SyncOutcome.RETRY and result.retry_at_ms - now_ms() > 25_000
        # tried again at once (another worker, a re-armed sync): no read, no post
        assert sync.sync_channel([rid])[rid].outcome is SyncOutcome.RETRY
        assert len(_reads(limited)) == 1
        assert len(limited.workspace.calls("chat.postMessage")) == 1  # only the lost post
        assert len(_cards(limited, rid)) == 1
        assert sync.placement.claim_post(rid, "w", now_ms(), stale_ms=60_000, ttl=600) is PostClaim.STALE
    finally:
        approvals.close()


def test_a_card_older_than_15_messages_is_found_a_page_per_interval(redis_url: str, prefix: str, limited) -> None:
    """20 messages after the lost card: the first page (the newest 15) does not show it,
    so nothing is posted; the next page, one interval later, finds it. The minute is
    scaled to 1 s on both sides so the test pages twice quickly."""
    limited.faults.non_marketplace_limits(per=1.0)
    sync, approvals = _card_sync(redis_url, prefix, limited, slack_history_interval_ms=1100)
    try:
        rid = _lost_post(sync, approvals, limited)
        poster = WebClient(token=TOKEN, base_url=limited.url)
        for n in range(20):
            poster.chat_postMessage(channel=CHANNEL, text=f"chatter {n}")
        posts_before = len(limited.workspace.calls("chat.postMessage"))
        first = sync.sync_channel([rid])[rid]
        assert first.outcome is SyncOutcome.RETRY
        time.sleep(max(0, first.retry_at_ms - now_ms()) / 1000)  # the read interval itself
        assert sync.sync_channel([rid])[rid].outcome is SyncOutcome.FOUND
        reads = _reads(limited)
        assert len(reads) == 2 and all(int(c.args["limit"]) <= 15 for c in reads)
        assert all(c.ok for c in reads)  # paced: Slack never had to refuse one
        assert reads[1].at - reads[0].at >= 1.0
        assert len(limited.workspace.calls("chat.postMessage")) == posts_before  # nothing posted
        assert len(_cards(limited, rid)) == 1
    finally:
        approvals.close()


def test_a_post_proved_absent_over_the_window_is_posted_once(redis_url: str, prefix: str, limited) -> None:
    sync, approvals = _card_sync(redis_url, prefix, limited)
    try:
        rid = _lost_post(sync, approvals, limited, made=False)
        assert sync.sync_channel([rid])[rid].outcome is SyncOutcome.POSTED
        assert len(_reads(limited)) == 1
        assert len(_cards(limited, rid)) == 1
    finally:
        approvals.close()


def test_a_worker_killed_while_posting_is_recovered_by_a_paced_read(redis_url: str, prefix: str, limited) -> None:
    """SIGKILL while Slack holds chat.postMessage, no event: the next worker finds the card
    with history reads kept to one a minute in the channel, and it shows the decision."""
    from tests.helpers import signal_group, start_worker, stop

    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": limited.url, "HITL_DEFAULT_CHANNEL": CHANNEL,
           "HITL_TIMER_LEASE": "2"}
    held = limited.faults.hold("chat.postMessage")
    first = start_worker(redis_url, prefix, **env)
    approvals = Approvals(settings=make_settings(redis_url, prefix))
    second = None
    try:
        req = approvals.request(action="a", summary="killed mid-post")
        assert held.arrived.wait(20), "the worker never posted"
        signal_group(first, signal.SIGKILL)
        first.wait()
        held.release()
        ws = limited.workspace
        ws.wait_for(lambda: _cards(limited, req.id), 10, what="the card")
        second = start_worker(redis_url, prefix, **env)
        approvals.decide(req.id, "approve", by="U0ALICE")

        def settled() -> list:
            shown = _cards(limited, req.id)
            return shown if shown and not any(decidable(m) for m in shown) else []

        shown = ws.wait_for(settled, 90, what="the card to show the decision")
        assert len(shown) == 1
        assert not buttons(shown[0]) & {cards.ACTION_APPROVE, cards.ACTION_REJECT}
        reads = [c.at for c in _reads(limited)]
        assert reads and all(b - a >= 60 for a, b in itertools.pairwise(reads))
        assert all(c.ok for c in _reads(limited))
    finally:
        held.release()
        stop(first)
        if second is not None:
            stop(second)
        approvals.close()
