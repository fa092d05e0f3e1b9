"""The MCP tools over stdio (`hitl mcp`) and streamable HTTP (/mcp), with the SDK's client."""

from __future__ import annotations

import asyncio
import json
import sys
import urllib.error
import urllib.request

import pytest
from mcp import Client, MCPError
from mcp.client.stdio import StdioServerParameters

from hitl import Approvals
from tests.helpers import ROOT, events, hitl_env, publish_policy
from tests.mcp.conftest import API_KEY, Answer, McpHttpServer, call, first_pending, serve

TOOLS = {"request_approval", "await_approval", "get_approval", "cancel_approval", "permission_prompt"}


def _decide_later(approvals: Approvals, **kwargs) -> asyncio.Future:
    """Decide the pending request from a thread, as a reviewer would, once it exists; the
    future's result is the request as decided."""
    return asyncio.ensure_future(asyncio.to_thread(lambda: approvals.decide(first_pending(approvals), **kwargs)))


async def _pending_then_decided(client, approvals: Approvals) -> tuple[Answer, Answer]:
    pending = await call(
        client, "request_approval", action="send_email", summary="Email 200 customers",
        params={"count": 200}, wait_seconds=1,
    )
    view = pending.json
    assert view["status"] == "pending" and view["decision"] is None
    assert "await_approval" in view["message"] and view["id"] in view["message"]
    approvals.decide(view["id"], "approve", by="U0ALICE", comment="fine", params={"count": 20})
    done = await call(client, "await_approval", id=view["id"], wait_seconds=10)
    return pending, done


def test_stdio_request_pending_then_await_returns_the_decision(stdio, approvals: Approvals) -> None:
    async def scenario() -> None:
        async with stdio() as client:
            assert {t.name for t in (await client.list_tools()).tools} >= TOOLS
            pending, done = await _pending_then_decided(client, approvals)
            assert pending.elapsed < 1.0 + 1.5  # held about wait_seconds (+ transport on a busy machine), not 20 s
            view = done.json
            assert view["status"] == "approved"
            assert view["decision"]["approved"] is True
            assert view["decision"]["by"] == ["U0ALICE"] and view["decision"]["comment"] == "fine"
            assert view["decision"]["params"] == {"count": 20} and view["params"] == {"count": 200}
            assert view["created_at"].endswith("Z") and view["decision"]["decided_at"].endswith("Z")
            got = (await call(client, "get_approval", id=view["id"])).json
            assert got["decision"] == view["decision"]

    asyncio.run(scenario())


def test_stdio_await_wakes_on_the_decision_not_at_the_end_of_the_wait(stdio, approvals: Approvals) -> None:
    async def scenario() -> None:
        async with stdio() as client:
            view = (await call(client, "request_approval", action="deploy", summary="Deploy v2", wait_seconds=0)).json
            assert view["status"] == "pending"
            waiting = asyncio.ensure_future(call(client, "await_approval", id=view["id"], wait_seconds=30))
            await asyncio.sleep(0.5)  # likely held by now; either way it must answer the decision at once
            await asyncio.to_thread(approvals.decide, view["id"], "reject", by="U0BOB", comment="not today")
            done = await waiting
            assert done.elapsed < 10
            assert done.json["status"] == "rejected"
            assert "not today" in done.json["message"]

    asyncio.run(scenario())


def test_stdio_permission_prompt_allows_with_the_edited_input(stdio, approvals: Approvals) -> None:
    async def scenario() -> None:
        async with stdio() as client:
            reviewer = _decide_later(approvals, verb="approve", by="U0ALICE", params={"command": "ls -la /tmp"})
            answer = await call(
                client, "permission_prompt", tool_name="Bash", input={"command": "rm -rf /tmp"}, tool_use_id="toolu_01"
            )
            req = await reviewer
            assert answer.json == {"behavior": "allow", "updatedInput": {"command": "ls -la /tmp"}}
            assert req.action == "Bash" and req.mode == "gate" and "rm -rf /tmp" in req.summary
            assert req.params == {"command": "rm -rf /tmp"}

    asyncio.run(scenario())


def test_stdio_permission_prompt_denies_with_the_reviewers_reason(stdio, approvals: Approvals) -> None:
    async def scenario() -> Answer:
        async with stdio() as client:
            reviewer = _decide_later(approvals, verb="reject", by="U0BOB", comment="never touch prod")
            answer = await call(client, "permission_prompt", tool_name="Bash", input={"command": "kubectl delete ns prod"})
            await reviewer
            return answer

    answer = asyncio.run(scenario())
    assert answer.json["behavior"] == "deny"
    assert "never touch prod" in answer.json["message"]


def test_permission_prompt_without_a_decision_denies_and_leaves_it_pending(stdio, approvals: Approvals) -> None:
    async def scenario() -> Answer:
        async with stdio() as client:
            return await call(client, "permission_prompt", tool_name="Write", input={"file_path": "/etc/hosts"}, wait_seconds=1)

    answer = asyncio.run(scenario())
    assert answer.elapsed < 1.0 + 1.5
    deny = answer.json
    assert deny["behavior"] == "deny"
    (rid,) = {e["id"] for e in events(approvals.redis, approvals.keys.prefix) if "id" in e}
    assert f"request {rid} is still pending in Slack" in deny["message"]
    assert "not a rejection" in deny["message"] and "await_approval" in deny["message"]
    assert approvals.store.get(rid).status == "pending"  # never withdrawn: a reviewer may still decide


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("request_approval", {"action": "a", "summary": "s", "wait_seconds": 60}, "wait_seconds"),
        ("request_approval", {"action": "a", "summary": "s", "wait_seconds": "soon"}, "wait_seconds"),
        ("request_approval", {"action": "a", "summary": "s", "confidence": 2, "wait_seconds": 0}, "confidence"),
        ("request_approval", {"action": "a"}, "summary"),
        ("request_approval", {"action": "a b", "summary": "s", "wait_seconds": 0}, "action"),
        ("request_approval", {"action": "a", "summary": "s", "params": {"x": "y" * 300_000}, "wait_seconds": 0}, "params"),
        ("await_approval", {"id": "nope", "wait_seconds": 1}, "id"),
        ("get_approval", {"id": "nope"}, "id"),
        ("cancel_approval", {"id": "nope"}, "id"),
        ("permission_prompt", {"tool_name": "Bash", "input": "ls"}, "input"),
    ],
)
def test_bad_input_is_a_tool_error_naming_the_field(mcp_http: McpHttpServer, tool: str, arguments: dict, field: str) -> None:
    async def scenario() -> Answer:
        async with mcp_http.client() as client:
            return await call(client, tool, **arguments)

    answer = asyncio.run(scenario())
    assert answer.error, answer.text
    assert field in answer.text


def test_request_approval_takes_every_request_argument_with_the_same_checks(
    mcp_http: McpHttpServer, approvals: Approvals
) -> None:
    """The tool's arguments are `request()`'s (hitl.fields), callback_url included, and a bad
    one is refused in `request()`'s words: here a webhook destination nobody allowed."""

    async def scenario() -> tuple[Answer, Answer]:
        async with mcp_http.client() as client:
            refused = await call(client, "request_approval", action="a", summary="s",
                                 callback_url="https://evil.example/x", wait_seconds=0)
            filed = await call(client, "request_approval", action="a", summary="s", run_id="run-7",
                               risk="low", approvers=["U0ALICE"], timeout="90", wait_seconds=0)
            return refused, filed

    refused, filed = asyncio.run(scenario())
    assert refused.error and "callback_url: 'https://evil.example/x' is refused" in refused.text
    stored = approvals.fetch(filed.json["id"])
    assert (stored.run_id, stored.risk, stored.approvers, stored.timeout) == ("run-7", "low", ["U0ALICE"], 90)


def test_ids_that_cannot_be_request_ids_are_not_found_like_unknown_ids(mcp_http: McpHttpServer) -> None:
    """`<id>:done` names the final request's done list in Redis: the tools answer it as they
    answer an unknown id, instead of failing on Redis's type error."""

    async def scenario() -> tuple[str, list[Answer]]:
        async with mcp_http.client() as client:
            view = (await call(client, "request_approval", action="a", summary="s", wait_seconds=0)).json
            await call(client, "cancel_approval", id=view["id"])  # final: the done list exists now
            bad = view["id"] + ":done"
            return bad, [
                await call(client, "get_approval", id=bad),
                await call(client, "await_approval", id=bad, wait_seconds=1),
                await call(client, "cancel_approval", id=bad),
                await call(client, "get_approval", id="0" * 18),  # well-formed, unknown: the reference
            ]

    bad, answers = asyncio.run(scenario())
    for answer in answers[:3]:
        assert answer.error and answer.text.endswith(f"id: no request with id {bad!r}"), answer.text
    assert answers[3].error and answers[3].text.endswith(f"id: no request with id {'0' * 18!r}")


def test_cancel_after_final_is_an_error_saying_so(mcp_http: McpHttpServer, approvals: Approvals) -> None:
    async def scenario() -> tuple[Answer, Answer]:
        async with mcp_http.client() as client:
            view = (await call(client, "request_approval", action="a", summary="s", wait_seconds=0)).json
            cancelled = await call(client, "cancel_approval", id=view["id"])
            again = await call(client, "cancel_approval", id=view["id"])
            return cancelled, again

    cancelled, again = asyncio.run(scenario())
    assert cancelled.json["status"] == "cancelled"
    assert "was cancelled" in cancelled.json["message"]
    assert again.error and "id:" in again.text and "already cancelled" in again.text


def test_http_request_pending_then_await_returns_the_decision(mcp_http: McpHttpServer, approvals: Approvals) -> None:
    async def scenario() -> None:
        async with mcp_http.client() as client:
            assert {t.name for t in (await client.list_tools()).tools} >= TOOLS
            pending, done = await _pending_then_decided(client, approvals)
            assert pending.elapsed < 1.0 + 1.5
            assert done.json["status"] == "approved" and done.json["decision"]["params"] == {"count": 20}

    asyncio.run(scenario())


def test_http_permission_prompt_edit_and_reject(mcp_http: McpHttpServer, approvals: Approvals) -> None:
    async def scenario() -> tuple[Answer, Answer]:
        async with mcp_http.client() as client:
            reviewer = _decide_later(approvals, verb="approve", by="U0ALICE", params={"file_path": "/tmp/x", "content": "hi"})
            allowed = await call(client, "permission_prompt", tool_name="Write", input={"file_path": "/etc/x", "content": "hi"})
            await reviewer
            reviewer = _decide_later(approvals, verb="reject", by="U0BOB", comment="use a branch")
            denied = await call(client, "permission_prompt", tool_name="Bash", input={"command": "git push -f"})
            await reviewer
            return allowed, denied

    allowed, denied = asyncio.run(scenario())
    assert allowed.json == {"behavior": "allow", "updatedInput": {"file_path": "/tmp/x", "content": "hi"}}
    assert denied.json["behavior"] == "deny" and "use a branch" in denied.json["message"]


def _post(url: str, key: str | None, body: bytes = b'{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}') -> tuple[int, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_http_needs_a_valid_key(mcp_http: McpHttpServer) -> None:
    for key in (None, "wrong", ""):
        status, body = _post(mcp_http.url, key)
        assert status == 401, body
        assert json.loads(body)["error"] in ("wrong API key", "missing API key: send Authorization: Bearer <secret>")

    async def scenario() -> None:
        async with mcp_http.client(key="wrong") as client:
            await client.list_tools()

    with pytest.raises(ExceptionGroup) as info:  # the SDK client refuses to go on after the 401
        asyncio.run(scenario())
    assert info.group_contains(MCPError, match="error response", depth=2)


def test_http_without_configured_keys_says_so(settings) -> None:
    with serve(settings, {}) as server:
        status, body = _post(server.url, API_KEY)
    assert status == 401
    assert "no API keys are configured" in body


def test_http_malformed_json_is_a_parse_error(mcp_http: McpHttpServer) -> None:
    status, body = _post(mcp_http.url, API_KEY, b'{"jsonrpc": "2.0", "id": 1, "method": ')
    assert status == 400
    assert '"code":-32700' in body and "Parse error" in body


def test_stdio_routes_with_the_published_policy_not_the_agent_machines_file(
    redis_url: str, prefix: str, approvals: Approvals, tmp_path
) -> None:
    """Issue 15: `hitl mcp` runs on the agent's machine; its own policy file changes nothing."""
    publish_policy(approvals, 'actions: {purge_table: {mode: gate, approvers: [U0ALICE, U0BOB], channel: "#data-owners"}}\n')
    own = tmp_path / "agent-policy.yml"
    own.write_text("actions: {purge_table: {mode: auto, approvers: [U0MALLORY], channel: C0AGENTROOM}}\n")
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hitl.cli", "mcp"], cwd=ROOT,
        env=hitl_env(redis_url, prefix, HITL_POLICY_FILE=str(own)),
    )

    async def scenario() -> tuple[Answer, Answer]:
        async with Client(params, read_timeout_seconds=90) as client:
            named = await call(client, "request_approval", action="purge_table", summary="Purge orders",
                               approvers=["U0MALLORY"], wait_seconds=0)
            filed = await call(client, "request_approval", action="purge_table", summary="Purge orders",
                               channel="C0AGENTROOM", wait_seconds=0)
            return named, filed

    named, filed = asyncio.run(scenario())
    assert named.error and "approvers" in named.text and "U0MALLORY" in named.text
    view = filed.json
    assert (view["mode"], view["channel"], view["policy_version"]) == ("gate", "#data-owners", 1)
    assert approvals.get(view["id"]).fetch().approvers == ["U0ALICE", "U0BOB"]
