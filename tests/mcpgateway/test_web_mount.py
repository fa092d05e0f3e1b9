"""/mcp/gateway in the web process: the caller's API key files the request."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from pydantic import SecretStr
from starlette.applications import Starlette
from starlette.routing import Route

from bot.gateway.mcpgateway.config import parse
from bot.gateway.mcpgateway.server import GATEWAY_PATH, http_app
from hitl import Approvals
from hitl.embedded import free_port
from hitl.settings import Settings
from tests.helpers import eventually
from tests.mcp.conftest import first_pending
from tests.mcpgateway.conftest import UpstreamLog, call, stdio_upstream

pytestmark = pytest.mark.usefixtures("policy")
KEY = "gw-agent-secret"


@contextlib.contextmanager
def serve(settings: Settings, received: UpstreamLog) -> Iterator[str]:
    keyed = settings.model_copy(update={"api_keys": {"agent-one": SecretStr(KEY)}})
    mount = http_app(parse({"upstreams": {"up": stdio_upstream(received)}}), keyed)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with mount.lifespan():
            yield

    app = Starlette(routes=[Route(GATEWAY_PATH, endpoint=mount.app)], lifespan=lifespan)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="gateway-uvicorn", daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), 30, "uvicorn to start")
        assert thread.is_alive(), "uvicorn exited"
        yield f"http://127.0.0.1:{port}{GATEWAY_PATH}"
    finally:
        server.should_exit = True
        thread.join(15)


@contextlib.asynccontextmanager
async def client(url: str, key: str | None) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {key}"} if key else None
    async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=120)) as http, Client(
        streamable_http_client(url, http_client=http), read_timeout_seconds=90
    ) as mcp_client:
        yield mcp_client


def test_the_mounted_gateway_files_as_the_calling_key_and_forwards_the_approval(
    settings: Settings, approvals: Approvals, received: UpstreamLog
) -> None:
    async def scenario(url: str) -> tuple[Any, str]:
        async with client(url, KEY) as mcp_client:
            pending = asyncio.create_task(call(mcp_client, "delete_file", path="/tmp/a"))
            rid = await asyncio.to_thread(first_pending, approvals)
            via = approvals.fetch(rid).via or ""
            approvals.decide(rid, "approve", by="U01")
            return await pending, via

    with serve(settings, received) as url:
        answer, via = asyncio.run(scenario(url))
        refused = httpx2.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    assert refused.status_code == 401  # no key: refused before any MCP exchange
    assert via == "agent-one"
    assert not answer.error and answer.text == "deleted /tmp/a"
    assert received.calls() == [{"path": "/tmp/a"}]
