"""The MCP server: approvals as tools for Claude Code, Claude Desktop, Cursor and any MCP client.

Built on the official `mcp` SDK (`MCPServer`). `hitl mcp` serves it over stdio; `http_app()`
returns what the web process mounts at ``/mcp`` (streamable HTTP behind the same bearer
keys as the HTTP API).

MCP clients kill tool calls after 5 to 60 s, so no tool here holds a call longer than its
`wait_seconds` (at most `MAX_WAIT`): `request_approval` files the request and waits up to
that long; if no one has decided by then it answers ``pending`` with the id and tells the
model to call `await_approval`. A wait that runs out never withdraws a request:
`permission_prompt` denies "still pending" and the same call asked again re-attaches to it
(`hitl.reattach`). Waits register with the process's waiter dispatcher
(`hitl.waiters`), so any number of concurrent tool calls share two Redis connections.

Every tool answers JSON text: the request view (docs/contract.md, "HTTP API") plus ``message``, the
outcome in words a model can act on (`Decision.explanation()`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import inspect
import json
import operator
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from types import UnionType
from typing import Annotated, Any, get_args

import redis
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import Field, SecretStr, WithJsonSchema
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.gateway.auth import Authenticator, Refused
from bot.gateway.web import Lifespan
from hitl import reattach
from hitl.apikeys import ActionForbidden, Principal
from hitl.client import Approvals, AsyncApprovals
from hitl.errors import AlreadyDecided, HitlError, InvalidRequest, RequestNotFound, WaitTimeout
from hitl.fields import REQUIRED
from hitl.models import Decision, Request, RequestInput
from hitl.pool import RedisBusy
from hitl.settings import Settings, load_settings
from hitl.status import Mode, Status

# Longest a tool may hold a call (seconds), and the default: below every common client timeout.
MAX_WAIT, DEFAULT_WAIT = 50.0, 20.0
# Kept back from wait_seconds for the read that answers when the wait runs out (seconds).
READ_MARGIN = 0.25
# A tool call never lasts longer than max(wait_seconds, this), even when Redis hangs.
MIN_GUARD = 2.0
# Longest summary line made from a tool call's input for permission_prompt.
GIST_CHARS = 300

INSTRUCTIONS = """\
hitl-router asks a human (in Slack) to approve risky actions before you take them.
Call request_approval before the action. If the answer's status is "pending", no one has
decided yet: call await_approval with its id (as often as needed) until the status is final.
Act only when decision.approved is true, and then with decision.params (a reviewer may have
edited them). "expired" means no one decided in time; it is not a rejection and not an approval."""

# permission_prompt's answer when its wait runs out: the request stays pending, never withdrawn.
STILL_PENDING = (
    "No decision yet: request {id} is still pending in Slack, so {tool} was not run (this is not a "
    "rejection). To keep waiting, call await_approval with id {id!r}; once it is approved, make the "
    "same {tool} call again: it re-attaches to request {id}, no second request is filed."
)
SPENT = (
    "Request {id} approved this {tool} call once and that approval was already used; "
    "it was not run again. Make the call again to ask for a new approval."
)

PENDING = (
    "No decision yet: a reviewer has been asked in Slack. Call await_approval with id {id!r} "
    "to keep waiting (wait_seconds up to 50); do not take the action until it is approved."
)


# -- the request view ------------------------------------------------------------------------
# Private on purpose: hitl/views.py (the HTTP API's model, written alongside) will be the
# one shared definition; this follows the contract's shape so the two can be unified.


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _view(req: Request) -> dict[str, Any]:
    """The contract's request view, plus `message`: what the model should do next."""
    decision = req.decision()
    return {
        "id": req.id,
        "action": req.action,
        "summary": req.summary,
        "mode": req.mode.value,
        "status": req.status.value,
        "channel": req.channel,
        "created_at": _iso(req.created_at),
        "deadline": _iso(req.deadline),
        "params": req.params,
        "decision": None if not req.final else {
            "status": decision.status.value,
            "approved": decision.approved,
            "by": decision.by,
            "comment": decision.comment,
            "params": decision.params,
            "decided_at": _iso(decision.decided_at),
            "grant": None if decision.grant is None else decision.grant.model_dump(),
        },
        "policy_version": req.policy_version,
        "message": decision.explanation() if req.final else PENDING.format(id=req.id),
    }


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- tools -----------------------------------------------------------------------------------


def _check_wait(wait_seconds: float) -> float:
    if not 0 <= wait_seconds <= MAX_WAIT:
        raise ToolError(
            f"wait_seconds: must be between 0 and {MAX_WAIT:g} (got {wait_seconds:g}); "
            "call await_approval again to keep waiting"
        )
    return float(wait_seconds)


def _check_id(request_id: str) -> str:
    if not request_id.strip():
        raise ToolError("id: must be a request id such as the one request_approval returned")
    return request_id.strip()


def _action_name(tool_name: str) -> str:
    """A tool's name as a request action (letters, digits and _ . : / - only)."""
    return re.sub(r"[^A-Za-z0-9_.:/-]", "_", tool_name.strip())[:100] or "tool"


def _gist(tool_input: Mapping[str, Any]) -> str:
    """The part of a tool call a reviewer needs first: the command, the file, or the JSON."""
    for key in ("command", "file_path", "path", "url", "query"):
        if isinstance(tool_input.get(key), str):
            text = tool_input[key]
            break
    else:
        text = _json(tool_input)
    return text if len(text) <= GIST_CHARS else text[: GIST_CHARS - 1] + "…"


class Tools:
    """The tools' shared state: one `AsyncApprovals`, made on the loop that serves calls
    (over HTTP when HITL_API_URL is set: `hitl mcp` on an agent's machine needs no Redis)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._aio: AsyncApprovals | None = None

    @property
    def aio(self) -> AsyncApprovals:
        if self._aio is None:
            self._aio = AsyncApprovals(settings=self.settings)
        return self._aio

    async def aclose(self) -> None:
        if self._aio is not None:
            await self._aio.aclose()
            self._aio = None

    @contextlib.asynccontextmanager
    async def guard(self, wait_seconds: float) -> AsyncIterator[None]:
        """Map failures to tool errors a model can read; never outlive the wait."""
        try:
            async with asyncio.timeout(max(wait_seconds, MIN_GUARD)):
                yield
        except (InvalidRequest, ActionForbidden) as exc:
            raise ToolError(str(exc)) from None
        except RequestNotFound as exc:
            raise ToolError(f"id: {exc}") from None
        except RedisBusy as exc:
            raise ToolError(
                f"The approval service is {exc}; nothing was decided. Try again then "
                "(with the same idempotency_key, if you gave one, to avoid a second request)."
            ) from None
        except (redis.ConnectionError, redis.TimeoutError, TimeoutError) as exc:
            raise ToolError(
                f"Redis did not answer ({exc or 'timed out'}); nothing was decided. Try again shortly "
                "(with the same idempotency_key, if you gave one, to avoid a second request)."
            ) from None
        except HitlError as exc:  # the HTTP transport's: the API refused the key, or did not answer
            raise ToolError(str(exc)) from None

    async def owned(self, principal: Principal | None, request_id: str) -> Request:
        """The request, if the calling key filed it (or is an admin key); anyone else's id is
        the same `RequestNotFound` as an unknown one. Over stdio (`principal` None) the caller
        runs with this process's own credentials: Redis (inside the trust boundary), or an API
        key of its own that the server judges (HITL_API_URL)."""
        req = await self.aio.fetch(request_id)
        if principal is not None and not principal.owns(req):
            raise RequestNotFound(request_id)
        return req

    async def settle(self, request_id: str, wait_seconds: float, started: float) -> Request:
        """The request once final, or as it stands when `wait_seconds` (from `started`) end."""
        budget = wait_seconds - (time.monotonic() - started) - READ_MARGIN
        if budget > 0:
            with contextlib.suppress(WaitTimeout):
                return await self.aio.wait_request(request_id, budget)
        return await self.aio.fetch(request_id)

    async def request_approval(self, principal: Principal | None, wait_seconds: float, **fields: Any) -> str:
        """`request()` with the tool's arguments (`RequestInput`'s fields, None when not given)."""
        started = time.monotonic()
        _check_wait(wait_seconds)
        async with self.guard(wait_seconds):
            if principal is not None:
                principal.check_action(fields.get("action"))
            given = {k: v for k, v in fields.items() if v is not None}
            handle = await self.aio.request_from(given, via=_via(principal))
            return _json(_view(await self.settle(handle.id, wait_seconds, started)))

    async def await_approval(self, principal: Principal | None, request_id: str, wait_seconds: float) -> str:
        started = time.monotonic()
        _check_wait(wait_seconds)
        request_id = _check_id(request_id)
        async with self.guard(wait_seconds):
            await self.owned(principal, request_id)
            return _json(_view(await self.settle(request_id, wait_seconds, started)))

    async def get_approval(self, principal: Principal | None, request_id: str) -> str:
        request_id = _check_id(request_id)
        async with self.guard(0):
            return _json(_view(await self.owned(principal, request_id)))

    async def cancel_approval(self, principal: Principal | None, request_id: str) -> str:
        request_id = _check_id(request_id)
        async with self.guard(0):
            await self.owned(principal, request_id)
            try:
                await self.aio.cancel(request_id, by=None if principal is None else f"api:{principal.name}")
            except AlreadyDecided as exc:
                raise ToolError(f"id: {exc}; there is nothing left to cancel") from None
            return _json(_view(await self.aio.fetch(request_id)))

    async def permission_prompt(
        self,
        principal: Principal | None,
        tool_name: str,
        tool_input: dict[str, Any],
        tool_use_id: str | None,
        wait_seconds: float,
    ) -> str:
        """Claude Code's --permission-prompt-tool: a gate request per tool call, allow or deny.

        The request is keyed by the call itself (tool and input, scoped to the calling key:
        `hitl.reattach`), so asking again, with the same tool_use_id or a new one after a
        "no decision yet", re-attaches to it. A wait that runs out withdraws nothing."""
        started = time.monotonic()
        _check_wait(wait_seconds)
        if not tool_name.strip():
            raise ToolError("tool_name: must name the tool Claude Code wants to use")
        action = _action_name(tool_name)
        async with self.guard(wait_seconds):
            if principal is not None:
                principal.check_action(action)
            fields = {
                "action": action,
                "summary": f"Claude Code wants to use {tool_name}: {_gist(tool_input)}",
                "params": tool_input,
                "mode": Mode.GATE,
                "agent": "claude-code",
            }
            key = reattach.derived_key("permission", action, tool_input)
            req = await reattach.attach(self.aio, fields, key, via=_via(principal))
            if not reattach.answerable(req):
                req = await self.settle(req.id, wait_seconds, started)
            if not reattach.answerable(req):
                return _json({"behavior": "deny", "message": STILL_PENDING.format(id=req.id, tool=tool_name)})
            decision = req.decision()
            if decision.approved:
                # Shielded: a client that gives up mid-claim leaves no start without its finish.
                if await asyncio.shield(reattach.claim(self.aio, req)) is reattach.Claim.SPENT:
                    return _json({"behavior": "deny", "message": SPENT.format(id=req.id, tool=tool_name)})
                return _json({"behavior": "allow", "updatedInput": decision.params})
        return _json({"behavior": "deny", "message": _deny_message(decision)})


def _via(principal: Principal | None) -> str | None:
    return None if principal is None else principal.name


def _principal(ctx: Context) -> Principal | None:
    """The API key `BearerAuth` let this call in with; None over stdio (no HTTP request)."""
    request = ctx.request_context.request
    if request is None:
        return None
    principal = getattr(request, "scope", {}).get("state", {}).get("principal")
    if not isinstance(principal, Principal):  # behind BearerAuth this cannot happen: refuse
        raise ToolError("this call carries no API key; send Authorization: Bearer <secret>")
    return principal


def _deny_message(decision: Decision) -> str:
    if decision.status is Status.REJECTED and decision.comment:
        return f"The reviewer ({', '.join(decision.by) or 'unknown'}) said no: {decision.comment}"
    return decision.explanation()


WaitSeconds = Annotated[
    float,
    Field(description=f"seconds to hold this call for a decision (0 to {MAX_WAIT:g})"),
]
RequestId = Annotated[str, Field(description="the request's id, from request_approval")]


def _inline(schema: Any, defs: Mapping[str, Any]) -> Any:
    """`schema` with its `$ref`s to `defs` replaced by what they name (a tool's schema is
    one property at a time here, so it has no `$defs` of its own)."""
    if isinstance(schema, dict):
        ref = schema.get("$ref")
        if isinstance(ref, str):
            return _inline(defs[ref.rsplit("/", 1)[-1]], defs)
        return {k: _inline(v, defs) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_inline(v, defs) for v in schema]
    return schema


def _wire(annotation: Any) -> Any:
    """A `RequestInput` field's type as the tool receives it from JSON: an enum as its string
    (so `RequestInput` reports a bad value, in its words), and null allowed."""
    parts = get_args(annotation) if isinstance(annotation, UnionType) else (annotation,)
    kinds = tuple(str if isinstance(p, type) and issubclass(p, enum.Enum) else p for p in parts)
    return functools.reduce(operator.or_, {*kinds, type(None)})


def _request_signature() -> inspect.Signature:
    """`request_approval`'s signature, from `RequestInput`: each field typed as JSON sends it
    and described by `RequestInput`'s own JSON schema (bounds, choices, descriptions), so the
    tool takes what `request()` takes. `RequestInput` checks the values: a bad one is a tool
    error in the same words as from the HTTP API and the client."""
    schema = RequestInput.model_json_schema()
    defs, props = schema.get("$defs", {}), schema["properties"]
    keyword = inspect.Parameter.KEYWORD_ONLY
    params = []
    for name, info in RequestInput.model_fields.items():
        described = WithJsonSchema(_inline(props[name], defs))
        if name in REQUIRED:
            params.append(inspect.Parameter(name, keyword, annotation=Annotated[str, described]))
        else:
            wire: Any = Annotated[_wire(info.annotation), described]
            params.append(inspect.Parameter(name, keyword, annotation=wire, default=None))
    params.append(inspect.Parameter("wait_seconds", keyword, annotation=WaitSeconds, default=DEFAULT_WAIT))
    params.append(inspect.Parameter("ctx", keyword, annotation=Context | None, default=None))
    return inspect.Signature(params, return_annotation=str)


def build_server(settings: Settings | None = None) -> tuple[MCPServer, Tools]:
    """The MCP server with hitl-router's tools, and their shared state (close it on exit)."""
    tools = Tools(settings or load_settings())
    server = MCPServer("hitl", instructions=INSTRUCTIONS)

    async def request_approval(
        ctx: Context | None = None, wait_seconds: float = DEFAULT_WAIT, **fields: Any
    ) -> str:
        """Ask a human to approve an action before you take it. Returns the request view: a final
        status with the decision, or "pending" with an id to pass to await_approval."""
        assert ctx is not None  # injected by the SDK
        return await tools.request_approval(_principal(ctx), wait_seconds, **fields)

    # Its arguments are `RequestInput`'s (hitl.fields declares them), plus wait_seconds.
    request_approval.__signature__ = _request_signature()  # type: ignore[attr-defined]
    server.tool(structured_output=False)(request_approval)

    @server.tool(structured_output=False)
    async def await_approval(id: RequestId, ctx: Context, wait_seconds: WaitSeconds = DEFAULT_WAIT) -> str:
        """Wait up to wait_seconds for a decision on a pending request; returns the request view."""
        return await tools.await_approval(_principal(ctx), id, wait_seconds)

    @server.tool(structured_output=False)
    async def get_approval(id: RequestId, ctx: Context) -> str:
        """The request view as it stands now, without waiting."""
        return await tools.get_approval(_principal(ctx), id)

    @server.tool(structured_output=False)
    async def cancel_approval(id: RequestId, ctx: Context) -> str:
        """Withdraw a pending request (you no longer need it); an error if it is already final."""
        return await tools.cancel_approval(_principal(ctx), id)

    @server.tool(structured_output=False)
    async def permission_prompt(
        tool_name: Annotated[str, Field(description="the tool Claude Code wants to use")],
        input: Annotated[dict[str, Any], Field(description="the tool call's input")],
        tool_use_id: str | None = None,
        wait_seconds: WaitSeconds = MAX_WAIT,
        ctx: Context | None = None,
    ) -> str:
        """Claude Code's --permission-prompt-tool: asks a reviewer in Slack whether this tool call
        may run. Answers {"behavior":"allow","updatedInput":{...}} or {"behavior":"deny","message":...}."""
        assert ctx is not None  # injected by the SDK
        return await tools.permission_prompt(_principal(ctx), tool_name, input, tool_use_id, wait_seconds)

    return server, tools


# -- stdio -----------------------------------------------------------------------------------


def run_stdio(settings: Settings | None = None) -> None:
    """`hitl mcp`: serve the tools on standard input and output (logs go to stderr)."""
    server, tools = build_server(settings)

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await tools.aclose()

    asyncio.run(main())


# -- streamable HTTP, behind bearer keys ----------------------------------------------------


class BearerAuth:
    """401 or 429 unless `Authorization: Bearer <secret>` is a key with rate to spare (the
    same `Authenticator` as /v1).

    The key's `Principal` goes in ``scope["state"]["principal"]`` (who files, and whose
    requests this call may see), its name in ``scope["state"]["api_key"]``.
    """

    def __init__(self, app: ASGIApp, authenticator: Callable[[], Authenticator]) -> None:
        self.app = app
        self.authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers") or ()).get(b"authorization", b"").decode("latin-1")
        try:
            principal = await self.authenticator().authenticate(header)
        except Refused as refused:
            await refused.response()(scope, receive, send)
            return
        except (redis.ConnectionError, redis.TimeoutError):
            response = JSONResponse(
                {"error": "Redis is unreachable; nothing was recorded, try again shortly"}, 503
            )
            await response(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"], state["api_key"] = principal, principal.name
        await self.app(scope, receive, send)


@dataclass(frozen=True)
class McpHttp:
    """What the web process mounts at /mcp: the ASGI app (any path reaches the MCP
    endpoint; route ``/mcp`` to it) and the lifespan to enter around serving."""

    app: ASGIApp
    lifespan: Callable[[], AbstractAsyncContextManager[None]]


def http_app(settings: Settings | None = None, api_keys: Mapping[str, str] | None = None) -> McpHttp:
    """The streamable-HTTP MCP endpoint behind bearer keys.

    Keys are those of `hitl keys create` (in Redis) and the bootstrap ones: `api_keys`
    ({secret: name}), by default HITL_API_KEYS. Stateless: every POST stands alone, so any
    web process behind a load balancer can answer it.
    """
    settings = settings or load_settings()
    if api_keys is not None:
        bootstrap = {name: SecretStr(secret) for secret, name in api_keys.items()}
        settings = settings.model_copy(update={"api_keys": bootstrap})
    server, tools = build_server(settings)
    authenticators: list[Authenticator] = []

    def authenticator() -> Authenticator:
        # Made on the serving loop, on the tools' own asyncio connection pool.
        if not authenticators:
            authenticators.append(Authenticator(settings, None, tools.aio.redis, tools.aio.keys))
        return authenticators[0]

    # Only to create the session manager; its Starlette app is not used. DNS-rebinding
    # checks are off: the endpoint is meant to be reached by name, and the bearer key guards it.
    server.streamable_http_app(
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    manager = server.session_manager

    @contextlib.asynccontextmanager
    async def lifespan() -> AsyncIterator[None]:
        async with manager.run():
            try:
                yield
            finally:
                await tools.aclose()

    return McpHttp(app=BearerAuth(StreamableHTTPASGIApp(manager), authenticator), lifespan=lifespan)


# Where the web process serves MCP (streamable HTTP).
MCP_PATH = "/mcp"


def web_parts(approvals: Approvals) -> tuple[list[BaseRoute], list[Lifespan]]:
    """What `hitl bot` serves of MCP: /mcp behind the same API keys as /v1, and the session
    manager's lifespan (`bot.main` and `hitl dev` mount it)."""
    # /mcp files into this process's Redis: an agent's HITL_API_URL in its environment is not for it.
    mcp = http_app(approvals.settings.model_copy(update={"api_url": None}))
    return [Route(MCP_PATH, endpoint=mcp.app)], [lambda app: mcp.lifespan()]


__all__ = ["McpHttp", "build_server", "http_app", "run_stdio", "web_parts"]
