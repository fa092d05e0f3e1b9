"""Forged, replayed and refused: nothing changes and the person is told why."""

from __future__ import annotations

import json
import time
import urllib.request

import pytest
from hitl_sandbox.signing import sign, signed_command, signed_interaction

from bot.slack.blocks import cards
from bot.slack.blocks.views import VIEW_REJECT
from tests.helpers import events
from tests.slack.conftest import SECRET, Bot, card_text, decidable


def test_forged_signature_is_401_and_changes_nothing(bot: Bot, conn, prefix) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    payload = bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id="U0ALICE")
    status, _ = bot.send(signed_interaction("not-the-secret", payload))
    assert status == 401
    assert req.status() == "pending"


def test_replayed_request_older_than_five_minutes_is_401(bot: Bot) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    payload = bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id="U0ALICE")
    status, _ = bot.send(signed_interaction(SECRET, payload, timestamp=int(time.time()) - 6 * 60))
    assert status == 401
    assert req.status() == "pending"


def test_unsigned_and_malformed_bodies_are_refused(bot: Bot) -> None:
    raw = urllib.request.Request(bot.url, data=b"payload=%7Bnot-json", method="POST",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(raw, timeout=5)
        code = 200
    except urllib.error.HTTPError as exc:
        code = exc.code
    assert code == 401
    body = b"payload=%7Bnot-json"
    signed = urllib.request.Request(bot.url, data=body, method="POST",
                                    headers={"Content-Type": "application/x-www-form-urlencoded", **sign(SECRET, body)})
    try:
        with urllib.request.urlopen(signed, timeout=5) as resp:
            code = resp.status
    except urllib.error.HTTPError as exc:
        code = exc.code
    assert code == 400


def test_the_same_click_delivered_three_times_decides_once(bot: Bot, conn, prefix) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    payload = bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id="U0ALICE")
    for _ in range(3):
        status, _ = bot.interact(payload)
        assert status == 200
    assert req.wait(timeout=10).by == ["U0ALICE"]
    assert [e["type"] for e in events(conn, prefix, req.id) if e["type"] != "escalated"] == ["created", "decided"]
    note = bot.ephemeral_for("U0ALICE")
    assert "already approved by <@U0ALICE>" in note


def test_requester_cannot_approve_their_own_request(bot: Bot) -> None:
    req = bot.approvals.request(action="a", summary="s", requested_by="U0DAVE")
    bot.click(req.id, cards.ACTION_APPROVE, user="U0DAVE")
    assert "you requested this action" in bot.ephemeral_for("U0DAVE")
    assert req.status() == "pending"


def test_non_approver_is_refused_and_group_member_may_decide(bot: Bot) -> None:
    req = bot.approvals.request(action="a", summary="s", approvers=["S0LEADS"])
    bot.click(req.id, cards.ACTION_APPROVE, user="U0CAROL")  # not in S0LEADS
    assert "not one of the approvers" in bot.ephemeral_for("U0CAROL")
    assert req.status() == "pending"
    bot.click(req.id, cards.ACTION_REJECT, user="U0DAVE")  # a modal would be pointless: told at once
    assert "not one of the approvers" in bot.ephemeral_for("U0DAVE")
    bot.click(req.id, cards.ACTION_APPROVE, user="U0BOB")  # in S0LEADS
    assert req.wait(timeout=10).by == ["U0BOB"]


def test_click_on_a_final_card_says_who_decided(bot: Bot) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    stale = bot.interactions.click(card.channel, card.ts, cards.ACTION_REJECT, user_id="U0BOB")
    bot.approvals.decide(req.id, "approve", by="U0ALICE")
    bot.interact(stale)
    assert "already approved by <@U0ALICE>" in bot.ephemeral_for("U0BOB")


def test_quorum_progress_shows_on_the_card(bot: Bot) -> None:
    req = bot.approvals.request(action="delete_record", summary="s", quorum=2)
    bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    progress = bot.card_when(req.id, lambda m: "1 of 2" in card_text(m))
    assert decidable(progress)
    bot.click(req.id, cards.ACTION_APPROVE, user="U0BOB")
    assert req.wait(timeout=10).by == ["U0ALICE", "U0BOB"]


def test_agent_text_is_inert_on_the_card(bot: Bot) -> None:
    req = bot.approvals.request(
        action="a",
        summary="Hi <!channel> and <@U0ALICE>, see <https://evil.example|your bank>",
        params={"note": "<!here>", "api_key": "sk-live-123456"},
        context="ping <!subteam^S0LEADS>",
    )
    text = card_text(bot.card(req.id))
    for raw in ("<!channel>", "<@U0ALICE>", "<https://evil", "<!here>", "<!subteam^S0LEADS>"):
        assert raw not in text
    assert "&lt;!channel&gt;" in text
    assert "sk-live-123456" not in text


def test_healthz(bot: Bot) -> None:
    url = bot.url.replace("/slack/events", "/healthz")
    with urllib.request.urlopen(url, timeout=5) as resp:
        assert resp.status == 200


def test_a_non_integer_timestamp_is_401_without_a_traceback(bot: Bot, caplog) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    payload = bot.interactions.click(card.channel, card.ts, cards.ACTION_APPROVE, user_id="U0ALICE")
    for stamp in ("abc", "1e9", "", "99999999999999999999999999"):
        signed = signed_interaction(SECRET, payload)
        signed.headers["X-Slack-Request-Timestamp"] = stamp
        status, body = bot.send(signed)
        assert status == 401, (stamp, body)
        assert "invalid request" in body
    assert "Traceback" not in caplog.text and "ValueError" not in caplog.text
    assert req.status() == "pending"


@pytest.mark.parametrize("user", ["missing", None, {"id": "<!channel>"}])
@pytest.mark.parametrize("action_id", [cards.ACTION_APPROVE, cards.ACTION_REJECT, cards.ACTION_DETAILS])
def test_a_signed_click_that_names_no_user_is_400_and_changes_nothing(
    bot: Bot, conn, prefix, caplog, user: object, action_id: str
) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    payload = bot.interactions.click(card.channel, card.ts, action_id, user_id="U0ALICE")
    if user == "missing":
        del payload["user"]
    else:
        payload["user"] = user
    status, body = bot.interact(payload)
    assert status == 400, body
    assert "names no Slack user" in json.loads(body)["error"]
    assert "Traceback" not in caplog.text and "Failed to run listener" not in caplog.text
    assert req.status() == "pending"
    assert [e["type"] for e in events(conn, prefix, req.id) if e["type"] != "escalated"] == ["created"]
    assert bot.slack.workspace.ephemerals() == [] and bot.slack.workspace.top_view("U0ALICE") is None
    # The very same click, with its user, decides.
    if action_id == cards.ACTION_APPROVE:
        good = bot.interactions.click(card.channel, card.ts, action_id, user_id="U0ALICE")
        assert bot.interact(good)[0] == 200
        assert req.wait(timeout=10).by == ["U0ALICE"]


def test_a_signed_form_or_command_that_names_no_user_is_400(bot: Bot) -> None:
    req = bot.approvals.request(action="a", summary="s")
    card = bot.card(req.id)
    bot.interact(bot.interactions.click(card.channel, card.ts, cards.ACTION_REJECT, user_id="U0ALICE"))
    view = bot.open_view("U0ALICE", VIEW_REJECT)
    submit = bot.interactions.submit(view.id, {"reason": "not today"})
    del submit["user"]
    status, body = bot.interact(submit)
    assert status == 400 and "names no Slack user" in body
    command = bot.interactions.command("/hitl", "status", user_id="U0ALICE")
    del command["user_id"]
    status, body = bot.send(signed_command(SECRET, command))
    assert status == 400 and "names no Slack user" in body
    home = bot.interactions.home_opened("U0ALICE")
    del home["event"]["user"]
    status, body = bot.event(home)
    assert status == 400 and "names no Slack user" in body
    assert req.status() == "pending"
