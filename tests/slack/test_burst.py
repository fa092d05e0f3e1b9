"""A burst into one channel: paced to Slack's limit, coalesced into digests, none lost."""

from __future__ import annotations

import json

from bot.slack.blocks import cards
from tests.slack.conftest import CHANNEL, Bot


def _shown_in(bot: Bot) -> dict[str, int]:
    """request id -> how many top-level messages show it."""
    seen: dict[str, int] = {}
    for msg in bot.slack.workspace.messages(CHANNEL, include_replies=False):
        payload = (msg.metadata or {}).get("event_payload") or {}
        for rid in payload.get("ids") or [payload.get("id")]:
            if rid:
                seen[rid] = seen.get(rid, 0) + 1
    return seen


def test_a_burst_is_paced_coalesced_and_nothing_is_lost(bot: Bot) -> None:
    bot.slack.faults.set_rate_limit("chat.postMessage", limit=1, per=1.0, per_channel=True)
    reqs = [bot.approvals.request(action="send_reminder", summary=f"Remind customer {n}") for n in range(60)]
    ids = {r.id for r in reqs}
    ws = bot.slack.workspace
    ws.wait_for(lambda: ids <= set(_shown_in(bot)), 30, what="every request on a card")
    shown = _shown_in(bot)
    assert all(shown[i] == 1 for i in ids)  # none posted twice
    posts = ws.calls("chat.postMessage")
    assert len(posts) < 15  # coalesced, not 60 posts
    assert not [c for c in posts if c.status == 429]  # paced below Slack's limit
    digest = next(m for m in ws.messages(CHANNEL, include_replies=False) if (m.metadata or {}).get("event_payload", {}).get("ids"))
    assert "requests waiting" in digest.text


def test_a_request_in_a_digest_is_decided_from_its_menu(bot: Bot) -> None:
    reqs = {r.id: r for r in (bot.approvals.request(action="send_reminder", summary=f"Remind {n}") for n in range(25))}
    ws = bot.slack.workspace
    ws.wait_for(lambda: set(reqs) <= set(_shown_in(bot)), 20, what="every request on a card")
    digest = next(m for m in ws.messages(CHANNEL, include_replies=False) if m.metadata["event_payload"].get("ids"))
    target = reqs[digest.metadata["event_payload"]["ids"][-1]]
    others = [r for r in reqs.values() if r.id != target.id]
    block = next(b for b in digest.blocks if b.get("block_id", "").endswith(f":{target.id}"))
    action_id = block["accessory"]["action_id"]
    payload = bot.interactions.click(digest.channel, digest.ts, action_id, user_id="U0ALICE",
                                     selected=f"approve|{target.id}")
    status, _ = bot.interact(payload)
    assert status == 200
    assert target.wait(timeout=10).by == ["U0ALICE"]
    updated = bot.card_when(target.id, lambda m: "Approved by" in json.dumps(m.blocks, ensure_ascii=False))
    assert cards.ACTION_ITEM in json.dumps(updated.blocks)  # the others stay decidable
    assert others[0].status() == "pending"
