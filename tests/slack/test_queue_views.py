"""/hitl answers operators ephemerally; App Home lists what waits for the viewer."""

from __future__ import annotations

import json

from bot.slack.blocks import cards
from tests.slack.conftest import Bot


def _text(answer: dict) -> str:
    return json.dumps(answer, ensure_ascii=False)


def test_status_counts_pending_by_channel_and_mode(bot: Bot) -> None:
    bot.approvals.request(action="a", summary="s", channel="C0APPROVALS")
    bot.approvals.request(action="b", summary="s", channel="C0ENGLEADS", mode="override")
    done = bot.approvals.request(action="c", summary="s", channel="C0APPROVALS")
    bot.approvals.decide(done.id, "approve", by="U0ALICE")
    answer = bot.command("status")
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == "2 requests waiting"
    text = _text(answer)
    assert "C0APPROVALS" in text and "C0ENGLEADS" in text


def test_list_show_and_mine(bot: Bot) -> None:
    mine = bot.approvals.request(action="deploy", summary="Deploy the API", approvers=["U0BOB"])
    other = bot.approvals.request(action="refund", summary="Refund order 7", approvers=["U0CAROL"])
    listed = _text(bot.command("list"))
    assert mine.id in listed and other.id in listed
    assert bot.command("list <#C0APPROVALS|agent-approvals>")["text"] == "2 waiting"
    bobs = _text(bot.command("list mine", user="U0BOB"))
    assert mine.id in bobs and other.id not in bobs
    bot.approvals.decide(mine.id, "reject", by="U0BOB", comment="not today")
    shown = _text(bot.command(f"show {mine.id}"))
    assert "not today" in shown and "Deploy the API" in shown


def test_unknown_subcommand_and_unknown_id_get_help_not_errors(bot: Bot) -> None:
    assert "status" in _text(bot.command("frobnicate"))
    assert "show" in _text(bot.command(""))
    assert bot.command("show nope")["text"] == "No request with id 'nope'."


def test_app_home_lists_what_the_viewer_may_decide(bot: Bot) -> None:
    for_bob = bot.approvals.request(action="deploy", summary="Deploy for Bob", approvers=["S0LEADS"])
    bot.approvals.request(action="deploy", summary="Bob's own", requested_by="U0BOB")
    status, _ = bot.event(bot.interactions.home_opened("U0BOB"))
    assert status == 200
    ws = bot.slack.workspace
    home = ws.wait_for(lambda: ws.home_view("U0BOB"), 5, what="Bob's home tab")
    text = json.dumps(home.blocks)
    assert for_bob.id in text or "Deploy for Bob" in text
    assert "Bob's own" not in text


def test_escalation_reminds_approvers_in_the_cards_thread(bot: Bot) -> None:
    req = bot.approvals.request(action="deploy", summary="s", timeout=1.0, approvers=["U0BOB"])
    card = bot.card(req.id)
    ws = bot.slack.workspace
    replies = ws.wait_for(lambda: ws.replies(card.channel, card.ts)[1:], 10, what="a reminder in the thread")
    assert "<@U0BOB>" in replies[0].text
    expired = bot.card_when(req.id, lambda m: cards.ACTION_APPROVE not in json.dumps(m.blocks))
    assert "Expired" in json.dumps(expired.blocks)
