"""A plan gets one card: approve or reject it whole, or decide single steps."""

from __future__ import annotations

import json

from bot.slack.blocks import cards, views
from tests.slack.conftest import Bot


def _plan(bot: Bot, n: int = 5):
    return bot.approvals.request_batch(
        summary="Send the overdue reminder to 5 customers",
        items=[{"action": "send_email", "summary": f"Remind customer {i}", "params": {"customer": i}}
               for i in range(n)],
    )


def test_approve_all_approves_every_step_and_closes_the_plan(bot: Bot) -> None:
    batch = _plan(bot)
    card = bot.card(batch.id)
    assert len([b for b in card.blocks if b.get("accessory", {}).get("type") == "overflow"]) == 5
    bot.click(batch.id, cards.ACTION_PLAN_APPROVE, user="U0ALICE")
    assert {d.status for d in batch.wait(timeout=10)} == {"approved"}
    assert batch.plan.wait(timeout=10).status == "approved"
    final = bot.card_when(batch.id, lambda m: cards.ACTION_PLAN_APPROVE not in json.dumps(m.blocks))
    assert "5 approved" in json.dumps(final.blocks)
    assert bot._find(batch.items[0].id) is None  # steps get no cards of their own


def test_single_steps_are_decided_from_the_plan_card(bot: Bot) -> None:
    batch = _plan(bot, 2)
    card = bot.card(batch.id)
    first, second = batch.items
    for step, verb in ((first, "approve"), (second, "reject")):
        block = next(b for b in card.blocks if b.get("block_id", "").endswith(f":{step.id}"))
        payload = bot.interactions.click(card.channel, card.ts, block["accessory"]["action_id"],
                                         user_id="U0BOB", selected=f"{verb}|{step.id}")
        bot.interact(payload)
        if verb == "reject":
            view = bot.open_view("U0BOB", views.VIEW_REJECT)
            bot.interact(bot.interactions.submit(view.id, {"reason": "already paid"}))
    assert [d.status for d in batch.wait(timeout=10)] == ["approved", "rejected"]
    plan = batch.plan.wait(timeout=10)
    assert (plan.status, plan.comment) == ("approved", "1 of 2 steps approved")


def test_reject_all_gives_every_step_the_reason(bot: Bot) -> None:
    batch = _plan(bot, 3)
    bot.click(batch.id, cards.ACTION_PLAN_REJECT, user="U0CAROL")
    view = bot.open_view("U0CAROL", views.VIEW_REJECT)
    bot.interact(bot.interactions.submit(view.id, {"reason": "wrong segment"}))
    assert [(d.status, d.comment) for d in batch.wait(timeout=10)] == [("rejected", "wrong segment")] * 3
    assert batch.plan.wait(timeout=10).status == "rejected"



def test_a_plan_closes_when_its_last_step_is_withdrawn_after_a_click(bot: Bot) -> None:
    batch = _plan(bot, 2)
    card = bot.card(batch.id)
    first, second = batch.items
    block = next(b for b in card.blocks if b.get("block_id", "").endswith(f":{first.id}"))
    bot.interact(bot.interactions.click(card.channel, card.ts, block["accessory"]["action_id"],
                                        user_id="U0BOB", selected=f"approve|{first.id}"))
    assert first.wait(timeout=10).status == "approved"
    assert batch.plan.status() == "pending"
    second.cancel()  # the agent withdraws the last step: no click, no bot involved
    plan = batch.plan.wait(timeout=10)
    assert (plan.status, plan.by, plan.comment) == ("approved", [], "1 of 2 steps approved")
    final = bot.card_when(batch.id, lambda m: cards.ACTION_PLAN_APPROVE not in json.dumps(m.blocks))
    assert "1 approved" in json.dumps(final.blocks)
