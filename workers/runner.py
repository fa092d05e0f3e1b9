"""`hitl worker`: the RQ worker loop, plus the background loops that do the real work.

One process runs:
- the ticker thread, which fires deadlines (expire, finalize, escalate) itself, first and
  never behind a Slack call, and hands due card syncs to
- the delivery loop, a few threads making Slack calls, one channel per thread at a time;
- the webhook sender, a few threads running the decision-webhook attempts the ticker
  hands over (retries are timers too, `{id}|hook|{n}`);
- the maintenance loop (audit trim, stale-request cleanup) and the webhook feed (final
  events from the audit stream, each armed as a first webhook attempt);
- with ``HITL_POLICY_FILE``, the policy publisher (`hitl.policystore.PolicyPublisher`);
- the RQ worker loop in the main thread, for jobs enqueued by name (escalation pings),
  without RQ's scheduler: every delay is a timer in Redis, so nothing waits on the
  scheduler's lock (about a minute to fail over) or dies with its child process in a
  Redis outage.

Background loops are objects with `start()` and `stop()`, listed by `background_loops`:
`run` starts them before the RQ loop and stops them, in reverse order, when the worker
stops.

A Redis outage of any length stops nothing for good: every loop backs off and retries,
and the process logs one line when the outage starts and one when it ends.
"""

from __future__ import annotations

import logging
import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

import redis
from rq import SimpleWorker, Worker

from hitl.durability import check as check_durability
from hitl.keys import Keys
from hitl.metrics import admit_policy_actions
from hitl.policystore import PolicyPublisher, PolicyStore
from hitl.settings import Settings
from workers import queues
from workers.autonomy import AutonomyLoop
from workers.delivery import DeliveryLoop
from workers.health import OUTAGE_ERRORS, Backoff, RedisHealth
from workers.maintenance import Maintenance
from workers.ticker import Ticker
from workers.webhooks import WebhookFeed, WebhookSender

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
    """RQ logs every failed reconnect attempt, and a traceback for each job or bookkeeping
    step that lost Redis; `RedisHealth` logs each outage once instead."""

    MARKERS = ("could not connect to Redis", "Redis connection timeout", "redis.exceptions.ConnectionError",
               "redis.exceptions.TimeoutError", "ConnectionRefusedError")

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], OUTAGE_ERRORS):
            return False
        message = record.getMessage()
        return not any(marker in message for marker in self.MARKERS)


def background_loops(
    connection: redis.Redis, settings: Settings, health: RedisHealth
) -> list[BackgroundLoop]:
    """Every loop `hitl worker` runs beside RQ, in start order."""
    delivery = DeliveryLoop(connection, settings, lease=settings.timer_lease, health=health)
    sender = WebhookSender(connection, settings, lease=settings.timer_lease, health=health)
    ticker = Ticker(
        connection, settings.prefix, lease=settings.timer_lease, interval=settings.timer_tick,
        syncs=delivery.submit, hooks=sender.submit, health=health, metrics=settings.metrics,
    )
    maintenance = Maintenance(connection, settings)
    webhooks = WebhookFeed(
        connection, settings.prefix, health=health, block_ms=round(settings.webhook_feed_block * 1000)
    )
    # Proposes promotions the evidence supports and reports what a file undid.
    autonomy = AutonomyLoop(settings)
    loops: list[BackgroundLoop] = [delivery, sender, ticker, maintenance, webhooks, autonomy]
    if settings.policy_file is not None:
        # Publishes HITL_POLICY_FILE at start and on change (a bad file stops the start).
        store = PolicyStore(connection, Keys(settings.prefix))
        by = f"hitl worker@{socket.gethostname()}"
        max_others = settings.metrics_max_actions
        loops.insert(0, PolicyPublisher(settings.policy_file, store, by=by, max_others=max_others))
    return loops


@contextmanager
def _stop_signals_blocked() -> Iterator[None]:
    """Threads started inside inherit a mask without SIGINT/SIGTERM, leaving those to the
    main thread (only it runs Python's handlers, and only a signal it receives itself
    interrupts RQ's blocking dequeue)."""
    stopping = {signal.SIGINT, signal.SIGTERM}
    signal.pthread_sigmask(signal.SIG_BLOCK, stopping)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, stopping)


class _Signalled:
    """What our RQ workers add: remember a stop signal (RQ's `work()` returns the same way
    whether it was told to stop or lost Redis), and keep stop signals off RQ's pubsub
    thread."""

    signalled = False

    def request_stop(self, signum: int, frame: object) -> None:
        self.signalled = True
        super().request_stop(signum, frame)  # type: ignore[misc]

    def subscribe(self) -> None:
        with _stop_signals_blocked():
            super().subscribe()  # type: ignore[misc]


class _SimpleWorker(_Signalled, SimpleWorker):
    pass


class _ForkWorker(_Signalled, Worker):
    pass


def build_worker(connection: redis.Redis, prefix: str, *, fork: bool = False) -> _SimpleWorker | _ForkWorker:
    """An RQ worker for the prefix's queues (timers first, then Slack jobs)."""
    cls = _ForkWorker if fork else _SimpleWorker
    return cls(
        queues.all_queues(connection, prefix),
        connection=connection,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
    )


@contextmanager
def running(loops: list[BackgroundLoop]) -> Iterator[None]:
    """Start the loops; stop them in reverse order however the block ends.

    The loops' threads are started with SIGINT/SIGTERM blocked, so the kernel delivers
    those to the main thread and interrupts RQ's blocking dequeue at once (a signal taken
    by another thread would wait for the dequeue to time out).
    """
    started: list[BackgroundLoop] = []
    try:
        with _stop_signals_blocked():
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
    """SIGINT/SIGTERM while RQ's own handlers are not installed (starting up, or waiting out
    an outage): no job runs then, so the process leaves at once, stopping its loops."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def install(self) -> None:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)

    def _stop(self, signum: int, _frame: object) -> None:
        self.event.set()
        raise SystemExit(0)


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


def _admit_policy_labels(
    connection: redis.Redis, settings: Settings, health: RedisHealth, stop: threading.Event
) -> bool:
    """Let the policy in force keep its action names' metric labels (the publisher, with
    HITL_POLICY_FILE, admits them again on each publication); False if stopped first.

    A worker started while Redis is away (a restart during an outage, or Redis coming up
    after the worker) waits for it here as the running worker does, rather than exiting:
    nothing in it can be lost, and a supervisor's restart loop would only add noise."""
    keys = Keys(settings.prefix)
    while not stop.is_set():
        try:
            in_force = PolicyStore(connection, keys).current().policy
            admit_policy_actions(connection, keys, in_force.actions, settings.metrics_max_actions)
            return True
        except OUTAGE_ERRORS as exc:
            health.failed(exc, "the worker's start")
            _wait_for_redis(connection, health, stop)
    return False


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
    check_durability(connection, "hitl worker")
    health = RedisHealth()
    stop = _StopFlag()
    stop.install()
    if not _admit_policy_labels(connection, settings, health, stop.event):
        return
    # The loops get their own pool with short timeouts: a stalled Redis must not hang them.
    loops_connection = redis.Redis.from_url(
        settings.redis, socket_timeout=10, socket_connect_timeout=5, health_check_interval=30
    )
    for name in ("rq.worker", "rq.job", "rq.queue"):
        logging.getLogger(name).addFilter(_QuietOutages())
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
            if burst or worker.signalled:
                break
            stop.install()  # RQ's handlers went with its worker; keep SIGTERM working
            stop.event.wait(1.0)  # then a new RQ worker, once Redis answers
