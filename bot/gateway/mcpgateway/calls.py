"""What the gateway does with one `tools/call`: file it through the policy, then forward,
wait, or refuse.

Every call is filed as a request (action ``NAME.tool``, params the arguments) where the
policy is evaluated: in this process's Redis store, or by the hitl server behind
HITL_API_URL, never by the agent. The mode it comes back with decides:

- `auto`, `shadow`: forward at once;
- `notify`, `override`: forward at once; the card is posted, and the result says that a veto
  cannot un-call the tool (a veto arrives as an audit event and on the card);
- `gate`: wait for the decision (at most `wait_seconds`, see below), then forward exactly
  the approved arguments (a reviewer's edit included), at most once: `start_execution` is
  recorded before forwarding, and a retry that finds it started without an end marks the
  outcome unknown rather than run the tool again. A rejection is a tool error with the
  reviewer's words; an expiry says no one decided in time.

A retried call re-attaches to its request through the request's idempotency key, derived
from who calls, the action and the arguments (`call_key`), so a client or gateway restart
neither files a second card nor loses an approval. Once a request's call has run (or was
refused), the same call again is a new request: the key carries a generation, and the
gateway steps past spent ones.

A reviewer may take longer than a client lets a tool call last, so no call is held past
`wait_seconds`; the request stays pending (a client giving up never withdraws it) and:

- a client speaking MCP 2026-07-28 gets an `InputRequiredResult` carrying only a
  `requestState`, the protocol's way to say "ask again": its SDK retries the same call after
  a short pause, the retry re-attaches, and the model sees only the final answer. The state
  names the request, but nothing is taken from it (a client may send anything): the retry
  re-attaches by its own idempotency key, as any repeat does;
- an older client gets a tool error saying which request is pending and to call the same
  tool with the same arguments again, which re-attaches the same way.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import mcp_types as types
import redis

from bot.gateway.mcpgateway.config import DEFAULT_WAIT
from bot.gateway.mcpgateway.upstreams import Route, UpstreamDown, Upstreams
from hitl.apikeys import ActionForbidden, Principal
from hitl.client import AsyncApprovals
from hitl.errors import ExecutionRefused, HitlError, IdempotencyConflict, InvalidRequest, WaitTimeout
from hitl.models import Request
from hitl.pool import RedisBusy
from hitl.status import ExecutionState, Mode, Risk, Status

log = logging.getLogger("hitl.mcpgateway")

# Who the card says filed it.
AGENT = "mcp-gateway"
# Generations tried for one call before giving up (each a spent request of the same call).
MAX_GENERATIONS = 200
# Calls whose next generation this process remembers (so a repeated call costs no probing).
REMEMBERED = 10_000
# Longest summary line made from a call's arguments.
GIST_CHARS = 300

NO_UNDO = (
    "hitl: this call ran at once and was recorded as request {id} ({mode}); a reviewer sees it "
    "in Slack. A veto cannot un-call a tool: it arrives as an audit event and on the card."
)
UNKNOWN = (
    "hitl: request {id}'s approved call to {action} was started before and never recorded as "
    "finished (the gateway stopped mid-call?). It was NOT forwarded again: its outcome is "
    "unknown, so check whether it took effect before asking again."
)
UNRECORDED = (
    "hitl: request {id}'s approved call ran, but its end could not be recorded ({why}); the "
    "request shows it as started. Do not repeat it: a repeat is refused as outcome unknown."
)
PENDING = (
    "hitl: no decision yet: request {id} is still pending in Slack (held {seconds:g} s). The tool was "
    "NOT called. Call {tool} again with the same arguments to keep waiting: that re-attaches to the "
    "same request (nothing new is filed), and waiting never withdraws it."
)
# The requestState of a deferred call names the request it waits on; the retry never reads it.
STATE_PREFIX = "hitl-request:"
RAN = (
    "hitl: request {id}'s approved call to {action} already ran ({state}); it is not forwarded twice."
)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def call_key(who: str, action: str, arguments: dict[str, Any], generation: int) -> str:
    """The idempotency key of a call: the same caller, action and arguments give the same key."""
    digest = hashlib.sha256(_canonical([who, action, arguments]).encode()).hexdigest()[:40]
    return f"mcpgw:{digest}:{generation}"


def risk_hints(tool: types.Tool) -> dict[str, Any]:
    """Risk and reversibility from the upstream's tool annotations (only what they say):
    the policy's rule for the action, if any, still decides the mode."""
    notes = tool.annotations
    if notes is None:
        return {}
    if notes.read_only_hint:
        return {"risk": Risk.LOW.value, "reversible": True}
    if notes.destructive_hint is True:
        return {"risk": Risk.HIGH.value, "reversible": False}
    if notes.destructive_hint is False:
        return {"risk": Risk.MEDIUM.value, "reversible": True}
    return {}


def _gist(arguments: dict[str, Any]) -> str:
    text = _canonical(arguments) if arguments else "(no arguments)"
    return text if len(text) <= GIST_CHARS else text[: GIST_CHARS - 1] + "…"


def _error(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _noted(result: types.CallToolResult, note: str) -> types.CallToolResult:
    return result.model_copy(update={"content": [*result.content, types.TextContent(type="text", text=note)]})


def _spent(req: Request) -> bool:
    """Whether `req` is done with: its call ran (or was left unknown), or it was refused."""
    if req.status in (Status.PENDING, Status.OPEN):
        return False
    if not req.decision().approved:
        return True
    return req.execution not in (None, ExecutionState.STARTED)


@dataclass(frozen=True)
class Filed:
    """The request a call stands for: its id and mode, and the request as read back when the
    call re-attached to an earlier one (None when this very call filed it: nothing to read,
    which saves a Redis round trip on every `auto` call)."""

    id: str
    mode: Mode
    request: Request | None


class Calls:
    """The `tools/call` handler shared by the stdio gateway and /mcp/gateway."""

    def __init__(
        self, upstreams: Upstreams, aio: AsyncApprovals, *, wait_seconds: float = DEFAULT_WAIT
    ) -> None:
        self.upstreams = upstreams
        self.aio = aio
        self.wait_seconds = wait_seconds
        self._generation: OrderedDict[str, int] = OrderedDict()
        self._background: set[asyncio.Task[None]] = set()

    async def call(
        self, name: str, arguments: dict[str, Any], principal: Principal | None, *, deferrable: bool = False
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Answer one call: the upstream's result, or a tool error a model can act on.

        Args:
            name: The tool as the gateway lists it.
            arguments: The call's arguments, as the agent proposed them.
            principal: The API key that called (HTTP); None over stdio.
            deferrable: The client speaks MCP 2026-07-28, so a gated call still pending after
                `wait_seconds` is answered with an `InputRequiredResult` its SDK retries.
        """
        route = self.upstreams.routes.get(name)
        if route is None:
            return _error(f"unknown tool {name!r}: the gateway lists {sorted(self.upstreams.routes)}")
        try:
            if principal is not None:
                principal.check_action(route.action)
            await route.upstream.ready()  # down: said before anything is filed
            return await self._decide(name, route, arguments, principal, deferrable)
        except UpstreamDown as exc:
            return _error(f"{exc}. Nothing was filed for review and the tool was not called; try again later")
        except (InvalidRequest, ActionForbidden, ExecutionRefused) as exc:
            return _error(f"hitl: {exc}")
        except RedisBusy as exc:
            return _error(f"hitl: the approval service is {exc}; the tool was not called. Try again shortly.")
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            return _error(f"hitl: Redis did not answer ({exc or 'timed out'}); the tool was not called.")
        except HitlError as exc:  # the HTTP transport's: the server refused the key, or did not answer
            return _error(f"hitl: {exc}; the tool was not called.")

    async def _file(self, route: Route, arguments: dict[str, Any], principal: Principal | None) -> Filed:
        """The request this call stands for: the pending or approved one it re-attaches to,
        or a new one after the spent generations."""
        who = "" if principal is None else principal.name
        base = call_key(who, route.action, arguments, 0)
        generation = self._generation.get(base, 0)
        fields = {
            "action": route.action,
            "summary": f"{route.action}: {_gist(arguments)}",
            "params": arguments,
            "agent": AGENT,
            "context": _context(route),
            **risk_hints(route.tool),
        }
        for _ in range(MAX_GENERATIONS):
            key = call_key(who, route.action, arguments, generation)
            try:
                handle = await self.aio.request_from(
                    {**fields, "idempotency_key": key}, via=None if principal is None else principal.name
                )
            except IdempotencyConflict:  # a key of ours used with other content: step past it
                generation += 1
                continue
            # Filed by this very call: ours, even if a reviewer already rejected it (or it
            # expired) since. Taken for an earlier call's spent request, it made the gateway
            # file another one and wait on it for good (seen in the suite under load).
            if handle.created:
                self._remember(base, generation)
                return Filed(handle.id, handle.mode, None)
            req = await self.aio.fetch(handle.id)
            if not _spent(req):
                self._remember(base, generation)
                return Filed(req.id, req.mode, req)
            generation += 1
        raise InvalidRequest(
            f"this exact call was already made {MAX_GENERATIONS} times; vary it", "arguments"
        )

    def _remember(self, base: str, generation: int) -> None:
        self._generation[base] = generation
        self._generation.move_to_end(base)
        while len(self._generation) > REMEMBERED:
            self._generation.popitem(last=False)

    def _spend(self, route: Route, arguments: dict[str, Any], principal: Principal | None) -> None:
        """This call's request is used: the same call next time is a new request."""
        who = "" if principal is None else principal.name
        base = call_key(who, route.action, arguments, 0)
        self._remember(base, self._generation.get(base, 0) + 1)

    async def _decide(
        self,
        name: str,
        route: Route,
        arguments: dict[str, Any],
        principal: Principal | None,
        deferrable: bool,
    ) -> types.CallToolResult | types.InputRequiredResult:
        filed = await self._file(route, arguments, principal)
        if filed.mode is Mode.GATE:
            req = filed.request
            if req is None or not req.final:
                try:
                    req = await self.aio.wait_request(filed.id, timeout=self.wait_seconds)
                except WaitTimeout:  # still pending: the request stays; the retry re-attaches
                    if deferrable:
                        return types.InputRequiredResult(request_state=STATE_PREFIX + filed.id)
                    return _error(PENDING.format(id=filed.id, seconds=self.wait_seconds, tool=name))
            return await self._gated(route, req, arguments, principal)
        self._spend(route, arguments, principal)
        result = await self._forward(route, filed.id, arguments, recorded=False)
        if filed.mode in (Mode.AUTO, Mode.SHADOW):
            return result
        return _noted(result, NO_UNDO.format(id=filed.id, mode=filed.mode.value))

    async def _gated(
        self, route: Route, req: Request, arguments: dict[str, Any], principal: Principal | None
    ) -> types.CallToolResult:
        """Forward a decided gate's call, or say why not."""
        decision = req.decision()
        if not decision.approved:
            self._spend(route, arguments, principal)
            if req.status is Status.REJECTED:
                who = ", ".join(decision.by) or "a reviewer"
                words = decision.comment or "no reason given"
                return _error(f"Rejected by {who}: {words}. The tool was not called (request {req.id}).")
            return _error(f"{decision.explanation()} The tool was not called (request {req.id}).")
        if not await self.aio.start_execution(req.id):
            self._spend(route, arguments, principal)
            current = await self.aio.fetch(req.id)
            if current.execution is ExecutionState.UNKNOWN:
                return _error(UNKNOWN.format(id=req.id, action=route.action))
            state = current.execution.value if current.execution else "started"
            return _error(RAN.format(id=req.id, action=route.action, state=state))
        self._spend(route, arguments, principal)
        # Exactly what was approved: the reviewer's edit, if any, replaces the proposal.
        approved = dict(decision.params or {})
        return await self._forward(route, req.id, approved, recorded=True)

    async def _forward(
        self, route: Route, request_id: str, arguments: dict[str, Any], *, recorded: bool
    ) -> types.CallToolResult:
        """Call the upstream. `recorded`: its start is already in the request (gate); otherwise
        start and end are recorded after answering, off the call's path."""
        try:
            result = await route.upstream.call(route.tool.name, arguments)
        except Exception as exc:
            log.warning("MCP upstream %s failed on %s: %s", route.upstream.name, route.tool.name, exc)
            why = str(exc) or type(exc).__name__
            self._record(request_id, started=recorded, ok=False, result={"error": why})
            return _error(
                f"MCP server {route.upstream.name!r} failed on {route.tool.name} ({why}); it may or "
                f"may not have acted. Recorded on request {request_id} as failed; it is not retried."
            )
        answer = result.model_dump(mode="json", by_alias=True, exclude_none=True)
        if recorded:  # gate: the end is on record before the agent hears of it
            try:
                await self.aio.finish_execution(request_id, ok=not result.is_error, result=answer)
            except (redis.ConnectionError, redis.TimeoutError, RedisBusy, HitlError) as exc:
                # The tool ran: say so, never "not called". Its start stays on record, so the
                # same call again is refused as "outcome unknown", not run twice.
                log.warning("hitl: request %s's call ran but its end was not recorded: %s", request_id, exc)
                return _noted(result, UNRECORDED.format(id=request_id, why=exc or type(exc).__name__))
        else:
            self._record(request_id, started=False, ok=not result.is_error, result=answer)
        return result

    def _record(self, request_id: str, *, started: bool, ok: bool, result: Any) -> None:
        """Record the call's start (unless done) and end with the upstream's `result`, which the
        audit event keeps masked and capped (`hitl.masking.result_text`)."""

        async def record() -> None:
            try:
                if not started and not await self.aio.start_execution(request_id):
                    return
                await self.aio.finish_execution(request_id, ok=ok, result=result)
            except Exception as exc:  # the call ran; only its record is missing: say so in the log
                log.warning("hitl: could not record the end of request %s's call: %s", request_id, exc)

        task = asyncio.create_task(record())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def drain(self) -> None:
        """Wait for the records still being written (on shutdown)."""
        if self._background:
            await asyncio.gather(*self._background, return_exceptions=True)


def _context(route: Route) -> str:
    tool = route.tool
    lines = [f"MCP tool `{tool.name}` of upstream `{route.upstream.name}`, called through the hitl gateway."]
    if tool.description:
        lines.append("\n" + tool.description.strip()[:2000])
    if tool.annotations is not None:
        hints = tool.annotations.model_dump(exclude_none=True, by_alias=True)
        if hints:
            lines.append(f"\nAnnotations: {_canonical(hints)}")
    return "\n".join(lines)
