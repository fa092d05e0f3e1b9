"""`hitl worker` rides out Redis outages under load: nothing exits, everything catches up.

Each test runs its own redis-server (append-only, fsync always) on a free port, two real
worker processes, the Slack stand-in, and an agent filing and deciding requests the whole
time. Redis is stopped for real (the process ends) and started again on the same port.
Afterwards every deadline has fired, every request is on a card, the workers are the
same processes, and each logged the outage once as it began and once as it ended.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from hitl_sandbox import SlackStandIn

from hitl import Approvals
from hitl.embedded import EmbeddedRedis
from tests.conftest import make_settings
from tests.helpers import ROOT, eventually, hitl_env, start_worker, stop
from tests.slack.conftest import CHANNEL, TOKEN

# Deadline of the short requests: many fall inside the outage.
SHORT_TIMEOUT = 4.0


class Agent(threading.Thread):
    """Files requests (some with short deadlines) and decides some, until stopped;
    failures while Redis is away are expected and skipped."""

    def __init__(self, approvals: Approvals) -> None:
        super().__init__(daemon=True)
        self.approvals = approvals
        self.filed: dict[str, bool] = {}  # id -> has a short deadline
        self.decided: set[str] = set()
        self.stopping = threading.Event()

    def run(self) -> None:
        n = 0
        while not self.stopping.wait(0.1):
            n += 1
            short = n % 2 == 0
            try:
                req = self.approvals.request(
                    action="restart_service", summary=f"Restart {n}", timeout=SHORT_TIMEOUT if short else 600,
                )
                self.filed[req.id] = short
                if n % 5 == 0:
                    self.approvals.decide(req.id, "approve", by="U0ALICE")
                    self.decided.add(req.id)
            except (redis.RedisError, OSError):
                continue


@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis(persistent=True) as server:
        yield server


def _shown(slack: SlackStandIn) -> set[str]:
    seen: set[str] = set()
    for msg in slack.workspace.messages(CHANNEL, include_replies=False):
        payload = (msg.metadata or {}).get("event_payload") or {}
        seen.update(payload.get("ids") or [payload.get("id")])
    return seen


def _outage(private_redis: EmbeddedRedis, seconds: float) -> None:
    prefix = f"outage{int(time.time())}"
    settings = make_settings(private_redis.url, prefix)
    with SlackStandIn(bot_token=TOKEN) as slack:
        workers = [
            start_worker(
                private_redis.url, prefix, SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.url,
                HITL_DEFAULT_CHANNEL=CHANNEL, HITL_TIMER_LEASE="2",
            )
            for _ in range(2)
        ]
        approvals = Approvals(settings=settings)
        agent = Agent(approvals)
        try:
            agent.start()
            time.sleep(3)  # load before the outage
            private_redis.stop()
            time.sleep(seconds)
            private_redis.start()
            outage_ended = time.time()
            time.sleep(SHORT_TIMEOUT)  # load after it
            agent.stopping.set()
            agent.join(10)

            assert len(agent.filed) > 40
            for proc in workers:
                assert proc.poll() is None, Path(proc.log_path).read_text()[-3000:]
            short = [rid for rid, is_short in agent.filed.items() if is_short and rid not in agent.decided]

            def all_expired() -> bool:
                return all(approvals.store.status(rid) == "expired" for rid in short)

            eventually(all_expired, 30, "every deadline to fire")
            stored = [approvals.store.get(rid) for rid in short]
            assert all(r.decided_at >= r.deadline for r in stored)  # never early
            after = [r for r in stored if r.deadline > outage_ended + 1]
            assert after, "some deadlines fall after the outage"
            assert all(r.decided_at - r.deadline < 2.0 for r in after)  # on time again
            filed = set(agent.filed)
            try:
                eventually(lambda: filed <= _shown(slack), 90, "every request on a card")
            except AssertionError:
                c = redis.Redis.from_url(private_redis.url)
                for rid in list(filed - _shown(slack))[:5]:
                    print(rid, c.hgetall(f"{prefix}:req:{rid}"), c.zscore(f"{prefix}:timers", f"{rid}|sync"),
                          c.get(f"{prefix}:req:{rid}:posting"), time.time())
                print(c.zrange(f"{prefix}:timers", 0, 10, withscores=True))
                print(Path(workers[0].log_path).read_text()[-3000:])
                raise
            for proc in workers:
                assert proc.poll() is None
        finally:
            agent.stopping.set()
            for proc in workers:
                stop(proc)
            approvals.close()
    for proc in workers:
        log = Path(proc.log_path).read_text()
        assert log.count("Redis unreachable") == 1, log[-3000:]
        assert log.count("Redis reachable again") == 1, log[-3000:]
        assert "Traceback" not in log, log[-3000:]


# The suite's 120 s per test is less than these tests' own bounds: load before and after the
# outage (3 + 4 s), the outage, 30 s for every deadline to fire, 90 s for every card to show.
# Seen in CI: the 60 s one stopped by the 120 s limit while its cards were still catching up.
@pytest.mark.timeout(15 + 130 + 60)
def test_workers_ride_out_a_15_second_outage_under_load(private_redis: EmbeddedRedis) -> None:
    _outage(private_redis, 15)


@pytest.mark.timeout(60 + 130 + 60)
def test_workers_ride_out_a_60_second_outage_under_load(private_redis: EmbeddedRedis) -> None:
    _outage(private_redis, 60)


def test_a_worker_started_while_redis_is_down_waits_for_it_and_serves(private_redis: EmbeddedRedis) -> None:
    """A worker (re)started during an outage used to exit with "Redis ... failed" while reading
    the policy in force; it waits for Redis like a running worker, then delivers cards."""
    prefix = f"late{int(time.time())}"
    with SlackStandIn(bot_token=TOKEN) as slack:
        private_redis.stop()
        env = hitl_env(private_redis.url, prefix, SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.url,
                       HITL_DEFAULT_CHANNEL=CHANNEL, HITL_TIMER_TICK="0.05", HITL_WEBHOOK_FEED_BLOCK="0.05")
        log = tempfile.NamedTemporaryFile(prefix="hitl-worker-", suffix=".log", delete=False)  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "hitl.cli", "worker"], env=env, cwd=ROOT,
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        proc.log_path = log.name  # type: ignore[attr-defined]
        try:
            eventually(lambda: proc.poll() is not None or "Redis unreachable" in Path(log.name).read_text(),
                       30, "the worker to report Redis unreachable")
            assert proc.poll() is None, Path(log.name).read_text()[-3000:]
            private_redis.start()
            approvals = Approvals(settings=make_settings(private_redis.url, prefix))
            req = approvals.request(action="restart_service", summary="After the outage", timeout=600)
            eventually(lambda: req.id in _shown(slack), 30, "the card of a request filed after Redis came back")
            assert proc.poll() is None
            assert "Redis reachable again" in Path(log.name).read_text()
            approvals.close()
        finally:
            stop(proc)
