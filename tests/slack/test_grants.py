"""Grants through Slack: "Approve for 1 hour" on a card, `/hitl grants`, Revoke."""

from __future__ import annotations

import json

from hitl_sandbox.signing import block_actions, button_action

from bot.slack.blocks import cards
from bot.slack.listeners.grants import ACTION_REVOKE, VIEW_GRANT
from tests.helpers import events, publish_policy
from tests.slack.conftest import CHANNEL, Bot, buttons, card_text, decidable

POLICY = """
defaults:
  grants: {max: 8h, max_uses: 50}
actions:
  send_email: {mode: gate}
  wire_money: {mode: gate, grants: {max: 1h, max_uses: 5, irreversible: true}}
"""


def _ask(bot: Bot, **fields: object):
    doc = {"action": "send_email", "summary": "Send the invoice", "requested_by": "U0DAVE", "via": "billing-agent",
           "params": {"to": "billing@example.com", "amount": 10}, **fields}
    return bot.approvals.request(**doc)  # type: ignore[arg-type]


def _grant(bot: Bot, req_id: str, *, uses: str = "2", pins: list[str] | None = None, user: str = "U0ALICE") -> None:
    ws = bot.slack.workspace
    before = ws.top_view(user)
    status, _ = bot.click(req_id, cards.ACTION_GRANT, user=user)
    assert status == 200

    def opened():
        view = ws.top_view(user)
        fresh = view is not None and (before is None or view.id != before.id)
        return view if fresh and view.callback_id == VIEW_GRANT else None

    view = ws.wait_for(opened, 20, what=f"a grant modal for {user}")
    values: dict[str, object] = {"grant_for": "3600", "grant_uses": uses}
    if pins is not None:
        values["grant_pins"] = pins
    status, body = bot.interact(bot.interactions.submit(view.id, values))
    assert status == 200 and body == "", body


def test_a_grant_approves_the_next_matching_request_and_only_it(bot: Bot, conn, prefix) -> None:
    publish_policy(bot.approvals, POLICY)
    first = _ask(bot)
    card = bot.card(first.id)
    assert cards.ACTION_GRANT in buttons(card)
    _grant(bot, first.id, uses="2", pins=["to"])
    assert first.wait(timeout=10).by == ["U0ALICE"]
    thread = bot.slack.workspace.wait_for(
        lambda: [m for m in bot.slack.workspace.messages(CHANNEL) if m.thread_ts == card.ts and "granted" in m.text],
        20, what="the grant line in the card's thread",
    )
    assert "U0ALICE" in thread[0].text and "/hitl grants revoke" in thread[0].text

    nxt = _ask(bot, params={"to": "billing@example.com", "amount": 99})
    d = nxt.wait(timeout=10)
    assert d.approved and d.grant is not None and d.grant.by == ["U0ALICE"]
    shown = bot.card_when(nxt.id, lambda m: "Approved by grant" in card_text(m), timeout=20)
    assert not decidable(shown) and "U0ALICE" in card_text(shown)
    used = [e for e in events(conn, prefix, nxt.id) if e["type"] == "grant_used"]
    assert used[0]["grant"] == d.grant.id

    # another requester, another key, another action, a pinned parameter changed: cards
    for other in (
        _ask(bot, requested_by="U0ERIN"), _ask(bot, via="other-agent"),
        _ask(bot, action="send_sms"), _ask(bot, params={"to": "all@example.com", "amount": 10}),
    ):
        assert decidable(bot.card(other.id, timeout=20)) and other.status() == "pending"
    # the second and last use, then a card again
    assert _ask(bot).status() == "approved"
    assert _ask(bot).status() == "pending"


def test_revoke_and_the_kill_switch_end_or_suspend_grants(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    first = _ask(bot)
    bot.card(first.id)
    _grant(bot, first.id, uses="50")
    listed = bot.command("grants")
    [row] = [b for b in listed["blocks"] if b.get("accessory", {}).get("action_id") == ACTION_REVOKE]
    grant_id = row["accessory"]["value"]
    assert "send_email" in row["text"]["text"] and "50 of 50 uses left" in row["text"]["text"]

    assert "Paused" in bot.command("pause send_email")["text"]
    assert _ask(bot).status() == "pending"
    assert "suspended" in json.dumps(bot.command("grants")["blocks"])
    bot.command("resume send_email")
    assert _ask(bot).status() == "approved"

    # someone who neither granted it nor is an admin cannot revoke it
    assert "nothing changed" in bot.command(f"grants revoke {grant_id}", user="U0BOB")["text"]
    ws = bot.slack.workspace
    click = block_actions(
        user_id="U0ALICE", actions=[button_action(ACTION_REVOKE, "grants", value=grant_id)],
        trigger_id=ws.issue_trigger_id("U0ALICE"), channel_id=CHANNEL, message_ts="1.0", is_ephemeral=True,
    )
    assert bot.interact(click)[0] == 200
    assert "Revoked grant" in bot.ephemeral_for("U0ALICE", timeout=10)
    assert _ask(bot).status() == "pending"
    assert bot.command("grants")["text"] == "No live grants."

    again = _ask(bot)
    bot.card(again.id, timeout=20)
    _grant(bot, again.id, uses="5")
    assert _ask(bot).status() == "approved"
    assert "Revoked 1 grant" in bot.command("grants revoke send_email")["text"]
    assert _ask(bot).status() == "pending"


def test_an_irreversible_action_offers_no_grant_unless_the_policy_allows_it(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    irreversible = _ask(bot, reversible=False)
    critical = _ask(bot, risk="critical")
    allowed = _ask(bot, action="wire_money", reversible=False)
    assert cards.ACTION_GRANT not in buttons(bot.card(irreversible.id, timeout=20))
    assert cards.ACTION_GRANT not in buttons(bot.card(critical.id, timeout=20))
    assert cards.ACTION_GRANT in buttons(bot.card(allowed.id, timeout=20))


def test_the_requester_cannot_grant_their_own_request(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    own = _ask(bot, requested_by="U0ALICE")
    bot.card(own.id)
    bot.click(own.id, cards.ACTION_GRANT, user="U0ALICE")
    assert "someone else" in bot.ephemeral_for("U0ALICE", timeout=10)
    assert own.status() == "pending" and bot.command("grants")["text"] == "No live grants."
