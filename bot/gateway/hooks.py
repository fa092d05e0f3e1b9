"""`POST /v1/hooks/claude-code`: Claude Code's `http` hook, and what `hitl hook claude-code` calls.

The body is the hook event Claude Code sends (`PreToolUse` or `PermissionRequest`), the
answer is the hook output it reads (`hitl.claude_code`). The policy check happens here,
server-side, under the caller's API key (`Authorization: Bearer <secret>`): the key's name
is `via`, its `--actions` patterns apply, and the published policy picks each tool's mode.

`?wait=SECONDS` (0 to 60, default 55) bounds how long the call is held for a reviewer.
When it runs out the answer is deny "no decision yet (request X is still pending in
Slack)"; the request is never withdrawn, and the same call made again re-attaches to it.

Errors fail closed. A bad or missing key is 401 (the contract's answer for every /v1
route) with a deny in the body; everything else that goes wrong (malformed event, an
action the key may not file, Redis down) is a 200 deny whose reason says what to fix,
because Claude Code treats any non-2xx answer of an `http` hook as a non-blocking error
and goes on as if there were no hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Coroutine
from typing import Any

import redis
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.gateway import bodies
from bot.gateway.api import ApiContext
from bot.gateway.auth import Refused
from hitl import claude_code
from hitl.apikeys import ActionForbidden
from hitl.claude_code import HookEvent
from hitl.errors import HitlError, InvalidRequest
from hitl.pool import RedisBusy

HOOK_PATH = "/v1/hooks/claude-code"
# Default and longest hold (seconds): under Claude Code's default 60 s hook timeout.
DEFAULT_WAIT, MAX_WAIT = 55.0, 60.0
# Largest hook event accepted (a Write's content rides in tool_input).
MAX_HOOK_BODY = 1024 * 1024


def _wait(request: HttpRequest) -> float:
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return DEFAULT_WAIT
    try:
        wait = float(raw)
    except ValueError:
        raise InvalidRequest("wait", f"{raw!r} is not a number of seconds") from None
    if not math.isfinite(wait) or not 0 <= wait <= MAX_WAIT:
        raise InvalidRequest("wait", f"must be between 0 and {MAX_WAIT:g} seconds, got {raw}")
    return wait


async def _until_disconnect(request: HttpRequest) -> None:
    """Return once the caller hangs up (the body is read: the next ASGI message is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _unless_gone(
    ctx: ApiContext, request: HttpRequest, deciding: Coroutine[Any, Any, claude_code.Answer]
) -> claude_code.Answer | None:
    """The decision, or None when the caller hung up or the server began draining first.

    A caller that gave up (Claude Code's hook timeout killed `hitl hook`) must not leave a
    waiter behind that would take the approval when it comes: the repeat of the call is
    the one that should get it. Its request stays pending either way."""
    task = asyncio.ensure_future(deciding)
    gone = asyncio.ensure_future(_until_disconnect(request))
    draining = asyncio.ensure_future(ctx.draining())
    try:
        await asyncio.wait({task, gone, draining}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for other in (gone, draining):
            other.cancel()
        if not task.done():
            task.cancel()
        for each in (task, gone, draining):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({each})
    return task.result() if task.done() and not task.cancelled() else None


def routes(ctx: ApiContext) -> list[Route]:
    """The Claude Code hook route, behind the same keys as the rest of /v1."""

    async def hook(request: HttpRequest) -> JSONResponse:
        raw = b""
        event = HookEvent.PRE_TOOL_USE
        try:
            principal = await ctx.keys.authenticate(request.headers.get("authorization"))
        except Refused as exc:
            body = claude_code.fail_closed(event, f"the hitl API refused the call ({exc.error})")
            return JSONResponse({**body, "error": exc.error}, exc.status, headers=exc.headers())
        except (redis.ConnectionError, redis.TimeoutError):
            return JSONResponse(claude_code.fail_closed(event, "Redis is unreachable; try again shortly"))
        try:
            raw = await bodies.read_body(request, MAX_HOOK_BODY)
            event = claude_code.event_name(raw)
            call = claude_code.parse_event(raw)
            principal.check_action(call.action)
            deciding = claude_code.decide(ctx.aio, call, via=principal.name, wait=_wait(request))
            answer = await _unless_gone(ctx, request, deciding)
            if answer is None:
                problem = "hitl is shutting down or the caller went away; the request stays pending"
                return JSONResponse(claude_code.fail_closed(event, problem))
            return JSONResponse(answer.output(call.hook_event_name))
        except bodies.BodyTooLarge:
            problem = f"the hook event is over {MAX_HOOK_BODY:,} bytes"
        except (TimeoutError, ClientDisconnect):
            problem = "the hook event did not arrive in time"
        except ActionForbidden as exc:
            problem = f"this API key may not file that action ({exc})"
        except InvalidRequest as exc:
            problem = f"bad hook event: {exc}"
        except RedisBusy as exc:
            problem = f"the approval service is {exc}; try again then"
        except (redis.ConnectionError, redis.TimeoutError):
            problem = "Redis is unreachable; try again shortly"
        except HitlError as exc:
            problem = str(exc)
        return JSONResponse(claude_code.fail_closed(event, problem))

    return [Route(HOOK_PATH, hook, methods=["POST"])]


__all__ = ["DEFAULT_WAIT", "HOOK_PATH", "MAX_WAIT", "routes"]
