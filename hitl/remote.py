"""The HTTP transport: `Approvals` for an agent that holds an API key and no Redis credentials.

`Approvals(api_url=..., api_key=...)` (or `HITL_API_URL` and `HITL_API_KEY` in the
environment) returns an `HttpApprovals`; `AsyncApprovals(...)` an `AsyncHttpApprovals`. They
have the Redis clients' methods, arguments and exceptions, and talk only to the web
process's `/v1` API: the server routes with the team's policy and records which key filed
what, so nothing the agent runs can change either. `decide()` is refused: reviewers decide
in Slack. What the two classes share (calls, answers, retries, long-polls) is in
`hitl.remotebase`; here is only the I/O.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import timedelta
from typing import Any, NoReturn, TypeVar, Unpack

import httpx

from hitl.clientbase import BaseApprovals, arguments, seconds
from hitl.errors import WaitTimeout
from hitl.fields import GateFields, PlanFields, RequestFields, check_keywords
from hitl.models import Decision, Request
from hitl.remotebase import (
    BaseHttpApprovals,
    Call,
    Conflict,
    Exchange,
    Execution,
    Poll,
    Retries,
    already_decided,
    answer,
    execution_refused,
    execution_started,
    request_of,
    unreachable,
)
from hitl.settings import Settings
from hitl.status import Mode, Status, Verb

F = TypeVar("F", bound=Callable[..., Any])
CF = TypeVar("CF", bound=Callable[..., Awaitable[Any]])

__all__ = ["AsyncHttpApprovals", "AsyncHttpBatchHandle", "AsyncHttpRequestHandle", "HttpApprovals",
           "HttpBatchHandle", "HttpRequestHandle"]


# -- sync ------------------------------------------------------------------------------------


class HttpRequestHandle:
    """A filed request, seen from the agent over HTTP (`RequestHandle`'s methods)."""

    def __init__(
        self, approvals: HttpApprovals, request_id: str, mode: Mode, *, created: bool | None = None
    ) -> None:
        self._approvals = approvals
        self.id = request_id
        self.mode = mode
        # `RequestHandle.created`: the server's 201 (filed now) or 200 (the idempotency key's
        # earlier request); None when the POST was sent more than once, so either may be true.
        self.created = created

    def __repr__(self) -> str:
        return f"<HttpRequestHandle {self.id} mode={self.mode}>"

    def status(self) -> Status:
        """The current status, read from the API."""
        return self.fetch().status

    def fetch(self) -> Request:
        """The request as the API shows it (the request view's fields)."""
        return self._approvals.fetch(self.id)

    def decision(self) -> Decision:
        """The decision as it stands now, without waiting (final or not)."""
        return self.fetch().decision()

    def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """Block until the request is final (long-polls); `WaitTimeout` after `timeout`."""
        return self._approvals.wait_request(self.id, timeout).decision()

    def cancel(self) -> Status:
        """Withdraw a pending request; raises `AlreadyDecided` when it is too late."""
        return self._approvals.cancel(self.id)


class HttpBatchHandle:
    """A filed plan: `plan` is its own request, `items` one request per step."""

    def __init__(self, plan: HttpRequestHandle, items: list[HttpRequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        limit = seconds(timeout)
        end = None if limit is None else time.monotonic() + limit
        return [item.wait(BaseHttpApprovals.remaining(end)) for item in self.items]


class HttpApprovals(BaseHttpApprovals):
    """`Approvals` over the web process's API. Thread-safe; share one per process."""

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`api_url` and `api_key` default to HITL_API_URL and HITL_API_KEY; `transport` is
        httpx's (tests, proxies)."""
        super().__init__(api_url, api_key, settings)
        self.http = httpx.Client(transport=transport, **self.client_kwargs())

    def _send(self, call: Call) -> dict[str, Any]:
        return self._exchange(call)[0]

    def _exchange(self, call: Call) -> tuple[dict[str, Any], Exchange]:
        """The answer's body, and its status and whether the call was sent more than once."""
        retries = Retries(call)
        sent = 0
        while True:
            sent += 1
            try:
                resp = self.http.send(call.build(self.http))
            except httpx.TransportError as exc:
                delay = retries.after_error(exc)
                if delay is None:
                    raise unreachable(self.base_url, call, exc) from None
            else:
                delay = retries.after_response(resp)
                if delay is None:
                    return answer(call, resp, self.base_url), Exchange(resp.status_code, sent > 1)
            time.sleep(delay)

    def _decided(self, conflict: Conflict) -> NoReturn:
        raise already_decided(self._send(self.read_call(conflict.call.request_id or ""))) from None

    def request(
        self, *, action: str, summary: str, via: str | None = None, **fields: Unpack[RequestFields]
    ) -> HttpRequestHandle:
        # Docstring: Approvals.request's (hitl.client assigns it); `via` is the server's.
        args = arguments("request", fields, RequestFields, action=action, summary=summary)
        return self.request_from(args, via=via)

    def request_from(self, fields: Mapping[str, Any], *, via: str | None = None) -> HttpRequestHandle:
        """`request()` with its arguments in a mapping: `POST /v1/requests`."""
        body, exchange = self._exchange(self.create_call(fields, via))
        rid, mode = self.filed(body)
        return HttpRequestHandle(self, rid, mode, created=exchange.created())

    def request_batch(
        self,
        summary: str,
        items: Sequence[Mapping[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **fields: Unpack[PlanFields],
    ) -> HttpBatchHandle:
        # Docstring: Approvals.request_batch's.
        args = arguments("request_batch", fields, PlanFields, summary=summary, items=items, action=action)
        return self.request_batch_from(args, via=via)

    def request_batch_from(self, fields: Mapping[str, Any], *, via: str | None = None) -> HttpBatchHandle:
        """`request_batch()` with its arguments in a mapping: `POST /v1/batches`."""
        plan_id, mode, ids = self.plan_filed(self._send(self.batch_call(fields, via)))
        items = [HttpRequestHandle(self, i, Mode.GATE) for i in ids]
        return HttpBatchHandle(HttpRequestHandle(self, plan_id, mode), items)

    def get(self, request_id: str) -> HttpRequestHandle:
        """A handle for an existing request; raises `RequestNotFound`."""
        req = self.fetch(request_id)
        return HttpRequestHandle(self, req.id, req.mode)

    def fetch(self, request_id: str) -> Request:
        """The request as the API shows it; raises `RequestNotFound`."""
        return request_of(self._send(self.read_call(request_id)))

    def wait_request(self, request_id: str, timeout: float | timedelta | None = None) -> Request:
        """The request once final: long-polls of `GET /v1/requests/{id}?wait=S` until then.
        `WaitTimeout` after `timeout` unless it turned final by then; `RequestNotFound`."""
        limit = seconds(timeout)
        poll = Poll(request_id, limit)
        while True:
            req = request_of(self._send(poll.call()))
            if req.final:
                return req
            if poll.over():
                raise WaitTimeout(request_id, limit or 0.0)

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
    ) -> NoReturn:
        """Refused: agents do not decide (`ReviewerOnly`); reviewers do, in Slack."""
        raise self.refuse_decide()

    def cancel(self, request_id: str, *, by: str | None = None) -> Status:
        """Withdraw a pending request; `AlreadyDecided` when it is final, `RequestNotFound`.
        The audit names the key that cancelled (`by` is the server's to set)."""
        try:
            return request_of(self._send(self.cancel_call(request_id, by))).status
        except Conflict as conflict:
            self._decided(conflict)

    def start_execution(self, request_id: str) -> bool:
        """Record that the approved tool call starts; run the tool only when this is True.

        False: a call already started (do not run it again; its outcome is unknown).
        `TransitionRefused` when the request does not allow the tool to run.
        """
        try:
            return self.started(self._send(self.execution_call(request_id, Execution.STARTED)))
        except Conflict as conflict:
            if execution_started(conflict):
                return False
            raise execution_refused(conflict) from None

    def finish_execution(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        """Record that the started tool call ended (`ok`: it did not raise; `result`: what it
        answered, for the audit log, masked and capped)."""
        try:
            self._send(self.execution_call(request_id, Execution.FINISHED, ok, result))
        except Conflict as conflict:
            raise execution_refused(conflict) from None

    def require_approval(
        self, action: str | None = None, summary: str | None = None, **fields: Unpack[GateFields]
    ) -> Callable[[F], F]:
        """`Approvals.require_approval` over HTTP: the same arguments and behaviour."""
        check_keywords("require_approval", fields, GateFields)

        def wrap(func: F) -> F:
            gate = BaseApprovals.gate(func, action, summary, fields)
            if inspect.iscoroutinefunction(func):

                @functools.wraps(func)
                async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                    async with self.asyncio() as aio:
                        return await gate.acall(aio.request_from, args, kwargs)

                return async_wrapper  # type: ignore[return-value]

            @functools.wraps(func)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                return gate.call(self.request_from, args, kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap

    def asyncio(self) -> AsyncHttpApprovals:
        """An asyncio client on the same API, key and settings."""
        return AsyncHttpApprovals(
            api_url=self.base_url, api_key=self.api_key, settings=self.settings
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> HttpApprovals:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# -- asyncio ---------------------------------------------------------------------------------


class AsyncHttpRequestHandle:
    """`HttpRequestHandle` for asyncio code."""

    def __init__(
        self, approvals: AsyncHttpApprovals, request_id: str, mode: Mode, *, created: bool | None = None
    ) -> None:
        self._approvals = approvals
        self.id = request_id
        self.mode = mode
        # `RequestHandle.created`: the server's 201 (filed now) or 200 (the idempotency key's
        # earlier request); None when the POST was sent more than once, so either may be true.
        self.created = created

    def __repr__(self) -> str:
        return f"<AsyncHttpRequestHandle {self.id} mode={self.mode}>"

    async def status(self) -> Status:
        """The current status, read from the API."""
        return (await self.fetch()).status

    async def fetch(self) -> Request:
        """The request as the API shows it."""
        return await self._approvals.fetch(self.id)

    async def decision(self) -> Decision:
        """The decision as it stands now, without waiting (final or not)."""
        return (await self.fetch()).decision()

    async def wait(self, timeout: float | timedelta | None = None) -> Decision:
        """`HttpRequestHandle.wait` for asyncio."""
        return (await self._approvals.wait_request(self.id, timeout)).decision()

    async def cancel(self) -> Status:
        """Withdraw a pending request; raises `AlreadyDecided` when it is too late."""
        return await self._approvals.cancel(self.id)


class AsyncHttpBatchHandle:
    """`HttpBatchHandle` for asyncio code."""

    def __init__(self, plan: AsyncHttpRequestHandle, items: list[AsyncHttpRequestHandle]) -> None:
        self.plan = plan
        self.items = items
        self.id = plan.id

    async def wait(self, timeout: float | timedelta | None = None) -> list[Decision]:
        """Every item's decision, in order, once each is final."""
        limit = seconds(timeout)
        end = None if limit is None else time.monotonic() + limit
        return [await item.wait(BaseHttpApprovals.remaining(end)) for item in self.items]


class AsyncHttpApprovals(BaseHttpApprovals):
    """The asyncio twin of `HttpApprovals`: the same methods, arguments and checks, awaited."""

    def __init__(
        self,
        *,
        api_url: str | None = None,
        api_key: str | None = None,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(api_url, api_key, settings)
        self.http = httpx.AsyncClient(transport=transport, **self.client_kwargs())

    async def _send(self, call: Call) -> dict[str, Any]:
        return (await self._exchange(call))[0]

    async def _exchange(self, call: Call) -> tuple[dict[str, Any], Exchange]:
        """`HttpApprovals._exchange` for asyncio."""
        retries = Retries(call)
        sent = 0
        while True:
            sent += 1
            try:
                resp = await self.http.send(call.build(self.http))
            except httpx.TransportError as exc:
                delay = retries.after_error(exc)
                if delay is None:
                    raise unreachable(self.base_url, call, exc) from None
            else:
                delay = retries.after_response(resp)
                if delay is None:
                    return answer(call, resp, self.base_url), Exchange(resp.status_code, sent > 1)
            await asyncio.sleep(delay)

    async def _decided(self, conflict: Conflict) -> NoReturn:
        raise already_decided(await self._send(self.read_call(conflict.call.request_id or ""))) from None

    async def request(
        self, *, action: str, summary: str, via: str | None = None, **fields: Unpack[RequestFields]
    ) -> AsyncHttpRequestHandle:
        # Docstring: Approvals.request's.
        args = arguments("request", fields, RequestFields, action=action, summary=summary)
        return await self.request_from(args, via=via)

    async def request_from(
        self, fields: Mapping[str, Any], *, via: str | None = None
    ) -> AsyncHttpRequestHandle:
        """`request()` with its arguments in a mapping: `POST /v1/requests`."""
        body, exchange = await self._exchange(self.create_call(fields, via))
        rid, mode = self.filed(body)
        return AsyncHttpRequestHandle(self, rid, mode, created=exchange.created())

    async def request_batch(
        self,
        summary: str,
        items: Sequence[Mapping[str, Any]],
        action: str = "plan",
        *,
        via: str | None = None,
        **fields: Unpack[PlanFields],
    ) -> AsyncHttpBatchHandle:
        # Docstring: Approvals.request_batch's.
        args = arguments("request_batch", fields, PlanFields, summary=summary, items=items, action=action)
        return await self.request_batch_from(args, via=via)

    async def request_batch_from(
        self, fields: Mapping[str, Any], *, via: str | None = None
    ) -> AsyncHttpBatchHandle:
        """`request_batch()` with its arguments in a mapping: `POST /v1/batches`."""
        plan_id, mode, ids = self.plan_filed(await self._send(self.batch_call(fields, via)))
        items = [AsyncHttpRequestHandle(self, i, Mode.GATE) for i in ids]
        return AsyncHttpBatchHandle(AsyncHttpRequestHandle(self, plan_id, mode), items)

    async def get(self, request_id: str) -> AsyncHttpRequestHandle:
        """A handle for an existing request; raises `RequestNotFound`."""
        req = await self.fetch(request_id)
        return AsyncHttpRequestHandle(self, req.id, req.mode)

    async def fetch(self, request_id: str) -> Request:
        """The request as the API shows it; raises `RequestNotFound`."""
        return request_of(await self._send(self.read_call(request_id)))

    async def wait_request(self, request_id: str, timeout: float | timedelta | None = None) -> Request:
        """`HttpApprovals.wait_request` for asyncio."""
        limit = seconds(timeout)
        poll = Poll(request_id, limit)
        while True:
            req = request_of(await self._send(poll.call()))
            if req.final:
                return req
            if poll.over():
                raise WaitTimeout(request_id, limit or 0.0)

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
    ) -> NoReturn:
        """Refused: agents do not decide (`ReviewerOnly`); reviewers do, in Slack."""
        raise self.refuse_decide()

    async def cancel(self, request_id: str, *, by: str | None = None) -> Status:
        """`HttpApprovals.cancel` for asyncio."""
        try:
            return request_of(await self._send(self.cancel_call(request_id, by))).status
        except Conflict as conflict:
            await self._decided(conflict)

    async def start_execution(self, request_id: str) -> bool:
        """`HttpApprovals.start_execution` for asyncio."""
        try:
            return self.started(await self._send(self.execution_call(request_id, Execution.STARTED)))
        except Conflict as conflict:
            if execution_started(conflict):
                return False
            raise execution_refused(conflict) from None

    async def finish_execution(self, request_id: str, *, ok: bool = True, result: Any = None) -> None:
        """`HttpApprovals.finish_execution` for asyncio."""
        try:
            await self._send(self.execution_call(request_id, Execution.FINISHED, ok, result))
        except Conflict as conflict:
            raise execution_refused(conflict) from None

    def require_approval(
        self, action: str | None = None, summary: str | None = None, **fields: Unpack[GateFields]
    ) -> Callable[[CF], CF]:
        """`AsyncApprovals.require_approval` over HTTP: coroutine functions only."""
        check_keywords("require_approval", fields, GateFields)

        def wrap(func: CF) -> CF:
            if not inspect.iscoroutinefunction(func):
                raise TypeError(
                    f"AsyncApprovals.require_approval gates coroutine functions; {func.__name__} is not "
                    "one (use Approvals.require_approval for plain functions)"
                )
            gate = BaseApprovals.gate(func, action, summary, fields)

            @functools.wraps(func)
            async def wrapper(*args: Any, **kwargs: Any) -> Any:
                return await gate.acall(self.request_from, args, kwargs)

            return wrapper  # type: ignore[return-value]

        return wrap

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncHttpApprovals:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
