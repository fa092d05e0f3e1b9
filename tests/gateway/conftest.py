"""The web process in-thread on uvicorn, with API keys, against the shared test Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bot.gateway.web import WebServer, build_web_app
from hitl import Approvals
from tests.conftest import make_settings

KEYS = "ci:sekrit-ci,laptop:sekrit-laptop"
SECRET = "sekrit-ci"


@dataclass
class Gateway:
    server: WebServer
    approvals: Approvals
    http: httpx.Client  # authenticated as the "ci" key

    @property
    def url(self) -> str:
        return self.server.base_url

    def anonymous(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


@contextlib.contextmanager
def running_gateway(redis_url: str, prefix: str, **overrides: object) -> Iterator[Gateway]:
    """A web process on uvicorn in this thread's process, with the test keys; `overrides`
    change its settings (tests that need another rate or pool)."""
    settings = make_settings(redis_url, prefix, **{
        "api_keys": KEYS, "webhook_allowed": "http://127.0.0.1:9/hook", "default_channel": "C0APPROVALS",
        **overrides,
    })
    approvals = Approvals(settings=settings)
    server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
    client = httpx.Client(base_url=server.base_url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=90)
    try:
        yield Gateway(server, approvals, client)
    finally:
        client.close()
        server.stop()
        approvals.close()


@pytest.fixture
def gateway(redis_url: str, prefix: str) -> Iterator[Gateway]:
    with running_gateway(redis_url, prefix) as gw:
        yield gw
