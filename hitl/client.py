"""The enqueue client: what an agent calls before a risky action.

`Approvals` files requests and hands back a `RequestHandle` whose `wait()` blocks until
the decision lands (no polling; one listener per process wakes every waiter, see
`hitl.waiters`), survives a dropped connection, and returns at once when the request is
already final. `AsyncApprovals` is its asyncio twin, method for method.

Both subclass `hitl.clientbase.BaseApprovals`, which does everything before and after the
I/O (validation, routing, plan assembly, the decorator's bookkeeping): the two classes
here only talk to Redis. The arguments follow the contract, `docs/contract.md`.

Whoever holds Redis credentials is inside the trust boundary. An agent outside it holds an
API key instead: `Approvals(api_url=..., api_key=...)`, or HITL_API_URL and HITL_API_KEY in
its environment, returns the HTTP transport (`hitl.remote`), the same methods over the web
process's API, and never opens a Redis connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar, Unpack

import redis
import redis.asyncio as aioredis

from hitl import autonomy, pool, tracing, waiters
from hitl.clientbase import (
    MAX_PLAN_ITEMS,
    BaseApprovals,
    arguments,
    build_doc,
    build_plan,
    check_callback,
    check_decision,
    seconds,
)
from hitl.errors import WaitTimeout
from hitl.executions import AsyncExecutions, Executions
from hitl.fields import GateFields, PlanFields, RequestFields, check_keywords
from hitl.models import Decision, Request
from hitl.people import Directory
from hitl.policystore import AsyncPolicyStore, PolicyInForce, PolicyStore
from hitl.remote import AsyncHttpApprovals, HttpApprovals
from hitl.remotebase import use_http
from hitl.settings import Settings
from hitl.status import Mode, Status, SystemVerb, Verb
from hitl.store import AsyncStore, Store
from hitl.tracing import SpanName

__all__ = [
    "MAX_PLAN_ITEMS",
    "Approvals",
    "AsyncApprovals",
    "AsyncBatchHandle",
    "AsyncRequestHandle",
    "BatchHandle",
    "RequestHandle",
    "build_doc",
    "build_plan",
    "check_callback",
    "check_decision",
]

F = TypeVar("F", bound=Callable[..., Any])
CF = TypeVar("CF", bound=Callable[..., Awaitable[Any]])


def _connect_kwargs() -> dict[str, Any]:
    # No command of this client blocks (waits go through `hitl.waiters`); keepalive and
    # health checks notice a dead server sooner.
    return {
        "socket_connect_timeout": 5,
        "socket_timeout": 15,
        "socket_keepalive": True,
        "health_check_interval": 30,
    }


class _Traced:
    """The `hitl.request` span of one filing: stamps the caller's trace context on each
    document, and ends with the id filed (or the error)."""

    def __init__(self, fields: Mapping[str, Any]) -> None:
        self.trace = tracing.RequestTrace({"hitl.action": fields.get("action")})
        self.attrs: dict[str, Any] = {}

    def stamp(self, doc: dict[str, Any]) -> dict[str, Any]:
        return self.trace.stamp(doc)

    def filed(self, request_id: str, mode: Mode) -> None:
        self.attrs = {"hitl.request_id": request_id, "hitl.mode": mode.value}


@contextlib.contextmanager
def _traced(fields: Mapping[str, Any]) -> Iterator[_Traced]:
    traced = _Traced(fields)
    try:
        yield traced
    except Exception as exc:
        traced.trace.done(error=exc)
        raise
    traced.trace.done(traced.attrs)


def _woke(req: Request, started_ns: int) -> None:
    """Record the `hitl.wake` span of a wait that ended with `req` final: from the wait's
    start to the decision reaching the waiter, in the request's trace (none if untraced)."""
    if req.trace and tracing.enabled():
        attrs = {"hitl.request_id": req.id, "hitl.action": req.action, "hitl.status": req.status.value}
        tracing.record(SpanName.WAKE, req.trace, started_ns, attrs, stored_first=True)


def _transitioned(
    request_id: str, verb: Verb, by: str, status: Status, trace_ctx: dict[str, str], started_ns: int
) -> None:
    """Record the `hitl.transition` span of a person's decision, in the request's trace."""
    attrs = {
        "hitl.request_id": request_id, "hitl.verb": verb.value, "hitl.by": by, "hitl.status": status.value
    }
    tracing.record(SpanName.TRANSITION, trace_ctx, started_ns, attrs)


def _remaining(end: float | None) -> float | None:
    return None if end is None else max(end - time.monotonic(), 0.001)


# -- sync ------------------------------------------------------------------------------------


class RequestHandle:
    """A filed request, seen from the agent."""

    def __init__(
        self, approvals: Approvals, request_id: str, mode: Mode, *, created: bool | None = None
    ) -> None:
        self._approvals = approvals
        self.id = request_id
        self.mode = mode
        # True when this call filed the request, False when its idempotency key found an
        # earlier one (None: not known). A request decided within milliseconds of being filed
        # is still this call's, not a spent one from before (the MCP gateway relies on it).
        self.created = created

    def __repr__(self) -> str:
        return f"<RequestHandle {self.id} mode={self.mode}>"

    def status(self) -> Status:
        """The current status, read from Redis."""
        return self._approvals.store.status(self.id)

    def fetch(self) -> Request:
        """The whole stored request."""
        return self._approvals.store.get(self.id)

    def decision(self) -> Decision:
        """The decision as it stands now, without waiting (final or not)."""
        return self.fetch().decision()

    def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """Block until the request is final and return the decision.

        Registers with this process's waiter dispatcher (`hitl.waiters`): any number of
        concurrent waits share two Redis connections, each wakes within milliseconds of
        its decision, and a Redis outage is waited out. Raises `WaitTimeout` after
        `timeout` (seconds or a timedelta) unless the request turned final by then.
        """
        return self._approvals.wait_request(self.id, timeout).decision()

    def cancel(self) -> Status:
        """Withdraw a pending request; raises `AlreadyDecided` when it is too late."""
        return self._approvals.cancel(self.id)


class BatchHandle:
    """A filed plan: `plan` is its own request, `items` one request per step."""

    def __init__(self, plan: RequestHandle, items: list[RequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        limit = seconds(timeout)
        end = None if limit is None else time.monotonic() + limit
        return [item.wait(_remaining(end)) for item in self.items]


class Approvals(BaseApprovals):
    """Files approval requests and reads decisions. Thread-safe; share one per process."""

    def __new__(
        cls,
        redis_url: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> Any:
        """An `hitl.remote.HttpApprovals` when given `api_url` (or HITL_API_URL is set and no
        Redis URL or client is given): an agent with an API key and no Redis credentials."""
        if use_http(api_url, settings, redis_url=redis_url, client=client):
            return HttpApprovals(api_url=api_url, api_key=api_key, settings=settings)
        return super().__new__(cls)

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        client: redis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> None:
        """`directory` resolves `requested_by` emails (default: Slack's users.lookupByEmail).
        `api_url` and `api_key` select the HTTP transport instead (see `__new__`)."""
        super().__init__(redis_url, settings, prefix, directory)
        self.redis = client or redis.Redis.from_url(self.url, **_connect_kwargs())
        self.store = Store(
            self.redis, self.keys, self.settings.retention, self.settings.metrics,
            self.settings.default_channel,
        )
        self.executions = Executions(self.redis, self.keys)
        # The published policy (never this process's own HITL_POLICY_FILE).
        self.policy = PolicyStore(self.redis, self.keys)

    def request(
        self, *, action: str, summary: str, via: str | None = None, **fields: Unpack[RequestFields]
    ) -> RequestHandle:
        """File a request for a human decision and return its handle at once.

        Nothing blocks here: call `wait()` on the handle when the agent needs the answer
        (only a `gate` request makes it wait; every other mode acts at once). Every
        argument is checked before anything is written; a bad one raises `InvalidRequest`
        naming it, and nothing is stored. Arguments left `None` are filled by the published
        policy (`hitl policy apply`; this process's own ``HITL_POLICY_FILE`` plays no part),
        then by the defaults in `docs/contract.md`. The policy is enforced again where the
        request is stored, so a client cannot route itself around it.

        Args:
            action: The tool or action about to run, e.g. ``"send_email"`` (letters,
                digits and ``_ . : / -``). Policy rules match on it; stats group by it.
            summary: What will happen, in plain language: the card's headline. At most
                2,000 characters.
            params: The call's arguments as a JSON object (at most 256 KiB encoded). A
                reviewer may edit them; the decision carries the values to use.
            context: Why the agent wants this (markdown, at most 20,000 characters),
                shown under the card's Details.
            agent: The agent's name, shown on the card and counted in stats.
            run_id: The agent run this belongs to, to find every request of one run.
            risk: `Risk` or its string (``"low"`` ... ``"critical"``). With `reversible`,
                it picks the mode when neither `mode` nor a rule for `action` does.
            reversible: Whether the action can be undone; irreversible high-risk actions
                are gated by the default risk matrix.
            confidence: The agent's confidence, 0 to 1. Below the policy's `gate_below`
                (0.8 by default) the request is raised to `gate`; below `urgent_below`
                (0.6) it is also marked urgent.
            mode: `Mode` or its string: ``"auto"``, ``"notify"``, ``"override"``,
                ``"gate"`` or ``"shadow"``. ``None`` lets the policy decide. A policy (or
                the kill switch) may raise the oversight, never lower it.
            channel: Slack channel id or ``"#name"`` for the card; ``None`` means the
                policy's, else ``HITL_DEFAULT_CHANNEL``. A channel besides the policy's is
                mirrored, not substituted.
            approvers: Slack user (``U…``/``W…``) or user-group (``S…``) ids who may
                decide; ``None`` means the policy's (anyone in the channel if none).
            requested_by: The person the agent acts for (a Slack user id, or the email
                they use in Slack): they may not approve their own request.
            quorum: Distinct approvals a gate needs (1 to 10); an edit resets the count.
            timeout: Seconds (or a `timedelta`) a gate or shadow request waits before it
                turns ``expired``; ``None`` means the policy's (at most 30 days).
            window: Seconds (or a `timedelta`) an override stays open for a veto before
                it turns ``finalized``; ``None`` means the policy's.
            idempotency_key: The same key returns the same request, never a second card
                (a retried agent step is safe). The same key with another action, summary
                or params raises `IdempotencyConflict`.
            callback_url: Where the decision is POSTed once final (a signed webhook). It
                must start with a prefix an operator allowed in ``HITL_WEBHOOK_ALLOWED``.
            via: The name of the API key that filed the request, recorded in the audit
                log. Set by the HTTP API; leave it ``None`` from Python.

        Returns:
            A `RequestHandle`: its `mode` says whether the agent must wait.
        """
        args = arguments("request", fields, RequestFields, action=action, summary=summary)
        return self.request_from(args, via=via)

    def request_from(self, fields: Mapping[str, Any], *, via: str | None = None) -> RequestHandle:
        """`request()` with its arguments in a mapping (a JSON body's keys): an unknown or
        missing name is an `InvalidRequest` naming it rather than a `TypeError`."""
        with _traced(fields) as traced:
            doc = self.policy.routed(lambda policy: self.build(fields, via=via, policy=policy))
            created, rid, mode, _status = self.store.create(traced.stamp(doc))
            self.policy.saw(doc["policy_version"])
            traced.filed(rid, mode)
        return RequestHandle(self, rid, mode, created=created)

    def request_batch(
        self,
        summary: str,
        items: Sequence[Mapping[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **fields: Unpack[PlanFields],
    ) -> BatchHandle:
        """File a whole plan for one review: one card, Approve all / Reject all, and a
        decision per item (`BatchHandle.items`, each waited on like any request).

        Args:
            summary: What the plan does as a whole: the card's headline.
            items: One mapping of `request()` arguments per step (action, summary,
                params, ...), at most 1,000. Every step is a gate; a step's own arguments
                win over the plan's. Errors name the step: ``items.2.action``.
            action: The plan's own action name, for policy and stats.
            mode: Ignored: a plan and its steps always wait for review (``gate``).
                Accepted so that `request()` arguments can be passed on unchanged.
            idempotency_key: Covers the plan and every step (step n gets ``"K/n"``): the
                plan and its steps are stored in one atomic call, and a repeat with the
                same items returns the same plan. Steps may not carry their own key.
            via: As in `request()`.

        The other arguments are `request()`'s and apply to the plan and every step. Every
        step waits with the plan's channel and deadline.
        """
        args = arguments("request_batch", fields, PlanFields, summary=summary, items=items, action=action)
        return self.request_batch_from(args, via=via)

    def request_batch_from(self, fields: Mapping[str, Any], *, via: str | None = None) -> BatchHandle:
        """`request_batch()` with its arguments in a mapping (a JSON body's keys)."""
        plan, steps = self.policy.routed(lambda policy: self.build_batch(fields, via=via, policy=policy))
        return self._create_plan(plan, steps)

    def _create_plan(self, plan: dict[str, Any], steps: list[dict[str, Any]]) -> BatchHandle:
        with _traced(plan) as traced:
            for doc in (plan, *steps):
                traced.stamp(doc)
            plan_id, mode, ids = self.plan_ids(plan, steps, self.store.create_plan(plan, steps))
            self.policy.saw(plan["policy_version"])
            traced.filed(plan_id, mode)
        handles = [RequestHandle(self, i, Mode.GATE) for i in ids]
        return BatchHandle(RequestHandle(self, plan_id, mode), handles)

    def get(self, request_id: str) -> RequestHandle:
        """A handle for an existing request; raises `RequestNotFound`."""
        req = self.store.get(request_id)
        return RequestHandle(self, req.id, req.mode)

    def fetch(self, request_id: str) -> Request:
        """The whole stored request; raises `RequestNotFound`."""
        return self.store.get(request_id)

    def wait_request(self, request_id: str, timeout: float | timedelta | None = None) -> Request:
        """The request once final, through this process's waiter dispatcher (`hitl.waiters`,
        no connection of this client). `WaitTimeout` after `timeout` unless it turned final
        by then (a last read settles a decision that raced the deadline); `RequestNotFound`."""
        started = time.time_ns()
        try:
            req = waiters.wait_request(self.url, self.keys.prefix, request_id, seconds(timeout))
        except WaitTimeout as exc:
            try:
                req = self.store.get(request_id)
            except (redis.ConnectionError, redis.TimeoutError):
                raise exc from None
            if not req.final:
                raise
        _woke(req, started)
        return req

    def decide(
        self,
        request_id: str,
        verb: Verb | str,
        by: str,
        comment: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        groups: Sequence[str] = (),
        critical: bool = False,
    ) -> Request:
        """Record a person's decision and return the request as it now stands.

        `verb` is a `Verb` (or its string). `groups` are the user groups `by` belongs to
        (the bot resolves them); `version` refuses the decision if the request changed
        since the reviewer saw it; `critical` marks a rejection as critical. Raises
        `InvalidRequest` naming the bad argument, `AlreadyDecided`, `NotAllowed` or
        `StaleVersion`; nothing changes then.

        A veto of an override, a critical rejection, or the policy's `autonomy.demote_after`-th
        rejection moves the action one step back down the autonomy ladder here, at once,
        whichever surface the decision came from (`hitl.autonomy.after_request_decided`).
        """
        v, edited = self.decision_args(verb, params, comment)
        started = time.time_ns()
        status, trace_ctx = self.store.transition_traced(
            request_id, v, by=by, groups=groups, comment=comment, params=edited, version=version
        )
        _transitioned(request_id, v, by, status, trace_ctx, started)
        req = self.store.get(request_id)
        autonomy.after_request_decided(self.policy, req, v, by=by, critical=critical)
        return req

    def cancel(self, request_id: str, *, by: str | None = None) -> Status:
        """Withdraw a pending request (`by` names who, for the audit log); raises
        `AlreadyDecided` when it is already final, `RequestNotFound` for an unknown id."""
        return self.store.transition(request_id, SystemVerb.CANCEL, by=by)

    def start_execution(self, request_id: str) -> bool:
        """Record that the approved tool call of a request is starting; call it just before
        running the tool, and run the tool only when it answers True.

        A request's tool call runs at most once: the first start wins, atomically, and every
        later one answers False. A later start that finds the first never finished marks
        the request's execution `unknown` (audited, and said on its Slack card): the tool
        may or may not have run, so the caller must not run it again and should tell the
        model "outcome unknown: check before retrying".

        Args:
            request_id: The request whose decision allows the call (approved, an open or
                finalized override, a shadow request, or an auto/notify one).

        Returns:
            True when this caller may run the tool now; False when a call already started.

        Raises:
            ExecutionRefused: The request does not allow the tool to run (pending gate,
                rejected, expired, cancelled, vetoed).
            RequestNotFound: No such request.
        """
        return self.executions.start(request_id)

    def finish_execution(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        """Record that a started tool call ended, so a re-run knows it ran.

        Args:
            request_id: The request whose call `start_execution` started.
            ok: False when the tool raised (it may have done part of its work).
            result: What the tool answered (JSON-able), for the audit log's
                `execution_finished` event: masked like a card's parameters and cut near
                4 KiB, so neither a secret it printed nor a long listing is kept.

        Raises:
            ExecutionRefused: No execution of this request was started.
            RequestNotFound: No such request.
        """
        self.executions.finish(request_id, ok=ok, result=result)

    def require_approval(
        self, action: str | None = None, summary: str | None = None, **fields: Unpack[GateFields]
    ) -> Callable[[F], F]:
        """Gate a function behind a decision; raises `hitl.Rejected` with the reason.

        The call's arguments become the request's `params` (edited values are passed to the
        function when a reviewer changed them). `action` defaults to the function's name;
        `summary` may use `{name}` placeholders for the arguments. Only a gate waits: in
        any other mode the function runs at once. Works on coroutine functions too (they
        wait on an asyncio client); the other arguments are `request()`'s.
        """
        check_keywords("require_approval", fields, GateFields)

        def wrap(func: F) -> F:
            gate = self.gate(func, action, summary, fields)
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    # Waits on an asyncio client of its own, closed when the call ends.
                    async with self.asyncio() as aio:
                        return await gate.acall(aio.request_from, args, kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return gate.call(self.request_from, args, kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap

    def asyncio(self) -> AsyncApprovals:
        """An asyncio client on the same Redis, prefix, policy and directory."""
        return AsyncApprovals(
            self.url, settings=self.settings, prefix=self.keys.prefix, directory=self.directory
        )

    def close(self) -> None:
        self.redis.close()

    def __enter__(self) -> Approvals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- asyncio ---------------------------------------------------------------------------------


class AsyncRequestHandle:
    """`RequestHandle` for asyncio code."""

    def __init__(
        self, approvals: AsyncApprovals, request_id: str, mode: Mode, *, created: bool | None = None
    ) -> None:
        self._approvals = approvals
        self.id = request_id
        self.mode = mode
        self.created = created  # as `RequestHandle.created`

    def __repr__(self) -> str:
        return f"<AsyncRequestHandle {self.id} mode={self.mode}>"

    async def status(self) -> Status:
        """The current status, read from Redis."""
        return await self._approvals.store.status(self.id)

    async def fetch(self) -> Request:
        """The whole stored request."""
        return await self._approvals.store.get(self.id)

    async def decision(self) -> Decision:
        """The decision as it stands now, without waiting (final or not)."""
        return (await self.fetch()).decision()

    async def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """`RequestHandle.wait` for asyncio: the same dispatcher, no connection per wait."""
        return (await self._approvals.wait_request(self.id, timeout)).decision()

    async def cancel(self) -> Status:
        """Withdraw a pending request; raises `AlreadyDecided` when it is too late."""
        return await self._approvals.cancel(self.id)


class AsyncBatchHandle:
    """`BatchHandle` for asyncio code."""

    def __init__(self, plan: AsyncRequestHandle, items: list[AsyncRequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    async def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        limit = seconds(timeout)
        end = None if limit is None else time.monotonic() + limit
        return [await item.wait(_remaining(end)) for item in self.items]


class AsyncApprovals(BaseApprovals):
    """The asyncio twin of `Approvals`: the same methods, arguments and checks, awaited."""

    def __new__(
        cls,
        redis_url: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        client: aioredis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> Any:
        """An `hitl.remote.AsyncHttpApprovals` when given `api_url` (or HITL_API_URL is set and no
        Redis URL or client is given): an agent with an API key and no Redis credentials."""
        if use_http(api_url, settings, redis_url=redis_url, client=client):
            return AsyncHttpApprovals(api_url=api_url, api_key=api_key, settings=settings)
        return super().__new__(cls)

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        client: aioredis.Redis | None = None,
        prefix: str | None = None,
        directory: Directory | None = None,
    ) -> None:
        """`directory` resolves `requested_by` emails (default: Slack's users.lookupByEmail).
        `api_url` and `api_key` select the HTTP transport instead (see `__new__`)."""
        super().__init__(redis_url, settings, prefix, directory)
        self.redis = client or pool.async_client(
            self.url, size=self.settings.redis_pool_size, wait=self.settings.redis_pool_wait,
            **_connect_kwargs(),
        )
        self.store = AsyncStore(
            self.redis, self.keys, self.settings.retention, self.settings.metrics,
            self.settings.default_channel,
        )
        self.executions = AsyncExecutions(self.redis, self.keys)
        # The published policy (never this process's own HITL_POLICY_FILE).
        self.policy = AsyncPolicyStore(self.redis, self.keys)
        # Demotions run on a synchronous connection, in a thread (`_demote_after`).
        self._sync_policy: PolicyStore | None = None

    async def request(
        self, *, action: str, summary: str, via: str | None = None, **fields: Unpack[RequestFields]
    ) -> AsyncRequestHandle:
        # Docstring: Approvals.request's, assigned below the class (the same arguments).
        args = arguments("request", fields, RequestFields, action=action, summary=summary)
        return await self.request_from(args, via=via)

    async def request_from(self, fields: Mapping[str, Any], *, via: str | None = None) -> AsyncRequestHandle:
        """`request()` with its arguments in a mapping (a JSON body's keys): an unknown or
        missing name is an `InvalidRequest` naming it rather than a `TypeError`."""
        async def build(policy: PolicyInForce) -> dict[str, Any]:
            built = functools.partial(self.build, fields, via=via, policy=policy)
            # An email in requested_by means a Slack lookup: keep that blocking call off the loop.
            return await asyncio.to_thread(built) if self.needs_lookup(fields) else built()

        with _traced(fields) as traced:
            doc = await self.policy.routed(build)
            created, rid, mode, _status = await self.store.create(traced.stamp(doc))
            self.policy.saw(doc["policy_version"])
            traced.filed(rid, mode)
        return AsyncRequestHandle(self, rid, mode, created=created)

    async def request_batch(
        self,
        summary: str,
        items: Sequence[Mapping[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **fields: Unpack[PlanFields],
    ) -> AsyncBatchHandle:
        # Docstring: Approvals.request_batch's, assigned below the class.
        args = arguments("request_batch", fields, PlanFields, summary=summary, items=items, action=action)
        return await self.request_batch_from(args, via=via)

    async def request_batch_from(
        self, fields: Mapping[str, Any], *, via: str | None = None
    ) -> AsyncBatchHandle:
        """`request_batch()` with its arguments in a mapping (a JSON body's keys)."""
        async def build(policy: PolicyInForce) -> tuple[dict, list[dict]]:
            built = functools.partial(self.build_batch, fields, via=via, policy=policy)
            return await asyncio.to_thread(built) if self.needs_lookup(fields) else built()

        with _traced(fields) as traced:
            plan, steps = await self.policy.routed(build)
            for doc in (plan, *steps):
                traced.stamp(doc)
            plan_id, mode, ids = self.plan_ids(plan, steps, await self.store.create_plan(plan, steps))
            self.policy.saw(plan["policy_version"])
            traced.filed(plan_id, mode)
        return AsyncBatchHandle(
            AsyncRequestHandle(self, plan_id, mode), [AsyncRequestHandle(self, i, Mode.GATE) for i in ids]
        )

    async def get(self, request_id: str) -> AsyncRequestHandle:
        """A handle for an existing request; raises `RequestNotFound`."""
        req = await self.store.get(request_id)
        return AsyncRequestHandle(self, req.id, req.mode)

    async def fetch(self, request_id: str) -> Request:
        """The whole stored request; raises `RequestNotFound`."""
        return await self.store.get(request_id)

    async def wait_request(self, request_id: str, timeout: float | timedelta | None = None) -> Request:
        """`Approvals.wait_request` for asyncio (the HTTP long-poll and the MCP tools use it)."""
        started = time.time_ns()
        try:
            req = await waiters.wait_request_async(self.url, self.keys.prefix, request_id, seconds(timeout))
        except WaitTimeout as exc:
            try:
                req = await self.store.get(request_id)
            except (redis.ConnectionError, redis.TimeoutError):
                raise exc from None
            if not req.final:
                raise
        _woke(req, started)
        return req

    async def decide(
        self,
        request_id: str,
        verb: Verb | str,
        by: str,
        comment: str | None = None,
        params: Mapping[str, Any] | None = None,
        *,
        version: int | None = None,
        groups: Sequence[str] = (),
        critical: bool = False,
    ) -> Request:
        """`Approvals.decide` for asyncio: the same checks, then one transition, then the same
        demotion (run in a thread on a synchronous connection: it is rare, and
        `hitl.autonomy` is one implementation for both clients)."""
        v, edited = self.decision_args(verb, params, comment)
        started = time.time_ns()
        status, trace_ctx = await self.store.transition_traced(
            request_id, v, by=by, groups=groups, comment=comment, params=edited, version=version
        )
        _transitioned(request_id, v, by, status, trace_ctx, started)
        req = await self.store.get(request_id)
        if autonomy.may_demote(req, v):
            await asyncio.to_thread(self._demote_after, req, v, by, critical)
        return req

    def _demote_after(self, req: Request, verb: Verb, by: str, critical: bool) -> None:
        if self._sync_policy is None:  # one connection for this client's demotions, made on the first
            self._sync_policy = PolicyStore(redis.Redis.from_url(self.url, **_connect_kwargs()), self.keys)
        autonomy.after_request_decided(self._sync_policy, req, verb, by=by, critical=critical)

    async def cancel(self, request_id: str, *, by: str | None = None) -> Status:
        """`Approvals.cancel` for asyncio."""
        return await self.store.transition(request_id, SystemVerb.CANCEL, by=by)

    async def start_execution(self, request_id: str) -> bool:
        """`Approvals.start_execution` for asyncio: True when this caller may run the tool.

        Args:
            request_id: The request whose decision allows the call.
        """
        return await self.executions.start(request_id)

    async def finish_execution(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        """`Approvals.finish_execution` for asyncio.

        Args:
            request_id: The request whose call `start_execution` started.
            ok: False when the tool raised.
            result: What the tool answered, kept masked and capped in the audit event.
        """
        await self.executions.finish(request_id, ok=ok, result=result)

    def require_approval(
        self, action: str | None = None, summary: str | None = None, **fields: Unpack[GateFields]
    ) -> Callable[[CF], CF]:
        """Gate a coroutine function behind a decision; raises `hitl.Rejected` with the reason.

        `Approvals.require_approval` for asyncio code, on this client's connection: the
        same arguments and behaviour. A plain function is refused with a `TypeError` (it
        would block the event loop while a reviewer decides; gate it with `Approvals`).
        """
        check_keywords("require_approval", fields, GateFields)

        def wrap(func: CF) -> CF:
            if not inspect.iscoroutinefunction(func):
                raise TypeError(
                    f"AsyncApprovals.require_approval gates coroutine functions; {func.__name__} is not "
                    "one (use Approvals.require_approval for plain functions)"
                )
            gate = self.gate(func, action, summary, fields)

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await gate.acall(self.request_from, args, kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap

    async def aclose(self) -> None:
        await self.redis.aclose()
        if self._sync_policy is not None:
            self._sync_policy.redis.close()

    async def __aenter__(self) -> AsyncApprovals:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


for _twin in (AsyncApprovals, HttpApprovals, AsyncHttpApprovals):
    _twin.request.__doc__ = Approvals.request.__doc__
    _twin.request_batch.__doc__ = Approvals.request_batch.__doc__
