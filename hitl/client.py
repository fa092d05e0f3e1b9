"""The enqueue client: what an agent calls before a risky action.

`Approvals` files requests and hands back a `RequestHandle` whose `wait()` blocks until
the decision lands (no polling; one listener per process wakes every waiter, see
`hitl.waiters`), survives a dropped connection, and returns at once when the request is
already final. `AsyncApprovals` is the asyncio twin.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from hitl import tracing, waiters
from hitl.errors import InvalidRequest, Rejected, WaitTimeout
from hitl.ids import new_id
from hitl.keys import Keys
from hitl.models import Decision, Request, RequestInput, check_comment, check_params
from hitl.people import Directory, default_directory, resolve_requester
from hitl.policy import PolicySource, route
from hitl.settings import Settings, load_settings
from hitl.slackids import is_email
from hitl.status import Mode, Status, Verb
from hitl.store import AsyncStore, Store
from hitl.tracing import SpanName

log = logging.getLogger(__name__)

# Most items one plan (request_batch) may hold.
MAX_PLAN_ITEMS = 1_000

F = TypeVar("F", bound=Callable[..., Any])


def _connect_kwargs() -> dict[str, Any]:
    # No command of this client blocks (waits go through `hitl.waiters`); keepalive and
    # health checks notice a dead server sooner.
    return {
        "socket_connect_timeout": 5,
        "socket_timeout": 15,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }


def build_doc(
    settings: Settings, policy: PolicySource, *, directory: Directory | None = None, **kwargs: Any
) -> dict[str, Any]:
    """Validate an agent's arguments and route them with the policy: the stored `doc`.

    `directory` resolves an email given as `requested_by` to a Slack user id (by default
    Slack's `users.lookupByEmail`, called only when an email is given).
    """
    req = RequestInput.parse(**kwargs)
    check_callback(settings, req.callback_url)
    r = route(req, policy.current(), settings.default_channel)
    requested_by = resolve_requester(req.requested_by, directory or default_directory(settings))
    return {
        "id": new_id(),
        "action": req.action,
        "summary": req.summary,
        "params": req.params,
        "context": req.context,
        "agent": req.agent,
        "run_id": req.run_id,
        "risk": req.risk.value if req.risk else None,
        "reversible": req.reversible,
        "confidence": req.confidence,
        "mode": r.mode.value,
        "urgent": r.urgent,
        "low_confidence": r.low_confidence,
        "channel": r.channel,
        "mirror_channels": r.mirror_channels,
        "approvers": r.approvers,
        "requested_by": requested_by,
        "quorum": r.quorum,
        "timeout": r.timeout,
        "window": r.window,
        "escalation": [s.model_dump() for s in r.escalation],
        "idempotency_key": req.idempotency_key,
        "callback_url": req.callback_url,
        "via": None,
        "batch": None,
        "items": [],
    }


def check_callback(settings: Settings, url: str | None) -> None:
    """A `callback_url` must start with an allowed prefix: agents cannot aim the worker
    at arbitrary hosts (server-side request forgery)."""
    if url is None:
        return
    if not settings.webhook_allowed:
        raise InvalidRequest(
            "callback_url", "no webhook destinations are allowed here; an operator sets HITL_WEBHOOK_ALLOWED"
        )
    if not url.startswith(tuple(settings.webhook_allowed)):
        allowed = ", ".join(settings.webhook_allowed)
        raise InvalidRequest("callback_url", f"{url!r} does not start with an allowed prefix ({allowed})")


def check_decision(verb: str, params: dict[str, Any] | None, comment: str | None = None) -> Verb:
    """Validate a decision's arguments before anything is written; errors name the field."""
    try:
        v = Verb(verb)
    except ValueError:
        raise InvalidRequest("verb", f"{verb!r} is not one of approve, reject, veto, confirm") from None
    check_comment(comment)
    if params is not None:
        if v is not Verb.APPROVE:
            raise InvalidRequest("params", "edited parameters go with an approval only")
        check_params(params)
    return v


def build_plan(
    settings: Settings, policy: PolicySource, summary: str, items: Sequence[dict[str, Any]], action: str,
    common: dict[str, Any], *, via: str | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The stored documents of a plan and its steps (`request_batch`'s arguments validated).

    Every step waits for review with the plan's channel and deadline. The plan's
    idempotency key K gives step n the key "K/n", so the key covers each step too.
    """
    if not items:
        raise InvalidRequest("items", "a plan needs at least one item")
    if len(items) > MAX_PLAN_ITEMS:
        raise InvalidRequest("items", f"at most {MAX_PLAN_ITEMS:,} items in one plan; split it")
    common = {k: v for k, v in common.items() if k != "mode"}
    key = common.pop("idempotency_key", None)
    plan = build_doc(
        settings, policy, action=action, summary=summary, params={"items": len(items)}, mode="gate",
        idempotency_key=key, **common,
    )
    steps = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidRequest(f"items.{n}", "must be a dict of request() arguments")
        if item.get("idempotency_key") is not None:
            raise InvalidRequest(
                f"items.{n}.idempotency_key",
                "give request_batch one idempotency_key; each step's is derived from it",
            )
        step_key = None if key is None else f"{key}/{n}"
        try:
            args = {**common, **item, "mode": "gate", "idempotency_key": step_key}
            doc = build_doc(settings, policy, **args)
        except InvalidRequest as exc:
            raise InvalidRequest(f"items.{n}.{exc.field}", str(exc).split(": ", 1)[1]) from None
        doc.update(batch=plan["id"], escalation=[], channel=plan["channel"], timeout=plan["timeout"], via=via)
        steps.append(doc)
    plan["items"] = [d["id"] for d in steps]
    plan["via"] = via
    return plan, steps


def _seconds(timeout: float | timedelta | None) -> float | None:
    return timeout.total_seconds() if isinstance(timeout, timedelta) else timeout


def _last_look(exc: WaitTimeout, read: Callable[[], Request]) -> Request:
    """After a wait ran out: the request if it turned final after all, else `exc` (also
    when Redis is unreachable for this one read)."""
    try:
        req = read()
    except (redis.ConnectionError, redis.TimeoutError):
        raise exc from None
    if not req.final:
        raise exc
    return req


def _woke(req: Request, started_ns: int) -> None:
    """Record the `hitl.wake` span of a wait that ended with `req` final: from the wait's
    start to the decision reaching the waiter, in the request's trace (none if untraced)."""
    if req.trace and tracing.enabled():
        attrs = {"hitl.request_id": req.id, "hitl.action": req.action, "hitl.status": req.status.value}
        tracing.record(SpanName.WAKE, req.trace, started_ns, attrs, stored_first=True)


class RequestHandle:
    """A filed request, seen from the agent."""

    def __init__(self, approvals: Approvals, request_id: str, mode: Mode, status: Status | None = None):
        self._approvals = approvals
        self.id = request_id
        self.mode = mode
        self._status = status

    def __repr__(self) -> str:
        return f"<RequestHandle {self.id} mode={self.mode}>"

    def status(self) -> Status:
        """The current status, read from Redis."""
        return self._approvals.store.status(self.id)

    def fetch(self) -> Request:
        """The whole stored request."""
        return self._approvals.store.get(self.id)

    def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """Block until the request is final and return the decision.

        Registers with this process's waiter dispatcher (`hitl.waiters`): any number of
        concurrent waits share two Redis connections, each wakes within milliseconds of
        its decision, and a Redis outage is waited out. Raises `WaitTimeout` after
        `timeout` seconds unless the request turned final by then.
        """
        approvals = self._approvals
        seconds = _seconds(timeout)
        try:
            req = approvals.wait_request(self.id, seconds)
        except WaitTimeout as exc:
            req = _last_look(exc, lambda: approvals.store.get(self.id))
        return req.decision()

    def cancel(self) -> Status:
        """Withdraw a pending request; raises `AlreadyDecided` when it is too late."""
        return self._approvals.store.transition(self.id, "cancel")


class BatchHandle:
    """A filed plan: `plan` is its own request, `items` one request per step."""

    def __init__(self, plan: RequestHandle, items: list[RequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        seconds = _seconds(timeout)
        end = None if seconds is None else time.monotonic() + seconds
        out = []
        for item in self.items:
            remaining = None if end is None else max(end - time.monotonic(), 0.001)
            out.append(item.wait(remaining))
        return out


class Approvals:
    """Files approval requests and reads decisions. Thread-safe; share one per process."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> None:
        """`directory` resolves `requested_by` emails (default: Slack's users.lookupByEmail)."""
        self.settings = settings or load_settings()
        self.directory = directory
        url = redis_url or self.settings.redis
        self.redis = client or redis.Redis.from_url(url, **_connect_kwargs())
        self.keys = Keys(prefix or self.settings.prefix)
        self.store = Store(self.redis, self.keys, self.settings.retention, self.settings.metrics)
        self.policy = PolicySource(self.settings.policy_file)
        self.url = url

    def request(self, action: str | None = None, summary: str | None = None, **kwargs: Any) -> RequestHandle:
        """File a request (see SPEC for the arguments) and return its handle at once."""
        traced = tracing.RequestTrace({"hitl.action": action})
        try:
            doc = build_doc(
                self.settings, self.policy, directory=self.directory, action=action, summary=summary, **kwargs
            )
            _, rid, mode, status = self.store.create(traced.stamp(doc))
        except Exception as exc:
            traced.done(error=exc)
            raise
        traced.done({"hitl.request_id": rid, "hitl.mode": mode.value})
        return RequestHandle(self, rid, mode, status)

    def request_batch(
        self,
        summary: str,
        items: Sequence[dict[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **common: Any,
    ) -> BatchHandle:
        """File a whole plan for one review: one card, Approve all / Reject all, and a
        decision per item (`BatchHandle.items`, each waited on like any request).

        `items` are `request()` arguments (action, summary, params...); `common` applies to
        the plan and every item (channel, approvers, requested_by, timeout, ...). `via` names
        the API key that filed it (the HTTP API sets it; the audit log records it). An
        `idempotency_key` covers the plan and every step: the plan and its steps are stored
        in one atomic call, and a repeat with the same items returns the same plan.
        """
        traced = tracing.RequestTrace({"hitl.action": action})
        try:
            plan, steps = build_plan(self.settings, self.policy, summary, items, action, common, via=via)
            for doc in (plan, *steps):
                traced.stamp(doc)
            existing = self.store.create_plan(plan, steps)
        except Exception as exc:
            traced.done(error=exc)
            raise
        traced.done({"hitl.request_id": plan["id"], "hitl.steps": len(steps)})
        if existing is not None:
            return BatchHandle(
                RequestHandle(self, existing.id, existing.mode, existing.status),
                [RequestHandle(self, rid, Mode.GATE) for rid in existing.items],
            )
        return BatchHandle(
            RequestHandle(self, plan["id"], Mode.GATE),
            [RequestHandle(self, d["id"], Mode.GATE) for d in steps],
        )

    def wait_request(self, request_id: str, timeout: float | None) -> Request:
        """The request once final: this process's waiter dispatcher (`hitl.waiters`), no
        connection of this client. `WaitTimeout` after `timeout` s; `RequestNotFound`."""
        started = time.time_ns()
        req = waiters.wait_request(self.url, self.keys.prefix, request_id, timeout)
        _woke(req, started)
        return req

    def dispatcher(self) -> waiters.Dispatcher:
        """The dispatcher this client's waits go through (diagnostics, tests)."""
        return waiters.dispatcher(self.url, self.keys.prefix)

    def get(self, request_id: str) -> RequestHandle:
        """A handle for an existing request; raises `RequestNotFound`."""
        req = self.store.get(request_id)
        return RequestHandle(self, req.id, req.mode, req.status)

    def decide(
        self,
        request_id: str,
        verb: str,
        by: str,
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        groups: Sequence[str] = (),
    ) -> Request:
        """Record a person's decision and return the request as it now stands.

        `groups` are the user groups `by` belongs to (the bot resolves them); `version`
        refuses the decision if the request changed since the reviewer saw it. Raises
        `AlreadyDecided`, `NotAllowed` or `StaleVersion`; nothing changes then.
        """
        v = check_decision(verb, params, comment)
        started = time.time_ns()
        status, trace_ctx = self.store.transition_traced(
            request_id, v.value, by=by, groups=groups, comment=comment, params=params, version=version
        )
        attrs = {"hitl.request_id": request_id, "hitl.verb": v.value, "hitl.by": by, "hitl.status": status}
        tracing.record(SpanName.TRANSITION, trace_ctx, started, attrs)
        return self.store.get(request_id)

    def require_approval(
        self, action: str | None = None, summary: str | None = None, **request_kwargs: Any
    ) -> Callable[[F], F]:
        """Gate a function behind a decision; raises `hitl.Rejected` with the reason.

        The call's arguments become the request's `params` (edited values are passed to the
        function when a reviewer changed them). `summary` may use `{name}` placeholders
        for the arguments. Works on coroutine functions too.
        """

        def wrap(func: F) -> F:
            name = action or func.__name__
            sig = inspect.signature(func)

            def prepare(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[inspect.BoundArguments, dict]:
                bound = sig.bind(*args, **kwargs)
                bound.apply_defaults()
                params = {k: v for k, v in bound.arguments.items() if _jsonable(v)}
                text = (summary or f"Run {name}").format(**bound.arguments)
                return bound, {"action": name, "summary": text, "params": params, **request_kwargs}

            def finish(bound: inspect.BoundArguments, decision: Decision) -> inspect.BoundArguments:
                if not decision.approved:
                    raise Rejected(decision)
                for key, value in decision.params.items():
                    if key in bound.arguments:
                        bound.arguments[key] = value
                return bound

            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    bound, req_kwargs = prepare(args, kwargs)
                    aio = self.asyncio()
                    try:
                        handle = await aio.request(**req_kwargs)
                        if handle.mode is Mode.GATE:
                            decision = await handle.wait()
                        else:
                            decision = await handle.decision()
                    finally:
                        await aio.aclose()
                    bound = finish(bound, decision)
                    return await func(*bound.args, **bound.kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                bound, req_kwargs = prepare(args, kwargs)
                handle = self.request(**req_kwargs)
                # Only gate waits: override, shadow, notify and auto act at once (SPEC).
                decision = handle.wait() if handle.mode is Mode.GATE else handle.fetch().decision()
                bound = finish(bound, decision)
                return func(*bound.args, **bound.kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap

    def asyncio(self) -> AsyncApprovals:
        """An asyncio client on the same Redis, prefix and policy."""
        return AsyncApprovals(self.url, settings=self.settings, prefix=self.keys.prefix)

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Approvals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _jsonable(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


class AsyncRequestHandle:
    """`RequestHandle` for asyncio code."""

    def __init__(self, approvals: AsyncApprovals, request_id: str, mode: Mode) -> None:
        self._approvals = approvals
        self.id = request_id
        self.mode = mode

    async def status(self) -> Status:
        return await self._approvals.store.status(self.id)

    async def fetch(self) -> Request:
        return await self._approvals.store.get(self.id)

    async def decision(self) -> Decision:
        return (await self.fetch()).decision()

    async def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """`RequestHandle.wait` for asyncio: the same dispatcher, no connection per wait."""
        approvals = self._approvals
        seconds = _seconds(timeout)
        try:
            req = await approvals.wait_request(self.id, seconds)
        except WaitTimeout as exc:
            try:
                req = await approvals.store.get(self.id)
            except (redis.ConnectionError, redis.TimeoutError):
                raise exc from None
            if not req.final:
                raise
        return req.decision()

    async def cancel(self) -> Status:
        return await self._approvals.store.transition(self.id, "cancel")


class AsyncBatchHandle:
    """`BatchHandle` for asyncio code."""

    def __init__(self, plan: AsyncRequestHandle, items: list[AsyncRequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    async def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        seconds = _seconds(timeout)
        end = None if seconds is None else time.monotonic() + seconds
        out = []
        for item in self.items:
            remaining = None if end is None else max(end - time.monotonic(), 0.001)
            out.append(await item.wait(remaining))
        return out


class AsyncApprovals:
    """The asyncio twin of `Approvals`."""

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        settings: Settings | None = None,
        client: aioredis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.directory = directory
        self.redis = client or aioredis.Redis.from_url(redis_url or self.settings.redis, **_connect_kwargs())
        self.keys = Keys(prefix or self.settings.prefix)
        self.store = AsyncStore(self.redis, self.keys, self.settings.retention, self.settings.metrics)
        self.policy = PolicySource(self.settings.policy_file)
        self.url = redis_url or self.settings.redis

    async def request(
        self, action: str | None = None, summary: str | None = None, **kwargs: Any
    ) -> AsyncRequestHandle:
        build = functools.partial(
            build_doc, self.settings, self.policy,
            directory=self.directory, action=action, summary=summary, **kwargs,
        )
        # An email in requested_by means a Slack lookup: keep that blocking call off the loop.
        traced = tracing.RequestTrace({"hitl.action": action})
        try:
            doc = await asyncio.to_thread(build) if is_email(kwargs.get("requested_by")) else build()
            _, rid, mode, _status = await self.store.create(traced.stamp(doc))
        except Exception as exc:
            traced.done(error=exc)
            raise
        traced.done({"hitl.request_id": rid, "hitl.mode": mode.value})
        return AsyncRequestHandle(self, rid, mode)

    async def request_batch(
        self,
        summary: str,
        items: Sequence[dict[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **common: Any,
    ) -> AsyncBatchHandle:
        """The asyncio twin of `Approvals.request_batch`."""
        traced = tracing.RequestTrace({"hitl.action": action})
        try:
            plan, steps = build_plan(self.settings, self.policy, summary, items, action, common, via=via)
            for doc in (plan, *steps):
                traced.stamp(doc)
            existing = await self.store.create_plan(plan, steps)
        except Exception as exc:
            traced.done(error=exc)
            raise
        traced.done({"hitl.request_id": plan["id"], "hitl.steps": len(steps)})
        if existing is not None:
            return AsyncBatchHandle(
                AsyncRequestHandle(self, existing.id, existing.mode),
                [AsyncRequestHandle(self, rid, Mode.GATE) for rid in existing.items],
            )
        return AsyncBatchHandle(
            AsyncRequestHandle(self, plan["id"], Mode.GATE),
            [AsyncRequestHandle(self, d["id"], Mode.GATE) for d in steps],
        )

    async def wait_request(self, request_id: str, timeout: float | None) -> Request:
        """`Approvals.wait_request` for asyncio (the HTTP long-poll and the MCP tools use it)."""
        started = time.time_ns()
        req = await waiters.wait_request_async(self.url, self.keys.prefix, request_id, timeout)
        _woke(req, started)
        return req

    async def get(self, request_id: str) -> AsyncRequestHandle:
        req = await self.store.get(request_id)
        return AsyncRequestHandle(self, req.id, req.mode)

    async def decide(
        self,
        request_id: str,
        verb: str,
        by: str,
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        *,
        version: int | None = None,
        groups: Sequence[str] = (),
    ) -> Request:
        v = check_decision(verb, params, comment)
        started = time.time_ns()
        status, trace_ctx = await self.store.transition_traced(
            request_id, v.value, by=by, groups=groups, comment=comment, params=params, version=version
        )
        attrs = {"hitl.request_id": request_id, "hitl.verb": v.value, "hitl.by": by, "hitl.status": status}
        tracing.record(SpanName.TRANSITION, trace_ctx, started, attrs)
        return await self.store.get(request_id)

    async def aclose(self) -> None:
        await self.redis.aclose()

    async def __aenter__(self) -> AsyncApprovals:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
