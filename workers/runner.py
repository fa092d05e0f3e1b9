"""`hitl worker`: the RQ worker loop, plus the background loops that do the real work.

One process runs:
- the ticker thread, which fires deadlines (expire, finalize, escalate) itself, first and
  never behind a Slack call, and hands due card syncs to
- the delivery loop, a few threads making Slack calls, one channel per thread at a time;
- the RQ worker loop in the main thread, for jobs enqueued by name (escalation pings).

Background loops are objects with `start()` and `stop()`, listed by `background_loops`:
add a loop there (a maintenance sweep, a webhook consumer) and `run` starts it before the
RQ loop and stops it, in reverse order, when the worker stops.

A Redis outage of any length stops nothing for good: every loop backs off and retries,
and the process logs one line when the outage starts and one when it ends.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import redis
from rq import SimpleWorker, Worker

from hitl.settings import Settings
from workers import queues
from workers.delivery import DeliveryLoop
from workers.health import OUTAGE_ERRORS, Backoff, RedisHealth
from workers.ticker import Ticker

log = logging.getLogger(__name__)

# RQ maintenance (abandoned-job cleanup) every this many seconds, instead of RQ's ten
# minutes, so a dead worker's duties move quickly.
MAINTENANCE_INTERVAL = 15
# Seconds a worker counts as alive without a heartbeat.
WORKER_TTL = 35


class BackgroundLoop(Protocol):
    """A loop running beside the RQ worker for the life of the process."""

    name: str

    def start(self) -> object: ...

    def stop(self) -> None: ...


class _QuietOutages(logging.Filter):
    """RQ logs every failed reconnect attempt; `RedisHealth` logs each outage once instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "could not connect to Redis" not in record.getMessage() and "Redis connection timeout" not in (
            record.getMessage()
        )


def build_worker(connection: redis.Redis, prefix: str, *, fork: bool = False) -> Worker:
    cls = Worker if fork else SimpleWorker
    return cls(
        queues.all_queues(connection, prefix),
        connection=connection,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
    )


def background_loops(connection: redis.Redis, settings: Settings, health: RedisHealth) -> list[BackgroundLoop]:
    """Every loop `hitl worker` runs beside RQ, in start order."""
    delivery = DeliveryLoop(connection, settings, health=health)
    ticker = Ticker(
        connection, settings.prefix, lease=settings.timer_lease, interval=settings.timer_tick,
        syncs=delivery.submit, health=health,
    )
    return [delivery, ticker]


@contextmanager
def running(loops: list[BackgroundLoop]) -> Iterator[None]:
    """Start the loops; stop them in reverse order however the block ends."""
    started: list[BackgroundLoop] = []
    try:
        for loop in loops:
            loop.start()
            started.append(loop)
        yield
    finally:
        for loop in reversed(started):
            try:
                loop.stop()
            except Exception:
                log.exception("stopping the %s loop failed", loop.name)


class _StopFlag:
    """SIGINT/SIGTERM while no RQ worker is running (waiting out an outage)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.event.set())


def _wait_for_redis(connection: redis.Redis, health: RedisHealth, stop: threading.Event) -> None:
    backoff = Backoff(first=0.2, cap=2.0)
    while not stop.is_set():
        try:
            connection.ping()
            health.ok()
            return
        except OUTAGE_ERRORS as exc:
            health.failed(exc, "the RQ worker")
            stop.wait(backoff.next())


def run(settings: Settings, *, burst: bool = False, fork: bool = False) -> None:
    """Run until stopped (SIGINT/SIGTERM finish the current job first).

    RQ's `work()` returns (it "quits") when a job or its bookkeeping hits a connection
    error; here a new RQ worker takes over once Redis answers again, so the process and
    its background loops never exit because of an outage.
    """
    # RQ blocks on its queues for up to WORKER_TTL - 15 s: the socket must wait longer than
    # that (redis-py's default read timeout would cut every idle dequeue short).
    connection = redis.Redis.from_url(
        settings.redis, socket_timeout=WORKER_TTL + 15, socket_connect_timeout=5, health_check_interval=30
    )
    # The loops get their own pool with short timeouts: a stalled Redis must not hang them.
    loops_connection = redis.Redis.from_url(
        settings.redis, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )
    logging.getLogger("rq.worker").addFilter(_QuietOutages())
    health = RedisHealth()
    stop = _StopFlag()
    stop.install()
    with running(background_loops(loops_connection, settings, health)):
        while not stop.event.is_set():
            _wait_for_redis(connection, health, stop.event)
            if stop.event.is_set():
                break
            try:
                worker = build_worker(connection, settings.prefix, fork=fork)
                log.info("hitl worker %s listening on %s", worker.name, ", ".join(worker.queue_names()))
                worker.work(burst=burst, with_scheduler=False, logging_level="INFO")
            except OUTAGE_ERRORS as exc:
                health.failed(exc, "the RQ worker")
                continue
            if burst or worker._stop_requested:
                break
            stop.install()  # RQ's handlers went with its worker; keep SIGTERM working
            stop.event.wait(1.0)  # then a new RQ worker, once Redis answers
