"""The sync and asyncio clients are twins: the same methods with the same arguments, the
same decorator, the same verbs and the same cancel, against a real Redis."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hitl import (
    AlreadyDecided,
    Approvals,
    AsyncApprovals,
    AsyncBatchHandle,
    AsyncRequestHandle,
    BatchHandle,
    InvalidRequest,
    Rejected,
    RequestHandle,
    Status,
    Verb,
    waiters,
)
from hitl.settings import Settings
from hitl.status import EventType
from tests.helpers import events

# Lifecycle methods that differ by design: closing, and hopping from sync to asyncio.
_OWN = {Approvals: {"close", "asyncio"}, AsyncApprovals: {"aclose"}}

TWINS = [
    (Approvals, AsyncApprovals),
    (RequestHandle, AsyncRequestHandle),
    (BatchHandle, AsyncBatchHandle),
]


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


def _public(cls: type) -> dict[str, Callable[..., Any]]:
    own = _OWN.get(cls, set())
    return {
        name: member for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_") and name not in own
    }


def _params(func: Callable[..., Any]) -> list[tuple[str, Any, Any, Any]]:
    sig = inspect.signature(func)
    return [(p.name, p.kind, p.default, p.annotation) for p in sig.parameters.values()]


@pytest.mark.parametrize(("sync", "aio"), TWINS, ids=lambda c: c.__name__)
def test_sync_and_async_offer_the_same_methods_with_the_same_arguments(sync: type, aio: type) -> None:
    ours, theirs = _public(sync), _public(aio)
    assert sorted(ours) == sorted(theirs)
    for name in ours:
        assert _params(ours[name]) == _params(theirs[name]), name


def test_both_clients_offer_the_whole_surface() -> None:
    surface = {"request", "request_batch", "get", "decide", "cancel", "require_approval", "wait_request"}
    assert surface <= _public(Approvals).keys()
    assert {"status", "fetch", "decision", "wait", "cancel"} <= _public(RequestHandle).keys()
    # The asyncio twin's own methods (its I/O) are awaited, but for the decorator factory;
    # what both inherit from the base does no I/O.
    for name, func in _public(AsyncApprovals).items():
        if name in vars(AsyncApprovals):
            assert inspect.iscoroutinefunction(func) is (name != "require_approval"), name


def test_request_is_keyword_only_and_fully_typed() -> None:
    for cls in (Approvals, AsyncApprovals):
        params = list(inspect.signature(cls.request).parameters.values())[1:]
        assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)
        assert all(p.annotation is not inspect.Parameter.empty for p in params)
        names = {p.name for p in params}
        assert {"action", "summary", "params", "timeout", "window", "idempotency_key", "callback_url"} <= names
        assert "Args:" in (cls.request.__doc__ or "")


# -- the asyncio decorator ---------------------------------------------------------------


async def _one_waiting(aio: AsyncApprovals, timeout: float = 10.0) -> str:
    """The id of the request a gated call is waiting on, once its wait is registered."""
    end = time.monotonic() + timeout
    while not (ids := list(aio.dispatcher().registered())):
        if time.monotonic() > end:
            raise AssertionError(f"no wait registered after {timeout}s")
        await asyncio.sleep(0.01)
    return ids[0]


def test_async_require_approval_runs_the_coroutine_with_edited_params(settings: Settings) -> None:
    async def scenario() -> tuple[str, list[int], str]:
        async with AsyncApprovals(settings=settings) as aio:
            calls: list[int] = []

            @aio.require_approval(action="send_email", summary="Email {count} customers", timeout=30)
            async def send(count: int) -> str:
                calls.append(count)
                return "sent"

            running = asyncio.create_task(send(200))
            rid = await _one_waiting(aio)
            summary = (await (await aio.get(rid)).fetch()).summary
            await aio.decide(rid, Verb.APPROVE, by="U01", params={"count": 20})
            return await asyncio.wait_for(running, 10), calls, summary

    assert asyncio.run(scenario()) == ("sent", [20], "Email 200 customers")


def test_async_require_approval_raises_rejected_with_the_reason(settings: Settings) -> None:
    async def scenario() -> Rejected:
        async with AsyncApprovals(settings=settings) as aio:

            @aio.require_approval(action="delete_record")
            async def delete(record: int) -> None:
                raise AssertionError("must not run")

            running = asyncio.create_task(delete(42))
            rid = await _one_waiting(aio)
            await aio.decide(rid, "reject", by="U01", comment="wrong id")
            with pytest.raises(Rejected) as info:
                await asyncio.wait_for(running, 10)
            return info.value

    rejected = asyncio.run(scenario())
    assert rejected.reason == "wrong id"
    assert "rejected by U01: wrong id" in str(rejected)


def test_async_require_approval_refuses_a_plain_function(settings: Settings) -> None:
    async def scenario() -> None:
        async with AsyncApprovals(settings=settings) as aio:
            with pytest.raises(TypeError, match="coroutine functions; send is not"):

                @aio.require_approval()
                def send() -> None: ...

    asyncio.run(scenario())


def test_async_require_approval_acts_at_once_outside_gate(settings: Settings) -> None:
    async def scenario() -> list[str]:
        async with AsyncApprovals(settings=settings) as aio:
            ran: list[str] = []

            @aio.require_approval(action="log_line", mode="auto")
            async def log_line(text: str) -> None:
                ran.append(text)

            await asyncio.wait_for(log_line("hello"), 10)
            return ran

    assert asyncio.run(scenario()) == ["hello"]


# -- verbs ---------------------------------------------------------------------------------


def test_decide_with_a_bad_verb_names_verb_on_both_clients(approvals: Approvals, settings: Settings) -> None:
    req = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest) as info:
        approvals.decide(req.id, "approved", by="U01")
    assert info.value.field == "verb"
    assert "'approved' is not one of approve, reject, veto, confirm" in str(info.value)

    async def scenario() -> InvalidRequest:
        async with AsyncApprovals(settings=settings) as aio:
            with pytest.raises(InvalidRequest) as caught:
                await aio.decide(req.id, "expire", by="U01")  # a system verb is no person's to send
            return caught.value

    assert asyncio.run(scenario()).field == "verb"
    assert req.status() is Status.PENDING  # nothing changed


def test_decide_takes_the_verb_enum_or_its_string(approvals: Approvals) -> None:
    first, second = (approvals.request(action="a", summary=f"s{n}") for n in range(2))
    assert approvals.decide(first.id, Verb.REJECT, by="U01", comment="no").status is Status.REJECTED
    assert approvals.decide(second.id, "approve", by="U01").status is Status.APPROVED


# -- cancel by id ----------------------------------------------------------------------------


def test_cancel_by_id_on_the_sync_client(approvals: Approvals, conn, prefix: str) -> None:
    req = approvals.request(action="a", summary="s")
    assert approvals.cancel(req.id, by="U09") is Status.CANCELLED
    assert req.wait(timeout=5).status == "cancelled"
    cancelled = [e for e in events(conn, prefix, req.id) if e["type"] == EventType.CANCELLED]
    assert [e["by"] for e in cancelled] == ['["U09"]']
    with pytest.raises(AlreadyDecided):
        approvals.cancel(req.id)


def test_cancel_by_id_on_the_async_client(settings: Settings) -> None:
    async def scenario() -> tuple[Status, str, Status]:
        async with AsyncApprovals(settings=settings) as aio:
            req = await aio.request(action="a", summary="s")
            status = await aio.cancel(req.id)
            decision = await req.wait(timeout=5)
            with pytest.raises(AlreadyDecided):
                await aio.cancel(req.id)
            done = await aio.request(action="a", summary="s2")
            return status, decision.status, await done.cancel()

    assert asyncio.run(scenario()) == (Status.CANCELLED, "cancelled", Status.CANCELLED)


# -- audit event types ---------------------------------------------------------------------


def test_every_audit_event_the_store_writes_is_an_event_type(approvals: Approvals, conn, prefix: str) -> None:
    """Kill switch on and off, a filing, a vote and a decision: each event's type parses."""
    approvals.store.pause("*", "U01")
    approvals.store.pause("*", "U01", on=False)
    req = approvals.request(action="a", summary="s", quorum=2)
    approvals.decide(req.id, Verb.APPROVE, by="U01")
    approvals.decide(req.id, Verb.APPROVE, by="U02")
    types = [EventType(e["type"]) for e in events(conn, prefix)]
    assert {EventType.PAUSED, EventType.RESUMED, EventType.CREATED, EventType.VOTED, EventType.DECIDED} <= set(types)
