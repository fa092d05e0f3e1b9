"""Decision webhooks: a feed that turns final events into delivery jobs, and the job.

`WebhookFeed` runs in every `hitl worker` (like the timer ticker): it reads final events
from the audit stream's `webhooks` consumer group, enqueues one `deliver` job per request
that has a `callback_url`, then acknowledges the events. `deliver` POSTs the request view
signed per Standard Webhooks; RQ retries it on the schedule in HITL_WEBHOOK_RETRY with
the same `webhook-id`. Retries wait in RQ's scheduled registry in Redis, so a worker
killed between two attempts loses nothing: another worker's scheduler runs the next one.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from rq import Retry, get_current_job
from standardwebhooks import Webhook

from hitl import tracing
from hitl.errors import RequestNotFound
from hitl.keys import Keys
from hitl.metrics import MetricsStore
from hitl.settings import load_settings
from hitl.status import WebhookOutcome
from hitl.store import Store
from hitl.tracing import SpanName
from hitl.views import RequestView, WebhookPayload, iso
from hitl.webhooks import FinalFeed, WebhookLog, webhook_id
from workers import queues
from workers.context import connection, store_for

log = logging.getLogger(__name__)

# Seconds one delivery attempt may take (SPEC).
DELIVERY_TIMEOUT = 10.0
# How long the feed blocks on the stream per read (ms).
BLOCK_MS = 1000


class DeliveryFailed(Exception):
    """A retryable failure: raising it makes RQ schedule the next attempt."""


def retryable(status_code: int | None) -> bool:
    """Connection errors and timeouts (no status), 408, 429 and 5xx are tried again."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


def deliver(prefix: str, request_id: str, msg_id: str) -> str:
    """One delivery attempt (an RQ job). Returns the outcome; raises `DeliveryFailed` to be
    retried."""
    settings = load_settings()
    conn = connection()
    keys = Keys(prefix)
    audit = WebhookLog(conn, keys)
    try:
        req = store_for(prefix).get(request_id)
    except RequestNotFound:  # aged out before this attempt: nothing left to send
        log.warning("webhook %s: request %s is gone; not delivered", msg_id, request_id)
        return WebhookOutcome.GAVE_UP.value
    url = req.callback_url or ""
    job = get_current_job()
    schedule = list(settings.webhook_retry)
    left = job.retries_left if job is not None and job.retries_left is not None else 0
    attempt = len(schedule) - left + 1
    secret = settings.secret("webhook_secret")

    def record(outcome: WebhookOutcome, **details: Any) -> str:
        audit.attempt(request_id, webhook_id=msg_id, attempt=attempt, outcome=outcome, url=url, **details)
        if settings.metrics:
            MetricsStore(conn, keys).webhook_delivery(outcome)
        return outcome.value

    if not secret:
        return record(WebhookOutcome.GAVE_UP, error="HITL_WEBHOOK_SECRET is unset; nothing is sent unsigned")
    now = datetime.now(UTC)
    body = WebhookPayload(timestamp=iso(now.timestamp()) or "", data=RequestView.of(req)).model_dump_json()
    headers = {
        "content-type": "application/json",
        "user-agent": "hitl-router-webhooks",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, now, body),
    }
    status_code: int | None = None
    error: str | None = None
    attrs = {"hitl.request_id": request_id, "hitl.webhook_id": msg_id, "hitl.attempt": attempt}
    with tracing.span(SpanName.WEBHOOK, req.trace, attrs) as span:
        try:
            resp = httpx.post(url, content=body, headers=headers, timeout=DELIVERY_TIMEOUT)
            status_code = resp.status_code
            span.set_attribute("http.response.status_code", status_code)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
    if status_code is not None and 200 <= status_code < 300:
        return record(WebhookOutcome.DELIVERED, status_code=status_code)
    if retryable(status_code) and left > 0:
        wait = schedule[len(schedule) - left]
        record(WebhookOutcome.RETRYING, status_code=status_code, error=error, retry_in=wait)
        raise DeliveryFailed(f"webhook {msg_id} to {url}: {status_code or error}; retrying in {wait}s")
    return record(WebhookOutcome.GAVE_UP, status_code=status_code, error=error)


class WebhookFeed:
    """Enqueues a delivery for each request that turns final with a `callback_url`."""

    name = "webhooks"

    def __init__(self, connection: redis.Redis, prefix: str, *, retry: list[int]) -> None:
        self.prefix = prefix
        self.store = Store(connection, Keys(prefix))
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.feed = FinalFeed(connection, Keys(prefix), consumer)
        self.queue = queues.queue(connection, prefix, queues.WEBHOOKS)
        self.retry = list(retry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self, block_ms: int = BLOCK_MS) -> int:
        """One read-enqueue-acknowledge round; returns how many deliveries it enqueued."""
        entries = self.feed.read(block_ms)
        ids = [rid for _eid, rid in entries if rid]
        enqueued = 0
        for req in self.store.get_many(ids):
            if req.callback_url:
                self.queue.enqueue(
                    "workers.webhooks.deliver", self.prefix, req.id, webhook_id(req.id),
                    retry=Retry(max=len(self.retry), interval=self.retry) if self.retry else None,
                    result_ttl=3600, failure_ttl=7 * 86400, job_timeout=int(DELIVERY_TIMEOUT * 3),
                )
                enqueued += 1
        self.feed.ack([eid for eid, _rid in entries])
        return enqueued

    def run(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                self.feed.ensure_group()
                while not self._stop.is_set():
                    self.poll()
                    backoff = 0.1
            except redis.RedisError as exc:
                log.warning("webhook feed: Redis error (%s); retrying", exc)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def start(self) -> WebhookFeed:
        self._thread = threading.Thread(target=self.run, name="hitl-webhooks", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(BLOCK_MS / 1000 + 5)
