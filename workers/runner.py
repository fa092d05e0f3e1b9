"""`hitl worker`: an RQ worker with the scheduler, plus the timer ticker."""

from __future__ import annotations

import logging

import redis
from rq import SimpleWorker, Worker

from hitl.durability import check as check_durability
from hitl.settings import Settings
from workers import queues
from workers.maintenance import Maintenance
from workers.ticker import Ticker
from workers.webhooks import WebhookFeed

log = logging.getLogger(__name__)

# RQ maintenance (scheduler lock takeover, abandoned-job cleanup) every this many seconds,
# instead of RQ's ten minutes, so a dead worker's duties move quickly.
MAINTENANCE_INTERVAL = 15
# Seconds a worker counts as alive without a heartbeat.
WORKER_TTL = 35


def build_worker(connection: redis.Redis, prefix: str, *, fork: bool = False) -> Worker:
    cls = Worker if fork else SimpleWorker
    return cls(
        queues.all_queues(connection, prefix),
        connection=connection,
        maintenance_interval=MAINTENANCE_INTERVAL,
        worker_ttl=WORKER_TTL,
    )


def run(settings: Settings, *, burst: bool = False, fork: bool = False) -> None:
    """Run until stopped (SIGINT/SIGTERM finish the current job first)."""
    # RQ blocks on its queues for up to WORKER_TTL - 15 s: the socket must wait longer than
    # that (redis-py's default read timeout would cut every idle dequeue short).
    connection = redis.Redis.from_url(
        settings.redis, socket_timeout=WORKER_TTL + 15, socket_connect_timeout=5, health_check_interval=30
    )
    check_durability(connection, "hitl worker")
    ticker = Ticker(connection, settings.prefix, lease=settings.timer_lease, interval=settings.timer_tick)
    ticker.start()
    Maintenance(connection, settings).start()
    feed = WebhookFeed(connection, settings.prefix, retry=settings.webhook_retry).start()
    try:
        worker = build_worker(connection, settings.prefix, fork=fork)
        log.info("hitl worker %s listening on %s", worker.name, ", ".join(worker.queue_names()))
        worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
    finally:
        feed.stop()
        ticker.stop()
