"""Nothing an agent writes becomes a broadcast, a mention or a link in a message from the bot.

Approver ids are validated when a request is filed; these tests put hostile ones straight
into the stored document to prove the rendering is safe on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from hitl.masking import MASK
from tests.slack.conftest import CHANNEL, Bot

EVIL = "U0BOB> <!channel> <https://evil.example|login"
FORBIDDEN = ("<!channel>", "<!here>", "<!everyone>", "<https://evil", "<http://evil")
SECRET = "sk-ant-api03-Zq8r3TtX0pLw9Vb2Nc7Ms4Kd1Hf6Gy5J"


def _everything_posted(bot: Bot) -> str:
    """Every message, reply and ephemeral the stand-in received, texts and blocks."""
    ws = bot.slack.workspace
    parts = []
    for channel in ws.channels():
        for msg in ws.messages(channel.id):
            parts.append(msg.text or "")
            parts.append(json.dumps(msg.blocks or [], ensure_ascii=False))
    for eph in ws.ephemerals():
        parts.append(eph.text or "")
        parts.append(json.dumps(getattr(eph, "blocks", None) or [], ensure_ascii=False))
    return "\n".join(parts)


def _forge_stored_doc(bot: Bot, request_id: str, change: Callable[[dict], dict]) -> None:
    """Rewrite a stored request's document in place. Hostile ids cannot get in through
    CREATE any more (it checks approvers; the policy checks notify lists), so this does
    what only a holder of Redis credentials could, to check the card still escapes them."""
    conn, keys = bot.approvals.redis, bot.approvals.keys
    first = conn.hget(keys.req(request_id), "ev").decode().split(",")[0]
    [(_, fields)] = conn.xrange(keys.events, first, first)
    doc = json.loads(fields[b"doc"])
    doc.update(change(doc))
    forged = conn.xadd(keys.events, {**fields, b"doc": json.dumps(doc)})
    conn.hset(keys.req(request_id), "ev", forged)


def test_hostile_approvers_never_become_broadcasts_or_links(bot: Bot) -> None:
    approvals = bot.approvals
    handle = approvals.request(action="deploy", summary="ship it", timeout=1.5, approvers=["U0BOB"])
    hostile = [EVIL, "<!here>", "U0CAROL"]
    _forge_stored_doc(bot, handle.id, lambda doc: {
        "approvers": [EVIL, "<!here>", "S0LEADS> <!everyone>", "U0BOB"],
        "urgent": True,  # urgent cards name the approvers in the fallback text too
        "escalation": [{**rung, "notify": hostile} for rung in doc["escalation"]],
    })
    card = bot.card(handle.id)
    ws = bot.slack.workspace
    replies = ws.wait_for(lambda: ws.replies(card.channel, card.ts)[1:], 10, what="a reminder in the thread")
    assert "reminder" in replies[0].text
    assert "<@U0CAROL>" in replies[0].text  # a real id still pings
    assert "&lt;!channel&gt;" in replies[0].text  # the hostile one shows as text
    bot.card_when(handle.id, lambda m: "Expired" in json.dumps(m.blocks), timeout=15)
    posted = _everything_posted(bot)
    for bad in FORBIDDEN:
        assert bad not in posted, bad


def test_a_plans_fallback_text_and_blocks_mask_secrets(bot: Bot) -> None:
    batch = bot.approvals.request_batch(
        summary=f"Rotate keys, old one was {SECRET}",
        items=[{"action": "set_key", "summary": f"Install {SECRET}", "params": {"value": SECRET, "note": SECRET}}],
    )
    card = bot.card(batch.id)
    assert SECRET not in (card.text or "") and MASK in (card.text or "")
    assert SECRET not in json.dumps(card.blocks)
    assert "sk-ant" not in _everything_posted(bot)
    # The plan channel got nothing else unmasked either.
    assert all(SECRET not in (m.text or "") for m in bot.slack.workspace.messages(CHANNEL))
