"""Operators: the kill switch (admins only, audited), stats and the policy in force."""

from __future__ import annotations

from bot.slack.blocks import cards
from tests.helpers import events
from tests.slack.conftest import Bot, buttons


def test_only_admins_can_pause(bot: Bot, conn, prefix) -> None:
    answer = bot.command("pause", user="U0BOB")
    assert "Only hitl admins" in answer["text"]
    assert conn.smembers(f"{prefix}:paused") == set()


def test_pause_turns_auto_into_gate_until_resumed(bot: Bot, conn, prefix) -> None:
    assert "Paused `send_email`" in bot.command("pause send_email", user="U0ALICE")["text"]
    held = bot.approvals.request(action="send_email", summary="s", mode="auto")
    assert (held.mode, held.status()) == ("gate", "pending")
    assert cards.ACTION_APPROVE in buttons(bot.card(held.id))
    other = bot.approvals.request(action="search_web", summary="s", mode="auto")
    assert other.status() == "approved"
    assert "Resumed" in bot.command("resume send_email", user="U0ALICE")["text"]
    assert bot.approvals.request(action="send_email", summary="s", mode="auto").status() == "approved"
    audit = [(e["type"], e.get("by")) for e in events(conn, prefix) if e["type"] in ("paused", "resumed")]
    assert audit == [("paused", "U0ALICE"), ("resumed", "U0ALICE")]


def test_stats_count_outcomes_and_recommend_a_step_up(bot: Bot) -> None:
    for n in range(100):
        req = bot.approvals.request(action="search_docs", summary=f"s{n}")
        bot.approvals.decide(req.id, "approve", by="U0ALICE")
    edited = bot.approvals.request(action="send_email", summary="s", params={"n": 1})
    bot.approvals.decide(edited.id, "approve", by="U0ALICE", params={"n": 2})
    rejected = bot.approvals.request(action="send_email", summary="s", risk="critical")
    bot.approvals.decide(rejected.id, "reject", by="U0ALICE", comment="no")
    text = bot.command("stats")["blocks"][0]["text"]["text"]
    assert "*search_docs*: 100 requests" in text and "100 approved (0 edited)" in text
    assert "earned a step from gate to override" in text
    one = bot.command("stats send_email")["blocks"][0]["text"]["text"]
    assert "1 approved (1 edited)" in one and "1 rejected" in one and "earned" not in one


def test_policy_command_shows_what_is_in_force(bot: Bot) -> None:
    bot.command("pause", user="U0ALICE")
    text = bot.command("policy")["blocks"][0]["text"]["text"]
    assert "built-in defaults" in text and "Paused: *" in text
