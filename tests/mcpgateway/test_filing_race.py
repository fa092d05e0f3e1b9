"""A gated call decided before the gateway looks at its request again is still that call's.

The gateway files a request per `tools/call` under an idempotency key; a key that finds an
earlier request is read back, to tell "the pending or approved request a retry re-attaches
to" from "an earlier call's spent one". A reviewer (or an expiry) faster than that read once
made the gateway take its own, just rejected, request for a spent one: it filed another and
waited on it for good, and the agent never heard the rejection (seen twice in the suite
under load as a `tools/call` timeout). A request this very call filed is now taken as its
own without a read, and the rejection reaches the agent.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import redis
from mcp import types

from bot.gateway.mcpgateway.calls import Calls
from bot.gateway.mcpgateway.upstreams import Route
from hitl import Approvals, AsyncApprovals
from hitl.settings import Settings
from hitl.status import ExecutionState
from tests.helpers import events, publish_policy
from tests.mcp.conftest import first_pending


class ReviewerFirst:
    """The gateway's client, with a reviewer who rejects each request before the gateway
    first reads or waits on it."""

    def __init__(self, aio: AsyncApprovals, approvals: Approvals) -> None:
        self._aio, self._approvals = aio, approvals
        self._decided: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aio, name)

    async def _first_look(self, request_id: str) -> None:
        if request_id not in self._decided:
            self._decided.add(request_id)
            await asyncio.to_thread(self._approvals.decide, request_id, "reject", by="U01", comment="not that one")

    async def fetch(self, request_id: str) -> Any:
        await self._first_look(request_id)
        return await self._aio.fetch(request_id)

    async def wait_request(self, request_id: str, timeout: float | None = None) -> Any:
        await self._first_look(request_id)
        return await self._aio.wait_request(request_id, timeout=timeout)


def test_a_call_rejected_before_the_gateway_looks_again_gets_that_rejection(
    settings: Settings, approvals: Approvals, prefix: str
) -> None:
    publish_policy(approvals, "actions:\n  up.delete_file: {mode: gate}\n")
    tool = types.Tool(name="delete_file", inputSchema={"type": "object"})
    upstream = SimpleNamespace(name="up", ready=_ready)
    route = Route(upstream, tool)  # type: ignore[arg-type]

    async def scenario() -> Any:
        async with AsyncApprovals(settings=settings) as aio:
            calls = Calls(SimpleNamespace(routes={"delete_file": route}), ReviewerFirst(aio, approvals))  # type: ignore[arg-type]
            return await calls.call("delete_file", {"path": "/srv/all"}, None)

    result = asyncio.run(scenario())
    text = result.content[0].text
    assert result.is_error and "Rejected by U01: not that one" in text and "not called" in text
    assert [e["type"] for e in events(approvals.redis, prefix)].count("created") == 1  # nothing filed twice


async def _ready() -> None:
    """The upstream is up (it is never called: the call is rejected)."""


class RedisGoneAfterTheCall:
    """The gateway's client, with Redis going away between the tool's run and its record."""

    def __init__(self, aio: AsyncApprovals) -> None:
        self._aio = aio

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aio, name)

    async def finish_execution(self, request_id: str, **_: Any) -> None:
        raise redis.ConnectionError("Connection refused")


def test_a_call_that_ran_while_redis_went_away_says_it_ran(
    settings: Settings, approvals: Approvals, prefix: str
) -> None:
    """Never "the tool was not called" for a tool that was: the agent must not run it again."""
    publish_policy(approvals, "actions:\n  up.delete_file: {mode: gate}\n")
    tool = types.Tool(name="delete_file", inputSchema={"type": "object"})
    answer = types.CallToolResult(content=[types.TextContent(type="text", text="deleted /srv/a")])
    ran: list[dict[str, Any]] = []

    async def forward(name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        ran.append(arguments)
        return answer

    route = Route(SimpleNamespace(name="up", ready=_ready, call=forward), tool)  # type: ignore[arg-type]

    async def scenario() -> Any:
        async with AsyncApprovals(settings=settings) as aio:
            calls = Calls(SimpleNamespace(routes={"delete_file": route}), RedisGoneAfterTheCall(aio))  # type: ignore[arg-type]
            pending = asyncio.create_task(calls.call("delete_file", {"path": "/srv/a"}, None))
            rid = await asyncio.to_thread(first_pending, approvals)
            approvals.decide(rid, "approve", by="U01")
            return await pending, rid

    result, rid = asyncio.run(scenario())
    texts = [c.text for c in result.content]
    assert not result.is_error and texts[0] == "deleted /srv/a" and ran == [{"path": "/srv/a"}]
    assert "ran, but its end could not be recorded" in texts[-1] and "not called" not in " ".join(texts)
    assert approvals.get(rid).fetch().execution is ExecutionState.STARTED  # a repeat: outcome unknown
