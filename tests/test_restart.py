"""Item 14: with an append-only file, a Redis restart mid-flight loses nothing.

Requests pending (with their timers), some approved and acknowledged, agents blocked in
`wait()`: Redis goes away (killed, as in a crash, with `appendfsync always`; or shut down
cleanly with `everysec`) and comes back from its AOF. Every pending request is still
pending with the same timers, every acknowledged decision is still there, and the waiting
agents get the decisions taken after the restart.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
import redis

from hitl import Approvals, RequestHandle
from hitl.models import Decision
from tests.conftest import make_settings
from tests.helpers import eventually, publish_policy
from tests.private_redis import PrivateRedis

POLICY = """
actions:
  deploy:
    mode: gate
    timeout: 1h
    escalation:
      - {after: 10m, notify: [U0ONCALL]}
      - {after: 20m, channel: "#eng-leads"}
"""


def _snapshot(conn: redis.Redis, prefix: str) -> dict[str, object]:
    """Everything that says what is pending and when it fires."""
    return {
        name: conn.zrange(f"{prefix}:{name}", 0, -1, withscores=True)
        for name in ("timers", "deadlines", "pending", "pending:mode:gate")
    }


def _answers(url: str) -> bool:
    conn = redis.Redis.from_url(url)
    try:
        return bool(conn.ping())
    except redis.ConnectionError:
        return False
    finally:
        conn.close()


@pytest.mark.parametrize(("fsync", "crash"), [("always", True), ("everysec", False)], ids=["crash", "shutdown"])
def test_restart_with_aof_loses_nothing(prefix: str, tmp_path: Path, fsync: str, crash: bool) -> None:
    policy = tmp_path / "policy.yml"
    policy.write_text(POLICY)
    with PrivateRedis("--appendonly", "yes", "--appendfsync", fsync, "--save", "") as server:
        settings = make_settings(server.url, prefix)
        with Approvals(settings=settings) as approvals, ThreadPoolExecutor(12) as pool:
            publish_policy(approvals, policy.read_text())
            filed = [
                approvals.request(action="deploy", summary=f"Deploy {i}", requested_by="U09") for i in range(60)
            ]
            approved, rejected, waited, idle = filed[:15], filed[15:20], filed[20:32], filed[32:]
            for h in approved:
                approvals.decide(h.id, "approve", by="U01", comment="ok")  # acknowledged
            for h in rejected:
                approvals.decide(h.id, "reject", by="U02", comment="no")
            conn = approvals.redis
            before = _snapshot(conn, prefix)
            assert len(before["timers"]) == 3 * 40 + 60  # pending: timeout + 2 escalations; all: a card sync
            waiters: dict[str, Future[Decision]] = {h.id: pool.submit(h.wait, 120) for h in waited}
            dispatcher = approvals.dispatcher()
            eventually(
                lambda: len(dispatcher.registered()) >= len(waited) and dispatcher.checks_queued() == 0,
                30, "every agent to block in wait()",
            )

            server.restart(kill=crash)

            eventually(lambda: _answers(server.url), 30, "Redis to come back")
            assert not any(f.done() for f in waiters.values())  # still waiting, through the outage
            assert _snapshot(conn, prefix) == before
            for h in [*waited, *idle]:
                req = h.fetch()
                assert req.status == "pending" and req.escalated == 0, h.id
            for h in approved:
                d = h.fetch().decision()
                assert (d.status, d.by, d.comment, d.approved) == ("approved", ["U01"], "ok", True)
                assert RequestHandle(approvals, h.id, h.mode).wait(5).approved  # done list kept
            for h in rejected:
                assert h.fetch().decision().status == "rejected"

            for n, h in enumerate(waited):
                approvals.decide(h.id, "approve" if n % 2 else "reject", by="U03", comment=f"after {n}")
            for n, h in enumerate(waited):
                decision = waiters[h.id].result(timeout=60)
                expected = "approved" if n % 2 else "rejected"
                assert (decision.status, decision.by, decision.comment) == (expected, ["U03"], f"after {n}")
