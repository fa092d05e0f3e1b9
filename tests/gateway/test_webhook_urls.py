"""The webhook allow-list compares URLs by their parts: every bypass a hostile agent tried
over HTTP is refused naming `callback_url`, and a stored URL that cannot be sent gives up
once, audited, instead of being retried every lease forever."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import redis

from bot.gateway.web import WebServer, build_web_app
from hitl import Approvals
from hitl.keys import Keys
from hitl.webhooks import HookTimers, WebhookLog
from tests.conftest import make_settings
from tests.helpers import eventually, start_worker, stop

SECRET = "agent-secret-0123456789"
ALLOWED = "https://hooks.example.com/hooks"
GATE = {"action": "wire_money", "summary": "Wire $5,000 to ACME", "mode": "gate", "timeout": 600}
WHSEC = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.fixture
def agent(redis_url: str, prefix: str) -> Iterator[tuple[httpx.Client, Approvals]]:
    """An agent holding only an API key, against a web process allowing ALLOWED."""
    settings = make_settings(redis_url, prefix, api_keys={"agent": SECRET}, webhook_allowed=ALLOWED)
    approvals = Approvals(settings=settings)
    server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
    http = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=30)
    try:
        yield http, approvals
    finally:
        http.close()
        server.stop()
        approvals.close()


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("https://hooks.example.com/hooks/../admin", "is not under an allowed destination"),
        ("https://hooks.example.com/hooks/%2e%2E/admin", "is not under an allowed destination"),
        ("https://hooks.example.com:6379/hooks/x", "is not under an allowed destination"),
        ("https://hooks.example.com/hooksEVIL", "is not under an allowed destination"),
        ("https://hooks.example.com/hooks/x\r\nX-Injected: 1", "control character"),
        ("https://hooks.example.com/hooks/a\tb", "control character"),
        ("https://hooks.example.com\\@evil.example/hooks", "backslash"),
        ("https://agent:pw@hooks.example.com/hooks", "user or password"),
        ("https://hooks.example.com/hooks%2F..%2Fadmin", "encoded /"),
        ("http://hooks.example.com/hooks/x", "is not under an allowed destination"),
    ],
)
def test_each_allow_list_bypass_is_refused_naming_callback_url(
    agent: tuple[httpx.Client, Approvals], url: str, words: str
) -> None:
    http, approvals = agent
    resp = http.post("/v1/requests", json={**GATE, "callback_url": url})
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert body["field"] == "callback_url"
    assert words in body["error"]
    assert approvals.store.redis.zcard(approvals.keys.pending) == 0  # nothing filed


def test_a_port_less_entry_means_the_default_port_only(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, webhook_allowed="https://hooks.example.com")
    with Approvals(settings=settings) as approvals:
        ok = approvals.request(**GATE, callback_url="https://Hooks.Example.com:443/any/./path")
        assert ok.fetch().callback_url == "https://Hooks.Example.com:443/any/./path"
        with pytest.raises(ValueError, match=r"callback_url.*HITL_WEBHOOK_ALLOWED"):
            approvals.request(**GATE, callback_url="https://hooks.example.com:6379/")


def test_a_stored_url_with_control_characters_gives_up_once_with_an_audit_event(
    redis_url: str, prefix: str, conn: redis.Redis
) -> None:
    """A request stored before the parts-wise check (its URL written as it was then) is
    decided: the worker gives up on it once, says why in the audit log, arms no retry."""
    allowed = "http://127.0.0.1:9/hooks"
    with Approvals(settings=make_settings(redis_url, prefix, webhook_allowed=allowed)) as approvals:
        # What main stored for "http://127.0.0.1:9/hooks/ok\r\nX: y": the URL as given.
        doc = approvals.build({**GATE, "callback_url": "http://127.0.0.1:9/hooks/ok"}, policy=approvals.policy.current())
        doc["callback_url"] = "http://127.0.0.1:9/hooks/ok\r\nX: y"
        _created, rid, _mode, _status = approvals.store.create(doc)
        assert "\r\n" in (approvals.store.get(rid).callback_url or "")
        worker = start_worker(redis_url, prefix, HITL_WEBHOOK_SECRET=WHSEC, HITL_WEBHOOK_RETRY="1,1",
                              HITL_WEBHOOK_ALLOWED=allowed)
        try:
            approvals.decide(rid, "approve", by="U0ALICE")
            log = WebhookLog(conn, Keys(prefix))
            got = eventually(lambda: log.attempts(rid), 30, "the attempt")
            # The attempt is settled: no later attempt is armed, the first is not held.
            timers = HookTimers(conn, Keys(prefix))
            eventually(lambda: not timers.pending(rid, 5), 10, "the attempt's timer to go")
        finally:
            stop(worker)
    assert [(a["attempt"], a["outcome"]) for a in got] == [("1", "gave_up")]
    assert "control character" in got[0]["error"]
    assert [(a["attempt"], a["outcome"]) for a in log.attempts(rid)] == [("1", "gave_up")]
