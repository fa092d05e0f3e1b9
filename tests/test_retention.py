"""Item 20: the audit is trimmed to HITL_AUDIT_RETENTION, stale pending requests are
cleaned, and nothing a stored request needs is ever trimmed."""

from __future__ import annotations

import time

import pytest
import redis

from hitl import Approvals
from hitl.errors import ConfigError, RequestNotFound
from hitl.keys import Keys
from hitl.retention import Retention
from hitl.settings import load_settings
from tests.conftest import make_settings
from tests.helpers import events, eventually, start_worker, stop

DAY = 86400


def _retention(conn: redis.Redis, prefix: str, *, retention: float, audit: float) -> Retention:
    return Retention(conn, Keys(prefix), retention=retention, audit_retention=audit)


def _ids(conn: redis.Redis, prefix: str) -> list[str]:
    return [eid.decode() for eid, _ in conn.xrange(f"{prefix}:events")]


def test_events_older_than_the_retention_are_trimmed_newer_kept(conn: redis.Redis, prefix: str) -> None:
    now_ms = int(time.time() * 1000)
    aged = {days: f"{now_ms - days * DAY * 1000}-0" for days in (120, 91, 89, 1)}
    for days, eid in aged.items():  # explicit old ids: events filed `days` ago
        conn.xadd(f"{prefix}:events", {"type": "decided", "id": f"r{days}"}, id=eid)
    done = _retention(conn, prefix, retention=30 * DAY, audit=90 * DAY).trim_audit()
    assert done.trimmed == 2 and done.held_back_by is None
    remaining = events(conn, prefix)
    assert [e.get("id") for e in remaining[:2]] == ["r89", "r1"]
    assert remaining[2]["type"] == "trimmed" and remaining[2]["count"] == "2"  # the trim is audited
    assert _retention(conn, prefix, retention=30 * DAY, audit=90 * DAY).trim_audit().trimmed == 0


def test_trim_never_breaks_a_request_still_stored(redis_url: str, prefix: str, conn: redis.Redis) -> None:
    settings = make_settings(redis_url, prefix, retention=1, audit_retention=3600)
    with Approvals(settings=settings) as approvals:
        gone = approvals.request(action="a", summary="decided, then aged out of Redis")
        approvals.decide(gone.id, "approve", by="U01")
        live = approvals.request(action="a", summary="still pending", timeout=7 * DAY)
        later = approvals.request(action="a", summary="filed after")
        eventually(lambda: not conn.exists(f"{prefix}:req:{gone.id}"), 10, "the decided request to expire")
        # Two hours from now every event here is older than the one-hour audit retention.
        done = _retention(conn, prefix, retention=1, audit=3600).trim_audit(now=time.time() + 7200)
        assert done.held_back_by == live.id and done.trimmed == 2  # gone's created and decided
        kept = [e.get("id") for e in events(conn, prefix)]
        assert gone.id not in kept and live.id in kept and later.id in kept
        assert live.fetch().summary == "still pending"  # its document is still readable
        approvals.decide(live.id, "approve", by="U01")
        assert live.wait(5).approved


def test_stale_pending_request_is_cleaned_a_live_one_untouched(
    redis_url: str, prefix: str, conn: redis.Redis
) -> None:
    settings = make_settings(redis_url, prefix, retention=60, audit_retention=60)
    keys = Keys(prefix)
    with Approvals(settings=settings) as approvals:
        stale = approvals.request(action="deploy", summary="lost its timers", channel="C1", timeout=1)
        live = approvals.request(action="deploy", summary="waiting", channel="C1", timeout=3600)
        live_before = live.fetch()
        live_timers = conn.zscore(keys.timers, f"{live.id}|timeout")
        # No worker runs: `stale` stays pending past its deadline; 70 s later it is past
        # deadline + HITL_RETENTION (60 s).
        cleaned = _retention(conn, prefix, retention=60, audit=60).clean_stale(now=time.time() + 70)
        assert cleaned == [stale.id]
        with pytest.raises(RequestNotFound):
            stale.fetch()
        for index in (keys.pending, keys.deadlines, keys.pending_channel("C1"), keys.pending_mode("gate")):
            assert conn.zscore(index, stale.id) is None, index
            assert conn.zscore(index, live.id) is not None, index
        assert not [m for m in conn.zrange(keys.timers, 0, -1) if m.decode().startswith(stale.id)]
        audit = events(conn, prefix, stale.id)
        assert audit[-1]["type"] == "cleaned" and audit[-1]["status"] == "pending"
        assert live.fetch() == live_before
        assert conn.zscore(keys.timers, f"{live.id}|timeout") == live_timers


def test_one_worker_per_period_takes_the_maintenance_lock(conn: redis.Redis, prefix: str) -> None:
    first = _retention(conn, prefix, retention=DAY, audit=DAY)
    second = _retention(conn, prefix, retention=DAY, audit=DAY)
    assert first.acquire(30) and not second.acquire(30)


def test_audit_retention_shorter_than_request_retention_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None, HITL_RETENTION="864000", HITL_AUDIT_RETENTION="2d")
    assert str(info.value).startswith("HITL_AUDIT_RETENTION: must be at least HITL_RETENTION")
    assert load_settings(_env_file=None, HITL_AUDIT_RETENTION="120d").audit_retention == 120 * DAY


def test_the_worker_trims_old_audit_events(redis_url: str, prefix: str, conn: redis.Redis) -> None:
    now_ms = int(time.time() * 1000)
    old, recent = f"{now_ms - 3 * 3600 * 1000}-0", f"{now_ms - 60 * 1000}-0"
    conn.xadd(f"{prefix}:events", {"type": "decided", "id": "old"}, id=old)
    conn.xadd(f"{prefix}:events", {"type": "decided", "id": "recent"}, id=recent)
    worker = start_worker(redis_url, prefix, HITL_RETENTION="60", HITL_AUDIT_RETENTION="1h")
    try:
        eventually(lambda: old not in _ids(conn, prefix), 30, "the worker's maintenance loop to trim")
    finally:
        stop(worker)
    assert recent in _ids(conn, prefix)
