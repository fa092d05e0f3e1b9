"""The web process itself: health, slow clients, Slack's limits, graceful shutdown."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from hitl_sandbox.signing import signed_command, slash_command
from slack_sdk import WebClient

from bot.gateway import bodies, web
from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from hitl import Approvals
from hitl.embedded import EmbeddedRedis, free_port
from tests.conftest import make_settings
from tests.helpers import ROOT, eventually, hitl_env

SIGNING = "test-signing-secret"


@pytest.fixture
def slack_server(redis_url: str, prefix: str) -> Iterator[WebServer]:
    """The web app with Slack's endpoint, its Web API calls answered by the stand-in."""
    from hitl_sandbox import SlackStandIn

    with SlackStandIn(bot_token="xoxb-t") as stand_in:
        settings = make_settings(redis_url, prefix, slack_signing_secret=SIGNING, slack_bot_token="xoxb-t",
                                 slack_api_url=stand_in.url, api_keys="ci:sekrit")
        approvals = Approvals(settings=settings)
        bolt = build_app(settings, approvals=approvals, client=WebClient(token="xoxb-t", base_url=stand_in.url))
        app = build_web_app(approvals, bolt=bolt, signing_secret=SIGNING)
        server = WebServer(app, host="127.0.0.1", port=0).start()
        try:
            yield server
        finally:
            server.stop()
            approvals.close()


def test_healthz_is_503_while_redis_is_down_and_200_when_back(prefix: str) -> None:
    with EmbeddedRedis() as private:
        approvals = Approvals(settings=make_settings(private.url, prefix))
        server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
        try:
            with httpx.Client(base_url=server.base_url, timeout=30) as http:
                up = http.get("/healthz")
                private.stop()
                down = http.get("/healthz")
                private.start()
                back = eventually(lambda: (r := http.get("/healthz")).status_code == 200 and r, 20, "health back")
        finally:
            server.stop()
            approvals.close()
    assert (up.status_code, up.json()) == (200, {"ok": True, "redis": "up"})
    assert (down.status_code, down.json()) == (503, {"ok": False, "redis": "down"})
    assert back.json()["redis"] == "up"


def test_api_answers_503_not_a_traceback_while_redis_is_down(prefix: str) -> None:
    with EmbeddedRedis() as private:
        approvals = Approvals(settings=make_settings(private.url, prefix, api_keys="ci:sekrit"))
        server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
        try:
            private.stop()
            resp = httpx.post(f"{server.base_url}/v1/requests", headers={"Authorization": "Bearer sekrit"},
                              json={"action": "deploy", "summary": "Deploy"}, timeout=30)
        finally:
            server.stop()
            approvals.close()
    assert resp.status_code == 503
    assert "Redis is unreachable" in resp.json()["error"]


def test_slow_or_short_body_gets_408_and_blocks_nobody(
    slack_server: WebServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bodies, "BODY_TIMEOUT", 2.0)
    slow = socket.create_connection(("127.0.0.1", slack_server.port), timeout=30)
    slow.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                 b"Content-Length: 500\r\n\r\ntoken=abc&")
    slow_api = socket.create_connection(("127.0.0.1", slack_server.port), timeout=30)
    slow_api.sendall(b"POST /v1/requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekrit\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"action\": ")
    # Meanwhile everyone else is served at once: signed Slack traffic, the API and health.
    start = time.monotonic()
    with httpx.Client(base_url=slack_server.base_url, timeout=30) as http:
        health = [http.get("/healthz").status_code for _ in range(20)]
        filed = http.post("/v1/requests", json={"action": "deploy", "summary": "Deploy"},
                          headers={"Authorization": "Bearer sekrit"})
        signed = signed_command(SIGNING, {"command": "/hitl", "text": "help", "user_id": "U0ALICE",
                                          "channel_id": "C0X", "team_id": "T0X", "trigger_id": "1.2.3"})
        slack = http.post("/slack/events", content=signed.body, headers=signed.headers)
    others_took = time.monotonic() - start
    answer = slow.recv(4096).decode()
    api_answer = slow_api.recv(4096).decode()
    slow.close()
    slow_api.close()
    assert health == [200] * 20 and filed.status_code == 201 and slack.status_code == 200
    assert others_took < 2.0  # none of them waited for the slow body
    assert answer.startswith("HTTP/1.1 408")
    assert "did not arrive within 2s" in answer
    assert api_answer.startswith("HTTP/1.1 408") and '"field":"body"' in api_answer


def test_slack_body_over_the_limit_is_413(slack_server: WebServer) -> None:
    resp = httpx.post(slack_server.url, content=b"x" * (web.MAX_BODY + 1), timeout=30)
    assert resp.status_code == 413


def test_slack_signatures_are_still_checked(slack_server: WebServer) -> None:
    signed = signed_command("not-the-secret", {"command": "/hitl", "text": "help", "user_id": "U0ALICE"})
    resp = httpx.post(slack_server.url, content=signed.body, headers=signed.headers, timeout=30)
    assert resp.status_code == 401
    garbage = signed_command("not-the-secret", {})
    bad_json = httpx.post(slack_server.url, content=b"payload=%7Bnot-json", headers=garbage.headers, timeout=30)
    assert bad_json.status_code == 401


def _start_bot(env: dict[str, str], port: int, host: str = "127.0.0.1") -> tuple[subprocess.Popen[bytes], Path]:
    log = Path(tempfile.mkstemp(prefix="hitl-bot-", suffix=".log")[1])
    proc = subprocess.Popen([sys.executable, "-m", "hitl.cli", "bot"], env=env, cwd=ROOT,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"hitl bot exited: {log.read_text()}")
        try:
            return httpx.get(f"http://{host}:{port}/healthz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(up, 30, "hitl bot to answer /healthz")
    return proc, log


def test_sigterm_answers_in_flight_long_polls_with_the_current_view(prefix: str) -> None:
    with EmbeddedRedis() as private:  # private: its CLIENT LIST shows only this bot's waits
        port = free_port()
        env = hitl_env(private.url, prefix, PORT=str(port), SLACK_SIGNING_SECRET=SIGNING,
                       SLACK_BOT_TOKEN="xoxb-t", SLACK_API_URL="http://127.0.0.1:9/", HITL_API_KEYS="ci:sekrit")
        proc, log = _start_bot(env, port)
        try:
            auth = {"Authorization": "Bearer sekrit"}
            base = f"http://127.0.0.1:{port}"
            rid = httpx.post(f"{base}/v1/requests", headers=auth, timeout=30,
                             json={"action": "deploy", "summary": "Deploy", "mode": "gate"}).json()["id"]
            result: dict = {}

            def poll() -> None:
                try:
                    result["resp"] = httpx.get(f"{base}/v1/requests/{rid}", params={"wait": 50}, headers=auth,
                                               timeout=60)
                except httpx.HTTPError as exc:
                    result["error"] = exc

            poller = threading.Thread(target=poll)
            poller.start()
            conn = redis.Redis.from_url(private.url)
            eventually(lambda: any(c["name"].startswith("hitl-waiter") and c["cmd"] == "xread" for c in conn.client_list()), 20, "the long-poll to block")
            conn.close()
            start = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            poller.join(30)
            took = time.monotonic() - start
            code = proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "error" not in result, f"{result.get('error')!r}; log: {log.read_text()}"
    assert result["resp"].status_code == 200
    assert result["resp"].json()["status"] == "pending" and result["resp"].json()["id"] == rid
    assert took < 10
    # uvicorn shuts down cleanly, then re-raises the signal so a supervisor sees why it ended.
    assert code in (0, -signal.SIGTERM), log.read_text()
    assert "Traceback" not in log.read_text()


def _answers(host: str, port: int) -> bool:
    try:
        return httpx.get(f"http://{host}:{port}/healthz", timeout=5).status_code == 200
    except httpx.ConnectError:
        return False


def test_hitl_bot_listens_on_hitl_host_only(redis_url: str, prefix: str) -> None:
    """127.0.0.2 is loopback too, but another address: a bot bound to it alone does not
    answer on 127.0.0.1 (as one bound to 127.0.0.1 would not answer on the network)."""
    port = free_port()
    env = hitl_env(redis_url, prefix, PORT=str(port), SLACK_SIGNING_SECRET=SIGNING, SLACK_BOT_TOKEN="xoxb-t",
                   SLACK_API_URL="http://127.0.0.1:9/", HITL_HOST="127.0.0.2")
    proc, log = _start_bot(env, port, host="127.0.0.2")
    try:
        assert not _answers("127.0.0.1", port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert f"listening on http://127.0.0.2:{port}" in log.read_text()


def test_hitl_bot_listens_on_every_interface_by_default(redis_url: str, prefix: str) -> None:
    """Containers and PaaS routers reach the web process from outside its loopback."""
    port = free_port()
    env = hitl_env(redis_url, prefix, PORT=str(port), SLACK_SIGNING_SECRET=SIGNING, SLACK_BOT_TOKEN="xoxb-t",
                   SLACK_API_URL="http://127.0.0.1:9/")
    proc, log = _start_bot(env, port)
    try:
        assert _answers("127.0.0.2", port)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
    assert f"listening on http://0.0.0.0:{port}" in log.read_text()


def test_a_bad_or_unusable_hitl_host_is_one_line_naming_it(redis_url: str, prefix: str) -> None:
    for host, words in (("not a host", "must be an address to listen on"), ("192.0.2.1", "cannot listen on")):
        env = hitl_env(redis_url, prefix, PORT=str(free_port()), SLACK_SIGNING_SECRET=SIGNING,
                       SLACK_BOT_TOKEN="xoxb-t", SLACK_API_URL="http://127.0.0.1:9/", HITL_HOST=host)
        done = subprocess.run([sys.executable, "-m", "hitl.cli", "bot"], env=env, cwd=ROOT, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode != 0
        assert "HITL_HOST" in done.stderr and words in done.stderr, done.stderr
        assert "Traceback" not in done.stderr


def test_socket_mode_still_serves_the_api_and_health(prefix: str, redis_url: str) -> None:
    from hitl_sandbox import SlackStandIn

    with SlackStandIn(bot_token="xoxb-t") as stand_in:
        port = free_port()
        env = hitl_env(redis_url, prefix, PORT=str(port), SLACK_BOT_TOKEN="xoxb-t", SLACK_API_URL=stand_in.url,
                       SLACK_APP_TOKEN="xapp-test", HITL_API_KEYS="ci:sekrit")
        proc, log = _start_bot(env, port)
        try:
            base = f"http://127.0.0.1:{port}"
            filed = httpx.post(f"{base}/v1/requests", headers={"Authorization": "Bearer sekrit"}, timeout=30,
                               json={"action": "deploy", "summary": "Deploy"})
            events = httpx.post(f"{base}/slack/events", content=b"{}", timeout=30)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    assert filed.status_code == 201, log.read_text()
    assert events.status_code == 404  # Slack's traffic comes over the socket instead


def test_extra_mounts_and_lifespans_plug_in(redis_url: str, prefix: str) -> None:
    """How the MCP server joins the web process: a Mount and its lifespan."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route

    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        seen.append("start")
        yield
        seen.append("stop")

    async def hello(request) -> PlainTextResponse:
        return PlainTextResponse("hello from a mounted app")

    extra = Mount("/extra", app=Starlette(routes=[Route("/hello", hello)]))
    approvals = Approvals(settings=make_settings(redis_url, prefix))
    server = WebServer(build_web_app(approvals, mounts=[extra], lifespans=[lifespan]), host="127.0.0.1",
                       port=0).start()
    try:
        assert seen == ["start"]
        assert httpx.get(f"{server.base_url}/extra/hello", timeout=30).text == "hello from a mounted app"
        assert httpx.get(f"{server.base_url}/healthz", timeout=30).status_code == 200
    finally:
        server.stop()
        approvals.close()
    assert seen == ["start", "stop"]


def test_a_slow_slack_listener_stalls_nothing_else(redis_url: str, prefix: str) -> None:
    """Bolt's dispatch is synchronous: run on the event loop, one slow listener would hold
    every long-poll and health check. It runs in a thread instead."""
    from hitl_sandbox import SlackStandIn
    from slack_bolt import App

    release = threading.Event()
    stand_in = SlackStandIn(bot_token="xoxb-t").start()
    bolt = App(signing_secret=SIGNING, token_verification_enabled=False,
               client=WebClient(token="xoxb-t", base_url=stand_in.url))

    @bolt.command("/hitl")
    def slow(ack):  # a listener stuck on a slow Slack call before it acks
        release.wait(30)
        ack("done")

    approvals = Approvals(settings=make_settings(redis_url, prefix, api_keys="ci:sekrit"))
    server = WebServer(build_web_app(approvals, bolt=bolt, signing_secret=SIGNING), host="127.0.0.1",
                       port=0).start()
    signed = signed_command(SIGNING, slash_command("/hitl", "help", user_id="U0ALICE", channel_id="C0X",
                                                   trigger_id="1.2.3", response_url="http://127.0.0.1:9/r"))
    answers: list[int] = []
    stuck = threading.Thread(target=lambda: answers.append(
        httpx.post(server.url, content=signed.body, headers=signed.headers, timeout=60).status_code))
    try:
        stuck.start()
        start = time.monotonic()
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            health = http.get("/healthz")
            filed = http.post("/v1/requests", headers={"Authorization": "Bearer sekrit"},
                              json={"action": "deploy", "summary": "Deploy"})
            polled = http.get(f"/v1/requests/{filed.json()['id']}", params={"wait": 1},
                              headers={"Authorization": "Bearer sekrit"})
        took = time.monotonic() - start
        assert stuck.is_alive()  # the Slack request is still held by its listener
    finally:
        release.set()
        stuck.join(30)
        server.stop()
        approvals.close()
        stand_in.stop()
    assert health.status_code == 200 and filed.status_code == 201 and polled.status_code == 200
    assert took < 5
    assert answers == [200]  # and the Slack request itself completed once released
