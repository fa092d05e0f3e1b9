"""Decision webhooks end to end: a real worker process, a real receiver, real signatures."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import redis
from rq.registry import ScheduledJobRegistry
from standardwebhooks import Webhook

from hitl import Approvals, metrics
from hitl.keys import Keys
from hitl.views import EXPIRED_COMMENT
from hitl.webhooks import WebhookLog
from tests.conftest import make_settings
from tests.helpers import eventually, signal_group, start_worker, stop
from workers import queues

WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
GATE = {"action": "wire_money", "summary": "Wire $5,000 to ACME", "mode": "gate", "timeout": 600}


class Receiver:
    """A webhook endpoint answering a scripted list of statuses (then 200)."""

    def __init__(self, answers: list[int]) -> None:
        self.answers = list(answers)
        self.received: list[tuple[dict[str, str], bytes, int]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    status = receiver.answers.pop(0) if receiver.answers else 200
                    receiver.received.append(({k.lower(): v for k, v in self.headers.items()}, body, status))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hooks/hitl"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[Approvals]:
    with Approvals(settings=make_settings(redis_url, prefix, webhook_allowed="http://127.0.0.1:")) as approvals:
        yield approvals


def worker_env(retry: str = "1,1,1,1") -> dict[str, str]:
    return {"HITL_WEBHOOK_SECRET": WHSEC, "HITL_WEBHOOK_RETRY": retry}


def attempts(conn: redis.Redis, prefix: str, rid: str) -> list[dict[str, str]]:
    return WebhookLog(conn, Keys(prefix)).attempts(rid)


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
        scheduled = ScheduledJobRegistry(queues.queue_name(prefix, queues.WEBHOOKS), connection=conn)
        assert scheduled.count == 0  # nothing waits to be tried again
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


@pytest.mark.timeout(240)
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
        signal_group(worker, signal.SIGKILL)  # no clean-up: the retry must live in Redis
        worker.wait(10)
        second = start_worker(redis_url, prefix, **worker_env("3,3,3"))
        # The dead worker's scheduler lock expires after RQ's 61 s; its successor then runs the retry.
        log = eventually(lambda: (a := attempts(conn, prefix, rid)) and a[-1]["outcome"] == "delivered" and a,
                         180, "the delivery by the second worker")
    finally:
        stop(worker)
        if second is not None:
            stop(second)
        receiver.close()
    assert [a["outcome"] for a in log] == ["retrying", "delivered"]
    assert {h["webhook-id"] for h, _b, _s in receiver.received} == {f"msg_{rid}"}


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
