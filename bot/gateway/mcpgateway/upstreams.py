"""The connections to the MCP servers behind the gateway, and the names their tools go by.

Each upstream's `Client` is opened and closed by one task of its own (`Upstream._own`): the
SDK's clients hold anyio task groups, which must be left by the task that entered them, while
tool calls arrive on whatever task serves them. A call never opens a connection that the
previous one lost without first checking it answers, so "the upstream is down" is said before
anything is filed for review (`Upstream.ready`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from bot.gateway.mcpgateway.config import GatewayConfig, HttpUpstream, StdioUpstream

log = logging.getLogger("hitl.mcpgateway")

# How long connecting to an upstream (start, handshake, tools/list) or a liveness ping may take.
CONNECT_TIMEOUT = 20.0
PING_TIMEOUT = 5.0
# An upstream's tool call may run this long once forwarded (seconds): a human already waited.
CALL_TIMEOUT = 600.0
# Between a clash's prefix and the tool's own name: MCP tool names allow [A-Za-z0-9_.-], and
# clients that map tools to model tool names (Claude's ^[a-zA-Z0-9_-]{1,64}$) refuse the dot.
CLASH_SEPARATOR = "__"


class UpstreamDown(Exception):
    """The upstream cannot be reached now; the message says which and why."""


@dataclass(frozen=True)
class Route:
    """Where a gateway tool goes: which upstream, under what name there, and its listing."""

    upstream: Upstream
    tool: types.Tool

    @property
    def action(self) -> str:
        """The request action the policy matches: ``NAME.tool``."""
        return f"{self.upstream.name}.{self.tool.name}"


class Upstream:
    """One MCP server behind the gateway: its connection, reopened on demand, and its tools."""

    def __init__(self, name: str, spec: StdioUpstream | HttpUpstream) -> None:
        self.name = name
        self.spec = spec
        self.tools: list[types.Tool] = []
        self.error: str | None = None
        self._client: Client | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()
        self._suspect = False

    def _transport(self, stack: contextlib.AsyncExitStack) -> Client:
        if isinstance(self.spec, StdioUpstream):
            argv = self.spec.command
            params = StdioServerParameters(
                command=argv[0], args=argv[1:], env=self.spec.env or None, cwd=self.spec.cwd
            )
            return Client(params, read_timeout_seconds=CALL_TIMEOUT)
        http = httpx2.AsyncClient(headers=self.spec.headers, timeout=httpx2.Timeout(30, read=CALL_TIMEOUT))
        stack.push_async_callback(http.aclose)
        transport = streamable_http_client(self.spec.url, http_client=http)
        return Client(transport, read_timeout_seconds=CALL_TIMEOUT)

    async def _own(self, ready: asyncio.Event, stop: asyncio.Event) -> None:
        """Open the connection, list the tools, hold it until told to stop or it breaks.
        `ready` and `stop` are this attempt's own: a late end of an older attempt never
        touches the connection a newer one opened."""
        client: Client | None = None
        try:
            async with contextlib.AsyncExitStack() as stack:
                client = await stack.enter_async_context(self._transport(stack))
                self.tools = await _list_all(client)
                self._client, self.error, self._suspect = client, None, False
                ready.set()
                await stop.wait()
        except Exception as exc:  # any failure to reach it: said, and tried again on the next call
            self.error = _describe(exc)
            log.warning("MCP upstream %s: %s", self.name, self.error)
        finally:
            if client is not None and self._client is client:
                self._client = None
            ready.set()

    async def connect(self) -> None:
        """(Re)open the connection; `UpstreamDown` when it does not come up."""
        ready, self._stop = asyncio.Event(), asyncio.Event()
        self._task = asyncio.create_task(self._own(ready, self._stop), name=f"mcp-upstream-{self.name}")
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                await ready.wait()
        except TimeoutError:
            self.error = f"no answer within {CONNECT_TIMEOUT:g} s"
            await self.close()
        if self._client is None:
            raise UpstreamDown(f"MCP server {self.name!r} is unreachable: {self.error}")

    async def ready(self) -> Client:
        """The live connection, checked: reopened if it was lost, asked for its tools if a call
        failed on it or it is remote (HTTP has no connection whose loss would tell; MCP
        2026-07-28 has no ping). `UpstreamDown` when it cannot be reached."""
        async with self._lock:
            if self._client is not None and (self._suspect or isinstance(self.spec, HttpUpstream)):
                try:
                    async with asyncio.timeout(PING_TIMEOUT):
                        await self._client.list_tools(cache_mode="bypass")
                except Exception as exc:
                    self.error = _describe(exc)
                    await self.close()
            if self._client is None:
                await self.close()
                await self.connect()
            assert self._client is not None
            return self._client

    async def call(self, tool: str, arguments: dict[str, Any]) -> types.CallToolResult:
        """Forward one call; a transport failure marks the connection for a check next time."""
        client = self._client
        if client is None:
            raise UpstreamDown(f"MCP server {self.name!r} is unreachable: {self.error or 'not connected'}")
        try:
            return await client.call_tool(tool, arguments)
        except Exception:
            self._suspect = True
            raise

    async def close(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        if task is not None:
            with contextlib.suppress(Exception, asyncio.CancelledError):
                async with asyncio.timeout(5):
                    await task
            if not task.done():
                task.cancel()
        self._client = None


async def _list_all(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor)
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _describe(exc: BaseException) -> str:
    """An exception (or the first of an exception group) in one line."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class Upstreams:
    """Every upstream of a config, and the gateway's tool names for their tools."""

    def __init__(self, config: GatewayConfig) -> None:
        self.all = [Upstream(name, spec) for name, spec in config.upstreams.items()]
        self.routes: dict[str, Route] = {}

    async def start(self) -> None:
        """Connect to all (at once); one that is down is logged and left out of the listing."""
        results = await asyncio.gather(*(u.connect() for u in self.all), return_exceptions=True)
        for result in results:
            if isinstance(result, UpstreamDown):
                log.error("%s; its tools are not listed until the gateway restarts", result)
            elif isinstance(result, BaseException):
                raise result
        self.routes = name_tools(self.all)

    async def close(self) -> None:
        await asyncio.gather(*(u.close() for u in self.all))

    def listing(self) -> list[types.Tool]:
        """The tools as the gateway lists them: the upstream's listing under the gateway's name."""
        return [route.tool.model_copy(update={"name": name}) for name, route in self.routes.items()]


def name_tools(upstreams: Iterable[Upstream]) -> dict[str, Route]:
    """Each tool under its own name; ``NAME__tool`` for every tool whose name two upstreams share."""
    counts: dict[str, int] = {}
    for up in upstreams:
        for tool in up.tools:
            counts[tool.name] = counts.get(tool.name, 0) + 1
    routes: dict[str, Route] = {}
    for up in upstreams:
        for tool in up.tools:
            name = tool.name if counts[tool.name] == 1 else f"{up.name}{CLASH_SEPARATOR}{tool.name}"
            routes[name] = Route(up, tool)
    return routes
