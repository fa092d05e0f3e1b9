"""The sandbox page's HTTP side without a browser: files, the JSON API's guards, the event stream.

The bot is deliberately absent here (its URL points at a closed port), which is also how
the page must behave when the bot is down: say so, never hang or crash.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from hitl_sandbox import page as page_module
from hitl_sandbox.page import SandboxPage
from hitl_sandbox.server import SlackStandIn


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sandbox() -> Iterator[SandboxPage]:
    with SlackStandIn() as stand_in:
        page = SandboxPage(stand_in, f"http://127.0.0.1:{_closed_port()}/slack/events", "secret").mount()
        try:
            yield page
        finally:
            page.close()


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, dict(resp.headers.items()), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers.items()), exc.read()


def _post(page: SandboxPage, path: str, body: dict[str, Any], *, csrf: bool = True) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if csrf:
        headers["X-Sandbox"] = "1"
    req = urllib.request.Request(page.url + path, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _event(raw: bytes) -> tuple[str | None, dict | None]:
    """(id, data) of the one Server-Sent Event in a long-poll answer."""
    event_id, data = None, None
    for line in raw.decode().splitlines():
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
    return event_id, data


def test_the_page_and_its_files_are_served_and_nothing_else(sandbox: SandboxPage) -> None:
    status, headers, body = _get(sandbox.url)
    assert status == 200
    assert b'<script src="static/app.js"' in body
    assert "script-src 'self'" in headers["content-security-policy"]
    status, headers, _ = _get(sandbox.url + "static/app.js")
    assert status == 200 and "javascript" in headers["content-type"]
    for path in ("static/../page.py", "static/%2e%2e/page.py", "static/nope.js", "api/nope"):
        assert _get(sandbox.url + path)[0] == 404, path


def test_the_api_refuses_foreign_posts_and_unknown_people(sandbox: SandboxPage) -> None:
    status, body = _post(sandbox, "api/send", {"as": "U0ALICE", "channel": "C0GENERAL", "text": "hi"}, csrf=False)
    assert status == 403 and body["ok"] is False
    assert sandbox.workspace.messages("C0GENERAL") == []
    for who in ("U0HITLBOT", "U0NOBODY", None):
        status, _, raw = _get(sandbox.url + f"api/state?as={who}")
        assert status == 400, who
        assert "unknown user" in json.loads(raw)["error"]


def test_a_typed_message_is_escaped_like_slacks_client_does(sandbox: SandboxPage) -> None:
    status, body = _post(sandbox, "api/send", {"as": "U0BOB", "channel": "C0GENERAL", "text": "<!channel> & <@U0ALICE>"})
    assert status == 200 and body == {"ok": True}
    [message] = sandbox.workspace.messages("C0GENERAL")
    assert message.user == "U0BOB"
    assert message.text == "&lt;!channel&gt; &amp; &lt;@U0ALICE&gt;"


def test_a_bot_that_does_not_answer_is_reported_not_hung(sandbox: SandboxPage) -> None:
    status, body = _post(sandbox, "api/send", {"as": "U0ALICE", "channel": "C0APPROVALS", "text": "/hitl status"})
    assert status == 200
    assert body["notice"] == '/hitl failed with the error "dispatch_failed"'
    status, body = _post(sandbox, "api/send", {"as": "U0ALICE", "channel": "C0APPROVALS", "text": "/deploy now"})
    assert "/deploy is not a valid command" in body["notice"]
    posted = sandbox.workspace.post_message(
        "C0APPROVALS", "card", blocks=[{"type": "actions", "block_id": "b1", "elements": [
            {"type": "button", "action_id": "go", "text": {"type": "plain_text", "text": "Go"}, "value": "x"}]}]
    )
    status, body = _post(sandbox, "api/click", {"as": "U0ALICE", "channel": "C0APPROVALS", "ts": posted.ts,
                                               "block_id": "b1", "action_id": "go"})
    assert status == 200 and "did not respond" in body["notice"]
    status, body = _post(sandbox, "api/click", {"as": "U0ALICE", "channel": "C0APPROVALS", "ts": posted.ts,
                                               "block_id": "b1", "action_id": "gone"})
    assert status == 409


def test_the_event_stream_sends_a_snapshot_then_only_real_changes(
    sandbox: SandboxPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(page_module, "EVENTS_WAIT", 1.0)
    monkeypatch.setattr(page_module, "EVENTS_SLICE", 0.2)
    events = sandbox.url + "api/events?as=U0ALICE"
    status, headers, raw = _get(events)
    assert status == 200 and headers["content-type"].startswith("text/event-stream")
    first_id, snapshot = _event(raw)
    assert first_id and snapshot and snapshot["me"] == "U0ALICE"
    assert [c["name"] for c in snapshot["channels"]] == ["agent-approvals", "eng-leads", "general"]

    # A change Alice cannot see (a trigger id, an API call log) does not wake her page...
    sandbox.workspace.issue_trigger_id("U0BOB")
    status, _, raw = _get(events, {"Last-Event-ID": first_id})
    keepalive_id, data = _event(raw)
    assert data is None and keepalive_id and keepalive_id.split("-")[1] == first_id.split("-")[1]

    # ...a message does, even one posted while no request was waiting.
    ws = sandbox.workspace
    answer: dict[str, Any] = {}
    waiting = threading.Thread(target=lambda: answer.update(raw=_get(events, {"Last-Event-ID": keepalive_id})[2]))
    waiting.start()
    ws.post_ephemeral("C0APPROVALS", "U0ALICE", "only for alice")
    waiting.join(10)
    _, data = _event(answer["raw"])
    assert data is not None
    assert [e["text"] for e in data["ephemerals"]] == ["only for alice"]


def _post_as(url: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, dict]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", "X-Sandbox": "1", **headers})
    try:
        with urllib.request.urlopen(req, timeout=20) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_foreign_host_or_origin_is_refused_and_pauses_nothing(stack) -> None:
    """DNS rebinding: attacker.example resolves to 127.0.0.1 and posts with the CSRF header."""
    url = stack.page_url + "api/send"
    pause = {"as": "U0ALICE", "channel": "C0APPROVALS", "text": "/hitl pause"}
    status, body = _post_as(url, pause, {"Host": "attacker.example"})
    assert status == 403 and "Host" in body["error"] and "attacker.example" in body["error"]
    port = stack.stand_in.port
    status, body = _post_as(url, pause, {"Host": f"127.0.0.1:{port}", "Origin": "http://attacker.example"})
    assert status == 403 and "Origin" in body["error"]
    status, _, _ = _get(stack.page_url + "api/state?as=U0ALICE", {"Host": f"attacker.example:{port}"})
    assert status == 403
    assert stack.approvals.store.redis.smembers(stack.approvals.keys.paused) == set()
    # The page's own address still works, under each loopback name.
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        status, _, _ = _get(stack.page_url + "api/state?as=U0ALICE", {"Host": host})
        assert status == 200
    status, body = _post_as(url, pause, {"Origin": f"http://127.0.0.1:{port}"})
    assert status == 200, body
    assert stack.approvals.store.redis.smembers(stack.approvals.keys.paused) == {b"*"}
