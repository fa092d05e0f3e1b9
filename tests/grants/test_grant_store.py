"""Grants in the store: what a grant approves, and what ends it (hitl.grants, CREATE)."""

from __future__ import annotations

import threading

import pytest

from hitl import Approvals
from hitl.errors import ConfigError
from hitl.grants import GrantStore, NotGrantable, VoteOutcome
from hitl.models import Request
from hitl.policy import Policy
from tests.helpers import events, eventually, publish_policy

POLICY = """
defaults:
  grants: {max: 8h, max_uses: 50}
actions:
  send_email: {mode: gate}
  delete_db: {mode: gate}
  wire_money: {mode: gate, grants: {max: 1h, max_uses: 5, irreversible: true}}
"""


def _granted(approvals: Approvals, grants: GrantStore, *, uses: int = 3, seconds: float = 3600,
             pins: tuple[str, ...] = (), **fields: object) -> Request:
    """File a request, approve it as U0ALICE and grant from it."""
    fields = {"action": "send_email", "summary": "s", "requested_by": "U0DAVE", **fields}
    handle = approvals.request(**fields)  # type: ignore[arg-type]
    approvals.decide(handle.id, "approve", by="U0ALICE")
    req = approvals.fetch(handle.id)
    vote = grants.vote(req, "U0ALICE", seconds=seconds, uses=uses, pins=pins)
    assert vote.outcome is VoteOutcome.CREATED
    return req


@pytest.fixture
def grants(approvals: Approvals) -> GrantStore:
    publish_policy(approvals, POLICY)
    return GrantStore(approvals.store.redis, approvals.store.keys)


def test_a_grant_approves_the_next_matching_request_and_names_who_granted(approvals, grants, conn, prefix) -> None:
    _granted(approvals, grants, uses=2)
    nxt = approvals.request(action="send_email", summary="again", requested_by="U0DAVE")
    d = nxt.wait(timeout=5)
    assert d.approved and d.grant is not None and d.grant.by == ["U0ALICE"] and d.by == ["U0ALICE"]
    assert d.grant.uses_left == 1 and "grant" in d.explanation()
    used = [e for e in events(conn, prefix, nxt.id) if e["type"] == "grant_used"]
    assert used and used[0]["grant"] == d.grant.id and "U0ALICE" in used[0]["by"]
    # other requester, other action: each waits for a person
    assert approvals.request(action="send_email", summary="x", requested_by="U0ERIN").status() == "pending"
    assert approvals.request(action="delete_db", summary="x", requested_by="U0DAVE").status() == "pending"
    assert approvals.request(action="send_email", summary="x", requested_by="U0DAVE", via="other").status() == "pending"


def test_uses_run_out_and_a_pinned_parameter_must_stay(approvals, grants) -> None:
    _granted(approvals, grants, uses=2, pins=("to",), params={"to": "billing@example.com", "n": 1})
    same = approvals.request(action="send_email", summary="s", requested_by="U0DAVE",
                             params={"to": "billing@example.com", "n": 7})
    assert same.status() == "approved"
    other = approvals.request(action="send_email", summary="s", requested_by="U0DAVE",
                              params={"to": "all@example.com", "n": 7})
    assert other.status() == "pending"
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE",
                             params={"to": "billing@example.com"}).status() == "approved"
    assert grants.live() == []
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE",
                             params={"to": "billing@example.com"}).status() == "pending"


def test_concurrent_requests_never_spend_more_uses_than_granted(approvals, grants, settings) -> None:
    _granted(approvals, grants, uses=5)
    statuses: list[str] = []
    lock = threading.Lock()

    def agent() -> None:
        with Approvals(settings=settings) as own:
            for _ in range(5):
                s = own.request(action="send_email", summary="s", requested_by="U0DAVE").status()
                with lock:
                    statuses.append(s)

    threads = [threading.Thread(target=agent) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses.count("approved") == 5 and statuses.count("pending") == 15


def test_revoke_the_kill_switch_and_expiry_end_a_grant(approvals, grants) -> None:
    req = _granted(approvals, grants, uses=50)
    [grant] = grants.live()
    assert grant.request == req.id and grant.uses_left == 50
    approvals.store.pause("send_email", "U0ALICE")
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "pending"
    approvals.store.pause("send_email", "U0ALICE", on=False)
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "approved"
    assert grants.revoke(by="U0ALICE", action="send_email") == [grant.id]
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "pending"
    _granted(approvals, grants, uses=50, seconds=1)
    eventually(
        lambda: approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "pending",
        timeout=30, what="the one-second grant to end",
    )
    assert grants.live() == []


def test_the_policy_decides_what_is_grantable(approvals, grants) -> None:
    irreversible = approvals.fetch(approvals.request(action="send_email", summary="s", reversible=False).id)
    critical = approvals.fetch(approvals.request(action="send_email", summary="s", risk="critical").id)
    allowed = approvals.fetch(approvals.request(action="wire_money", summary="s", reversible=False).id)
    assert irreversible.grantable is None and critical.grantable is None
    assert allowed.grantable is not None and allowed.grantable.max == 3600
    with pytest.raises(NotGrantable):
        grants.vote(irreversible, "U0ALICE", seconds=3600, uses=1)
    with pytest.raises(NotGrantable):
        grants.vote(allowed, "U0ALICE", seconds=7200, uses=1)
    with pytest.raises(NotGrantable):
        grants.vote(allowed, "U0ALICE", seconds=600, uses=6)


def test_a_quorum_request_grants_only_when_its_quorum_chose_to(approvals, grants) -> None:
    handle = approvals.request(action="send_email", summary="s", requested_by="U0DAVE", quorum=2)
    approvals.decide(handle.id, "approve", by="U0ALICE")
    first = grants.vote(approvals.fetch(handle.id), "U0ALICE", seconds=3600, uses=5)
    assert first.outcome is VoteOutcome.VOTED and grants.live() == []
    approvals.decide(handle.id, "approve", by="U0BOB")
    second = grants.vote(approvals.fetch(handle.id), "U0BOB", seconds=900, uses=3)
    assert second.outcome is VoteOutcome.CREATED
    [grant] = grants.live()
    assert grant.by == ["U0ALICE", "U0BOB"] and grant.uses == 3
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE", quorum=2).status() == "approved"
    # a request asking for a larger quorum than granted gets a card
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE", quorum=3).status() == "pending"


def test_a_policy_without_grants_stops_live_grants_and_defaults_cannot_allow_irreversible(
    approvals, grants
) -> None:
    _granted(approvals, grants, uses=50)
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "approved"
    publish_policy(approvals, "actions:\n  send_email: {mode: gate}\n")
    assert approvals.request(action="send_email", summary="s", requested_by="U0DAVE").status() == "pending"
    with pytest.raises(ConfigError, match="irreversible"):
        Policy.from_yaml("defaults:\n  grants: {irreversible: true}\n")


def test_only_someone_whose_approval_the_request_records_may_grant(approvals, grants) -> None:
    """The grant script reads who approved from the request itself: a vote from anyone else (a
    bystander, or a call made before or without the approval) creates nothing."""
    handle = approvals.request(action="send_email", summary="s", requested_by="U0DAVE")
    early = grants.vote(approvals.fetch(handle.id), "U0ALICE", seconds=3600, uses=5)
    assert early.outcome is VoteOutcome.REFUSED and grants.live() == []
    approvals.decide(handle.id, "approve", by="U0ALICE")
    bystander = grants.vote(approvals.fetch(handle.id), "U0MALLORY", seconds=3600, uses=5)
    assert bystander.outcome is VoteOutcome.REFUSED and grants.live() == []
    assert grants.vote(approvals.fetch(handle.id), "U0ALICE", seconds=3600, uses=5).outcome is VoteOutcome.CREATED
