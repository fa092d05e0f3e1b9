"""Plan-level review: one request for the plan, one decision per item."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hitl import Approvals, DeadlinePassed, IdempotencyConflict, InvalidRequest, NotAllowed
from hitl.status import SystemVerb
from tests.helpers import events


def test_request_batch_files_a_plan_and_its_items(approvals: Approvals) -> None:
    batch = approvals.request_batch(
        summary="Remind 3 overdue customers",
        items=[{"action": "send_email", "summary": f"Remind customer {n}", "params": {"to": n}} for n in range(3)],
        requested_by="U09",
        mode="auto",  # ignored: a plan always waits for review
    )
    plan = batch.plan.fetch()
    assert (plan.mode, plan.status, plan.params) == ("gate", "pending", {"items": 3})
    assert plan.items == [i.id for i in batch.items]
    steps = [i.fetch() for i in batch.items]
    assert {s.batch for s in steps} == {plan.id}
    assert [s.params for s in steps] == [{"to": 0}, {"to": 1}, {"to": 2}]
    assert all(s.requested_by == "U09" and s.deadline == pytest.approx(plan.deadline, abs=0.1) for s in steps)
    approvals.decide(steps[0].id, "approve", by="U01")
    approvals.decide(steps[1].id, "reject", by="U01", comment="already paid")
    approvals.decide(steps[2].id, "approve", by="U02", params={"to": 22})
    decisions = batch.wait(timeout=2)
    assert [(d.status, d.comment) for d in decisions] == [
        ("approved", None), ("rejected", "already paid"), ("approved", None),
    ]
    assert decisions[2].params == {"to": 22}


def test_a_bad_item_names_its_position(approvals: Approvals) -> None:
    with pytest.raises(InvalidRequest, match=r"items\.1\.summary"):
        approvals.request_batch(summary="s", items=[{"action": "a", "summary": "ok"}, {"action": "a"}])
    with pytest.raises(InvalidRequest, match="at least one item"):
        approvals.request_batch(summary="s", items=[])


def _items(n: int, action: str = "send_email") -> list[dict]:
    return [{"action": action, "summary": f"Remind customer {i}", "params": {"to": i}} for i in range(n)]


def test_a_batch_key_covers_the_plan_and_every_step(approvals: Approvals, conn, prefix) -> None:
    batch = approvals.request_batch(summary="Remind 4 customers", items=_items(4), idempotency_key="plan-1")
    steps = [s.fetch() for s in batch.items]
    assert len(steps) == 4 and {s.status for s in steps} == {"pending"}
    assert [s.idempotency_key for s in steps] == [f"plan-1/{n}" for n in range(4)]
    again = approvals.request_batch(summary="Remind 4 customers", items=_items(4), idempotency_key="plan-1")
    assert (again.id, [i.id for i in again.items]) == (batch.id, [i.id for i in batch.items])
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 5  # no second plan, no second card
    for n, step in enumerate(batch.items):
        approvals.decide(step.id, "approve" if n % 2 else "reject", by="U01", comment="ok" if n % 2 else "no")
    assert [d.status for d in batch.wait(timeout=5)] == ["rejected", "approved", "rejected", "approved"]
    assert [d.status for d in again.wait(timeout=5)] == ["rejected", "approved", "rejected", "approved"]


def test_a_batch_key_repeated_with_other_items_is_refused(approvals: Approvals, conn, prefix) -> None:
    batch = approvals.request_batch(summary="Remind 4 customers", items=_items(4), idempotency_key="plan-2")
    with pytest.raises(IdempotencyConflict, match=batch.id):
        approvals.request_batch(summary="Remind 4 customers", items=_items(4, "delete_customer"),
                                idempotency_key="plan-2")
    with pytest.raises(IdempotencyConflict):
        approvals.request_batch(summary="Remind 4 customers", items=_items(3), idempotency_key="plan-2")
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 5


def test_a_step_key_already_taken_refuses_the_whole_batch(approvals: Approvals, conn, prefix) -> None:
    taken = approvals.request(action="wire_money", summary="Wire", idempotency_key="plan-3/2")
    with pytest.raises(IdempotencyConflict, match=taken.id):
        approvals.request_batch(summary="Remind 4 customers", items=_items(4), idempotency_key="plan-3")
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 1  # all or nothing
    with pytest.raises(InvalidRequest, match=r"items\.0\.idempotency_key"):
        approvals.request_batch(summary="s", items=[{**_items(1)[0], "idempotency_key": "x"}])


def test_the_async_client_files_a_keyed_batch_too(approvals: Approvals) -> None:
    async def main() -> tuple[str, str, list]:
        async with approvals.asyncio() as aio:
            first = await aio.request_batch(summary="Remind 2", items=_items(2), idempotency_key="plan-4")
            again = await aio.request_batch(summary="Remind 2", items=_items(2), idempotency_key="plan-4")
            for step in first.items:
                await aio.decide(step.id, "approve", by="U01")
            return first.id, again.id, await again.wait(timeout=5)

    first, again, decisions = asyncio.run(main())
    assert first == again and [d.status for d in decisions] == ["approved", "approved"]
    assert approvals.get(first).wait(timeout=5).status == "approved"


# Plans settle inside the engine: the transition that makes the last step final closes the plan.

def test_a_plan_decided_step_by_step_through_decide_is_final_at_once(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 4", items=_items(4), requested_by="U09")
    for n, step in enumerate(batch.items[:-1]):
        approvals.decide(step.id, "approve" if n < 2 else "reject", by="U01")
        assert batch.plan.status() == "pending"
    approvals.decide(batch.items[-1].id, "reject", by="U01")
    plan = batch.plan.fetch()
    assert (plan.status, plan.by, plan.comment) == ("approved", [], "2 of 4 steps approved")
    assert batch.plan.wait(timeout=1).status == "approved"


def test_the_last_step_rejected_by_the_requester_closes_the_plan(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 2", items=_items(2), requested_by="U09")
    approvals.decide(batch.items[0].id, "reject", by="U01")
    approvals.decide(batch.items[1].id, "reject", by="U09", comment="changed my mind")
    plan = batch.plan.fetch()
    assert (plan.status, plan.comment) == ("rejected", "0 of 2 steps approved")


def test_a_plan_whose_steps_are_all_cancelled_is_cancelled(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 3", items=_items(3))
    for step in batch.items:
        step.cancel()
    assert batch.plan.wait(timeout=1).status == "cancelled"


def test_cancelling_a_plan_cancels_its_waiting_steps(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 3", items=_items(3))
    approvals.decide(batch.items[0].id, "approve", by="U01")
    assert batch.plan.cancel() == "cancelled"
    assert [d.status for d in batch.wait(timeout=1)] == ["approved", "cancelled", "cancelled"]
    assert batch.plan.fetch().status == "cancelled"


def test_a_plan_is_decided_through_its_steps_only(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 2", items=_items(2))
    with pytest.raises(NotAllowed, match="decided through its steps"):
        approvals.decide(batch.id, "approve", by="U01")
    assert batch.plan.status() == "pending"


def test_a_late_step_decision_expires_the_step_and_the_plan_settles(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 2", items=_items(2), timeout=0.3)
    approvals.decide(batch.items[0].id, "reject", by="U01")
    time.sleep(0.5)  # the deadline passing is what is under test; no worker runs
    with pytest.raises(DeadlinePassed):
        approvals.decide(batch.items[1].id, "approve", by="U01")
    plan = batch.plan.fetch()
    assert (plan.status, plan.comment) == ("rejected", "0 of 2 steps approved")


def test_the_plan_expiring_expires_its_waiting_steps(approvals: Approvals) -> None:
    batch = approvals.request_batch(summary="Remind 3", items=_items(3))
    approvals.decide(batch.items[0].id, "approve", by="U01")
    approvals.store.transition(batch.id, SystemVerb.EXPIRE)  # what the plan's own timer does
    assert [d.status for d in batch.wait(timeout=1)] == ["approved", "expired", "expired"]
    # The plan then settles like any plan: a step approved in time still counts, whichever
    # timer (the plan's or the steps') fired first.
    plan = batch.plan.fetch()
    assert (plan.status, plan.comment) == ("approved", "1 of 3 steps approved")


def test_ten_concurrent_keyed_batches_file_one_plan(approvals: Approvals, conn, prefix) -> None:
    barrier = threading.Barrier(10)

    def file(_n: int) -> tuple[str, tuple[str, ...]]:
        barrier.wait()
        batch = approvals.request_batch(summary="Remind 4 customers", items=_items(4), idempotency_key="plan-5")
        return batch.id, tuple(i.id for i in batch.items)

    with ThreadPoolExecutor(10) as pool:
        filed = set(pool.map(file, range(10)))
    assert len(filed) == 1
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 5
