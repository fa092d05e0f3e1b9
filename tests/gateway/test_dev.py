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


def test_the_demo_seeds_a_promotion_proposal_and_a_card_offering_a_grant(redis_url: str, prefix: str) -> None:
    """`make demo` shows the trust loop in its first minute: a proposal to promote the action
    a short decided history qualifies, and a card with Approve for 1 hour."""
    from hitl_sandbox.dev import DEFAULT_CHANNEL, SANDBOX_TOKEN
    from hitl_sandbox.seed import ACTION, PROPOSALS_CHANNEL, seed
    from slack_sdk import WebClient

    from bot.slack.blocks.cards import ACTION_GRANT

    with running_stack(port=free_port(), redis_url=redis_url, prefix=prefix, isolated=True) as stack:
        client = WebClient(token=SANDBOX_TOKEN, base_url=stack.stand_in.url)
        seeded = seed(stack.approvals, client, stack.approvals.settings)
        assert seeded.policy_version == 1 and seeded.decided == 5 and seeded.proposals == 1
        ws = stack.stand_in.workspace
        proposal = [m for m in ws.messages(PROPOSALS_CHANNEL, include_replies=False)
                    if f"Promote `{ACTION}` from gate to override" in (m.text or "")]
        assert len(proposal) == 1

        def grant_card():
            for m in ws.messages(DEFAULT_CHANNEL, include_replies=False):
                if (m.metadata or {}).get("event_payload", {}).get("id") == seeded.grantable:
                    ids = {e.get("action_id") for b in m.blocks or [] if b.get("type") == "actions"
                           for e in b["elements"]}
                    return m if ACTION_GRANT in ids else None
            return None

        ws.wait_for(grant_card, 30, what="the seeded card offering a grant")
        # seeding again (a developer's own prefix, a policy already in force) leaves the policy be
        again = seed(stack.approvals, client, stack.approvals.settings)
        assert again.policy_version is None and stack.approvals.policy.version_in_force() == 1
        assert "seeded: 5 tag_ticket requests approved by bob" in again.lines()[0]
