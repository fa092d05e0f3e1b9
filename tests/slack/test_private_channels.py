"""Private channels stay private: only members, approvers and admins see or decide their requests.

Alice is in the private channel #secret-ops, Mallory is not (and not an admin). Alice is an
admin in the `bot` fixture, so Carol, a non-admin member, checks what members see.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hitl_sandbox.workspace import Message
from slack_sdk import WebClient

from bot.slack.blocks import cards
from hitl import Approvals
from tests.helpers import publish_policy
from tests.slack.conftest import TOKEN, Bot

SECRET_CHANNEL = "C0SECRET"
MALLORY = "U0MALLORY"
SUMMARY = "Rotate the payroll database credentials"


@pytest.fixture
def private(bot: Bot) -> Bot:
    ws = bot.slack.workspace
    ws.add_user(MALLORY, "mallory", "Mallory Moss")
    ws.add_channel("secret-ops", SECRET_CHANNEL, is_private=True, members=["U0ALICE", "U0CAROL"])
    return bot


def _private_card(bot: Bot, request_id: str) -> Message:
    ws = bot.slack.workspace

    def find() -> Message | None:
        for msg in ws.messages(SECRET_CHANNEL, include_replies=False):
            if ((msg.metadata or {}).get("event_payload") or {}).get("id") == request_id:
                return msg
        return None

    return ws.wait_for(find, 15.0, what=f"card of {request_id} in {SECRET_CHANNEL}")


def _note_to(bot: Bot, user: str) -> str:
    """The latest note the bot left for `user`: an ephemeral (maybe via response_url) or a DM."""
    ws = bot.slack.workspace
    dm = ws.resolve_channel(user)
    assert dm is not None

    def notes() -> list[str]:
        return [e.text for e in ws.ephemerals(user=user)] + [m.text for m in ws.messages(dm.id)]

    return ws.wait_for(notes, 10.0, what=f"a note to {user}")[-1]


def _text(reply: dict[str, Any]) -> str:
    return json.dumps(reply, ensure_ascii=False)


def _file(bot: Bot):
    req = bot.approvals.request(action="rotate_credentials", summary=SUMMARY, channel=SECRET_CHANNEL)
    _private_card(bot, req.id)
    return req


def test_outsiders_see_nothing_of_a_private_channels_request(private: Bot) -> None:
    req = _file(private)
    for text in ("list", "list mine", f"list {SECRET_CHANNEL}", f"show {req.id}", "status"):
        reply = _text(private.command(text, user=MALLORY))
        assert "payroll" not in reply, text
        for secret in (req.id, SECRET_CHANNEL):  # only the echo of what she typed
            assert secret not in reply or secret in text, text
    assert private.command(f"show {req.id}", user=MALLORY)["text"] == f"No request with id '{req.id}'."
    status = _text(private.command("status", user=MALLORY))
    assert "1 more waiting in channels you are not a member of" in status
    # A member sees it all.
    assert req.id in _text(private.command("list", user="U0CAROL"))
    assert "payroll" in _text(private.command(f"show {req.id}", user="U0CAROL"))
    assert SECRET_CHANNEL in _text(private.command("status", user="U0CAROL"))


def test_an_outsiders_clicks_are_refused_and_change_nothing(private: Bot) -> None:
    req = _file(private)
    card = _private_card(private, req.id)
    ws = private.slack.workspace
    # The card itself (as if Mallory had been in the channel when it was posted).
    status, _ = private.interact(private.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE,
                                                            user_id=MALLORY))
    assert status == 200
    assert "not a member" in _note_to(private, MALLORY)
    # The card `/hitl show` returns, in a channel Mallory is in (as the old code answered her).
    shown = private.command(f"show {req.id}", user="U0ALICE")
    posted = WebClient(token=TOKEN, base_url=private.slack.url).chat_postMessage(
        channel="C0GENERAL", text=shown["text"], blocks=shown["blocks"]
    )
    for action in (cards.ACTION_APPROVE, cards.ACTION_DETAILS, cards.ACTION_REJECT):
        payload = private.interactions.click("C0GENERAL", posted["ts"], action, user_id=MALLORY)
        status, _ = private.interact(payload)
        assert status == 200
    notes = ws.wait_for(lambda: (e := ws.ephemerals(user=MALLORY)) and len(e) >= 4 and e, 10.0,
                        what="four refusals")
    assert all("not a member" in e.text for e in notes)
    assert ws.top_view(MALLORY) is None  # no Details or Reject form opened
    assert req.status() == "pending"
    # Alice, a member, still decides.
    status, _ = private.interact(private.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE))
    assert status == 200
    assert req.wait(timeout=10).by == ["U0ALICE"]


def test_a_policy_approver_outside_the_channel_sees_and_decides(private: Bot) -> None:
    """The policy's approvers see and decide wherever the card is; approvers the agent
    names give no sight (tests/slack/test_agent_named_approvers.py)."""
    publish_policy(private.approvals, f"actions: {{rotate_credentials: {{approvers: [{MALLORY}]}}}}\n")
    req = private.approvals.request(action="rotate_credentials", summary=SUMMARY, channel=SECRET_CHANNEL)
    _private_card(private, req.id)
    assert req.id in _text(private.command("list mine", user=MALLORY))
    assert "payroll" in _text(private.command(f"show {req.id}", user=MALLORY))


def test_odd_ids_in_show_get_a_clear_answer(private: Bot) -> None:
    req = _file(private)
    for odd in (f"{req.id}:done", "../../etc", "<!channel>", "x" * 300):
        reply = private.command(f"show {odd}", user="U0ALICE")
        assert reply["text"].startswith("No request with id"), odd
        assert "<!channel>" not in reply["text"]


def test_app_home_and_plans_of_a_private_channel_stay_hidden(private: Bot) -> None:
    req = _file(private)
    batch = private.approvals.request_batch(
        summary="Payroll plan", channel=SECRET_CHANNEL,
        items=[{"action": "pay", "summary": "payroll step", "params": {"n": 1}}],
    )
    plan_card = _private_card(private, batch.id)
    ws = private.slack.workspace
    for user in (MALLORY, "U0CAROL"):
        status, _ = private.event(private.interactions.home_opened(user))
        assert status == 200
    carol = ws.wait_for(lambda: ws.home_view("U0CAROL"), 10, what="Carol's home tab")
    mallory = ws.wait_for(lambda: ws.home_view(MALLORY), 10, what="Mallory's home tab")
    assert "payroll" in json.dumps(carol.blocks).lower()
    assert "payroll" not in json.dumps(mallory.blocks).lower() and req.id not in json.dumps(mallory.blocks)
    # "Approve all" on the plan card, by an outsider: refused, nothing decided.
    status, _ = private.interact(private.interactions.click(SECRET_CHANNEL, plan_card.ts, cards.ACTION_PLAN_APPROVE,
                                                            user_id=MALLORY))
    assert status == 200
    assert "not a member" in _note_to(private, MALLORY)
    assert batch.plan.status() == "pending"
    assert all(item.status() == "pending" for item in batch.items)


def test_a_mirror_the_agent_asked_for_shows_the_card_but_gives_no_say(private: Bot, tmp_path) -> None:
    """An agent may add a channel to show its request in (a mirror), never people to decide
    it: Mallory, alone with the agent in its own channel, sees the copy but cannot approve."""
    ws = private.slack.workspace
    ws.add_channel("agent-room", "C0AGENTROOM", members=[MALLORY])
    policy = tmp_path / "policy.yml"
    policy.write_text(f"actions:\n  rotate_credentials: {{channel: {SECRET_CHANNEL}}}\n")
    publish_policy(private.approvals, policy.read_text())
    with Approvals(settings=private.approvals.settings) as agent:
        filed = agent.request(action="rotate_credentials", summary=SUMMARY, channel="C0AGENTROOM")
    req = private.approvals.get(filed.id)
    assert req.fetch().mirror_channels == ["C0AGENTROOM"]
    _private_card(private, req.id)

    def mirror() -> Message | None:
        for msg in ws.messages("C0AGENTROOM", include_replies=False):
            if req.id in json.dumps(msg.blocks or []):
                return msg
        return None

    copy = ws.wait_for(mirror, 15.0, what="the copy in the agent's channel")
    status, _ = private.interact(private.interactions.click(copy.channel, copy.ts, cards.ACTION_APPROVE,
                                                            user_id=MALLORY))
    assert status == 200
    assert "not a member" in _note_to(private, MALLORY)
    assert req.status() == "pending"
    assert "payroll" in _text(private.command(f"show {req.id}", user=MALLORY))  # sight, not a say
    card = _private_card(private, req.id)
    status, _ = private.interact(private.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE,
                                                            user_id="U0CAROL"))
    assert status == 200
    assert req.wait(timeout=10).by == ["U0CAROL"]
