"""`wait()` wakes at once on a decision, returns at once when final, and survives Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from hitl import Approvals, AsyncApprovals, Rejected, WaitTimeout, waiters
from hitl.embedded import EmbeddedRedis
from tests.conftest import make_settings
from tests.helpers import eventually


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


def _registered(approvals: Approvals, request_id: str, n: int = 1) -> bool:
    """Whether `n` waits on the request are registered with this process's dispatcher."""
    d = waiters.dispatcher(approvals._url, approvals.keys.prefix)
    return d.registered().get(request_id, 0) >= n


def _decide_when_waiting(approvals: Approvals, request_id: str, **kwargs) -> threading.Thread:
    """Decide from another thread as soon as a wait on the request is registered."""

    def run() -> None:
        eventually(lambda: _registered(approvals, request_id), 5, "a registered waiter")
        approvals.decide(request_id, **kwargs)

    t = threading.Thread(target=run)
    t.start()
    return t


def test_wait_wakes_on_the_decision(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    t = _decide_when_waiting(approvals, req.id, verb="approve", by="U01")
    start = time.monotonic()
    d = req.wait(timeout=5)
    t.join()
    assert d.status == "approved"
    assert time.monotonic() - start < 2  # woken by the decision, not by a slice running out


def test_several_waiters_all_wake(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    results: list[str] = []
    waiters = [threading.Thread(target=lambda: results.append(req.wait(timeout=5).status)) for _ in range(3)]
    for w in waiters:
        w.start()
    approvals.decide(req.id, "reject", by="U01", comment="no")
    for w in waiters:
        w.join()
    assert results == ["rejected"] * 3


def test_wait_returns_at_once_when_already_final(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    approvals.decide(req.id, "approve", by="U01")
    start = time.monotonic()
    assert req.wait().status == "approved"
    assert approvals.get(req.id).wait(timeout=0.001).status == "approved"
    assert time.monotonic() - start < 0.5


def test_wait_timeout_raises(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    with pytest.raises(WaitTimeout, match=r"still undecided after 0\.2s"):
        req.wait(timeout=0.2)
    assert req.status() == "pending"


def test_wait_survives_a_redis_restart(prefix: str) -> None:
    with EmbeddedRedis(persistent=True) as server:
        approvals = Approvals(settings=make_settings(server.url, prefix))
        req = approvals.request(action="a", summary="s")
        got: list[str] = []
        waiter = threading.Thread(target=lambda: got.append(req.wait(timeout=30).status))
        waiter.start()
        eventually(lambda: _registered(approvals, req.id), 5, "a waiter")
        server.restart()  # the waiter's connection dies; the data comes back from the AOF
        Approvals(settings=make_settings(server.url, prefix)).decide(req.id, "reject", by="U01")
        waiter.join(30)
        assert got == ["rejected"]
        approvals.close()


def test_async_client(settings) -> None:
    async def scenario() -> tuple[str, str]:
        async with AsyncApprovals(settings=settings) as aio:
            req = await aio.request(action="a", summary="s", params={"n": 1})
            waiting = asyncio.create_task(req.wait(timeout=5))
            await asyncio.sleep(0)  # let the waiter block first
            await aio.decide(req.id, "approve", by="U01", params={"n": 2})
            d = await waiting
            return d.status, d.params["n"]

    assert asyncio.run(scenario()) == ("approved", 2)


def test_require_approval_runs_with_edited_params(approvals: Approvals) -> None:
    calls: list[int] = []

    @approvals.require_approval(action="send_email", summary="Email {count} customers")
    def send(count: int) -> str:
        calls.append(count)
        return "sent"

    def reviewer() -> None:
        rid = _first_pending(approvals)
        assert approvals.get(rid).fetch().summary == "Email 200 customers"
        approvals.decide(rid, "approve", by="U01", params={"count": 20})

    t = threading.Thread(target=reviewer)
    t.start()
    assert send(200) == "sent"
    t.join()
    assert calls == [20]


def test_require_approval_raises_rejected_with_the_reason(approvals: Approvals) -> None:
    @approvals.require_approval(action="delete_record")
    def delete(record: int) -> None:
        raise AssertionError("must not run")

    t = threading.Thread(
        target=lambda: approvals.decide(_first_pending(approvals), "reject", by="U01", comment="wrong id")
    )
    t.start()
    with pytest.raises(Rejected) as info:
        delete(42)
    t.join()
    assert info.value.reason == "wrong id"
    assert "rejected by U01: wrong id" in str(info.value)


def _first_pending(approvals: Approvals) -> str:
    ids = eventually(lambda: approvals.redis.zrange(approvals.keys.pending, 0, 0), 5, "a pending request")
    return ids[0].decode()
