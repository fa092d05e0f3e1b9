"""The timer path closes plans too: a real `hitl worker` expires the steps, and the
transition that expires the last one closes the plan."""

from __future__ import annotations

import pytest

from hitl import Approvals
from tests.helpers import start_worker, stop


@pytest.fixture
def worker(redis_url: str, prefix: str):
    proc = start_worker(redis_url, prefix, HITL_TIMER_LEASE="1")
    yield proc
    stop(proc)


def test_steps_expired_by_the_worker_close_the_plan(approvals: Approvals, worker) -> None:
    items = [{"action": "send_email", "summary": f"Remind customer {i}", "params": {"to": i}} for i in range(3)]
    batch = approvals.request_batch(summary="Remind 3", items=items, timeout=0.5)
    approvals.decide(batch.items[0].id, "approve", by="U01")
    assert [d.status for d in batch.wait(timeout=20)] == ["approved", "expired", "expired"]
    plan = batch.plan.wait(timeout=20)
    assert (plan.status, plan.by, plan.comment) == ("approved", [], "1 of 3 steps approved")


def test_a_plan_with_every_step_expired_expires(approvals: Approvals, worker) -> None:
    items = [{"action": "send_email", "summary": f"Remind customer {i}"} for i in range(2)]
    batch = approvals.request_batch(summary="Remind 2", items=items, timeout=0.4)
    assert batch.plan.wait(timeout=20).status == "expired"
    assert [d.status for d in batch.wait(timeout=5)] == ["expired", "expired"]
