"""The HTTP API (`/v1`): agents in any language file requests and read decisions.

Every answer is JSON; every refusal is `{"error": ..., "field": ...}` with the contract's status
code, so an agent can tell a typo in its own input (422) from a missing key (401) or a
request that is already final (409). Requests go through the same `build_doc` as the
Python client, so policy, limits and the webhook allow-list are enforced exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pydantic
import redis
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.requests import Request as HttpRequest
from starlette.responses import JSONResponse
from starlette.routing import Route

from bot.gateway import bodies
from bot.gateway.auth import Authenticator, Refused
from hitl.apikeys import ActionForbidden, Principal
from hitl.client import Approvals, AsyncApprovals
from hitl.errors import AlreadyDecided, ExecutionRefused, InvalidRequest, RequestNotFound, WaitTimeout
from hitl.models import MAX_PARAMS_DEPTH, Request, too_deep
from hitl.policystore import PolicyInForce
from hitl.pool import RedisBusy
from hitl.status import Mode, Status
from hitl.views import BatchView, ExecutionInput, RequestView

# Longest long-poll a caller may ask for (docs/contract.md: 0 to 60 s).
MAX_WAIT = 60.0
# Largest JSON body accepted on /v1 (params are capped at 256 KB; leave room for the rest).
MAX_API_BODY = 1024 * 1024
# Deepest nesting of lists and objects in a /v1 body: params' own limit plus the envelope
# (a batch's items), with room to spare. Deeper input never reaches a recursive encoder,
# validator or Lua's cjson, whatever field carries it.
MAX_BODY_DEPTH = MAX_PARAMS_DEPTH * 2


class ApiError(Exception):
    """An answer other than success: status code, message, and the field at fault if any."""

    def __init__(self, status: int, error: str, field: str | None = None) -> None:
        self.status = status
        self.error = error
        self.field = field
        super().__init__(error)

    def response(self) -> JSONResponse:
        body: dict[str, Any] = {"error": self.error}
        if self.field is not None:
            body["field"] = self.field
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else None
        return JSONResponse(body, self.status, headers=headers)


@dataclass
class ApiContext:
    """What the routes share: the clients, the keys, and the shutdown signal."""

    approvals: Approvals  # the process's sync client (the routes use `aio`)
    aio: AsyncApprovals
    keys: Authenticator  # bearer secret -> Principal, the same for /mcp and the dashboard
    draining: Callable[[], Awaitable[None]]  # resolves when the server starts shutting down


Handler = Callable[[HttpRequest], Awaitable[JSONResponse]]


def _guarded(
    ctx: ApiContext, handler: Callable[[HttpRequest, Principal], Awaitable[JSONResponse]]
) -> Handler:
    """Authenticate, then turn the library's errors into the contract's answers (docs/contract.md)."""

    async def endpoint(request: HttpRequest) -> JSONResponse:
        try:
            principal = await ctx.keys.authenticate(request.headers.get("authorization"))
            return await handler(request, principal)
        except Refused as exc:
            return exc.response()
        except ApiError as exc:
            return exc.response()
        except ActionForbidden as exc:
            return ApiError(403, str(exc), exc.field).response()
        except InvalidRequest as exc:
            return ApiError(422, str(exc), exc.field).response()
        except RequestNotFound as exc:
            return ApiError(404, str(exc), "id").response()
        except RedisBusy as exc:  # load, not an outage: say so, and when to come back
            return busy(exc)
        except (redis.ConnectionError, redis.TimeoutError):
            return ApiError(503, "Redis is unreachable; nothing was recorded, try again shortly").response()

    return endpoint


def busy(exc: RedisBusy) -> JSONResponse:
    """503 with `Retry-After`: this process is overloaded; Redis answers."""
    return JSONResponse(
        {"error": f"{exc}; nothing was recorded"}, 503, headers={"Retry-After": str(exc.retry_after)}
    )


_TOO_DEEP = (
    f"body: nests lists/objects deeper than {MAX_BODY_DEPTH} levels (params may nest {MAX_PARAMS_DEPTH}); "
    "flatten it"
)


async def _json_body(request: HttpRequest) -> dict[str, Any]:
    try:
        raw = await bodies.read_body(request, MAX_API_BODY)
    except bodies.BodyTooLarge:
        raise ApiError(413, f"body over {MAX_API_BODY:,} bytes", "body") from None
    except (TimeoutError, ClientDisconnect):
        raise ApiError(408, f"the body did not arrive within {bodies.BODY_TIMEOUT:g}s", "body") from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, f"malformed JSON: {exc}", "body") from None
    except RecursionError:  # the parser recurses per level: a deep enough body exhausts the stack
        raise ApiError(400, _TOO_DEEP, "body") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object", "body")
    if too_deep(body, MAX_BODY_DEPTH):
        raise ApiError(400, _TOO_DEEP, "body")
    if "via" in body:
        raise ApiError(422, "via: is set by the server from your API key", "via")
    return body


def _execution_input(body: dict[str, Any]) -> ExecutionInput:
    """The execution route's body, or a 422 naming the field at fault."""
    try:
        return ExecutionInput.model_validate(body)
    except pydantic.ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        raise ApiError(422, f"{field}: {err['msg']}", field) from None


def _wait_seconds(request: HttpRequest) -> float:
    raw = request.query_params.get("wait")
    if raw is None or raw == "":
        return 0.0
    try:
        wait = float(raw)
    except ValueError:
        raise ApiError(422, f"wait: {raw!r} is not a number of seconds", "wait") from None
    if not math.isfinite(wait) or wait < 0 or wait > MAX_WAIT:
        raise ApiError(422, f"wait: must be between 0 and {MAX_WAIT:g} seconds, got {raw}", "wait")
    return wait


def _view(req: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(RequestView.of(req).model_dump(mode="json"), status)


async def _owned(ctx: ApiContext, principal: Principal, request_id: str) -> Request:
    """The request, if `principal` filed it (or is an admin key). Anyone else's id raises the
    very `RequestNotFound` an unknown id does: a key learns nothing of others' requests."""
    req = await ctx.aio.store.get(request_id)
    if not principal.owns(req):
        raise RequestNotFound(request_id)
    return req


def routes(ctx: ApiContext) -> list[Route]:
    """The `/v1` routes, each behind the bearer keys."""

    async def create(request: HttpRequest, principal: Principal) -> JSONResponse:
        body = await _json_body(request)
        principal.check_action(body.get("action"))
        via = principal.name

        async def build(policy: PolicyInForce) -> dict[str, Any]:
            built = functools.partial(ctx.aio.build, body, via=via, policy=policy)
            # An email in requested_by means a Slack lookup: keep that blocking call off the loop.
            return await run_in_threadpool(built) if ctx.aio.needs_lookup(body) else built()

        doc = await ctx.aio.policy.routed(build)
        created, rid, mode, status = await ctx.aio.store.create(doc)
        ctx.aio.policy.saw(doc["policy_version"])
        # A gate request approved at once was approved by a grant (hitl.grants): read it
        # back, so the answer names the grant (decision.grant).
        granted = mode is Mode.GATE and status is Status.APPROVED
        if created and mode.value == doc["mode"] and not granted:
            # The stored request is the document as filed: answer without reading it back.
            return _view(Request.model_validate({**doc, "mode": mode, "status": status}), 201)
        return _view(await ctx.aio.store.get(rid), 201 if created else 200)

    async def read(request: HttpRequest, principal: Principal) -> JSONResponse:
        wait = _wait_seconds(request)
        rid = request.path_params["id"]
        req = await _owned(ctx, principal, rid)
        if wait > 0 and not req.final:
            await _wait_or_drain(ctx, rid, wait)
            req = await ctx.aio.store.get(rid)
        return _view(req)

    async def cancel(request: HttpRequest, principal: Principal) -> JSONResponse:
        rid = request.path_params["id"]
        await _owned(ctx, principal, rid)  # `via` never changes: checked once, it holds
        try:
            await ctx.aio.cancel(rid, by=f"api:{principal.name}")
        except AlreadyDecided as exc:
            raise ApiError(409, str(exc), "id") from None
        return _view(await ctx.aio.store.get(rid))

    async def execution(request: HttpRequest, principal: Principal) -> JSONResponse:
        """The approved tool call starts (at most once) or ended: `hitl.executions`."""
        rid = request.path_params["id"]
        await _owned(ctx, principal, rid)  # only the key that filed it records its execution
        body = _execution_input(await _json_body(request))
        try:
            if body.state == "started":
                if not await ctx.aio.start_execution(rid):
                    raise ApiError(
                        409, f"request {rid}'s tool call already started: do not run it again "
                        "(outcome unknown: check before retrying)", "id",
                    )
                return JSONResponse({"started": True})
            await ctx.aio.finish_execution(rid, ok=body.ok, result=body.result)
        except ExecutionRefused as exc:
            raise ApiError(409, str(exc), "id") from None
        return JSONResponse({"finished": True})

    async def batch(request: HttpRequest, principal: Principal) -> JSONResponse:
        body = await _json_body(request)
        summary, items = body.pop("summary", None), body.pop("items", None)
        if summary is None:
            raise InvalidRequest("summary", "is required")
        if not isinstance(items, list):
            raise InvalidRequest("items", "is required: a list of request bodies")
        if "action" in body:  # the default "plan" only groups the steps; a named one is checked
            principal.check_action(body["action"])
        for n, item in enumerate(items):
            if isinstance(item, dict):
                principal.check_action(item.get("action"), f"items.{n}.action")
        action = body.pop("action", "plan")
        handle = await ctx.aio.request_batch_from(
            {"summary": summary, "items": items, "action": action, **body}, via=principal.name
        )
        reqs = await asyncio.gather(*(ctx.aio.store.get(h.id) for h in [handle.plan, *handle.items]))
        items = [RequestView.of(r) for r in reqs[1:]]
        view = BatchView(id=handle.id, plan=RequestView.of(reqs[0]), items=items)
        return JSONResponse(view.model_dump(mode="json"), 201)

    return [
        Route("/v1/requests", _guarded(ctx, create), methods=["POST"]),
        Route("/v1/requests/{id}", _guarded(ctx, read), methods=["GET"]),
        Route("/v1/requests/{id}/cancel", _guarded(ctx, cancel), methods=["POST"]),
        Route("/v1/requests/{id}/execution", _guarded(ctx, execution), methods=["POST"]),
        Route("/v1/batches", _guarded(ctx, batch), methods=["POST"]),
    ]


async def _wait_or_drain(ctx: ApiContext, request_id: str, wait: float) -> None:
    """Hold until the request is final, `wait` passes, or the server starts shutting down
    (then the caller gets the current view instead of a reset connection)."""
    handle = await ctx.aio.get(request_id)
    waiting = asyncio.ensure_future(handle.wait(wait))
    draining = asyncio.ensure_future(ctx.draining())
    try:
        await asyncio.wait({waiting, draining}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (waiting, draining):
            task.cancel()
        for task in (waiting, draining):
            with contextlib.suppress(asyncio.CancelledError, WaitTimeout, RequestNotFound, redis.RedisError):
                await task


__all__ = ["MAX_WAIT", "ApiContext", "ApiError", "busy", "routes"]
