"""The HTTP transport against a real web process: the Redis client's API, errors and waits,
with an API key and no Redis connection of its own."""

from __future__ import annotations

import asyncio
import inspect
import threading
from collections.abc import Iterator

import httpx
import pytest

from hitl import (
    AlreadyDecided,
    Approvals,
    AsyncApprovals,
    ConfigError,
    InvalidRequest,
    Rejected,
    RequestNotFound,
    Status,
    WaitTimeout,
)
from hitl import remotebase as rb
from hitl.errors import ApiKeyRefused, ApiUnavailable, ReviewerOnly
from hitl.remote import AsyncHttpApprovals, HttpApprovals
from tests.conftest import make_settings
from tests.gateway.conftest import SECRET, Gateway, gateway  # noqa: F401 - the web process, reused
from tests.helpers import eventually
from tests.remote.conftest import Listener, decoy_redis  # noqa: F401

GATE = {"action": "deploy", "summary": "Deploy v1.2 to production", "mode": "gate", "timeout": 600}


@pytest.fixture
def agent(gateway: Gateway) -> Iterator[HttpApprovals]:  # noqa: F811
    with Approvals(api_url=gateway.url, api_key=SECRET) as client:
        yield client


def _pending(gw: Gateway) -> list[str]:
    return [i.decode() for i in gw.approvals.redis.zrange(gw.approvals.keys.pending, 0, -1)]


# -- choosing the transport ------------------------------------------------------------------


def test_environment_api_url_wins_over_redis_url_and_no_redis_connection_is_opened(
    gateway: Gateway, decoy_redis: Listener, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setenv("REDIS_URL", decoy_redis.url)
    monkeypatch.setenv("HITL_API_URL", gateway.url)
    monkeypatch.setenv("HITL_API_KEY", SECRET)
    with Approvals() as approvals:
        assert isinstance(approvals, HttpApprovals)
        handle = approvals.request(**GATE)
        assert handle.status() is Status.PENDING
        gateway.approvals.decide(handle.id, "approve", by="U0ALICE", comment="ship it")
        decision = handle.wait(timeout=10)
        sync_cancel = approvals.request(**GATE).cancel()

    async def twin() -> Status:
        async with AsyncApprovals() as aio:
            assert isinstance(aio, AsyncHttpApprovals)
            h = await aio.request(**GATE)
            return await h.cancel()

    assert asyncio.run(twin()) is Status.CANCELLED
    assert decision.approved and decision.by == ["U0ALICE"] and decision.comment == "ship it"
    assert sync_cancel is Status.CANCELLED
    assert decoy_redis.accepted == 0  # REDIS_URL was never dialled


def test_an_explicit_redis_url_keeps_the_redis_client_and_both_at_once_is_refused(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HITL_API_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("HITL_API_KEY", "k")
    with Approvals(redis_url) as redis_client:
        assert not isinstance(redis_client, HttpApprovals)
    with pytest.raises(ConfigError, match="api_url: give either"):
        Approvals(redis_url, api_url="http://127.0.0.1:9", api_key="k")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"HITL_API_URL": "hitl.example.com"}, "HITL_API_URL: must be the web process's http"),
        ({"HITL_API_URL": "https://hitl.example.com/v1"}, "HITL_API_URL: give the base URL without /v1"),
        ({"HITL_API_URL": "https://hitl.example.com"}, "HITL_API_KEY: is required with HITL_API_URL"),
    ],
)
def test_bad_http_settings_are_one_line_naming_the_variable(
    env: dict[str, str], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HITL_API_KEY", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as err:
        Approvals()
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_http_clients_have_every_method_of_the_redis_clients() -> None:
    agent_side = {"request", "request_from", "request_batch", "request_batch_from", "get", "fetch",
                  "wait_request", "decide", "cancel", "require_approval"}
    # The at-most-once execution record, where the Redis client has it (branch `adapters`).
    agent_side |= {"start_execution", "finish_execution"} & set(dir(Approvals))
    for redis_cls, http_cls in ((Approvals, HttpApprovals), (AsyncApprovals, AsyncHttpApprovals)):
        for name in agent_side:
            ours, theirs = inspect.signature(getattr(http_cls, name)), inspect.signature(getattr(redis_cls, name))
            assert list(ours.parameters) == list(theirs.parameters), name
            assert inspect.iscoroutinefunction(getattr(http_cls, name)) == inspect.iscoroutinefunction(
                getattr(redis_cls, name)
            ), name
    assert HttpApprovals.request.__doc__ == Approvals.request.__doc__


# -- answers as the library's exceptions -----------------------------------------------------


def test_answers_map_to_the_library_exceptions(agent: HttpApprovals, gateway: Gateway) -> None:  # noqa: F811
    with pytest.raises(InvalidRequest) as local:  # checked before any round trip
        agent.request(action="drop table", summary="x")
    assert local.value.field == "action"
    with pytest.raises(InvalidRequest) as server:  # only the server knows the allow-list
        agent.request(**GATE, callback_url="https://evil.example/hook")
    assert server.value.field == "callback_url" and "allowed" in str(server.value)
    with pytest.raises(RequestNotFound, match="no request with id 'nope'"):
        agent.get("nope")
    handle = agent.request(**GATE)
    gateway.approvals.decide(handle.id, "reject", by="U0BOB", comment="not today")
    with pytest.raises(AlreadyDecided) as done:
        handle.cancel()
    assert done.value.status is Status.REJECTED and done.value.by == ["U0BOB"]
    with pytest.raises(ReviewerOnly, match="reviewers decide in Slack"):
        agent.decide(handle.id, "approve", by="U0MALLORY")
    assert gateway.approvals.store.get(handle.id).by == ["U0BOB"]
    with Approvals(api_url=gateway.url, api_key="wrong") as stranger, pytest.raises(ApiKeyRefused) as refused:
        stranger.request(**GATE)
    assert refused.value.status == 401 and "HITL_API_KEY" in str(refused.value)


def test_via_and_by_are_the_servers_to_set(agent: HttpApprovals, gateway: Gateway) -> None:  # noqa: F811
    with pytest.raises(InvalidRequest) as via:
        agent.request(**GATE, via="someone-else")
    assert via.value.field == "via"
    handle = agent.request(**GATE)
    with pytest.raises(InvalidRequest) as by:
        agent.cancel(handle.id, by="U0ALICE")
    assert by.value.field == "by"
    assert gateway.approvals.store.get(handle.id).via == "ci"


# -- waits -----------------------------------------------------------------------------------


def test_wait_long_polls_in_slices_until_decided_or_timed_out(
    agent: HttpApprovals, gateway: Gateway, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    monkeypatch.setattr(rb, "MAX_POLL", 0.3)
    polls: list[str] = []
    agent.http.event_hooks["request"].append(lambda req: polls.append(req.url.params.get("wait", "")))
    slow = agent.request(**GATE)
    polls.clear()
    with pytest.raises(WaitTimeout):
        slow.wait(timeout=1.0)
    assert len(polls) >= 3 and all(0 <= float(w) <= 0.3 for w in polls)

    handle = agent.request(**{**GATE, "summary": "second"})
    polls.clear()

    def reviewer() -> None:
        eventually(lambda: len(polls) >= 2, 10, "a second long-poll")
        gateway.approvals.decide(handle.id, "approve", by="U0ALICE")

    thread = threading.Thread(target=reviewer)
    thread.start()
    decision = handle.wait(timeout=20)
    thread.join()
    assert decision.approved and decision.by == ["U0ALICE"]


def test_batch_decorator_and_edits_over_http(agent: HttpApprovals, gateway: Gateway) -> None:  # noqa: F811
    batch = agent.request_batch("Two deploys", [{"action": "deploy", "summary": "a"},
                                                {"action": "deploy", "summary": "b", "params": {"v": 1}}])
    for item in batch.items:
        gateway.approvals.decide(item.id, "approve", by="U0ALICE")
    assert [d.approved for d in batch.wait(timeout=10)] == [True, True]

    @agent.require_approval(summary="Send {count} emails")
    def send(count: int) -> int:
        return count

    def reviewer(verb: str, **extra: object) -> None:
        rid = eventually(lambda: _pending(gateway), 10, "the gated call's request")[0]
        gateway.approvals.decide(rid, verb, by="U0ALICE", **extra)

    edit = threading.Thread(target=reviewer, args=("approve",), kwargs={"params": {"count": 3}})
    edit.start()
    assert send(200) == 3  # the reviewer's edit reached the call
    edit.join()
    no = threading.Thread(target=reviewer, args=("reject",), kwargs={"comment": "too many"})
    no.start()
    with pytest.raises(Rejected, match="too many"):
        send(200)
    no.join()


def test_async_twin_waits_and_reads(gateway: Gateway) -> None:  # noqa: F811
    async def scenario() -> tuple[Status, bool]:
        async with AsyncApprovals(api_url=gateway.url, api_key=SECRET) as aio:
            handle = await aio.request(**GATE)
            first = await handle.status()
            await asyncio.to_thread(gateway.approvals.decide, handle.id, "approve", by="U0ALICE")
            decision = await handle.wait(timeout=10)
            return first, decision.approved

    assert asyncio.run(scenario()) == (Status.PENDING, True)


def test_a_settings_object_selects_http_too(gateway: Gateway, decoy_redis: Listener) -> None:  # noqa: F811
    settings = make_settings(decoy_redis.url, "unused", api_url=gateway.url, api_key=SECRET)
    with Approvals(settings=settings) as approvals:
        assert isinstance(approvals, HttpApprovals)
        assert approvals.request(**GATE).status() is Status.PENDING
    assert decoy_redis.accepted == 0


def test_httpx_transport_can_be_given(gateway: Gateway) -> None:  # noqa: F811
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(404, json={"error": "no request with id 'x'", "field": "id"})

    client = HttpApprovals(api_url=gateway.url, api_key="k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(RequestNotFound):
        client.get("x")
    assert seen == ["Bearer k"]


def test_the_key_is_never_sent_anywhere_a_redirect_points() -> None:
    seen: list[tuple[str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((request.url.host, request.headers.get("authorization")))
        return httpx.Response(307, headers={"Location": "http://collector.example/v1/requests"})

    client = HttpApprovals(api_url="http://hitl.example", api_key="k", transport=httpx.MockTransport(handler))
    with client, pytest.raises(ApiUnavailable, match="answered 307"):
        client.request(**GATE)
    assert seen == [("hitl.example", "Bearer k")]
