"""The gateway as an MCP server: on stdio (`hitl mcp gateway --config FILE`) and at
``/mcp/gateway`` of the web process (streamable HTTP behind the API keys of /v1).

Over stdio the gateway files with this process's credentials: HITL_API_URL and HITL_API_KEY
(an agent's machine: the hitl server evaluates the policy and records the key as the
requester), or Redis (an operator's host inside the trust boundary). Mounted in the web
process it files into that process's Redis, with the calling key as the requester.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.stdio import stdio_server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from bot.gateway.auth import Authenticator
from bot.gateway.mcp import BearerAuth
from bot.gateway.mcpgateway import config as gateway_config
from bot.gateway.mcpgateway.calls import Calls
from bot.gateway.mcpgateway.config import GatewayConfig
from bot.gateway.mcpgateway.upstreams import Upstreams
from bot.gateway.web import Lifespan
from hitl.apikeys import Principal
from hitl.client import Approvals, AsyncApprovals
from hitl.settings import Settings, load_settings

# Where the web process serves the gateway, and the variable naming its config file there.
GATEWAY_PATH = "/mcp/gateway"
CONFIG_ENV = "HITL_MCP_GATEWAY_CONFIG"

INSTRUCTIONS = """\
These tools are other MCP servers' tools behind hitl-router: some calls run at once, others
wait until a human approves them in Slack (then run with the arguments the reviewer approved).
A rejected call is an error carrying the reviewer's words: take them into account."""


def _principal(ctx: ServerRequestContext[Any]) -> Principal | None:
    """The API key BearerAuth admitted (HTTP); None over stdio, where this process's own
    credentials file the request."""
    request = ctx.request
    if request is None:
        return None
    principal = getattr(request, "scope", {}).get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # behind BearerAuth this cannot happen: refuse
        raise PermissionError("this call carries no API key; send Authorization: Bearer <secret>")
    return principal


def build_server(calls: Calls) -> Server[Any]:
    """The low-level MCP server: the upstreams' tools listed, every call through `calls`."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=calls.upstreams.listing())

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            principal = _principal(ctx)
        except PermissionError as exc:
            text = types.TextContent(type="text", text=str(exc))
            return types.CallToolResult(content=[text], is_error=True)
        # A retry's requestState is ignored: the call re-attaches by its own key (calls.py).
        deferrable = ctx.protocol_version in MODERN_PROTOCOL_VERSIONS
        return await calls.call(params.name, dict(params.arguments or {}), principal, deferrable=deferrable)

    return Server("hitl-gateway", instructions=INSTRUCTIONS, on_list_tools=list_tools, on_call_tool=call_tool)


@contextlib.asynccontextmanager
async def running(calls: Calls) -> AsyncIterator[None]:
    """The upstreams connected while serving; the last records written and all closed after."""
    await calls.upstreams.start()
    try:
        yield
    finally:
        await calls.drain()
        await calls.upstreams.close()


def run_stdio(config: GatewayConfig | str, settings: Settings | None = None) -> None:
    """`hitl mcp gateway --config FILE`: serve the gateway on standard input and output
    (`config` loaded already, or the file's path)."""
    if isinstance(config, str):
        config = gateway_config.load(config)  # a bad file stops here, before any upstream starts
    settings = settings or load_settings()

    async def main() -> None:
        aio = AsyncApprovals(settings=settings)
        try:
            calls = Calls(Upstreams(config), aio, wait_seconds=config.wait_seconds)
            server = build_server(calls)
            async with running(calls), stdio_server() as (read, write):
                await server.run(read, write, server.create_initialization_options())
        finally:
            await aio.aclose()

    asyncio.run(main())


@dataclass(frozen=True)
class GatewayHttp:
    """What the web process mounts at /mcp/gateway, and the lifespan to enter around serving."""

    app: ASGIApp
    lifespan: Callable[[], AbstractAsyncContextManager[None]]


def http_app(config: GatewayConfig, settings: Settings) -> GatewayHttp:
    """The gateway over stateless streamable HTTP, behind the bearer keys of /v1."""
    aio = AsyncApprovals(settings=settings.model_copy(update={"api_url": None}))
    calls = Calls(Upstreams(config), aio, wait_seconds=config.wait_seconds)
    authenticators: list[Authenticator] = []

    def authenticator() -> Authenticator:
        if not authenticators:
            authenticators.append(Authenticator(settings, None, aio.redis, aio.keys))
        return authenticators[0]

    server = build_server(calls)
    server.streamable_http_app(
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        try:
            async with running(calls), manager.run():
                yield
        finally:
            await aio.aclose()

    return GatewayHttp(app=BearerAuth(StreamableHTTPASGIApp(manager), authenticator), lifespan=lifespan)


def web_parts(approvals: Approvals) -> tuple[list[BaseRoute], list[Lifespan]]:
    """/mcp/gateway when HITL_MCP_GATEWAY_CONFIG names a gateway config; nothing otherwise."""
    path = os.environ.get(CONFIG_ENV, "").strip()
    if not path:
        return [], []
    mount = http_app(gateway_config.load(path), approvals.settings)
    return [Route(GATEWAY_PATH, endpoint=mount.app)], [lambda app: mount.lifespan()]
