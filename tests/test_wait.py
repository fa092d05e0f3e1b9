"""`wait()` wakes at once on a decision, returns at once when final, and survives Redis."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
import redis.asyncio as aioredis

from hitl import Approvals, AsyncApprovals, Rejected, WaitTimeout, waiters
from hitl.client import RequestHandle
from hitl.embedded import EmbeddedRedis
from hitl.errors import RequestNotFound
from hitl.models import Decision
from hitl.status import Mode
from tests.conftest import make_settings
from tests.helpers import eventually, start_worker, stop


def _registered(approvals: Approvals, request_id: str, n: int = 1) -> bool:
    """Whether `n` waits on the request are registered with this process's dispatcher."""
    d = approvals.dispatcher()
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


# -- one listener per process ---------------------------------------------------------------


async def _until(check, timeout: float, what: str) -> None:
    """Await state the dispatcher's threads change (they offer nothing to await)."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.01)


def _connections(conn, name: str) -> int:
    return sum(1 for c in conn.client_list(_type="normal") if c.get("name") == name)


def _verb(i: int) -> dict:
    return {"verb": "approve", "by": "U01"} if i % 2 == 0 else {"verb": "reject", "by": "U02", "comment": f"no {i}"}


def _check_decisions(decisions, ids) -> None:
    for i, (d, rid) in enumerate(zip(decisions, ids, strict=True)):
        assert d.request_id == rid
        if i % 2 == 0:
            assert (d.status, d.approved, d.by) == ("approved", True, ["U01"])
        else:
            assert (d.status, d.approved, d.comment) == ("rejected", False, f"no {i}")


def test_a_thousand_async_waits_wake_on_a_few_connections(settings, conn, prefix: str) -> None:
    """1,000 concurrent asyncio waits: all wake with their own decision, while the process
    holds at most 4 Redis connections (the old code held one per wait)."""
    n = 1_000
    agent_name = f"agent-{prefix}"
    seen: dict[str, int] = {}

    async def scenario() -> None:
        client = aioredis.Redis.from_url(settings.redis, client_name=agent_name)
        async with AsyncApprovals(settings=settings, client=client) as aio:
            handles = [await aio.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(n)]
            tasks = [asyncio.create_task(h.wait(timeout=60)) for h in handles]
            d = waiters.dispatcher(settings.redis, prefix)
            await _until(lambda: len(d.registered()) == n, 30, f"{n} registered waits")
            seen["waiting"] = _connections(conn, waiters.client_name()) + _connections(conn, agent_name)
            bot = Approvals(settings=settings)
            try:
                await asyncio.to_thread(lambda: [bot.decide(h.id, **_verb(i)) for i, h in enumerate(handles)])
            finally:
                bot.close()
            decisions = await asyncio.gather(*tasks)
            seen["woken"] = _connections(conn, waiters.client_name()) + _connections(conn, agent_name)
            _check_decisions(decisions, [h.id for h in handles])
            assert d.registered() == {}

    asyncio.run(scenario())
    assert 1 <= seen["waiting"] <= 4, seen
    assert seen["woken"] <= 4, seen


def test_waits_started_while_deciding_miss_nothing(settings, prefix: str) -> None:
    """Register-then-check: waits that start while their requests are being decided all
    end with the decision, whichever lands first."""
    n = 300

    async def scenario() -> None:
        async with AsyncApprovals(settings=settings) as aio:
            handles = [await aio.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(n)]
            bot = Approvals(settings=settings)
            try:
                deciding = asyncio.create_task(
                    asyncio.to_thread(lambda: [bot.decide(h.id, **_verb(i)) for i, h in enumerate(handles)])
                )
                tasks = []
                for h in handles:
                    tasks.append(asyncio.create_task(h.wait(timeout=60)))
                    await asyncio.sleep(0)
                decisions = await asyncio.gather(*tasks)
                await deciding
            finally:
                bot.close()
            _check_decisions(decisions, [h.id for h in handles])

    asyncio.run(scenario())


def test_five_hundred_waits_survive_a_redis_restart(prefix: str) -> None:
    """A private Redis (AOF) restarts while 500 waits are held; requests decided right after
    it is back (before the listener reconnects) and later ones all reach their waiters."""
    n = 500
    with EmbeddedRedis(persistent=True) as server:
        settings = make_settings(server.url, prefix)

        async def scenario() -> None:
            async with AsyncApprovals(settings=settings) as aio:
                handles = [await aio.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(n)]
                tasks = [asyncio.create_task(h.wait(timeout=90)) for h in handles]
                d = waiters.dispatcher(server.url, prefix)
                await _until(lambda: len(d.registered()) == n, 30, f"{n} registered waits")
                await asyncio.to_thread(server.restart)
                bot = Approvals(settings=settings)
                try:
                    # Half at once (the listener is likely still backing off), half a moment later.
                    await asyncio.to_thread(lambda: [bot.decide(h.id, **_verb(i)) for i, h in enumerate(handles) if i < n // 2])
                    await asyncio.sleep(0.5)
                    await asyncio.to_thread(lambda: [bot.decide(h.id, **_verb(i)) for i, h in enumerate(handles) if i >= n // 2])
                finally:
                    bot.close()
                decisions = await asyncio.gather(*tasks)
                _check_decisions(decisions, [h.id for h in handles])
                assert d.registered() == {}

        asyncio.run(scenario())
        waiters.shutdown()  # before its Redis goes away


def test_cancelled_and_timed_out_waits_leave_nothing_behind(settings, conn, prefix: str) -> None:
    """Cancelled asyncio waits and waits that time out unregister; no Redis key is written."""

    def keys() -> set[bytes]:
        return set(conn.scan_iter(match=f"{prefix}:*", count=1000))

    async def scenario() -> None:
        async with AsyncApprovals(settings=settings) as aio:
            handles = [await aio.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(200)]
            before = keys()
            d = waiters.dispatcher(settings.redis, prefix)
            tasks = [asyncio.create_task(h.wait()) for h in handles[:100]]
            await _until(lambda: len(d.registered()) == 100, 30, "100 registered waits")
            for t in tasks:
                t.cancel()
            results = await asyncio.gather(*tasks, return_exceptions=True)
            assert all(isinstance(r, asyncio.CancelledError) for r in results)
            assert d.registered() == {}
            timed_out = await asyncio.gather(*(h.wait(timeout=0.3) for h in handles[100:]), return_exceptions=True)
            assert all(isinstance(r, WaitTimeout) for r in timed_out)
            assert d.registered() == {}
            assert keys() == before
            assert {await h.status() for h in handles} == {"pending"}

    asyncio.run(scenario())


def test_waiting_on_an_unknown_id_raises(approvals: Approvals) -> None:
    with pytest.raises(RequestNotFound):
        RequestHandle(approvals, "nope", Mode.GATE).wait(timeout=5)
    assert approvals.dispatcher().registered() == {}


def test_sync_waits_in_many_threads_share_the_dispatcher(approvals: Approvals, conn) -> None:
    reqs = [approvals.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(50)]
    got: dict[str, str] = {}
    threads = [threading.Thread(target=lambda r=r: got.__setitem__(r.id, r.wait(timeout=30).status)) for r in reqs]
    for t in threads:
        t.start()
    eventually(lambda: len(approvals.dispatcher().registered()) == 50, 10, "50 waits")
    assert _connections(conn, waiters.client_name()) <= 4
    for r in reqs:
        approvals.decide(r.id, "approve", by="U01")
    for t in threads:
        t.join(30)
    assert got == {r.id: "approved" for r in reqs}


def test_rejected_for_an_expired_request_says_no_one_decided(approvals: Approvals, redis_url: str, prefix: str) -> None:
    """A gate that times out (the worker's timer expires it) raises `Rejected` saying that no
    one decided in time: it never reads as a rejection or a denial."""

    @approvals.require_approval(action="deploy", timeout=1)
    def deploy(tag: str) -> None:
        raise AssertionError("must not run")

    worker = start_worker(redis_url, prefix)
    try:
        with pytest.raises(Rejected) as info:
            deploy("v1")
    finally:
        stop(worker)
    message = str(info.value)
    assert info.value.decision.status == "expired"
    assert "No one decided on deploy in time" in message
    assert "reject" not in message.lower() and "denied" not in message.lower()


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        ("approved", {"by": ["U01"], "comment": "ok"}, "deploy was approved by U01: ok. Go ahead"),
        ("rejected", {"by": ["U02"], "comment": "wrong tag"}, "deploy was rejected by U02: wrong tag. Do not do it"),
        ("expired", {}, "No one decided on deploy in time"),
        ("cancelled", {}, "was cancelled before anyone decided"),
        ("vetoed", {"by": ["U03"], "comment": "broke prod"}, "deploy was vetoed by U03: broke prod. Undo it"),
    ],
)
def test_decision_explanation_words_for_a_model(status: str, fields: dict, expected: str) -> None:
    d = Decision(request_id="r1", action="deploy", mode="gate", status=status, approved=status == "approved", **fields)
    assert expected in d.explanation()
    if status == "expired":
        assert "reject" not in d.explanation().lower() and "denied" not in d.explanation().lower()


def test_a_dropped_listener_connection_loses_no_decision(approvals: Approvals, conn) -> None:
    """The listener's connection is killed (as a proxy or failover would) and requests are
    decided before it reconnects: the re-read after reconnecting wakes every waiter."""
    reqs = [approvals.request(action="a", summary=f"s{i}", mode="gate", timeout=600) for i in range(20)]
    d = approvals.dispatcher()
    got: dict[str, str] = {}
    threads = [threading.Thread(target=lambda r=r: got.__setitem__(r.id, r.wait(timeout=30).status)) for r in reqs]
    for t in threads:
        t.start()
    eventually(lambda: len(d.registered()) == 20 and d.checks_queued() == 0, 10, "20 checked waits")
    listener = eventually(lambda: d._listener_id, 5, "the listener's client id")
    conn.client_kill_filter(_id=listener)
    for r in reqs:
        approvals.decide(r.id, "reject", by="U01", comment="no")
    for t in threads:
        t.join(30)
    assert got == {r.id: "rejected" for r in reqs}


def test_an_idle_dispatcher_stops_and_the_next_wait_starts_another(approvals: Approvals, conn, monkeypatch) -> None:
    monkeypatch.setattr(waiters, "IDLE_SECONDS", 0.1)
    monkeypatch.setattr(waiters, "BLOCK_MS", 100)
    req = approvals.request(action="a", summary="s", mode="gate", timeout=600)
    approvals.decide(req.id, "approve", by="U01")
    first = approvals.dispatcher()
    assert req.wait(timeout=5).status == "approved"
    eventually(lambda: first.stopped, 10, "the idle dispatcher to stop")
    eventually(lambda: _connections(conn, waiters.client_name()) == 0, 10, "its connections to close")
    assert approvals.get(req.id).wait(timeout=5).status == "approved"
    assert approvals.dispatcher() is not first
