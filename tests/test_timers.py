"""Timers run in real RQ workers: never early, once, and despite a worker dying."""

from __future__ import annotations

import signal

import pytest
from rq import SimpleWorker

from hitl import Approvals
from hitl.keys import Keys
from hitl.store import Store
from tests.helpers import events, eventually, signal_group, start_worker, stop
from workers import queues


def _transitions(conn, prefix: str, request_id: str) -> list[str]:
    """Audit event types, leaving out escalation reminders."""
    return [e["type"] for e in events(conn, prefix, request_id) if e["type"] != "escalated"]


@pytest.fixture
def worker(redis_url: str, prefix: str):
    proc = start_worker(redis_url, prefix, HITL_TIMER_LEASE="1")
    yield proc
    stop(proc)


def test_gate_expires_on_time_and_once(approvals: Approvals, worker, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", timeout=0.5)
    d = req.wait(timeout=10)
    stored = req.fetch()
    assert d.status == "expired" and d.approved is False
    assert stored.decided_at >= stored.deadline  # never early
    assert stored.decided_at - stored.deadline < 1.5
    assert _transitions(conn, prefix, req.id) == ["created", "expired"]


def test_override_window_finalizes(approvals: Approvals, worker) -> None:
    req = approvals.request(action="send_email", summary="s", mode="override", window=0.4)
    d = req.wait(timeout=10)
    assert (d.status, d.approved) == ("finalized", True)


def test_escalation_step_fires_while_pending(approvals: Approvals, worker, conn, prefix) -> None:
    req = approvals.request(action="deploy", summary="s", timeout=1.2, approvers=["U01"])
    assert req.fetch().escalation[0].after == pytest.approx(0.6)  # default: half the timeout
    assert req.wait(timeout=10).status == "expired"
    kinds = [e["type"] for e in events(conn, prefix, req.id)]
    assert kinds == ["created", "escalated", "expired"]


def test_many_timers_due_together_all_fire_once(approvals: Approvals, worker, conn, prefix) -> None:
    reqs = [approvals.request(action="a", summary=f"s{n}", timeout=0.3) for n in range(150)]
    assert {r.wait(timeout=20).status for r in reqs} == {"expired"}
    expired = [e for e in events(conn, prefix) if e["type"] == "expired"]
    assert len(expired) == 150


def test_decided_request_is_not_expired_later(approvals: Approvals, worker, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", timeout=0.3)
    approvals.decide(req.id, "approve", by="U01")
    other = approvals.request(action="a", summary="later", timeout=0.4)
    assert other.wait(timeout=10).status == "expired"  # the worker has passed the first deadline
    assert [e["type"] for e in events(conn, prefix, req.id)] == ["created", "decided"]


def test_a_timer_job_run_twice_changes_nothing_the_second_time(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", timeout=600)
    member = f"{req.id}|timeout"
    q = queues.queue(conn, prefix, queues.TIMERS)
    for _ in range(2):
        q.enqueue("workers.timers.fire_timers", prefix, [(member, 0, 0)])
    SimpleWorker([q], connection=conn).work(burst=True)
    assert req.wait(timeout=1).status == "expired"
    assert _transitions(conn, prefix, req.id) == ["created", "expired"]


def test_deadline_fires_once_after_its_worker_is_killed(
    approvals: Approvals, redis_url: str, conn, prefix
) -> None:
    first = start_worker(redis_url, prefix, HITL_TIMER_LEASE="1")
    signal_group(first, signal.SIGSTOP)  # frozen: it can neither fire nor let go
    req = approvals.request(action="a", summary="s", timeout=0.3)
    eventually(lambda: approvals.store.status(req.id) == "pending" and conn.time()[0] > req.fetch().deadline)
    signal_group(first, signal.SIGKILL)  # the worker and its scheduler process, as a crash would
    first.wait()
    second = start_worker(redis_url, prefix, HITL_TIMER_LEASE="1")
    try:
        assert req.wait(timeout=30).status == "expired"
    finally:
        stop(second)
    assert _transitions(conn, prefix, req.id) == ["created", "expired"]


def test_a_lease_taken_by_a_dead_worker_is_taken_over(approvals: Approvals, redis_url, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", timeout=0.2)
    store = Store(conn, Keys(prefix))
    claimed = eventually(lambda: [c for c in store.claim_timers(lease=1.0) if c[0].endswith("|timeout")])
    assert claimed[0][0] == f"{req.id}|timeout"  # this "worker" now dies without firing it
    worker = start_worker(redis_url, prefix, HITL_TIMER_LEASE="1")
    try:
        d = req.wait(timeout=30)
    finally:
        stop(worker)
    assert d.status == "expired"
    assert d.decided_at * 1000 >= claimed[0][2]  # fired by the takeover, after the lease ran out
    assert _transitions(conn, prefix, req.id) == ["created", "expired"]
