"""MCP fixtures: `hitl mcp` as a stdio subprocess, and /mcp mounted on a small Starlette
app under uvicorn, both driven with the `mcp` SDK's own client."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from starlette.applications import Starlette
from starlette.routing import Route

from bot.gateway.mcp import http_app
from hitl import Approvals, waiters
from hitl.embedded import free_port
from hitl.settings import Settings
from tests.helpers import ROOT, eventually, hitl_env

API_KEY = "s3cret-agent-key"


@dataclass
class Answer:
    """A tool call's result: the JSON text parsed, or the error text."""

    error: bool
    text: str
    elapsed: float

    @property
    def json(self) -> dict[str, Any]:
        assert not self.error, self.text
        return json.loads(self.text)


async def call(client: Client, tool: str, **arguments: Any) -> Answer:
    loop = asyncio.get_running_loop()
    start = loop.time()
    result = await client.call_tool(tool, arguments)
    text = "".join(getattr(c, "text", "") for c in result.content)
    return Answer(bool(result.is_error), text, loop.time() - start)


def first_pending(approvals: Approvals, timeout: float = 10.0) -> str:
    """The id of the (only) pending request, once a tool has filed it."""
    ids = eventually(lambda: approvals.redis.zrange(approvals.keys.pending, 0, -1), timeout, "a pending request")
    return ids[0].decode()


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


@pytest.fixture
def stdio(redis_url: str, prefix: str) -> Callable[[], contextlib.AbstractAsyncContextManager[Client]]:
    """Connect to a fresh `hitl mcp` subprocess on this test's prefix."""
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hitl.cli", "mcp"], env=hitl_env(redis_url, prefix), cwd=ROOT
    )

    @contextlib.asynccontextmanager
    async def connect() -> AsyncIterator[Client]:
        async with Client(params, read_timeout_seconds=90) as client:
            yield client

    return connect


@dataclass
class McpHttpServer:
    url: str

    @contextlib.asynccontextmanager
    async def client(self, key: str | None = API_KEY) -> AsyncIterator[Client]:
        headers = {"Authorization": f"Bearer {key}"} if key else None
        timeout = httpx2.Timeout(30, read=120)
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http, Client(
            streamable_http_client(self.url, http_client=http), read_timeout_seconds=90
        ) as client:
            yield client


@contextlib.contextmanager
def serve(settings: Settings, keys: dict[str, str]) -> Iterator[McpHttpServer]:
    """/mcp mounted on a Starlette app of our own, served by uvicorn in a thread."""
    mount = http_app(settings, api_keys=keys)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with mount.lifespan():
            yield

    app = Starlette(routes=[Route("/mcp", endpoint=mount.app)], lifespan=lifespan)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mcp-uvicorn", daemon=True)
    thread.start()
    try:
        eventually(lambda: server.started or not thread.is_alive(), 20, "uvicorn to start")
        assert thread.is_alive(), "uvicorn exited"
        yield McpHttpServer(f"http://127.0.0.1:{port}/mcp")
    finally:
        server.should_exit = True
        thread.join(15)


@pytest.fixture
def mcp_http(settings: Settings) -> Iterator[McpHttpServer]:
    with serve(settings, {API_KEY: "agent-one"}) as server:
        yield server
