"""Reading the shared figures: the pending breakdown both ways, histograms, hours."""

from __future__ import annotations

from hitl import metrics
from tests.conftest import make_settings


def test_pending_breakdown_by_index_matches_a_full_scan(redis_url: str, prefix: str) -> None:
    from hitl import Approvals

    with Approvals(settings=make_settings(redis_url, prefix)) as a:  # no default channel
        for n in range(7):
            a.request(action="deploy", summary=f"d{n}", mode="gate", channel=f"C{n % 3}")
        a.request(action="email", summary="e", mode="override", window=60, channel="C1")
        a.request(action="email", summary="no channel", mode="shadow")
        decided = a.request(action="deploy", summary="gone", mode="gate", channel="C0")
        a.decide(decided.id, "approve", by="U1")
        by_index = metrics.pending_breakdown(a.redis, a.keys)
        assert by_index == metrics.scanned_breakdown(a.redis, a.keys)
        assert by_index == {
            ("C0", "gate"): 3, ("C1", "gate"): 2, ("C2", "gate"): 2, ("C1", "override"): 1, ("", "shadow"): 1,
        }


def test_histogram_buckets_are_cumulative_with_quantiles() -> None:
    h = metrics.Histogram((1, 5, 30), [2, 1, 0, 1], sum=40.5, count=4)
    assert h.cumulative() == [("1.0", 2), ("5.0", 3), ("30.0", 3), ("+Inf", 4)]
    assert (h.quantile(0.5), h.quantile(0.75), h.quantile(1.0)) == (1, 5, float("inf"))
    assert metrics.bucket_index((1, 5, 30), 5) == 2 and metrics.bucket_index((1, 5, 30), 31) == 4


def test_decisions_land_in_the_current_hour(approvals) -> None:
    req = approvals.request(action="deploy", summary="d", mode="gate")
    approvals.decide(req.id, "reject", by="U1", comment="no")
    hours = metrics.read_hours(approvals.redis, approvals.keys, hours=3)
    assert len(hours) == 3 and hours[0].start < hours[1].start < hours[2].start
    assert hours[-1].final == {("deploy", "rejected"): 1}
    assert hours[-1].decision["deploy"].buckets[0] == 1  # decided within a second
    ttl = approvals.redis.ttl(approvals.keys.metrics_hour(int(hours[-1].start // 3600)))
    assert 0 < ttl <= metrics.HOUR_TTL
