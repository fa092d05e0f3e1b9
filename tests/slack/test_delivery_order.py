"""Which Slack call goes first when a channel has both a new request and an expired card to
redraw, and how updates queue once the workspace's chat.update budget is spent.

CardSync runs here in the test's own thread against the Slack stand-in (no worker), so the
order of its calls is the order in the stand-in's log.
"""

from __future__ import annotations

from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient

from bot.slack.blocks.cards import DIGEST_CAPACITY
from bot.slack.delivery import CardSync, SyncOutcome
from hitl import Approvals
from hitl.keys import Keys
from hitl.placement import Placement, PostClaim, Shown
from hitl.status import Status, SystemVerb
from hitl.store import now_ms
from tests.conftest import make_settings
from tests.slack.conftest import CHANNEL, TOKEN, card_text


def _card_sync(redis_url: str, prefix: str, slack: SlackStandIn, **overrides: object) -> tuple[CardSync, Approvals]:
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_api_url=slack.url, default_channel=CHANNEL, **overrides
    )
    approvals = Approvals(settings=settings)
    return CardSync(approvals.store, Placement(approvals.redis, Keys(prefix)), settings), approvals


def _expired_on_a_card(approvals: Approvals, sync: CardSync, slack: SlackStandIn, summary: str) -> str:
    """A request whose card was posted (outside the channel's pace) and which then expired."""
    req = approvals.request(action="a", summary=summary, channel=CHANNEL)
    posted = WebClient(token=TOKEN, base_url=slack.url).chat_postMessage(channel=CHANNEL, text=summary)
    sync.placement.record_card(req.id, CHANNEL, posted["ts"], Shown.of(req.fetch()))
    approvals.store.transition(req.id, SystemVerb.EXPIRE)
    return req.id


def test_a_new_requests_first_card_goes_before_an_expired_cards_update(
    redis_url: str, prefix: str, slack: SlackStandIn
) -> None:
    sync, approvals = _card_sync(redis_url, prefix, slack)
    try:
        expired = _expired_on_a_card(approvals, sync, slack, "old")
        new = approvals.request(action="a", summary="new one", channel=CHANNEL)
        slack.workspace.clear_calls()
        results = sync.sync_channel([expired, new.id])
        assert results[new.id].outcome is SyncOutcome.POSTED
        assert results[expired].outcome is SyncOutcome.SYNCED
        # what the channel saw: the new card first, then the expired card redrawn
        assert [c.method for c in slack.workspace.calls() if c.ok] == ["chat.postMessage", "chat.update"]
        messages = slack.workspace.messages(CHANNEL, include_replies=False)
        assert "new one" in card_text(messages[-1])
        assert approvals.get(expired).fetch().status is Status.EXPIRED
        assert "Expired" in card_text(messages[0])  # the old card, redrawn as expired
    finally:
        approvals.close()


def test_updates_past_the_budget_queue_one_slot_apart(redis_url: str, prefix: str, slack: SlackStandIn) -> None:
    """Five expired cards, a budget of three updates at once and one a minute: three cards
    are redrawn now; the other two wait their turns, a minute apart, not all at once."""
    sync, approvals = _card_sync(redis_url, prefix, slack, slack_update_interval_ms=60_000)
    try:
        expired = [_expired_on_a_card(approvals, sync, slack, f"card {n}") for n in range(5)]
        slack.workspace.clear_calls()
        started = now_ms()
        results = sync.sync_channel(expired)
        assert len(slack.workspace.calls("chat.update")) == 3
        redrawn = [m for m in slack.workspace.messages(CHANNEL, include_replies=False) if m.blocks]
        assert len(redrawn) == 3
        waiting = sorted(r.retry_at_ms for r in results.values() if not r.done)
        assert len(waiting) == 2
        assert waiting[0] - started > 50_000  # after the spent budget's next slot...
        assert waiting[1] - waiting[0] >= 60_000  # ...and the second one slot after the first
    finally:
        approvals.close()


def test_a_digest_skips_requests_another_worker_is_posting(redis_url: str, prefix: str, slack: SlackStandIn) -> None:
    """The oldest 48 waiting requests are on another worker's digest still in flight: the
    channel's next digest shows the two after them, instead of nothing at all."""
    sync, approvals = _card_sync(redis_url, prefix, slack)
    try:
        reqs = [approvals.request(action="a", summary=f"waiting {n}", channel=CHANNEL) for n in range(50)]
        busy, free = reqs[:DIGEST_CAPACITY], reqs[DIGEST_CAPACITY:]
        for r in busy:
            claim = sync.placement.claim_post(r.id, "other-worker", now_ms(), stale_ms=60_000, ttl=60)
            assert claim is PostClaim.MINE
        results = sync.sync_channel([r.id for r in reqs])
        shown = slack.workspace.messages(CHANNEL, include_replies=False)
        assert len(shown) == 1
        assert set((shown[0].metadata or {})["event_payload"]["ids"]) == {r.id for r in free}
        assert all(results[r.id].outcome is SyncOutcome.DIGESTED for r in free)
        assert not any(results[r.id].done for r in busy)  # theirs: tried again, not dropped
    finally:
        approvals.close()
