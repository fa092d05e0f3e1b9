"""Hands due timers to RQ, from every worker process.

Why not RQ's scheduler alone: its scores are whole seconds (a job may run up to 1 s
early) and when the worker holding its lock dies another takes over only after its
maintenance interval (ten minutes by default). The timers zset in Redis is the source of
truth instead; each worker's ticker leases due members with one script (so two tickers
never take the same one) and enqueues jobs for them. A worker that dies holding a lease
loses it after `HITL_TIMER_LEASE` seconds and another ticker takes the timer over.
"""

from __future__ import annotations

import logging
import threading

import redis
from rq import Queue

from hitl.keys import Keys, parse_timer_member
from hitl.store import Store
from workers import queues

log = logging.getLogger(__name__)

# Most timers leased per claim, and per timer job.
CLAIM_LIMIT = 500
BATCH_SIZE = 100
# Cards synced per Slack job: few enough that one slow Slack call delays little else.
SYNC_BATCH = 10


class Ticker:
    """Claims due timers and enqueues the jobs that handle them."""

    def __init__(self, connection: redis.Redis, prefix: str, *, lease: float, interval: float) -> None:
        self.store = Store(connection, Keys(prefix))
        self.prefix = prefix
        self.lease = lease
        self.interval = interval
        self.timers_q = queues.queue(connection, prefix, queues.TIMERS)
        self.slack_q = queues.queue(connection, prefix, queues.SLACK)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> int:
        """One claim-and-dispatch round; returns how many timers were handed out."""
        items = self.store.claim_timers(self.lease, CLAIM_LIMIT)
        timers = [i for i in items if not i[0].endswith("|sync")]
        jobs = [
            Queue.prepare_data(
                "workers.timers.fire_timers", (self.prefix, timers[n : n + BATCH_SIZE]), result_ttl=60
            )
            for n in range(0, len(timers), BATCH_SIZE)
        ]
        if jobs:
            self.timers_q.enqueue_many(jobs)
        syncs = []
        for member, _due, lease in items:
            rid, kind, _step = parse_timer_member(member)
            if kind == "sync":
                syncs.append((rid, lease))
        batches = [
            Queue.prepare_data(
                "workers.cards.sync_cards", (self.prefix, syncs[n : n + SYNC_BATCH]), result_ttl=60
            )
            for n in range(0, len(syncs), SYNC_BATCH)
        ]
        if batches:
            self.slack_q.enqueue_many(batches)
        return len(items)

    def run(self) -> None:
        backoff = self.interval
        while not self._stop.is_set():
            try:
                handed = self.tick()
                backoff = self.interval
            except redis.RedisError as exc:
                log.warning("timer ticker: Redis error (%s); retrying", exc)
                handed = 0
                backoff = min(backoff * 2, 5.0)
            if handed < CLAIM_LIMIT:
                self._stop.wait(backoff)

    def start(self) -> Ticker:
        self._thread = threading.Thread(target=self.run, name="hitl-ticker", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
