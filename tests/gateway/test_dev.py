"""`hitl dev` makes an API key and prints a curl line that works as printed."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import subprocess

import httpx2
from hitl_sandbox.dev import banner, running_stack
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from hitl.embedded import free_port
from hitl.settings import Settings


def test_dev_prints_a_key_and_a_working_curl_line(redis_url: str, prefix: str) -> None:
    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True) as stack:
        text = banner(stack, demo=False)
        line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("curl "))
        assert stack.api_key in line
        out = subprocess.run(shlex.split(line), capture_output=True, text=True, timeout=30, check=True).stdout
        rid = re.search(r'"id":"([0-9a-z]+)"', out.replace(" ", ""))
        assert rid, out
        req = stack.approvals.store.get(rid.group(1))
    assert req.summary == "Deploy v1.2"
    assert req.via == "dev"


def test_dev_stays_on_loopback_whatever_hitl_host_says(redis_url: str, prefix: str) -> None:
    """HITL_HOST is for `hitl bot`; the sandbox signs Slack requests as anyone and prints its key."""
    settings = Settings(_env_file=None, host="0.0.0.0")  # type: ignore[call-arg]
    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True, settings=settings) as stack:
        assert stack.bot.sock.getsockname()[0] == "127.0.0.1"
        assert stack.stand_in.url.startswith("http://127.0.0.1:")


def test_dev_serves_mcp_with_the_key_it_prints(redis_url: str, prefix: str) -> None:
    """The official `mcp` client over streamable HTTP, configured from the banner alone."""
    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True) as stack:
        text = banner(stack, demo=False)
        line = next(ln.strip() for ln in text.splitlines() if ln.strip().startswith("claude mcp add"))
        words = shlex.split(line)
        url, header = words[words.index("http") + 2], words[words.index("--header") + 1]
        assert url == stack.bot.base_url + "/mcp" and header == f"Authorization: Bearer {stack.api_key}"

        async def session(key: str) -> tuple[dict, dict]:
            async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http, Client(
                streamable_http_client(url, http_client=http), read_timeout_seconds=30
            ) as client:
                filed = await client.call_tool(
                    "request_approval", {"action": "deploy", "summary": "Deploy v1.2", "wait_seconds": 0}
                )
                view = json.loads(filed.content[0].text)
                await asyncio.to_thread(stack.approvals.decide, view["id"], "approve", by="U0ALICE")
                done = await client.call_tool("await_approval", {"id": view["id"], "wait_seconds": 10})
                return view, json.loads(done.content[0].text)

        pending, decided = asyncio.run(session(header.removeprefix("Authorization: Bearer ")))
        assert pending["status"] == "pending" and decided["status"] == "approved"
        wrong = httpx2.post(url, headers={"Authorization": "Bearer not-the-key"}, json={}, timeout=10)
        assert wrong.status_code == 401
