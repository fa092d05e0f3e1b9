"""MCP tools answered by reviewers clicking real cards in the Slack stand-in (signed requests)."""

from __future__ import annotations

import asyncio
import json

from bot.slack.blocks import cards, views
from tests.mcp.conftest import call, first_pending
from tests.slack.conftest import Bot, bot, slack  # noqa: F401 - the Slack fixtures, reused here


def _pending_id(b: Bot) -> str:
    return first_pending(b.approvals)


def test_await_approval_returns_a_decision_clicked_in_slack(stdio, bot: Bot) -> None:  # noqa: F811
    async def scenario() -> dict:
        async with stdio() as client:
            pending = (await call(client, "request_approval", action="deploy", summary="Deploy v2", wait_seconds=1)).json
            assert pending["status"] == "pending"
            await asyncio.to_thread(bot.card, pending["id"])
            status, _ = await asyncio.to_thread(bot.click, pending["id"], cards.ACTION_APPROVE, "U0ALICE")
            assert status == 200
            return (await call(client, "await_approval", id=pending["id"], wait_seconds=20)).json

    view = asyncio.run(scenario())
    assert view["status"] == "approved" and view["decision"]["by"] == ["U0ALICE"]


def test_permission_prompt_edit_in_slack_allows_the_edited_input(stdio, bot: Bot) -> None:  # noqa: F811
    def reviewer() -> None:
        rid = _pending_id(bot)
        bot.card(rid)
        bot.click(rid, cards.ACTION_EDIT, user="U0ALICE")
        view = bot.open_view("U0ALICE", views.VIEW_EDIT)
        status, body = bot.interact(bot.interactions.submit(view.id, {"params": json.dumps({"command": "git push"})}))
        assert status == 200 and body == ""

    async def scenario() -> dict:
        async with stdio() as client:
            review = asyncio.ensure_future(asyncio.to_thread(reviewer))
            answer = await call(client, "permission_prompt", tool_name="Bash", input={"command": "git push --force"})
            await review
            return answer.json

    assert asyncio.run(scenario()) == {"behavior": "allow", "updatedInput": {"command": "git push"}}


def test_permission_prompt_reject_in_slack_denies_with_the_reason(stdio, bot: Bot) -> None:  # noqa: F811
    def reviewer() -> None:
        rid = _pending_id(bot)
        bot.card(rid)
        bot.click(rid, cards.ACTION_REJECT, user="U0BOB")
        view = bot.open_view("U0BOB", views.VIEW_REJECT)
        status, _ = bot.interact(bot.interactions.submit(view.id, {"reason": "not on a Friday"}))
        assert status == 200

    async def scenario() -> dict:
        async with stdio() as client:
            review = asyncio.ensure_future(asyncio.to_thread(reviewer))
            answer = await call(client, "permission_prompt", tool_name="Bash", input={"command": "make deploy"})
            await review
            return answer.json

    answer = asyncio.run(scenario())
    assert answer["behavior"] == "deny"
    assert "not on a Friday" in answer["message"] and "U0BOB" in answer["message"]
