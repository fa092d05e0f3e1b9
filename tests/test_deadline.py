"""The deadline is enforced by the transition itself, against Redis TIME: with no worker
running (no timer fires), a decision after the deadline expires the request and is refused."""

from __future__ import annotations

import time

import pytest
import redis

from hitl import Approvals, DeadlinePassed, Status, TransitionRefused
from tests.helpers import events


def test_a_late_approval_expires_the_request_and_is_not_recorded(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    req = approvals.request(action="delete_record", summary="Delete customer 42", timeout=0.3)
    deadline = req.fetch().deadline
    time.sleep(0.5)  # the passing of the deadline is what is under test; no worker runs
    with pytest.raises(DeadlinePassed, match=r"expired at .*; the decision was not recorded") as caught:
        approvals.decide(req.id, "approve", by="U01")
    assert caught.value.status == "expired" and caught.value.deadline == pytest.approx(deadline)
    assert req.status() is Status.EXPIRED
    decision = req.wait(timeout=5)
    assert (decision.status, decision.approved, decision.by) == ("expired", False, [])
    stored = req.fetch()
    assert stored.decided_at >= stored.deadline
    assert [e["type"] for e in events(conn, prefix, req.id)] == ["created", "expired"]
    assert conn.zscore(f"{prefix}:pending", req.id) is None
    assert not [m for m in conn.zrange(f"{prefix}:timers", 0, -1) if m.decode() == f"{req.id}|timeout"]


def test_fifty_approvals_just_after_the_deadline_none_accepted(approvals: Approvals) -> None:
    reqs = [approvals.request(action="a", summary=f"s{n}", timeout=0.2) for n in range(50)]
    last_deadline = max(r.fetch().deadline for r in reqs)
    time.sleep(max(last_deadline - time.time(), 0) + 0.05)
    accepted = 0
    for r in reqs:
        try:
            approvals.decide(r.id, "approve", by="U01")
            accepted += 1
        except DeadlinePassed:
            pass
    assert accepted == 0
    assert {r.wait(timeout=5).status for r in reqs} == {"expired"}


def test_a_veto_after_the_window_is_refused_and_the_action_stands(approvals: Approvals) -> None:
    req = approvals.request(action="send_email", summary="s", mode="override", window=0.3)
    time.sleep(0.5)
    with pytest.raises(DeadlinePassed, match=r"veto window .* ended at"):
        approvals.decide(req.id, "veto", by="U01")
    decision = req.wait(timeout=5)
    assert (decision.status, decision.approved) == ("finalized", True)


def test_a_late_rejection_by_the_requester_is_refused_too(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", timeout=0.3, requested_by="U09")
    time.sleep(0.5)
    with pytest.raises(TransitionRefused, match="not recorded"):
        approvals.decide(req.id, "reject", by="U09")
    assert req.wait(timeout=5).status == "expired"

