"""Waits that outlast the client: a permission_prompt that ran out of time leaves its
request pending in Slack, and the same call asked again re-attaches to it (one card)."""

from __future__ import annotations

import asyncio
import contextlib

from bot.slack.blocks import cards
from hitl import waiters
from tests.helpers import events, eventually
from tests.mcp.conftest import call, first_pending
from tests.slack.conftest import CHANNEL, Bot, bot, slack  # noqa: F401 - the Slack fixtures, reused here

PUSH = {"command": "git push origin main"}


def cards_posted(b: Bot, request_id: str) -> int:
    """How many top-level messages in the approvals channel are this request's card."""
    return sum(
        ((m.metadata or {}).get("event_payload") or {}).get("id") == request_id
        for m in b.slack.workspace.messages(CHANNEL, include_replies=False)
    )


def _created(b: Bot) -> list[dict[str, str]]:
    return [e for e in events(b.approvals.redis, b.approvals.keys.prefix) if e["type"] == "created"]


def test_a_decision_made_after_the_clients_timeout_reaches_the_retry(stdio, bot: Bot) -> None:  # noqa: F811
    async def scenario() -> tuple[dict, dict, dict]:
        async with stdio() as client:
            first = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH,
                                tool_use_id="toolu_A", wait_seconds=1)).json
            rid = first_pending(bot.approvals)
            await asyncio.to_thread(bot.card, rid)
            status, _ = await asyncio.to_thread(bot.click, rid, cards.ACTION_APPROVE, "U0ALICE")
            assert status == 200
            again = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH,
                                tool_use_id="toolu_A", wait_seconds=5)).json
            # The model's next attempt after a "no decision yet" is a new tool_use_id: it re-attaches too,
            # but the approval was handed out once already, so it is asked for anew (never run twice).
            third = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH,
                                tool_use_id="toolu_B", wait_seconds=0)).json
            return first, again, third

    first, again, third = asyncio.run(scenario())
    assert first["behavior"] == "deny" and "still pending in Slack" in first["message"]
    assert again == {"behavior": "allow", "updatedInput": PUSH}
    created = _created(bot)
    assert third["behavior"] == "deny" and created[1]["id"] in third["message"]
    assert len(created) == 2  # the retry filed nothing: one card for the first approval
    rid = created[0]["id"]
    assert rid in first["message"]
    bot.card(rid)
    assert cards_posted(bot, rid) == 1


def test_a_retry_while_pending_attaches_to_the_same_request(stdio, bot: Bot) -> None:  # noqa: F811
    async def scenario() -> tuple[dict, dict]:
        async with stdio() as client:
            first = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=1)).json
            again = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=1)).json
            return first, again

    first, again = asyncio.run(scenario())
    (created,) = _created(bot)
    assert created["id"] in first["message"] and created["id"] in again["message"]
    assert bot.approvals.store.get(created["id"]).status == "pending"


def test_a_client_that_gives_up_leaves_the_request_pending(stdio, bot: Bot) -> None:  # noqa: F811
    async def scenario() -> None:
        async with stdio() as client:
            waiting = asyncio.ensure_future(
                call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=50)
            )
            await asyncio.to_thread(first_pending, bot.approvals)
            waiting.cancel()  # the client gives up mid-wait, then goes away (the server process ends)
            with contextlib.suppress(asyncio.CancelledError):
                await waiting

    asyncio.run(scenario())
    (created,) = _created(bot)
    assert bot.approvals.store.get(created["id"]).status == "pending"
    bot.card(created["id"])  # still decidable in Slack
    status, _ = bot.click(created["id"], cards.ACTION_APPROVE, "U0ALICE")
    assert status == 200
    # the click is acknowledged before it is applied (Slack wants an answer within 3 s)
    eventually(lambda: bot.approvals.store.get(created["id"]).status == "approved", 15, "the approval")


def test_an_http_client_that_gives_up_leaves_the_approval_to_its_retry(mcp_http, approvals, settings) -> None:
    async def scenario() -> tuple[str, dict]:
        async with mcp_http.client() as client:
            waiting = asyncio.ensure_future(
                call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=50)
            )
            rid = await asyncio.to_thread(first_pending, approvals)
            # The server runs in this process: its wait is visible on the dispatcher. Cancel once
            # it waits, and decide only once it stopped: a decision that lands while the server is
            # still waiting is handed to the call that gave up (the retry then rightly files anew).
            hub = waiters.dispatcher(settings.redis, settings.prefix)
            await asyncio.to_thread(eventually, lambda: rid in hub.registered(), 10, "the server's wait")
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            await asyncio.to_thread(eventually, lambda: rid not in hub.registered(), 30, "the wait to end")
        assert approvals.store.get(rid).status == "pending"
        await asyncio.to_thread(approvals.decide, rid, "approve", by="U0ALICE")
        async with mcp_http.client() as client:
            again = await call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=5)
        return rid, again.json

    rid, again = asyncio.run(scenario())
    assert again == {"behavior": "allow", "updatedInput": PUSH}
    assert [e["id"] for e in events(approvals.redis, approvals.keys.prefix) if e["type"] == "created"] == [rid]
