"""Every transition happens once, atomically, with one audit event; losers learn why."""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis

from hitl import (
    AlreadyDecided,
    Approvals,
    InvalidRequest,
    NotAllowed,
    StaleVersion,
    TransitionRefused,
    WaitTimeout,
)
from hitl.errors import RequestNotFound
from tests.helpers import events


def test_gate_approve(approvals: Approvals, conn: redis.Redis, prefix: str) -> None:
    req = approvals.request(action="deploy", summary="Deploy v2", params={"tag": "v2"})
    assert req.mode == "gate"
    assert req.status() == "pending"
    after = approvals.decide(req.id, "approve", by="U01", comment="ship it")
    assert after.status == "approved"
    d = req.wait(timeout=1)
    assert (d.status, d.approved, d.by, d.comment, d.params) == ("approved", True, ["U01"], "ship it", {"tag": "v2"})
    assert [e["type"] for e in events(conn, prefix, req.id)] == ["created", "decided"]


def test_reject_carries_the_reason(approvals: Approvals) -> None:
    req = approvals.request(action="delete_record", summary="Delete customer 42")
    approvals.decide(req.id, "reject", by="U01", comment="wrong customer")
    d = req.wait(timeout=1)
    assert (d.status, d.approved, d.comment) == ("rejected", False, "wrong customer")


def test_decide_on_a_final_request_is_refused_and_the_first_decision_stands(
    approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    req = approvals.request(action="a", summary="s")
    approvals.decide(req.id, "approve", by="U01")
    with pytest.raises(AlreadyDecided, match=r"already approved by U01"):
        approvals.decide(req.id, "reject", by="U02", comment="no")
    d = req.wait(timeout=1)
    assert (d.status, d.by, d.comment) == ("approved", ["U01"], None)
    assert [e["type"] for e in events(conn, prefix, req.id)] == ["created", "decided"]


def test_thirty_concurrent_decisions_exactly_one_wins(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s")
    barrier = threading.Barrier(30)

    def click(n: int) -> str:
        barrier.wait()
        try:
            approvals.decide(req.id, "approve" if n % 2 else "reject", by=f"U{n:02d}")
            return "won"
        except AlreadyDecided:
            return "lost"

    with ThreadPoolExecutor(30) as pool:
        results = list(pool.map(click, range(30)))
    assert results.count("won") == 1
    decided = [e for e in events(conn, prefix, req.id) if e["type"] == "decided"]
    assert len(decided) == 1
    winner = results.index("won")
    assert req.wait(timeout=1).by == [f"U{winner:02d}"]


def test_idempotency_key_returns_the_same_request_under_20_concurrent_callers(
    approvals: Approvals, conn, prefix
) -> None:
    barrier = threading.Barrier(20)

    def file(_n: int) -> str:
        barrier.wait()
        return approvals.request(action="send_email", summary="s", idempotency_key="run-42").id

    with ThreadPoolExecutor(20) as pool:
        ids = set(pool.map(file, range(20)))
    assert len(ids) == 1
    assert len([e for e in events(conn, prefix) if e["type"] == "created"]) == 1
    assert approvals.request(action="send_email", summary="s", idempotency_key="run-42").id in ids


def test_requester_may_not_approve_their_own_request(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", requested_by="U09")
    with pytest.raises(NotAllowed, match="you requested this action"):
        approvals.decide(req.id, "approve", by="U09")
    assert req.status() == "pending"


def test_only_listed_approvers_or_their_groups_decide(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", approvers=["U01", "S0LEADS"])
    with pytest.raises(NotAllowed, match="not one of the approvers"):
        approvals.decide(req.id, "reject", by="U77")
    with pytest.raises(NotAllowed):
        approvals.decide(req.id, "approve", by="U77", groups=["S0OTHER"])
    assert approvals.decide(req.id, "approve", by="U77", groups=["S0LEADS"]).status == "approved"


def test_quorum_counts_distinct_people(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", quorum=2)
    progress = approvals.decide(req.id, "approve", by="U01")
    assert (progress.status, progress.votes) == ("pending", ["U01"])
    with pytest.raises(NotAllowed, match="already approved"):
        approvals.decide(req.id, "approve", by="U01")
    done = approvals.decide(req.id, "approve", by="U02")
    assert (done.status, done.by) == ("approved", ["U01", "U02"])
    assert [e["type"] for e in events(conn, prefix, req.id)] == ["created", "voted", "decided"]


def test_edit_approves_with_new_params_and_the_audit_keeps_both(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="send_email", summary="s", params={"to": 200, "template": "overdue"})
    approvals.decide(req.id, "approve", by="U01", params={"to": 20, "template": "overdue"})
    d = req.wait(timeout=1)
    assert d.params == {"to": 20, "template": "overdue"}
    stored = req.fetch()
    assert stored.params == {"to": 200, "template": "overdue"}
    evs = events(conn, prefix, req.id)
    assert '"to":200' in evs[0]["doc"] and '"to":20,' in evs[1]["params"]
    assert conn.hget(f"{prefix}:stats:send_email", "edited") == b"1"


def test_edit_resets_earlier_quorum_votes(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", quorum=2, params={"n": 1})
    approvals.decide(req.id, "approve", by="U01")
    progress = approvals.decide(req.id, "approve", by="U02", params={"n": 2})
    assert (progress.status, progress.votes) == ("pending", ["U02"])
    assert approvals.decide(req.id, "approve", by="U01").status == "approved"
    assert req.wait(timeout=1).params == {"n": 2}  # the edited params, though the last vote edited nothing


def test_stale_version_is_refused(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s", quorum=2)
    seen = req.fetch().version
    approvals.decide(req.id, "approve", by="U01", params={"changed": True})
    with pytest.raises(StaleVersion, match="changed since"):
        approvals.decide(req.id, "approve", by="U02", version=seen)


def test_override_veto_and_confirm(approvals: Approvals, conn, prefix) -> None:
    vetoed = approvals.request(action="send_email", summary="s", mode="override", window=60)
    assert vetoed.status() == "open"
    approvals.decide(vetoed.id, "veto", by="U01", comment="wrong list")
    d = vetoed.wait(timeout=1)
    assert (d.status, d.approved, d.comment) == ("vetoed", False, "wrong list")
    confirmed = approvals.request(action="send_email", summary="s", mode="override", window=60)
    with pytest.raises(TransitionRefused, match="cannot approve"):
        approvals.decide(confirmed.id, "approve", by="U01")
    approvals.decide(confirmed.id, "confirm", by="U02")
    assert confirmed.wait(timeout=1).status == "finalized"
    assert [e["type"] for e in events(conn, prefix, vetoed.id)] == ["created", "vetoed"]


def test_shadow_is_judged_and_never_blocks(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="refund", summary="s", mode="shadow")
    approvals.decide(req.id, "reject", by="U01", comment="too generous")
    d = req.wait(timeout=1)
    assert (d.status, d.verdict, d.approved) == ("judged", "reject", True)
    assert conn.hget(f"{prefix}:stats:refund", "shadow_reject") == b"1"


@pytest.mark.parametrize("mode", ["auto", "notify"])
def test_auto_and_notify_are_approved_at_once(approvals: Approvals, mode: str) -> None:
    req = approvals.request(action="search_web", summary="s", mode=mode)
    d = req.wait(timeout=0.5)
    assert (d.status, d.approved) == ("approved", True)


def test_cancel_only_while_pending(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    assert req.cancel() == "cancelled"
    assert req.wait(timeout=1).status == "cancelled"
    with pytest.raises(AlreadyDecided):
        req.cancel()


def test_decision_removes_the_timers_it_makes_moot(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", timeout=600)
    members = {m.decode() for m in conn.zrange(f"{prefix}:timers", 0, -1)}
    assert {f"{req.id}|timeout", f"{req.id}|esc|1", f"{req.id}|sync"} <= members
    approvals.decide(req.id, "approve", by="U01")
    left = {m.decode() for m in conn.zrange(f"{prefix}:timers", 0, -1)}
    assert left == {f"{req.id}|sync"}  # only "update the card" remains


def test_pending_indexes_follow_the_request(approvals: Approvals, conn, prefix) -> None:
    req = approvals.request(action="a", summary="s", channel="C0APPROVALS")
    assert conn.zscore(f"{prefix}:pending:ch:C0APPROVALS", req.id) is not None
    assert conn.zscore(f"{prefix}:pending:mode:gate", req.id) is not None
    approvals.decide(req.id, "reject", by="U01")
    assert conn.zscore(f"{prefix}:pending:ch:C0APPROVALS", req.id) is None
    assert conn.zscore(f"{prefix}:pending", req.id) is None


def test_unknown_verb_and_unknown_request(approvals: Approvals) -> None:
    req = approvals.request(action="a", summary="s")
    with pytest.raises(InvalidRequest, match="verb"):
        approvals.decide(req.id, "maybe", by="U01")
    with pytest.raises(InvalidRequest, match="params: edited parameters go with an approval"):
        approvals.decide(req.id, "reject", by="U01", params={"x": 1})
    with pytest.raises(RequestNotFound):
        approvals.decide("nope", "approve", by="U01")
    with pytest.raises(RequestNotFound):
        approvals.get("nope")


def test_strings_that_are_no_request_id_are_unknown_ids_on_every_call(approvals: Approvals) -> None:
    """`<id>:done` is the final request's done list in Redis: every way to name a request
    answers RequestNotFound for it, as for any unknown id, and nothing changes."""
    req = approvals.request(action="a", summary="s")
    approvals.cancel(req.id)
    waiting = approvals.request(action="a", summary="s")
    aio = approvals.asyncio()
    for bad in (req.id + ":done", waiting.id + ":done", waiting.id.upper(), ""):
        calls = (
            functools.partial(approvals.get, bad), functools.partial(approvals.store.status, bad),
            functools.partial(approvals.cancel, bad), functools.partial(approvals.decide, bad, "approve", by="U01"),
            functools.partial(approvals.wait_request, bad, 1),
            lambda rid=bad: asyncio.run(aio.store.get(rid)), lambda rid=bad: asyncio.run(aio.wait_request(rid, 1)),
        )
        for call in calls:
            with pytest.raises(RequestNotFound) as err:
                call()
            assert err.value.request_id == bad
    assert waiting.status() == "pending"


@pytest.mark.parametrize("scope", ["*", "publish_post"])
def test_while_paused_a_shadow_request_waits_for_a_decision(approvals: Approvals, scope: str) -> None:
    approvals.store.pause(scope, by="U0ADMIN")
    req = approvals.request(action="publish_post", summary="Publish the draft", mode="shadow")
    assert (req.mode, req.status()) == ("gate", "pending")
    stored = req.fetch()
    assert stored.paused and stored.deadline is not None
    with pytest.raises(WaitTimeout):
        req.wait(timeout=0.3)  # blocks: nothing acts without a decision
    waiter = ThreadPoolExecutor(1).submit(req.wait, 10)
    approvals.decide(req.id, "reject", by="U01", comment="paused for a reason")
    decision = waiter.result(timeout=10)
    assert (decision.status, decision.approved, decision.comment) == ("rejected", False, "paused for a reason")
