"""The gateway in front of a real MCP server: what reaches the upstream, and when."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
import redis

from hitl import Approvals
from tests.helpers import events
from tests.mcp.conftest import first_pending
from tests.mcpgateway.conftest import UpstreamLog, call, stdio_upstream

pytestmark = pytest.mark.usefixtures("policy")


def test_an_auto_call_is_forwarded_at_once_and_recorded(
    gateway: Callable[..., Any], received: UpstreamLog, conn: redis.Redis, prefix: str
) -> None:
    async def scenario() -> tuple[set[str], Any]:
        async with gateway({"up": stdio_upstream(received)}) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            return listed, await call(client, "echo", text="hi")

    listed, answer = asyncio.run(scenario())
    assert {"echo", "delete_file", "post_update", "hang"} <= listed
    assert not answer.error and answer.text == "echo: hi"
    assert received.calls("echo") == [{"text": "hi"}]
    created = [e for e in events(conn, prefix) if e["type"] == "created"]
    assert len(created) == 1 and created[0]["action"] == "up.echo"


def test_a_gated_call_forwards_the_reviewers_edit_exactly_once(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals
) -> None:
    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            pending = asyncio.create_task(call(client, "delete_file", path="/srv/all"))
            rid = await asyncio.to_thread(first_pending, approvals)
            assert received.calls() == []  # nothing reaches the upstream before a decision
            approvals.decide(rid, "approve", by="U01", params={"path": "/srv/one.txt"})
            return await pending

    answer = asyncio.run(scenario())
    assert not answer.error and answer.text == "deleted /srv/one.txt"
    assert received.calls("delete_file") == [{"path": "/srv/one.txt"}]
