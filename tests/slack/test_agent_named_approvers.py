"""`/hitl policy` shows the published version; approvers an agent names only narrow who
could decide anyway (issue 15, items 1 and 2), through the real Bolt app and the stand-in.
"""

from __future__ import annotations

import json

from hitl_sandbox.workspace import Message

from bot.slack.blocks import cards
from tests.helpers import publish_policy
from tests.slack.conftest import Bot

SECRET_CHANNEL = "C0SECRET"
CAROL, DAVE = "U0CAROL", "U0DAVE"
POLICY = "actions:\n  purge_table: {mode: gate, approvers: [U0ALICE, U0BOB]}\n"


def _text(reply: dict) -> str:
    return json.dumps(reply, ensure_ascii=False)


def _card_in(bot: Bot, channel: str, request_id: str) -> Message:
    ws = bot.slack.workspace

    def find() -> Message | None:
        for msg in ws.messages(channel, include_replies=False):
            if ((msg.metadata or {}).get("event_payload") or {}).get("id") == request_id:
                return msg
        return None

    return ws.wait_for(find, 15.0, what=f"card of {request_id} in {channel}")


def _note_to(bot: Bot, user: str, count: int = 1) -> str:
    """The latest note the bot left for `user`: an ephemeral (maybe via response_url) or a DM."""
    ws = bot.slack.workspace
    dm = ws.resolve_channel(user)
    assert dm is not None

    def notes() -> list[str]:
        found = [e.text for e in ws.ephemerals(user=user)] + [m.text for m in ws.messages(dm.id)]
        return found if len(found) >= count else []

    return ws.wait_for(notes, 10.0, what=f"a note to {user}")[-1]


def test_slash_hitl_policy_shows_the_version_in_force(bot: Bot) -> None:
    assert "Policy version 0" in _text(bot.command("policy"))
    publish_policy(bot.approvals, POLICY, by="alice")
    reply = bot.command("policy", user=CAROL)
    assert reply["text"] == "Policy version 1 in force"
    assert "applied by alice" in _text(reply)
    assert "purge_table" in _text(reply)
    bot.approvals.policy.report_error("policy.yml: actions.purge_table.mode: bad mode", source="policy.yml")
    shown = _text(bot.command("policy"))
    assert "last_error" in shown and "version 1 stays in force" in shown and "bad mode" in shown


def test_an_approver_the_agent_named_outside_the_channel_may_not_see_or_decide(bot: Bot) -> None:
    """The issue's case: private C0SECRET, `approvers=["U0CAROL"]`, Carol not a member."""
    ws = bot.slack.workspace
    ws.add_channel("secret-ops", SECRET_CHANNEL, is_private=True, members=["U0ALICE", DAVE])
    handle = bot.approvals.request(
        action="rotate_credentials", summary="Rotate the payroll credentials", channel=SECRET_CHANNEL,
        approvers=[CAROL],
    )
    req = handle.fetch()
    assert (req.approvers, req.approvers_from) == ([CAROL], "agent")
    card = _card_in(bot, SECRET_CHANNEL, handle.id)
    # Carol sees nothing of it...
    assert bot.command(f"show {handle.id}", user=CAROL)["text"] == f"No request with id '{handle.id}'."
    assert "payroll" not in _text(bot.command("list", user=CAROL))
    # ...and her click (on the card, as if she had seen it) is refused, saying why.
    status, _ = bot.interact(bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id=CAROL))
    assert status == 200
    assert "named you as an approver" in _note_to(bot, CAROL)
    assert handle.status() == "pending"
    # Dave, a member the agent did not name, may not approve either: the names narrow.
    status, _ = bot.interact(bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id=DAVE))
    assert status == 200
    assert "not one of the approvers" in _note_to(bot, DAVE)
    assert handle.status() == "pending"


def test_a_named_member_decides(bot: Bot) -> None:
    ws = bot.slack.workspace
    ws.add_channel("secret-ops", SECRET_CHANNEL, is_private=True, members=["U0ALICE", DAVE])
    handle = bot.approvals.request(action="rotate_credentials", summary="Rotate", channel=SECRET_CHANNEL,
                                   approvers=[DAVE])
    card = _card_in(bot, SECRET_CHANNEL, handle.id)
    status, _ = bot.interact(bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id=DAVE))
    assert status == 200
    assert handle.wait(timeout=10).by == [DAVE]
