"""An escalation's repost is kept in step even when the decision lands while it is being posted.

Found by `make soak` under load: the repost was drawn (pending) and posted, and a decision
made while Slack held the post updated the original card but not the copy, which was not yet
recorded; nothing synced it afterwards, so #eng-leads kept showing live buttons on an
approved request.
"""

from __future__ import annotations

from bot.slack.blocks import cards
from hitl import Approvals
from tests.helpers import publish_policy
from tests.slack.conftest import Bot, card_text, decidable

LEADS = "C0ENGLEADS"


def test_a_repost_in_flight_when_the_decision_lands_is_updated_afterwards(bot: Bot) -> None:
    publish_policy(bot.approvals, (
        "actions:\n  deploy:\n    mode: gate\n    timeout: 60s\n    escalation:\n"
        f"      - {{after: 0.5s, channel: {LEADS}, notify: [S0LEADS]}}\n"
    ))
    ws = bot.slack.workspace
    # The card, the reminder and the repost are the three chat.postMessage calls, in an order
    # that depends on timing for the first two; the third is always the repost.
    first, second, repost = (bot.slack.faults.hold("chat.postMessage") for _ in range(3))
    with Approvals(settings=bot.approvals.settings) as routed:
        req = routed.request(action="deploy", summary="Deploy the API")
    for held in (first, second):
        assert held.arrived.wait(20), "the card and the reminder were never posted"
        held.release()
    assert repost.arrived.wait(20), "the escalation never reposted the card"
    bot.card(req.id)
    bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    assert req.wait(timeout=10).status == "approved"
    bot.card_when(req.id, lambda m: not decidable(m))  # the original is final; the copy is still in flight
    repost.release()
    (copy,) = ws.wait_for(
        lambda: [m for m in ws.messages(LEADS, include_replies=False) if "Deploy the API" in card_text(m)],
        10, what="the repost",
    )
    final = ws.wait_for(lambda: (m := ws.message(LEADS, copy.ts)) and not decidable(m) and m, 10,
                        what="the repost to show the decision")
    assert "Approved by <@U0ALICE>" in card_text(final)
