"""The promotion loop through signed Slack requests: the proposal card, Promote / Not yet,
admins only, and demotions after a veto or a critical rejection."""

from __future__ import annotations

import json

from slack_sdk import WebClient

from bot.slack.blocks import cards, views
from bot.slack.listeners.autonomy import ACTION_NOT_YET, ACTION_PROMOTE, check, tell_demotions
from hitl.status import Mode
from tests.helpers import eventually, publish_policy
from tests.slack.conftest import TOKEN, Bot

ADMIN_CHANNEL = "C0ENGLEADS"
POLICY = f"""\
actions:
  send_email: {{mode: gate, window: 10m}}
autonomy:
  min_decisions: 2
  min_approved_unedited: 0.5
  no_critical_rejection_days: 0
  channel: {ADMIN_CHANNEL}
"""


def _admin_messages(bot: Bot) -> list[str]:
    return [json.dumps(m.blocks) if m.blocks else m.text
            for m in bot.slack.workspace.messages(ADMIN_CHANNEL, include_replies=False)]


def _earn(bot: Bot) -> None:
    for _ in range(2):
        req = bot.approvals.request(action="send_email", summary="Mail the invoice")
        bot.click(req.id, cards.ACTION_APPROVE, user="U0BOB")
        assert req.wait(timeout=30).status == "approved"


def _proposal(bot: Bot):
    ws = bot.slack.workspace

    def found():
        for m in ws.messages(ADMIN_CHANNEL, include_replies=False):
            if "Promote `send_email`" in (m.text or ""):
                return m
        return None

    return ws.wait_for(found, 30, what="the proposal card")


def _check(bot: Bot) -> list:
    """One pass of the workers' autonomy loop."""
    client = WebClient(token=TOKEN, base_url=bot.slack.url)
    return check(bot.approvals, client, bot.approvals.settings)


def test_proposal_once_then_promote_changes_the_next_request(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    _earn(bot)
    assert len(_check(bot)) == 1
    assert _check(bot) == []  # one card while it is open
    card = _proposal(bot)
    text = json.dumps(card.blocks)
    assert "Promote `send_email` from gate to override (10-minute veto window)?" in card.text
    assert "*2* decisions" in text and "approved unedited" in text and "p99 review time" in text
    assert sum("Promote `send_email`" in m for m in _admin_messages(bot)) == 1

    # A non-admin's press changes nothing.
    bot.interact(bot.interactions.click(card.channel, card.ts, ACTION_PROMOTE, user_id="U0BOB"))
    assert "Only the people in HITL_ADMINS" in bot.ephemeral_for("U0BOB", timeout=30)
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE

    bot.interact(bot.interactions.click(card.channel, card.ts, ACTION_PROMOTE, user_id="U0ALICE"))
    bot.slack.workspace.wait_for(
        lambda: "promoted `send_email` to override" in (bot.slack.workspace.message(card.channel, card.ts).text or ""),
        30, what="the card to say it was promoted",
    )
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.OVERRIDE


def test_not_yet_snoozes(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    _earn(bot)
    _check(bot)
    card = _proposal(bot)
    bot.interact(bot.interactions.click(card.channel, card.ts, ACTION_NOT_YET, user_id="U0ALICE"))
    bot.slack.workspace.wait_for(
        lambda: "not yet" in (bot.slack.workspace.message(card.channel, card.ts).text or ""),
        30, what="the card to say not yet",
    )
    assert _check(bot) == []
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE


def test_a_veto_demotes_at_once(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY.replace("mode: gate", "mode: override"))
    req = bot.approvals.request(action="send_email", summary="Mail the list")
    bot.click(req.id, cards.ACTION_VETO, user="U0BOB")
    view = bot.open_view("U0BOB", views.VIEW_VETO, timeout=30)
    bot.interact(bot.interactions.submit(view.id, {"reason": "wrong list"}))
    assert req.wait(timeout=30).status == "vetoed"
    told = bot.slack.workspace.wait_for(
        lambda: [m for m in _admin_messages(bot) if "moved back from override to gate" in m], 30,
        what="the admin channel told of the demotion",
    )
    assert "vetoed it" in told[0]
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE


def test_a_critical_rejection_demotes(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    req = bot.approvals.request(action="send_email", summary="Mail everyone")
    bot.click(req.id, cards.ACTION_REJECT, user="U0BOB")
    view = bot.open_view("U0BOB", views.VIEW_REJECT, timeout=30)
    bot.interact(bot.interactions.submit(view.id, {"reason": "never", "critical": ["critical"]}))
    assert req.wait(timeout=30).status == "rejected"
    bot.slack.workspace.wait_for(
        lambda: [m for m in _admin_messages(bot) if "moved back from gate to shadow" in m], 30,
        what="the admin channel told of the demotion",
    )
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.SHADOW


def test_a_demotion_decided_outside_slack_is_told_by_the_workers_loop_once(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY.replace("mode: gate", "mode: override"))
    req = bot.approvals.request(action="send_email", summary="Mail the list")
    bot.approvals.decide(req.id, "veto", by="U0BOB", comment="wrong list")  # Python, not a modal
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE
    _check(bot)
    _check(bot)
    told = [m for m in _admin_messages(bot) if "moved back from override to gate" in m]
    assert len(told) == 1 and "<@U0BOB> vetoed it" in told[0]


def test_demotion_notices_slack_cannot_take_wait_for_the_next_pass(bot: Bot) -> None:
    from hitl import autonomy as a
    from hitl.embedded import free_port

    publish_policy(bot.approvals, POLICY.replace("mode: gate", "mode: override"))
    bot.approvals.decide(bot.approvals.request(action="send_email", summary="one").id, "veto", by="U0BOB",
                         comment="no")  # override -> gate
    bot.approvals.decide(bot.approvals.request(action="send_email", summary="two").id, "reject", by="U0BOB",
                         comment="no", critical=True)  # gate -> shadow
    gone = WebClient(token=TOKEN, base_url=f"http://127.0.0.1:{free_port()}/api/")  # nothing listens
    assert tell_demotions(bot.approvals, gone, bot.approvals.settings) == 0
    kept = a.take_demotions(bot.approvals.policy)
    assert [d.now for d in kept] == [Mode.GATE, Mode.SHADOW]  # both kept, oldest first


def test_a_plain_rejection_does_not_demote(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    req = bot.approvals.request(action="send_email", summary="Mail everyone")
    bot.click(req.id, cards.ACTION_REJECT, user="U0BOB")
    view = bot.open_view("U0BOB", views.VIEW_REJECT, timeout=30)
    bot.interact(bot.interactions.submit(view.id, {"reason": "not today"}))
    assert req.wait(timeout=30).status == "rejected"
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE


def test_a_file_applied_afterwards_wins_and_is_reported(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    _earn(bot)
    _check(bot)
    card = _proposal(bot)
    bot.interact(bot.interactions.click(card.channel, card.ts, ACTION_PROMOTE, user_id="U0ALICE"))
    bot.slack.workspace.wait_for(
        lambda: "promoted" in (bot.slack.workspace.message(card.channel, card.ts).text or ""), 30,
        what="the promotion",
    )
    publish_policy(bot.approvals, POLICY + "confidence: {gate_below: 0.7}\n")
    _check(bot)
    assert any("undid the promotion of `send_email` to override" in m for m in _admin_messages(bot))
    assert bot.approvals.request(action="send_email", summary="s").fetch().mode is Mode.GATE


def test_policy_history_command_says_why(bot: Bot) -> None:
    publish_policy(bot.approvals, POLICY)
    _earn(bot)
    _check(bot)
    card = _proposal(bot)
    bot.interact(bot.interactions.click(card.channel, card.ts, ACTION_PROMOTE, user_id="U0ALICE"))
    bot.slack.workspace.wait_for(
        lambda: "promoted" in (bot.slack.workspace.message(card.channel, card.ts).text or ""), 30,
        what="the promotion",
    )
    shown = json.dumps(bot.command("policy history"))
    assert "*v2*" in shown and "_promotion_" in shown and "send_email: gate -&gt; override" in shown  # as Slack renders it
    assert "*v1*" in shown and "_file_" in shown


def test_the_workers_loop_posts_one_card_however_many_passes(bot: Bot) -> None:
    from workers.autonomy import AutonomyLoop

    publish_policy(bot.approvals, POLICY)
    _earn(bot)
    loops = [AutonomyLoop(bot.approvals.settings, interval=0.05).start() for _ in range(2)]
    try:
        _proposal(bot)
        # Two loops, many passes: still one card (the proposal is claimed with SET NX).
        eventually(lambda: all(loop.passes >= 5 for loop in loops), 60, what="five passes of each loop")
    finally:
        for loop in loops:
            loop.stop()
    assert sum("Promote `send_email`" in m for m in _admin_messages(bot)) == 1
