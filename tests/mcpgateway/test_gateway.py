"""The gateway in front of a real MCP server: what reaches the upstream, and when."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
import redis
from mcp_types import CallToolResult, InputRequiredResult
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from bot.slack.blocks import cards
from hitl import Approvals
from hitl.keys import timer_member
from hitl.status import ExecutionState, SystemVerb
from tests.gateway.conftest import SECRET, running_gateway
from tests.helpers import events, eventually
from tests.mcp.conftest import first_pending
from tests.mcpgateway.conftest import Answer, UpstreamLog, call, http_upstream, stdio_upstream

pytestmark = pytest.mark.usefixtures("policy")


def test_an_auto_call_is_forwarded_at_once_and_recorded(
    gateway: Callable[..., Any], received: UpstreamLog, conn: redis.Redis, prefix: str
) -> None:
    async def scenario() -> tuple[set[str], Any]:
        async with gateway({"up": stdio_upstream(received)}) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            return listed, await call(client, "echo", text="hi")

    listed, answer = asyncio.run(scenario())
    assert {"echo", "delete_file", "post_update", "hang"} <= listed
    assert not answer.error and answer.text == "echo: hi"
    assert received.calls("echo") == [{"text": "hi"}]
    created = [e for e in events(conn, prefix) if e["type"] == "created"]
    assert len(created) == 1 and created[0]["action"] == "up.echo"


def test_a_gated_call_forwards_the_reviewers_edit_exactly_once(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            pending = asyncio.create_task(call(client, "delete_file", path="/srv/all"))
            rid = await asyncio.to_thread(first_pending, approvals)
            assert received.calls() == []  # nothing reaches the upstream before a decision
            approvals.decide(rid, "approve", by="U01", params={"path": "/srv/one.txt"})
            return await pending

    answer = asyncio.run(scenario())
    assert not answer.error and answer.text == "deleted /srv/one.txt"
    assert received.calls("delete_file") == [{"path": "/srv/one.txt"}]
    (finished,) = [e for e in events(conn, prefix) if e["type"] == "execution_finished"]
    assert finished["ok"] == "1" and "deleted /srv/one.txt" in finished["result"]  # the upstream's answer


def test_a_rejection_is_a_tool_error_with_the_reviewers_words(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals
) -> None:
    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            pending = asyncio.create_task(call(client, "delete_file", path="/srv/all"))
            rid = await asyncio.to_thread(first_pending, approvals)
            approvals.decide(rid, "reject", by="U01", comment="not the whole disk, please")
            return await pending

    answer = asyncio.run(scenario())
    assert answer.error and "not the whole disk, please" in answer.text and "U01" in answer.text
    assert received.calls() == []


def test_an_expired_gate_says_no_one_decided_in_time(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals
) -> None:
    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            pending = asyncio.create_task(call(client, "delete_file", path="/srv/x"))
            rid = await asyncio.to_thread(first_pending, approvals)
            approvals.store.transition(rid, SystemVerb.EXPIRE)  # what the worker's timer does
            return await pending

    answer = asyncio.run(scenario())
    assert answer.error and "No one decided on up.delete_file in time" in answer.text
    assert received.calls() == []


def test_a_modern_client_is_deferred_past_wait_seconds_and_its_retry_reattaches(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    """MCP 2026-07-28: a call still pending after wait_seconds answers input_required with a
    requestState; the client's retries re-attach to the same request, which never lapses."""

    async def scenario() -> tuple[str, Any, Any, Any, str]:
        async with gateway({"up": stdio_upstream(received)}, wait_seconds=0.3) as client:
            version = client.protocol_version
            ask = functools.partial(client.session.call_tool, "delete_file", {"path": "/srv/a"})
            first = await ask(allow_input_required=True)
            rid = await asyncio.to_thread(first_pending, approvals)
            again = await ask(request_state=first.request_state, allow_input_required=True)
            approvals.decide(rid, "approve", by="U01", params={"path": "/srv/b"})
            final = await ask(request_state=again.request_state, allow_input_required=True)
            return version, first, again, final, rid

    version, first, again, final, rid = asyncio.run(scenario())
    assert version in MODERN_PROTOCOL_VERSIONS
    assert isinstance(first, InputRequiredResult) and first.request_state == f"hitl-request:{rid}"
    assert isinstance(again, InputRequiredResult)  # still pending: deferred again, not re-filed
    assert isinstance(final, CallToolResult) and not final.is_error
    assert final.content[0].text == "deleted /srv/b"  # type: ignore[union-attr]
    assert received.calls("delete_file") == [{"path": "/srv/b"}]  # the edit, once
    assert [e["type"] for e in events(conn, prefix)].count("created") == 1


def test_the_sdks_own_retry_loop_waits_out_a_slow_reviewer(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    """`Client.call_tool` follows input_required by itself: the model sees only the answer."""

    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}, wait_seconds=0.2) as client:
            session, retried = client.session, asyncio.Event()
            send = session.call_tool

            async def watched(*args: Any, **kwargs: Any) -> Any:
                if kwargs.get("request_state"):  # the SDK's own retry of a deferred call
                    retried.set()
                return await send(*args, **kwargs)

            session.call_tool = watched  # type: ignore[method-assign]
            pending = asyncio.create_task(call(client, "delete_file", path="/srv/c"))
            rid = await asyncio.to_thread(first_pending, approvals)
            # Decide only once a hold ran out and the SDK retried, so a retry re-attached.
            await asyncio.wait_for(retried.wait(), 30)
            approvals.decide(rid, "approve", by="U01")
            return await pending

    answer = asyncio.run(scenario())
    assert not answer.error and answer.text == "deleted /srv/c"
    assert received.calls("delete_file") == [{"path": "/srv/c"}]
    assert [e["type"] for e in events(conn, prefix)].count("created") == 1


def test_an_older_client_hears_still_pending_and_the_same_call_reattaches(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    async def scenario() -> tuple[str, Answer, Answer, Answer, str]:
        async with gateway({"up": stdio_upstream(received)}, wait_seconds=0.3, mode="legacy") as client:
            first = await call(client, "delete_file", path="/srv/d")
            rid = await asyncio.to_thread(first_pending, approvals)
            again = await call(client, "delete_file", path="/srv/d")
            approvals.decide(rid, "approve", by="U01")
            return client.protocol_version, first, again, await call(client, "delete_file", path="/srv/d"), rid

    version, first, again, final, rid = asyncio.run(scenario())
    assert version not in MODERN_PROTOCOL_VERSIONS
    for answer in (first, again):
        assert answer.error and f"request {rid} is still pending in Slack" in answer.text
        assert "Call delete_file again with the same arguments" in answer.text and "NOT called" in answer.text
    assert not final.error and final.text == "deleted /srv/d"
    assert received.calls("delete_file") == [{"path": "/srv/d"}]
    assert [e["type"] for e in events(conn, prefix)].count("created") == 1  # one request, one card


def test_on_an_agents_machine_the_gateway_files_over_http_and_forwards_the_edit_once(
    gateway: Callable[..., Any], received: UpstreamLog, redis_url: str, prefix: str, conn: redis.Redis
) -> None:
    """HITL_API_URL and an API key, as on an agent's machine: the hitl server routes and
    records the key; the gateway learns from 201 that the request is its own."""
    with running_gateway(redis_url, prefix) as web:
        env = {"HITL_API_URL": web.url, "HITL_API_KEY": SECRET}

        async def scenario() -> Any:
            async with gateway({"up": stdio_upstream(received)}, env=env) as client:
                pending = asyncio.create_task(call(client, "delete_file", path="/srv/all"))
                rid = await asyncio.to_thread(first_pending, web.approvals)
                web.approvals.decide(rid, "approve", by="U01", params={"path": "/srv/tmp"})
                return await pending, rid

        answer, rid = asyncio.run(scenario())
        assert web.approvals.get(rid).fetch().via == "ci"  # the key is the requester
    assert not answer.error and answer.text == "deleted /srv/tmp"
    assert received.calls("delete_file") == [{"path": "/srv/tmp"}]
    created = [e for e in events(conn, prefix) if e["type"] == "created"]
    assert len(created) == 1 and created[0]["id"] == rid


def test_a_notify_call_runs_at_once_and_says_a_veto_cannot_uncall_it(
    gateway: Callable[..., Any], received: UpstreamLog
) -> None:
    async def scenario() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            return await call(client, "post_update", text="deploy done")

    answer = asyncio.run(scenario())
    assert not answer.error and answer.text.startswith("posted: deploy done")
    assert "A veto cannot un-call a tool" in answer.text
    assert received.calls("post_update") == [{"text": "deploy done"}]


def test_a_gateway_killed_after_approval_forwards_at_most_once_and_says_unknown(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals, conn: redis.Redis, prefix: str
) -> None:
    """kill -9 of the gateway while the approved call is in flight: the restarted gateway's
    retry of the same call re-attaches to the request and does not forward it again."""

    async def first() -> None:
        with contextlib.suppress(Exception):
            async with gateway({"up": stdio_upstream(received)}) as client:
                pending = asyncio.create_task(call(client, "hang", tag="t1"))
                rid = await asyncio.to_thread(first_pending, approvals)
                approvals.decide(rid, "approve", by="U01")
                await asyncio.to_thread(eventually, lambda: received.calls("hang"), 20, "the call to arrive")
                os.kill(received.parent(), signal.SIGKILL)
                await pending

    async def retry() -> Any:
        async with gateway({"up": stdio_upstream(received)}) as client:
            return await call(client, "hang", tag="t1")

    asyncio.run(first())
    answer = asyncio.run(retry())
    assert answer.error and "outcome is unknown" in answer.text
    assert received.calls("hang") == [{"tag": "t1"}]
    [created] = [e for e in events(conn, prefix) if e["type"] == "created"]
    rid = created["id"]
    req = approvals.fetch(rid)
    assert req.execution is ExecutionState.UNKNOWN
    assert [e["type"] for e in events(conn, prefix, rid)].count("outcome_unknown") == 1
    assert conn.zscore(f"{prefix}:timers", timer_member(rid, "sync")) is not None  # the card re-syncs...
    assert "Outcome unknown: check before retrying" in str(cards.build_card(req)[1])  # ...to say so


def test_an_http_upstream_gets_the_edited_arguments_once(
    gateway: Callable[..., Any], received: UpstreamLog, approvals: Approvals
) -> None:
    async def scenario(url: str) -> Any:
        async with gateway({"up": {"url": url, "headers": {"X-Test": "1"}}}) as client:
            pending = asyncio.create_task(call(client, "delete_file", path="/a"))
            rid = await asyncio.to_thread(first_pending, approvals)
            approvals.decide(rid, "approve", by="U01", params={"path": "/b"})
            return await pending

    with http_upstream(received) as (url, _proc):
        answer = asyncio.run(scenario(url))
    assert not answer.error and answer.text == "deleted /b"
    assert received.calls() == [{"path": "/b"}]


def test_an_upstream_that_went_down_is_a_clear_error_and_nothing_is_filed(
    gateway: Callable[..., Any], received: UpstreamLog, conn: redis.Redis, prefix: str
) -> None:
    async def scenario(url: str, proc: subprocess.Popen[bytes]) -> list[Any]:
        async with gateway({"up": {"url": url}}) as client:
            assert not (await call(client, "echo", text="before")).error
            proc.kill()
            proc.wait(10)
            return [await call(client, "delete_file", path="/x"), await call(client, "delete_file", path="/x")]

    with http_upstream(received) as (url, proc):
        answers = asyncio.run(scenario(url, proc))
    for answer in answers:
        assert answer.error and "MCP server 'up' is unreachable" in answer.text
        assert "Nothing was filed for review and the tool was not called" in answer.text
    created = [e["action"] for e in events(conn, prefix) if e["type"] == "created"]
    assert created == ["up.echo"]


def test_an_upstream_that_never_starts_is_left_out_and_the_others_serve(
    gateway: Callable[..., Any], received: UpstreamLog
) -> None:
    broken = {"command": [sys.executable, "-c", "raise SystemExit('no such server')"]}

    async def scenario() -> tuple[set[str], Any]:
        async with gateway({"up": stdio_upstream(received), "gone": broken}) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            return listed, await call(client, "echo", text="still here")

    listed, answer = asyncio.run(scenario())
    assert "echo" in listed and not answer.error


def test_tools_two_upstreams_share_are_prefixed_and_routed_to_their_own(
    gateway: Callable[..., Any], received: UpstreamLog, conn: redis.Redis, prefix: str
) -> None:
    async def scenario(url: str) -> tuple[set[str], Any]:
        async with gateway({"up": stdio_upstream(received), "web": {"url": url}}) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            return listed, await call(client, "web__echo", text="via http")

    with http_upstream(received) as (url, _proc):
        listed, answer = asyncio.run(scenario(url))
    assert {"up__echo", "web__echo", "up__delete_file"} <= listed and "echo" not in listed
    assert not answer.error and answer.text == "echo: via http"
    [created] = [e for e in events(conn, prefix) if e["type"] == "created"]
    assert created["action"] == "web.echo"  # no rule names it: its readOnlyHint made it low risk, auto
