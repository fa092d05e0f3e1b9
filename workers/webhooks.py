"""Decision webhooks: the feed that arms a first attempt for each final request, and the
sender that runs attempts as the ticker hands them over.

`WebhookFeed` runs in every `hitl worker`: it reads final events from the audit stream's
`webhooks` consumer group, arms attempt 1 (timer `{id}|hook|1`, due now) for each request
with a `callback_url`, then acknowledges the events.

`WebhookSender` runs attempts on a few threads of its own, so a slow receiver (up to
`DELIVERY_TIMEOUT`) never delays a deadline or a Slack card. The ticker claims due hook
timers like any other and passes them here; the sender keeps their leases (every third of
`HITL_TIMER_LEASE`) while they wait or run. An attempt POSTs the request view signed per
Standard Webhooks, with the same `webhook-id` every time, and audits itself; a retryable
failure arms attempt n+1 at now + HITL_WEBHOOK_RETRY[n-1] in the same step that drops
attempt n. A worker killed between two attempts loses nothing (the next one waits in the
timers zset); one killed during an attempt loses its lease, and another worker runs the
attempt again within HITL_TIMER_LEASE. Delivery is at least once; receivers deduplicate
on `webhook-id`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import redis
from standardwebhooks import Webhook

from hitl import tracing, webhookurl
from hitl.errors import RequestNotFound
from hitl.keys import Keys
from hitl.metrics import MetricsStore
from hitl.settings import Settings
from hitl.status import WebhookOutcome
from hitl.store import Store, now_ms
from hitl.tracing import SpanName
from hitl.views import RequestView, WebhookPayload, iso
from hitl.webhooks import FinalFeed, HookTimers, WebhookLog, hook_member, parse_hook_member, webhook_id
from workers.context import connection
from workers.health import OUTAGE_ERRORS, Backoff, RedisHealth
from workers.leases import LeaseKeeper
from workers.loop import Loop, ThreadSpec

log = logging.getLogger(__name__)

# Seconds one delivery attempt may wait for each of connect, send and answer (SPEC).
DELIVERY_TIMEOUT = 10.0
# How long the feed blocks on the stream per read (ms).
BLOCK_MS = 1000
# Attempts one worker process runs at once.
THREADS = 4


def retryable(status_code: int | None) -> bool:
    """Connection errors and timeouts (no status), 408, 429 and 5xx are tried again."""
    return status_code is None or status_code in (408, 429) or status_code >= 500


@dataclass(frozen=True, slots=True)
class AttemptResult:
    """How one attempt ended, and for a retry, the seconds until the next one."""

    outcome: WebhookOutcome
    retry_in: int | None = None


def send_attempt(store: Store, settings: Settings, request_id: str, attempt: int) -> AttemptResult:
    """POST the request's final view to its `callback_url` once (attempt number `attempt`,
    1 = the first) and audit the outcome."""
    msg_id = webhook_id(request_id)
    audit = WebhookLog(store.redis, store.keys)
    try:
        req = store.get(request_id)
    except RequestNotFound:  # aged out before this attempt: nothing left to send
        log.warning("webhook %s: request %s is gone; not delivered", msg_id, request_id)
        return AttemptResult(WebhookOutcome.GAVE_UP)
    url = req.callback_url or ""
    schedule = list(settings.webhook_retry)
    secret = settings.secret("webhook_secret")

    def record(outcome: WebhookOutcome, retry_in: int | None = None, **details: Any) -> AttemptResult:
        audit.attempt(request_id, webhook_id=msg_id, attempt=attempt, outcome=outcome, url=url,
                      retry_in=retry_in, **details)
        if settings.metrics:
            MetricsStore(store.redis, store.keys).webhook_delivery(outcome)
        return AttemptResult(outcome, retry_in)

    if not secret:
        return record(WebhookOutcome.GAVE_UP, error="HITL_WEBHOOK_SECRET is unset; nothing is sent unsigned")
    try:
        # Checked again as sent: a URL stored before the parts-wise check, or under an
        # entry since removed, is given up once here instead of tried forever.
        target = webhookurl.check(url, settings.webhook_allowed).text
    except webhookurl.BadWebhookUrl as exc:
        return record(WebhookOutcome.GAVE_UP, error=f"callback_url cannot be sent: {exc}")
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
            resp = httpx.post(target, content=body, headers=headers, timeout=DELIVERY_TIMEOUT)
            status_code = resp.status_code
            span.set_attribute("http.response.status_code", status_code)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol, ValueError) as exc:  # no retry can help
            reason = f"callback_url cannot be sent: {type(exc).__name__}: {exc}"
            return record(WebhookOutcome.GAVE_UP, error=reason)
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"
    if status_code is not None and 200 <= status_code < 300:
        return record(WebhookOutcome.DELIVERED, status_code=status_code)
    if retryable(status_code) and attempt <= len(schedule):
        wait = schedule[attempt - 1]
        log.info("webhook %s: %s; attempt %d in %d s", msg_id, status_code or error, attempt + 1, wait)
        return record(WebhookOutcome.RETRYING, wait, status_code=status_code, error=error)
    return record(WebhookOutcome.GAVE_UP, status_code=status_code, error=error)


class WebhookSender(Loop):
    """Holds claimed hook timers and runs their attempts on a few threads, keeping their
    leases until each attempt is settled."""

    name = "webhook sender"
    join_timeout = DELIVERY_TIMEOUT + 5  # a running attempt finishes

    def __init__(
        self, connection: redis.Redis, settings: Settings, *, lease: float, threads: int = THREADS,
        health: RedisHealth | None = None,
    ) -> None:
        super().__init__()
        keys = Keys(settings.prefix)
        self.store = Store(connection, keys, settings.retention, settings.metrics)
        self.timers = HookTimers(connection, keys)
        self.settings = settings
        self.lease_ms = int(lease * 1000)
        self.threads = threads
        self.health = health or RedisHealth()
        # the hook members held, each by the lease score it holds in the timers zset
        self.leases = LeaseKeeper(self.timers.extend, self.lease_ms, health=self.health,
                                  what="webhook delivery leases")
        self._queue: queue.Queue[str | None] = queue.Queue()

    # -- intake (the ticker's thread) ------------------------------------------------------

    def submit(self, items: list[tuple[str, int]]) -> None:
        """Take over claimed hook timers [(member, lease score)] and queue their attempts."""
        for member, lease in items:
            if self.leases.hold(member, lease):  # else already here: it only lost its lease
                self._queue.put(member)

    @property
    def backlog(self) -> int:
        """Attempts held by this process, waiting or running."""
        return len(self.leases)

    # -- the pool --------------------------------------------------------------------------

    def _work(self) -> None:
        while (member := self._queue.get()) is not None:
            if member not in self.leases:  # its lease went to another worker meanwhile
                continue
            rid, attempt = parse_hook_member(member)
            try:
                result = send_attempt(self.store, self.settings, rid, attempt)
                self._settle(member, rid, attempt, result)
                self.health.ok()
            except OUTAGE_ERRORS as exc:  # the lease runs out and the attempt comes back
                self.health.failed(exc, "webhook delivery")
                self._drop(member)
            except Exception as exc:
                # A fault no retry fixes must not come back every lease forever: give up once, audited.
                log.exception("webhook attempt %s failed; giving up", member)
                self._give_up(member, rid, attempt, exc)

    def _settle(self, member: str, rid: str, attempt: int, result: AttemptResult) -> None:
        held = self.leases.pop(member)  # once popped, the keeper no longer moves its score
        if held is None:
            return
        if result.retry_in is None:
            self.timers.settle(member, held)
        else:
            due = now_ms() + result.retry_in * 1000
            self.timers.settle(member, held, next_member=hook_member(rid, attempt + 1), due_ms=due)

    def _give_up(self, member: str, rid: str, attempt: int, exc: Exception) -> None:
        try:
            WebhookLog(self.store.redis, self.store.keys).attempt(
                rid, webhook_id=webhook_id(rid), attempt=attempt, outcome=WebhookOutcome.GAVE_UP, url="",
                error=f"{type(exc).__name__}: {exc}",
            )
            self._settle(member, rid, attempt, AttemptResult(WebhookOutcome.GAVE_UP))
        except OUTAGE_ERRORS as outage:  # the lease runs out and the attempt comes back
            self.health.failed(outage, "webhook delivery")
            self._drop(member)

    def _drop(self, member: str) -> None:
        self.leases.pop(member)

    # -- leases ----------------------------------------------------------------------------

    def _keep_leases(self) -> None:
        self.leases.run(self._stop)

    # -- lifecycle -------------------------------------------------------------------------

    def _threads(self) -> list[ThreadSpec]:
        pool: list[ThreadSpec] = [(f"hitl-webhooks-{n}", self._work) for n in range(self.threads)]
        return [*pool, ("hitl-webhooks-leases", self._keep_leases)]

    def _wake(self) -> None:
        """Stop taking work: attempts not started go back to the timers zset, due now, for
        another worker; running ones finish (or, past the wait, come back by lease)."""
        waiting: list[str] = []
        while True:
            try:
                member = self._queue.get_nowait()
            except queue.Empty:
                break
            if member is not None:
                waiting.append(member)
        for member in waiting:
            held = self.leases.pop(member)
            if held is not None:
                with contextlib.suppress(*OUTAGE_ERRORS):  # else its lease runs out instead
                    self.timers.release(member, held, now_ms())
        for _ in range(self.threads):
            self._queue.put(None)


class WebhookFeed(Loop):
    """Arms the first delivery attempt for each request that turns final with a
    `callback_url`."""

    name = "webhooks"
    join_timeout = BLOCK_MS / 1000 + 5  # a read blocks up to BLOCK_MS

    def __init__(
        self, connection: redis.Redis, prefix: str, *, health: RedisHealth | None = None,
        block_ms: int = BLOCK_MS,
    ) -> None:
        super().__init__()
        keys = Keys(prefix)
        self.store = Store(connection, keys)
        self.hooks = HookTimers(connection, keys)
        consumer = f"{socket.gethostname()}-{os.getpid()}"
        self.feed = FinalFeed(connection, keys, consumer)
        # Stopping waits out the read in progress: this bounds how long a worker takes to stop.
        self.block_ms = block_ms
        self.join_timeout = block_ms / 1000 + 5  # a read blocks up to block_ms
        self.health = health or RedisHealth()

    def poll(self, block_ms: int | None = None) -> int:
        """One read-arm-acknowledge round; returns how many first attempts it armed."""
        entries = self.feed.read(self.block_ms if block_ms is None else block_ms)
        ids = [rid for _eid, rid in entries if rid]
        hooked = [req.id for req in self.store.get_many(ids) if req.callback_url]
        armed = self.hooks.arm_first(hooked, now_ms())
        self.feed.ack([eid for eid, _rid in entries])
        return armed

    def run(self) -> None:
        backoff = Backoff(first=0.1, cap=2.0)
        grouped = False
        while not self._stop.is_set():
            try:
                if not grouped:
                    self.feed.ensure_group()
                    grouped = True
                self.poll()
                self.health.ok()
                backoff.reset()
                continue
            except OUTAGE_ERRORS as exc:
                self.health.failed(exc, "the webhook feed")
            except redis.ResponseError as exc:
                if "NOGROUP" not in str(exc):  # NOGROUP: Redis lost the group; make it again
                    log.exception("webhook feed round failed")
            except Exception:
                log.exception("webhook feed round failed")
            grouped = False
            self._stop.wait(backoff.next())

    def _threads(self) -> list[ThreadSpec]:
        return [("hitl-webhooks", self.run)]


def deliver(prefix: str, request_id: str, msg_id: str) -> str:
    """An RQ job enqueued by a worker from before hook timers (which retried through RQ's
    scheduler): hand the delivery over to a hook timer, attempt 1, due now."""
    HookTimers(connection(), Keys(prefix)).arm_first([request_id], now_ms())
    return f"{msg_id}: handed to a hook timer"
