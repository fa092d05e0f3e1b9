"""Plan-level review: one request for the plan, one decision per item."""

from __future__ import annotations

import pytest

from hitl import Approvals, InvalidRequest


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
