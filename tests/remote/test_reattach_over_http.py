"""Re-attaching over HTTP: an agent with only an API key (`hitl mcp` with HITL_API_URL, and
the Claude Agent SDK callback on an `HttpApprovals`) times out, a reviewer approves in Slack,
and the retry gets the approval; the hand-out is recorded through /v1's execution route."""

from __future__ import annotations

import asyncio
import sys

from claude_agent_sdk import PermissionResultAllow, PermissionResultDeny, ToolPermissionContext
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bot.slack.blocks import cards
from hitl import Approvals
from hitl.integrations.claude_agent import can_use_tool
from hitl.status import ExecutionState
from tests.helpers import ROOT, eventually
from tests.mcp.conftest import call
from tests.remote.conftest import AGENT_KEY, Stack, agent_env, stack  # noqa: F401 - the product, as a fixture

PUSH = {"command": "git push origin main"}


def _approve_pending(s: Stack) -> str:
    ids = eventually(lambda: s.approvals.redis.zrange(s.approvals.keys.pending, 0, -1), 20, "a pending request")
    rid = ids[0].decode()
    s.bot.card(rid)
    status, _ = s.bot.click(rid, cards.ACTION_APPROVE, "U0ALICE")
    assert status == 200
    return rid


def test_mcp_permission_prompt_over_http_re_attaches(stack: Stack) -> None:  # noqa: F811
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hitl.cli", "mcp"], env=agent_env(stack.api_url), cwd=ROOT
    )

    async def scenario() -> tuple[dict, str, dict]:
        async with Client(params, read_timeout_seconds=90) as client:
            first = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=1)).json
            rid = await asyncio.to_thread(_approve_pending, stack)
            again = (await call(client, "permission_prompt", tool_name="Bash", input=PUSH, wait_seconds=5)).json
            return first, rid, again

    first, rid, again = asyncio.run(scenario())
    assert first["behavior"] == "deny" and f"request {rid} is still pending" in first["message"]
    assert again == {"behavior": "allow", "updatedInput": PUSH}
    req = stack.approvals.store.get(rid)
    assert req.via == "billing-agent" and req.execution is ExecutionState.FINISHED


def test_agent_sdk_callback_over_http_re_attaches(stack: Stack) -> None:  # noqa: F811
    remote = Approvals(api_url=stack.api_url, api_key=AGENT_KEY)
    callback = can_use_tool(remote, session="run-1", wait=1)

    async def scenario() -> tuple[object, str, object]:
        first = await callback("Bash", PUSH, ToolPermissionContext(tool_use_id="toolu_1"))
        rid = await asyncio.to_thread(_approve_pending, stack)
        again = await callback("Bash", PUSH, ToolPermissionContext(tool_use_id="toolu_2"))
        return first, rid, again

    try:
        first, rid, again = asyncio.run(scenario())
    finally:
        remote.close()
    assert isinstance(first, PermissionResultDeny) and rid in first.message
    assert isinstance(again, PermissionResultAllow) and again.updated_input is None
    assert stack.approvals.store.get(rid).via == "billing-agent"
