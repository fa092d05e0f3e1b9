"""A gated call decided before the gateway reads its request back is still that call's.

The gateway files a request per `tools/call` under an idempotency key, then reads it back to
tell "the pending or approved request a retry re-attaches to" from "an earlier call's spent
one". A reviewer (or an expiry) faster than that read made the gateway take its own, just
rejected, request for a spent one: it filed another and waited on it for good, and the agent
never heard the rejection. Seen twice in the suite under load as a `tools/call` timeout.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from mcp import types

from bot.gateway.mcpgateway.calls import Calls
from bot.gateway.mcpgateway.upstreams import Route
from hitl import Approvals, AsyncApprovals
from hitl.settings import Settings
from hitl.status import Status
from tests.helpers import events


class ReviewerFirst:
    """The gateway's client, with a reviewer who rejects each request before its first read."""

    def __init__(self, aio: AsyncApprovals, approvals: Approvals) -> None:
        self._aio, self._approvals = aio, approvals
        self._decided: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._aio, name)

    async def fetch(self, request_id: str) -> Any:
        if request_id not in self._decided:
            self._decided.add(request_id)
            await asyncio.to_thread(self._approvals.decide, request_id, "reject", by="U01", comment="not that one")
        return await self._aio.fetch(request_id)


def test_a_call_rejected_before_the_gateway_reads_it_back_gets_that_rejection(
    settings: Settings, approvals: Approvals, prefix: str
) -> None:
    tool = types.Tool(name="delete_file", inputSchema={"type": "object"})
    route = Route(SimpleNamespace(name="up"), tool)  # type: ignore[arg-type]

    async def scenario() -> Any:
        async with AsyncApprovals(settings=settings) as aio:
            calls = Calls(None, ReviewerFirst(aio, approvals))  # type: ignore[arg-type]
            return await calls._file(route, {"path": "/srv/all"}, None)

    req = asyncio.run(scenario())
    assert req.status is Status.REJECTED and req.decision().comment == "not that one"
    assert [e["type"] for e in events(approvals.redis, prefix)].count("created") == 1  # nothing filed twice
