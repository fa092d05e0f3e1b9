"""Autonomy readiness per criterion, and the review-latency criterion (p99 over 30 min)."""

from __future__ import annotations

from hitl import stats
from hitl.policy import AutonomyThresholds
from hitl.status import Mode

LIMITS = AutonomyThresholds(min_decisions=10, min_approved_unedited=0.9, no_critical_rejection_days=14,
                            max_override_rate=0.05)
NOW = 1_800_000_000.0


def test_readiness_shows_progress_and_why_not_yet() -> None:
    s = stats.ActionStats("deploy", {"approved": 4, "approved_unedited": 3, "rejected": 1}, 30.0,
                          NOW - 2 * 86400, p99_seconds=60.0)
    r = s.readiness(Mode.GATE, LIMITS, now=NOW)
    by = {c.name: c for c in r.criteria}
    assert not r.ready and r.next is Mode.OVERRIDE
    assert by["decisions"].progress == 0.5 and by["decisions"].shown == "5 of 10"
    assert by["approved_unedited"].value == 0.6 and not by["approved_unedited"].met
    assert by["critical_rejection"].shown == "2.0 of 14 days"
    assert r.why_not == [
        "needs 5 more decisions",
        "60% approved unedited, needs 90%",
        "a critical rejection 2.0 days ago; needs 14 days without one",
    ]
    assert r.bottleneck is None


def test_slow_review_is_called_the_bottleneck_when_the_action_otherwise_qualifies() -> None:
    counts = {"approved": 10, "approved_unedited": 10}
    slow = stats.ActionStats("deploy", counts, 600.0, None, p99_seconds=45 * 60)
    advice = slow.recommendation(Mode.GATE, LIMITS, now=NOW)
    assert advice is not None
    assert advice.startswith("deploy has earned a step from gate to override")
    assert advice.endswith(
        "Review has become the bottleneck: p99 human review time is 45 min, over 30 min"
    )
    quick = stats.ActionStats("deploy", counts, 60.0, None, p99_seconds=29 * 60)
    assert "bottleneck" not in (quick.recommendation(Mode.GATE, LIMITS, now=NOW) or "")
    # Slow review alone earns nothing: it is said only for an action that qualifies.
    few = stats.ActionStats("deploy", {"approved": 3, "approved_unedited": 3}, 600.0, None, p99_seconds=3600)
    assert few.recommendation(Mode.GATE, LIMITS, now=NOW) is None


def test_p99_comes_from_the_stored_durations(approvals) -> None:
    key = approvals.keys.durations("deploy")
    approvals.redis.rpush(key, *[1000] * 98, 3_000_000, 4_000_000)
    s = stats.action_stats(approvals.store, "deploy")
    assert s.p99_seconds == 3000.0
