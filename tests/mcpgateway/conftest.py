"""Gateway fixtures: a real upstream MCP server (tests/mcpgateway/upstream.py, over stdio
or streamable HTTP), the gateway as `hitl mcp gateway` subprocess, driven with the `mcp`
SDK's own client."""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters

from hitl import Approvals, waiters
from hitl.embedded import free_port
from tests.helpers import ROOT, eventually, hitl_env, publish_policy

POLICY = """\
actions:
  up.echo: {mode: auto}
  up.post_update: {mode: notify}
  up.delete_file: {mode: gate, timeout: 1h}
  up.hang: {mode: gate, timeout: 1h}
rules:  # for the rest: the upstream's annotations say read-only, so low risk and reversible
  - when: {risk: low, reversible: true}
    mode: auto
"""


@dataclass
class Answer:
    """A tool call's result: its text (all content joined) and whether it is an error."""

    error: bool
    text: str


async def call(client: Client, tool: str, **arguments: Any) -> Answer:
    result = await client.call_tool(tool, arguments)
    return Answer(bool(result.is_error), "\n".join(getattr(c, "text", "") for c in result.content))


class UpstreamLog:
    """What the upstream received, call by call."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def calls(self, tool: str | None = None) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = [json.loads(line) for line in self.path.read_text().splitlines() if line]
        return [c["arguments"] for c in lines if tool is None or c["tool"] == tool]

    def parent(self) -> int:
        """The pid of the process that started the upstream (the gateway, over stdio)."""
        return int(json.loads(self.path.read_text().splitlines()[-1])["parent"])


@pytest.fixture(autouse=True)
def _fresh_dispatchers() -> Iterator[None]:
    yield
    waiters.shutdown()


@pytest.fixture
def received(tmp_path: Path) -> UpstreamLog:
    return UpstreamLog(tmp_path / "upstream.jsonl")


@pytest.fixture
def policy(approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)


def stdio_upstream(received: UpstreamLog) -> dict[str, Any]:
    """The config entry of the test upstream over stdio."""
    return {
        "command": [sys.executable, "-m", "tests.mcpgateway.upstream", "stdio"],
        "env": {"UPSTREAM_LOG": str(received.path), "PYTHONPATH": str(ROOT)},
        "cwd": str(ROOT),
    }


@contextlib.contextmanager
def http_upstream(received: UpstreamLog) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """The test upstream as a streamable-HTTP server: its URL, once it answers."""
    port = free_port()
    env = {**hitl_env("", ""), "UPSTREAM_LOG": str(received.path)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.mcpgateway.upstream", "http", str(port)], cwd=ROOT, env=env,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/mcp"

    def up() -> bool:
        if proc.poll() is not None:
            raise AssertionError("the HTTP upstream exited")
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    try:
        eventually(up, 20, "the HTTP upstream to listen")
        yield url, proc
    finally:
        proc.kill()
        proc.wait(10)


@pytest.fixture
def gateway(redis_url: str, prefix: str, tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Client]]:
    """Start `hitl mcp gateway --config FILE` (Redis credentials: an operator's host) and
    connect to it with the SDK's client."""

    @contextlib.asynccontextmanager
    async def connect(
        upstreams: dict[str, Any], *, wait_seconds: float | None = None, mode: str = "auto",
        env: dict[str, str] | None = None,
    ) -> AsyncIterator[Client]:
        """`mode`: the client's protocol negotiation ("legacy": a pre-2026 client); `env`:
        extra variables for the gateway (HITL_API_URL and HITL_API_KEY: an agent's machine)."""
        config = tmp_path / "gateway.yaml"
        document: dict[str, Any] = {"upstreams": upstreams}
        if wait_seconds is not None:
            document["wait_seconds"] = wait_seconds
        config.write_text(yaml.safe_dump(document))
        params = StdioServerParameters(
            command=sys.executable, args=["-m", "hitl.cli", "mcp", "gateway", "--config", str(config)],
            env={**hitl_env(redis_url, prefix), **(env or {})}, cwd=ROOT,
        )
        async with Client(params, read_timeout_seconds=60, mode=mode) as client:
            yield client

    return connect
