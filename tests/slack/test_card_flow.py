"""Reviewers click real cards; the waiting agent gets the decision."""

from __future__ import annotations

import json

from bot.slack.blocks import cards, views
from hitl import Approvals
from tests.helpers import events, publish_policy
from tests.slack.conftest import CHANNEL, Bot, buttons, card_text, decidable


def test_gate_card_is_posted_once_and_approve_wakes_the_agent(bot: Bot, conn, prefix) -> None:
    req = bot.approvals.request(
        action="send_email", summary="Send the overdue reminder", params={"recipients": 200}, requested_by="U0DAVE"
    )
    card = bot.card(req.id)
    assert card.channel == CHANNEL and decidable(card)
    status, _ = bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    assert status == 200
    d = req.wait(timeout=10)
    assert (d.status, d.by) == ("approved", ["U0ALICE"])
    final = bot.card_when(req.id, lambda m: not decidable(m))
    assert "Approved by <@U0ALICE>" in card_text(final)
    posts = [c for c in bot.slack.workspace.calls("chat.postMessage") if c.args.get("channel") == CHANNEL]
    assert len(posts) == 1


def test_reject_asks_for_a_reason_that_reaches_the_agent(bot: Bot) -> None:
    req = bot.approvals.request(action="delete_record", summary="Delete customer 42")
    bot.click(req.id, cards.ACTION_REJECT, user="U0BOB")
    view = bot.open_view("U0BOB", views.VIEW_REJECT)
    status, body = bot.interact(bot.interactions.submit(view.id, {"reason": "wrong customer"}))
    assert status == 200 and body == ""
    d = req.wait(timeout=10)
    assert (d.status, d.comment, d.by) == ("rejected", "wrong customer", ["U0BOB"])
    final = bot.card_when(req.id, lambda m: not decidable(m))
    assert "wrong customer" in card_text(final)


def test_edit_approves_with_the_new_parameters(bot: Bot, conn, prefix) -> None:
    req = bot.approvals.request(action="send_email", summary="s", params={"recipients": 200, "template": "overdue"})
    bot.click(req.id, cards.ACTION_EDIT, user="U0ALICE")
    view = bot.open_view("U0ALICE", views.VIEW_EDIT)
    status, body = bot.interact(bot.interactions.submit(view.id, {"params": "{not json"}))
    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert req.status() == "pending"
    edited = json.dumps({"recipients": 20, "template": "overdue"})
    status, body = bot.interact(bot.interactions.submit(view.id, {"params": edited}))
    assert status == 200 and body == ""
    d = req.wait(timeout=10)
    assert d.params == {"recipients": 20, "template": "overdue"}
    assert req.fetch().params["recipients"] == 200
    decided = next(e for e in events(conn, prefix, req.id) if e["type"] == "decided")
    assert json.loads(decided["params"])["recipients"] == 20


def test_override_veto_and_looks_good(bot: Bot) -> None:
    vetoed = bot.approvals.request(action="send_email", summary="s", mode="override", window=600)
    bot.click(vetoed.id, cards.ACTION_VETO, user="U0ALICE")
    view = bot.open_view("U0ALICE", views.VIEW_VETO)
    bot.interact(bot.interactions.submit(view.id, {"reason": "wrong list"}))
    assert vetoed.wait(timeout=10).status == "vetoed"
    fine = bot.approvals.request(action="send_email", summary="s", mode="override", window=600)
    bot.click(fine.id, cards.ACTION_CONFIRM, user="U0BOB")
    assert fine.wait(timeout=10).status == "finalized"


def test_shadow_buttons_record_the_verdict(bot: Bot) -> None:
    req = bot.approvals.request(action="refund", summary="Refund $40", mode="shadow")
    bot.click(req.id, cards.ACTION_WOULD_REJECT, user="U0CAROL")
    d = req.wait(timeout=10)
    assert (d.status, d.verdict) == ("judged", "reject")


def test_notify_card_has_no_decision_buttons(bot: Bot) -> None:
    req = bot.approvals.request(action="post_update", summary="Posted the weekly update", mode="notify")
    card = bot.card(req.id)
    assert not decidable(card)
    assert cards.ACTION_DETAILS in buttons(card)


def test_auto_posts_nothing(bot: Bot) -> None:
    req = bot.approvals.request(action="search_web", summary="s", mode="auto")
    follow = bot.approvals.request(action="a", summary="after", mode="notify")
    bot.card(follow.id)  # the worker has passed the auto request by now
    assert bot._find(req.id) is None


def test_details_modal_shows_long_parameters_whole_and_secrets_masked(bot: Bot) -> None:
    long_value = "line of the email body " * 40
    req = bot.approvals.request(
        action="send_email", summary="s", params={"body": long_value, "password": "hunter2"}
    )
    assert long_value not in card_text(bot.card(req.id))  # cut on the card
    bot.click(req.id, cards.ACTION_DETAILS, user="U0CAROL")  # anyone may look
    view = bot.open_view("U0CAROL", views.VIEW_DETAILS)
    shown = json.dumps(view.blocks, ensure_ascii=False)
    assert long_value.strip() in shown.replace("\\n", " ") or long_value[:200] in shown
    assert "hunter2" not in shown
    assert req.status() == "pending"


def test_escalation_step_reposts_the_card_in_another_channel(bot: Bot, tmp_path) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(
        "actions:\n  deploy:\n    mode: gate\n    timeout: 30s\n    escalation:\n"
        "      - {after: 0.5s, channel: C0ENGLEADS, notify: [S0LEADS]}\n"
    )
    publish_policy(bot.approvals, policy.read_text())
    with Approvals(settings=bot.approvals.settings) as routed:
        req = routed.request(action="deploy", summary="Deploy the API")
    card = bot.card(req.id)
    ws = bot.slack.workspace
    reminder = ws.wait_for(lambda: ws.replies(card.channel, card.ts)[1:], 10, what="the reminder")
    assert "<!subteam^S0LEADS>" in reminder[0].text
    mirror = ws.wait_for(
        lambda: [m for m in ws.messages("C0ENGLEADS", include_replies=False) if "Deploy the API" in card_text(m)],
        10, what="the card reposted in #eng-leads",
    )
    bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    assert req.wait(timeout=10).status == "approved"
    ws.wait_for(  # the repost is kept in step with the original
        lambda: not decidable(ws.message("C0ENGLEADS", mirror[0].ts)), 10, what="the repost to update"
    )
