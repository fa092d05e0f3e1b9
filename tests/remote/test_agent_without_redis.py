"""An agent with only an API key (no Redis URL anywhere in its environment) files, waits and
is decided through Slack: over the Python client, the CLI and `hitl mcp` over stdio.

Each agent is its own process with `agent_env()`: HITL_API_URL and HITL_API_KEY, nothing else
of hitl or Redis. Were any of them to fall back to Redis, it would use the default Redis
database and prefix, and the bot (this test's prefix) would never see the request.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from bot.slack.blocks import cards, views
from tests.helpers import ROOT, eventually
from tests.mcp.conftest import call
from tests.remote.conftest import Stack, agent_env, stack  # noqa: F401 - the product, as a fixture

pytestmark = pytest.mark.usefixtures("stack")


def _pending(s: Stack) -> str:
    ids = eventually(lambda: s.approvals.redis.zrange(s.approvals.keys.pending, 0, -1), 20, "a pending request")
    return ids[0].decode()


def _approve(s: Stack, rid: str, user: str = "U0ALICE") -> None:
    s.bot.card(rid)
    status, _ = s.bot.click(rid, cards.ACTION_APPROVE, user)
    assert status == 200


def _reject(s: Stack, rid: str, reason: str, user: str = "U0BOB") -> None:
    s.bot.card(rid)
    s.bot.click(rid, cards.ACTION_REJECT, user=user)
    view = s.bot.open_view(user, views.VIEW_REJECT)
    status, _ = s.bot.interact(s.bot.interactions.submit(view.id, {"reason": reason}))
    assert status == 200


def test_python_client_agent_is_decided_in_slack(stack: Stack) -> None:  # noqa: F811
    agent = subprocess.Popen(
        [sys.executable, "-m", "tests.remote.agent"], env=agent_env(stack.api_url), cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        filed = json.loads(agent.stdout.readline() or "{}")  # type: ignore[union-attr]
        assert filed.get("client") == "HttpApprovals", agent.stderr.read()  # type: ignore[union-attr]
        _approve(stack, filed["id"])
        out, err = agent.communicate(timeout=60)
    finally:
        agent.kill()
    assert agent.returncode == 0, err
    decision = json.loads(out.strip().splitlines()[-1])
    assert decision["status"] == "approved" and decision["approved"] and decision["by"] == ["U0ALICE"]
    stored = stack.approvals.store.get(filed["id"])
    assert stored.via == "billing-agent" and stored.action == "purge_table"


@pytest.mark.parametrize(("verdict", "exit_code"), [("approve", 0), ("reject", 1)])
def test_cli_wait_exits_by_the_slack_decision(stack: Stack, verdict: str, exit_code: int) -> None:  # noqa: F811
    agent = subprocess.Popen(
        [sys.executable, "-m", "hitl.cli", "request", "--action", "deploy", "--summary", "Deploy v2",
         "--mode", "gate", "--param", "version=2", "--wait"],
        env=agent_env(stack.api_url), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        rid = _pending(stack)
        if verdict == "approve":
            _approve(stack, rid)
        else:
            _reject(stack, rid, "not on a Friday")
        out, err = agent.communicate(timeout=60)
    finally:
        agent.kill()
    assert agent.returncode == exit_code, err
    decision = json.loads(out)
    assert decision["request_id"] == rid and decision["params"] == {"version": 2}
    if verdict == "reject":
        assert decision["comment"] == "not on a Friday" and "not on a Friday" in err
    assert stack.approvals.store.get(rid).via == "billing-agent"


def test_mcp_stdio_agent_is_decided_in_slack(stack: Stack) -> None:  # noqa: F811
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hitl.cli", "mcp"], env=agent_env(stack.api_url), cwd=ROOT
    )

    async def scenario() -> tuple[dict, dict, dict]:
        async with Client(params, read_timeout_seconds=90) as client:
            pending = (await call(client, "request_approval", action="deploy", summary="Deploy v3",
                                  wait_seconds=1)).json
            await asyncio.to_thread(_approve, stack, pending["id"])
            approved = (await call(client, "await_approval", id=pending["id"], wait_seconds=20)).json

            review = asyncio.ensure_future(asyncio.to_thread(lambda: _reject(stack, _pending(stack), "use the CLI")))
            denied = (await call(client, "permission_prompt", tool_name="Bash", input={"command": "rm -rf /tmp/x"})).json
            await review
            return pending, approved, denied

    pending, approved, denied = asyncio.run(scenario())
    assert pending["status"] == "pending"
    assert approved["status"] == "approved" and approved["decision"]["by"] == ["U0ALICE"]
    assert denied["behavior"] == "deny" and "use the CLI" in denied["message"]
    assert stack.approvals.store.get(pending["id"]).via == "billing-agent"
