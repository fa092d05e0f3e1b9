"""Claude Agent SDK: `can_use_tool` and the `PreToolUse` hook matcher, through the SDK's own
plumbing. `ClaudeSDKClient` is connected to a stand-in for the Claude Code CLI (a custom
`Transport`, which the SDK supports): it answers the SDK's initialize and sends the control
requests the CLI sends (``can_use_tool``, ``hook_callback``), and the test reads the SDK's
control responses. No model is called and the bundled CLI never runs. Reviewers decide by
clicking cards in the Slack stand-in (the real Bolt app and worker)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from typing import Any

from claude_agent_sdk import (
    ClaudeAgentOptions,
    ClaudeSDKClient,
    PermissionResultAllow,
    PermissionResultDeny,
    ToolPermissionContext,
)
from claude_agent_sdk._internal.transport import Transport

from bot.slack.blocks import cards, views
from hitl import Approvals
from hitl.claude_code import FAIL_CLOSED
from hitl.integrations.claude_agent import can_use_tool, pre_tool_use_hook
from tests.helpers import events
from tests.mcp.conftest import first_pending
from tests.slack.conftest import CHANNEL, Bot, bot, slack  # noqa: F401 - the Slack fixtures

PUSH = {"command": "git push --force origin main"}


class CliStandIn(Transport):
    """The Claude Code CLI's side of the SDK's control protocol, in memory."""

    def __init__(self) -> None:
        self.to_sdk: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self.answers: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.hooks: dict[str, Any] = {}  # what the SDK registered at initialize
        self._ids = itertools.count(1)

    async def connect(self) -> None:
        return None

    async def write(self, data: str) -> None:
        for line in data.splitlines():
            msg = json.loads(line)
            if msg.get("type") == "control_request" and msg["request"].get("subtype") == "initialize":
                self.hooks = msg["request"].get("hooks") or {}
                await self.to_sdk.put({"type": "control_response", "response": {
                    "subtype": "success", "request_id": msg["request_id"], "response": {}}})
            elif msg.get("type") == "control_response":
                self.answers[msg["response"]["request_id"]].set_result(msg["response"])

    async def read_messages(self) -> AsyncIterator[dict[str, Any]]:
        while (msg := await self.to_sdk.get()) is not None:
            yield msg

    async def close(self) -> None:
        await self.to_sdk.put(None)

    def is_ready(self) -> bool:
        return True

    async def end_input(self) -> None:
        return None

    async def ask(self, request: dict[str, Any]) -> dict[str, Any]:
        """Send a control request as the CLI does; the SDK's response to it."""
        rid = f"cli_{next(self._ids)}"
        answered = self.answers[rid] = asyncio.get_running_loop().create_future()
        await self.to_sdk.put({"type": "control_request", "request_id": rid, "request": request})
        response = await asyncio.wait_for(answered, 90)
        assert response["subtype"] == "success", response
        return response["response"]

    async def permission(self, tool: str, tool_input: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
        return await self.ask({"subtype": "can_use_tool", "tool_name": tool, "input": tool_input,
                               "permission_suggestions": None, "tool_use_id": tool_use_id})

    async def pre_tool_use(self, tool: str, tool_input: dict[str, Any], tool_use_id: str) -> dict[str, Any]:
        (callback_id,) = self.hooks["PreToolUse"][0]["hookCallbackIds"]
        hook_input = {"session_id": "sess-1", "transcript_path": "/tmp/t.jsonl", "cwd": "/work/app",
                      "hook_event_name": "PreToolUse", "tool_name": tool, "tool_input": tool_input,
                      "tool_use_id": tool_use_id}
        return await self.ask({"subtype": "hook_callback", "callback_id": callback_id, "input": hook_input,
                               "tool_use_id": tool_use_id})


async def connected(options: ClaudeAgentOptions) -> tuple[ClaudeSDKClient, CliStandIn]:
    cli = CliStandIn()
    client = ClaudeSDKClient(options=options, transport=cli)
    await client.connect()
    return client, cli


def created(b: Bot) -> list[str]:
    return [e["id"] for e in events(b.approvals.redis, b.approvals.keys.prefix) if e["type"] == "created"]


def cards_posted(b: Bot, request_id: str) -> int:
    return sum(
        ((m.metadata or {}).get("event_payload") or {}).get("id") == request_id
        for m in b.slack.workspace.messages(CHANNEL, include_replies=False)
    )


def edit_in_slack(b: Bot, params: dict[str, Any]) -> str:
    rid = first_pending(b.approvals)
    b.card(rid)
    b.click(rid, cards.ACTION_EDIT, user="U0ALICE")
    view = b.open_view("U0ALICE", views.VIEW_EDIT)
    status, _ = b.interact(b.interactions.submit(view.id, {"params": json.dumps(params)}))
    assert status == 200
    return rid


def reject_in_slack(b: Bot, reason: str) -> str:
    rid = first_pending(b.approvals)
    b.card(rid)
    b.click(rid, cards.ACTION_REJECT, user="U0BOB")
    view = b.open_view("U0BOB", views.VIEW_REJECT)
    status, _ = b.interact(b.interactions.submit(view.id, {"reason": reason}))
    assert status == 200
    return rid


def test_can_use_tool_allows_the_reviewers_edit(bot: Bot) -> None:  # noqa: F811
    edited = {"command": "git push origin main"}

    async def scenario() -> dict[str, Any]:
        client, cli = await connected(ClaudeAgentOptions(can_use_tool=can_use_tool(bot.approvals)))
        try:
            reviewer = asyncio.ensure_future(asyncio.to_thread(edit_in_slack, bot, edited))
            answer = await cli.permission("Bash", PUSH, "toolu_01")
            await reviewer
            return answer
        finally:
            await client.disconnect()

    assert asyncio.run(scenario()) == {"behavior": "allow", "updatedInput": edited}
    (rid,) = created(bot)
    req = bot.approvals.store.get(rid)
    assert req.action == "claude-code.Bash" and req.agent == "claude-code" and req.params == PUSH


def test_can_use_tool_times_out_to_a_deny_and_the_repeat_re_attaches(bot: Bot) -> None:  # noqa: F811
    callback = can_use_tool(bot.approvals, session="run-7", wait=1)

    async def scenario() -> tuple[Any, Any]:
        first = await callback("Bash", PUSH, ToolPermissionContext(tool_use_id="toolu_01"))
        rid = first_pending(bot.approvals)
        await asyncio.to_thread(bot.card, rid)
        status, _ = await asyncio.to_thread(bot.click, rid, cards.ACTION_APPROVE, "U0ALICE")
        assert status == 200
        again = await callback("Bash", PUSH, ToolPermissionContext(tool_use_id="toolu_02"))
        return first, again

    first, again = asyncio.run(scenario())
    (rid,) = created(bot)
    assert isinstance(first, PermissionResultDeny)
    assert f"no decision yet (request {rid} is still pending in Slack)" in first.message
    assert isinstance(again, PermissionResultAllow) and again.updated_input is None  # as the model asked
    assert cards_posted(bot, rid) == 1


def test_the_pre_tool_use_hook_denies_with_the_reviewers_reason(bot: Bot) -> None:  # noqa: F811
    async def scenario() -> dict[str, Any]:
        options = ClaudeAgentOptions(hooks={"PreToolUse": [pre_tool_use_hook(bot.approvals, matcher="Bash")]})
        client, cli = await connected(options)
        try:
            assert cli.hooks["PreToolUse"][0]["matcher"] == "Bash"
            reviewer = asyncio.ensure_future(asyncio.to_thread(reject_in_slack, bot, "not on main"))
            answer = await cli.pre_tool_use("Bash", PUSH, "toolu_01")
            await reviewer
            return answer
        finally:
            await client.disconnect()

    out = asyncio.run(scenario())["hookSpecificOutput"]
    assert out["hookEventName"] == "PreToolUse" and out["permissionDecision"] == "deny"
    assert "not on main" in out["permissionDecisionReason"] and "U0BOB" in out["permissionDecisionReason"]


def test_the_pre_tool_use_hook_allows_with_the_updated_input(bot: Bot) -> None:  # noqa: F811
    edited = {"command": "git push origin main"}

    async def scenario() -> dict[str, Any]:
        options = ClaudeAgentOptions(hooks={"PreToolUse": [pre_tool_use_hook(bot.approvals)]})
        client, cli = await connected(options)
        try:
            reviewer = asyncio.ensure_future(asyncio.to_thread(edit_in_slack, bot, edited))
            answer = await cli.pre_tool_use("Bash", PUSH, "toolu_01")
            await reviewer
            return answer
        finally:
            await client.disconnect()

    out = asyncio.run(scenario())["hookSpecificOutput"]
    assert out["permissionDecision"] == "allow" and out["updatedInput"] == edited


def test_every_error_path_denies(bot: Bot) -> None:  # noqa: F811
    down = Approvals(api_url="http://127.0.0.1:9", api_key="hitl_nothing")  # no hitl answers there

    async def scenario() -> tuple[Any, dict[str, Any], dict[str, Any]]:
        denied = await can_use_tool(down, wait=1)("Bash", PUSH, ToolPermissionContext(tool_use_id="toolu_01"))
        options = ClaudeAgentOptions(hooks={"PreToolUse": [pre_tool_use_hook(down, wait=1)]})
        client, cli = await connected(options)
        try:
            unreachable = await cli.pre_tool_use("Bash", PUSH, "toolu_02")
            (callback_id,) = cli.hooks["PreToolUse"][0]["hookCallbackIds"]
            malformed = await cli.ask({"subtype": "hook_callback", "callback_id": callback_id,
                                       "input": {"hook_event_name": "PreToolUse"}, "tool_use_id": None})
            return denied, unreachable, malformed
        finally:
            await client.disconnect()

    try:
        denied, unreachable, malformed = asyncio.run(scenario())
    finally:
        down.close()
    assert isinstance(denied, PermissionResultDeny) and denied.message.startswith(FAIL_CLOSED)
    for answer in (unreachable, malformed):
        out = answer["hookSpecificOutput"]
        assert out["permissionDecision"] == "deny" and out["permissionDecisionReason"].startswith(FAIL_CLOSED)
    assert "tool_name" in malformed["hookSpecificOutput"]["permissionDecisionReason"]
    assert created(bot) == []
