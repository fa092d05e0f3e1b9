"""An agent with an API key and no Redis credentials, and the product it talks to.

`stack` is the whole product as a team runs it: the Slack stand-in, the real Bolt app inside
`hitl bot`'s web process (uvicorn, with API keys), and a real `hitl worker` process that posts
and updates cards. `agent_env` is the environment an agent process gets: the web process's
URL and an API key, and no Redis setting at all.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions
from slack_sdk import WebClient

from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from hitl import Approvals, waiters
from tests.conftest import make_settings
from tests.helpers import start_worker, stop
from tests.slack.conftest import CHANNEL, SECRET, TOKEN, Bot

AGENT_KEY = "agent-only-secret"
KEYS = f"billing-agent:{AGENT_KEY},other:another-secret"


@dataclass
class Stack:
    bot: Bot  # signed clicks through the real Bolt app
    server: WebServer
    worker_log: str  # the `hitl worker` process's output

    @property
    def api_url(self) -> str:
        return self.server.base_url

    @property
    def approvals(self) -> Approvals:
        return self.bot.approvals


def agent_env(api_url: str, **extra: str) -> dict[str, str]:
    """An agent process's environment: HITL_API_URL and HITL_API_KEY, nothing of Redis."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HITL_", "REDIS_"))}
    env.update({"HITL_API_URL": api_url, "HITL_API_KEY": AGENT_KEY, **extra})
    assert not any("redis" in k.lower() or "redis://" in v for k, v in env.items() if k != "PATH")
    return env


@contextlib.contextmanager
def product(redis_url: str, prefix: str) -> Iterator[Stack]:
    """The Slack stand-in, `hitl bot`'s web process (with the agent's API key) and a worker."""
    with SlackStandIn(bot_token=TOKEN) as slack:
        settings = make_settings(
            redis_url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack.url,
            default_channel=CHANNEL, admins=["U0ALICE"], api_keys=KEYS,
        )
        approvals = Approvals(settings=settings)
        app = build_app(settings, approvals=approvals, client=WebClient(token=TOKEN, base_url=slack.url))
        web = build_web_app(approvals, bolt=app, signing_secret=SECRET)
        server = WebServer(web, host="127.0.0.1", port=0).start()
        worker = start_worker(
            redis_url, prefix, SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.url, HITL_DEFAULT_CHANNEL=CHANNEL,
            HITL_TIMER_LEASE="2",
        )
        try:
            bot = Bot(server.url, slack, approvals, Interactions(slack.workspace))
            yield Stack(bot, server, worker.log_path)  # type: ignore[attr-defined]
        finally:
            stop(worker)
            server.stop()
            approvals.close()


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


@pytest.fixture
def stack(redis_url: str, prefix: str) -> Iterator[Stack]:
    with product(redis_url, prefix) as running:
        yield running


class Listener:
    """A TCP port that counts the connections made to it: where an agent's REDIS_URL points
    when the test shows the HTTP transport never opens a Redis connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, name="redis-decoy", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.sock.getsockname()[1]}/0"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def decoy_redis() -> Iterator[Listener]:
    listener = Listener()
    yield listener
    listener.close()
