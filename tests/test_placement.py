"""The delivery bookkeeping scripts, against a real Redis."""

from __future__ import annotations

from hitl import Approvals
from hitl.keys import Keys
from hitl.placement import Placement, PostClaim, Shown
from hitl.store import now_ms


def test_a_posting_claim_is_exclusive_until_stale(conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    assert placement.claim_post("r1", "w1", 1_000, stale_ms=20_000, ttl=60) is PostClaim.MINE
    assert placement.claim_post("r1", "w2", 5_000, stale_ms=20_000, ttl=60) is PostClaim.BUSY
    # w1 died mid-post: after the stale time the next worker must look before posting
    assert placement.claim_post("r1", "w2", 21_001, stale_ms=20_000, ttl=60) is PostClaim.STALE
    assert placement.claim_post("r1", "w3", 22_000, stale_ms=20_000, ttl=60) is PostClaim.BUSY


def test_a_lost_answer_makes_the_claim_stale_at_once(conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    now = now_ms()
    assert placement.claim_post("r1", "w1", now, stale_ms=20_000, ttl=60) is PostClaim.MINE
    placement.mark_uncertain(["r1"], ttl=60)
    assert placement.claim_post("r1", "w1", now + 1, stale_ms=20_000, ttl=60) is PostClaim.STALE


def test_recording_a_card_settles_its_sync_only_when_it_shows_the_latest(
    approvals: Approvals, conn, prefix
) -> None:
    placement = Placement(conn, Keys(prefix))
    req = approvals.request(action="a", summary="s")
    drawn = Shown.of(req.fetch())
    approvals.decide(req.id, "approve", by="U01")  # changes after it was drawn
    placement.record_card(req.id, "C1", "1.0", drawn)
    assert conn.zscore(f"{prefix}:timers", f"{req.id}|sync") is not None  # still to redraw
    placement.mark_shown([Shown.of(req.fetch())])
    assert conn.zscore(f"{prefix}:timers", f"{req.id}|sync") is None


def test_mirrors_are_added_once(approvals: Approvals, conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    req = approvals.request(action="a", summary="s")
    assert placement.add_mirror(req.id, "C2", "2.0")
    assert not placement.add_mirror(req.id, "C2", "2.0")
    assert placement.add_mirror(req.id, "C3", "3.0")
    assert approvals.store.get_placed(req.id).card.mirrors == [("C2", "2.0"), ("C3", "3.0")]


def test_a_workspace_method_is_spaced_across_callers(conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    assert [placement.take_slot("chat.update", 60_000, burst=2) for _ in range(2)] == [0, 0]
    assert placement.take_slot("chat.update", 60_000, burst=2) > 50_000
    placement.cool_down("chat.postMessage", 5_000)
    assert placement.take_slot("chat.postMessage", 10, burst=1) > 4_000


def test_only_leases_still_held_are_extended(conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    timers = f"{prefix}:timers"
    conn.zadd(timers, {"a|sync": 100, "b|sync": 200})
    conn.zadd(timers, {"b|sync": 5})  # re-armed by a transition meanwhile
    assert placement.extend({"a|sync": 100, "b|sync": 200}, 9_999) == {"a|sync"}
    assert conn.zscore(timers, "a|sync") == 9_999 and conn.zscore(timers, "b|sync") == 5


def test_a_request_goes_to_its_cards_channel_else_its_own(approvals: Approvals, conn, prefix) -> None:
    placement = Placement(conn, Keys(prefix))
    carded = approvals.request(action="a", summary="s", channel="C1")
    fresh = approvals.request(action="a", summary="s", channel="C2")
    placement.record_card(carded.id, "C9", "1.0", Shown.of(carded.fetch()))
    pipe = conn.pipeline(transaction=False)
    pipe.ping()  # queued before: runs in the same round trip, its reply is not returned
    assert placement.channels([carded.id, fresh.id, "gone"], pipeline=pipe) == {
        carded.id: "C9", fresh.id: "C2", "gone": None,
    }
    assert placement.channels([fresh.id]) == {fresh.id: "C2"}
    assert placement.channels([]) == {}
