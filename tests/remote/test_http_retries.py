"""Retries, `Retry-After` and the execution record, against a small local stand-in of the API.

The stand-in is a Starlette app served by uvicorn: each route answers from a script of
(status, body, headers) so a test can make the API refuse, fail or drop a call and see
what the client does. `POST /v1/requests/{id}/execution` is modelled on the shape the
adapters' at-most-once record uses (not served by this branch's web process yet).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.gateway.web import WebServer
from hitl import AsyncApprovals, Status, TransitionRefused
from hitl import remotebase as rb
from hitl.embedded import free_port
from hitl.errors import ApiUnavailable, RateLimited
from hitl.remote import HttpApprovals

VIEW = {
    "id": "r1", "action": "deploy", "summary": "Deploy", "mode": "gate", "status": "pending",
    "channel": "C0APPROVALS", "created_at": "2026-12-02T03:00:00.000Z", "deadline": None, "params": {},
    "decision": None,
}
Answer = tuple[int, dict[str, Any], dict[str, str]]


@dataclass
class StandIn:
    """The script of answers per route, and every call received (method, path, body)."""

    url: str
    script: dict[str, list[Answer]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    started: set[str] = field(default_factory=set)

    def answer(self, route: str, *answers: Answer) -> None:
        self.script[route] = list(answers)


def _app(state: dict[str, StandIn]) -> Starlette:
    async def scripted(request: Request) -> Response:
        stand = state["s"]
        body = await request.json() if request.method == "POST" else None
        stand.calls.append((request.method, request.url.path, body))
        route = f"{request.method} {request.scope['route'].path}"
        queue = stand.script.get(route) or []
        if len(queue) > 1:
            status, payload, headers = queue.pop(0)
        elif queue:
            status, payload, headers = queue[0]
        else:
            status, payload, headers = 200, VIEW, {}
        return JSONResponse(payload, status, headers=headers)

    async def execution(request: Request) -> Response:
        stand = state["s"]
        body = await request.json()
        rid = request.path_params["id"]
        stand.calls.append((request.method, request.url.path, body))
        if rid.startswith("pending"):
            return JSONResponse({"error": f"request {rid} is pending: its tool may not run yet", "field": "id"}, 409)
        if body.get("state") == "started":
            if rid in stand.started:
                return JSONResponse({"error": f"the tool call of {rid} already started", "field": "state"}, 409)
            stand.started.add(rid)
            return JSONResponse({"started": True})
        if body.get("state") == "finished" and isinstance(body.get("ok"), bool):
            return JSONResponse({"finished": True, "ok": body["ok"]})
        return JSONResponse({"error": "state: must be started or finished", "field": "state"}, 422)

    return Starlette(routes=[
        Route("/v1/requests", scripted, methods=["POST"]),
        Route("/v1/requests/{id}", scripted, methods=["GET"]),
        Route("/v1/requests/{id}/execution", execution, methods=["POST"]),
    ])


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    state: dict[str, StandIn] = {}
    server = WebServer(_app(state), host="127.0.0.1", port=0).start()
    state["s"] = StandIn(server.base_url)
    try:
        yield state["s"]
    finally:
        server.stop()


@pytest.fixture
def client(stand_in: StandIn) -> Iterator[HttpApprovals]:
    with HttpApprovals(api_url=stand_in.url, api_key="k") as http:
        yield http


def test_429_retry_after_is_honoured_then_the_call_goes_through(stand_in: StandIn, client: HttpApprovals) -> None:
    stand_in.answer("POST /v1/requests", (429, {"error": "rate limit: 5/s"}, {"Retry-After": "1"}), (201, VIEW, {}))
    start = time.monotonic()
    handle = client.request(action="deploy", summary="Deploy")
    assert handle.id == "r1" and time.monotonic() - start >= 1.0
    assert len(stand_in.calls) == 2


def test_a_429_that_persists_is_a_rate_limit_error(
    stand_in: StandIn, client: HttpApprovals, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rb, "MAX_ATTEMPTS", 2)
    stand_in.answer("POST /v1/requests", (429, {"error": "rate limit: 5/s"}, {"Retry-After": "0.1"}))
    with pytest.raises(RateLimited) as err:
        client.request(action="deploy", summary="Deploy")
    assert err.value.retry_after == pytest.approx(0.1) and "5/s" in str(err.value)
    assert len(stand_in.calls) == 2


def test_503_on_a_read_is_retried_and_a_5xx_that_persists_says_so(
    stand_in: StandIn, client: HttpApprovals, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in.answer("GET /v1/requests/{id}", (503, {"error": "overloaded"}, {"Retry-After": "0"}), (200, VIEW, {}))
    assert client.get("r1").id == "r1"
    monkeypatch.setattr(rb, "MAX_ATTEMPTS", 2)
    stand_in.answer("GET /v1/requests/{id}", (500, {"error": "boom"}, {}))
    with pytest.raises(ApiUnavailable, match="answered 500: boom"):
        client.get("r1")


def test_a_filing_that_may_have_landed_is_not_repeated_unless_idempotent(
    stand_in: StandIn, client: HttpApprovals
) -> None:
    stand_in.answer("POST /v1/requests", (502, {"error": "bad gateway"}, {}), (201, VIEW, {}))
    with pytest.raises(ApiUnavailable):
        client.request(action="deploy", summary="Deploy")
    assert len(stand_in.calls) == 1  # a second card must not come from a retry
    stand_in.calls.clear()
    stand_in.answer("POST /v1/requests", (502, {"error": "bad gateway"}, {}), (201, VIEW, {}))
    assert client.request(action="deploy", summary="Deploy", idempotency_key="run-1").id == "r1"
    assert len(stand_in.calls) == 2 and stand_in.calls[1][2]["idempotency_key"] == "run-1"


def test_the_handle_says_whether_this_call_filed_the_request(stand_in: StandIn, client: HttpApprovals) -> None:
    """201 is "filed now", 200 "the idempotency key's earlier request"; after a resend either
    may be true, so the handle says it does not know (the MCP gateway then reads it back)."""
    stand_in.answer("POST /v1/requests", (201, VIEW, {}))
    assert client.request(action="deploy", summary="Deploy").created is True
    stand_in.answer("POST /v1/requests", (200, VIEW, {}))
    assert client.request(action="deploy", summary="Deploy", idempotency_key="run-1").created is False
    stand_in.answer("POST /v1/requests", (502, {"error": "bad gateway"}, {}), (201, VIEW, {}))
    assert client.request(action="deploy", summary="Deploy", idempotency_key="run-2").created is None

    async def twin() -> bool | None:
        stand_in.answer("POST /v1/requests", (201, VIEW, {}))
        async with AsyncApprovals(api_url=stand_in.url, api_key="k") as aio:
            return (await aio.request(action="deploy", summary="Deploy")).created

    assert asyncio.run(twin()) is True


def test_connection_refused_is_retried_then_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rb, "MAX_ATTEMPTS", 3)
    dead = HttpApprovals(api_url=f"http://127.0.0.1:{free_port()}", api_key="k")
    with dead, pytest.raises(ApiUnavailable, match=r"did not answer .*nothing was sent"):
        dead.request(action="deploy", summary="Deploy")


def test_a_wait_rides_out_a_restarting_web_process(stand_in: StandIn, client: HttpApprovals) -> None:
    final = {**VIEW, "status": "approved", "decision": {
        "status": "approved", "approved": True, "by": ["U0ALICE"], "comment": None, "params": {},
        "decided_at": "2026-12-02T03:01:00.000Z",
    }}
    stand_in.answer(
        "GET /v1/requests/{id}",
        (503, {"error": "shutting down"}, {"Retry-After": "0"}), (502, {"error": "no upstream"}, {}),
        (200, VIEW, {}), (200, final, {}),
    )
    decision = client.get("r1").wait(timeout=30)
    assert decision.approved and decision.by == ["U0ALICE"] and decision.status is Status.APPROVED


def test_execution_is_recorded_at_most_once(stand_in: StandIn, client: HttpApprovals) -> None:
    assert client.start_execution("r1") is True
    assert client.start_execution("r1") is False  # already started: the caller must not run it
    client.finish_execution("r1", ok=False)
    bodies = [body for _, path, body in stand_in.calls if path == "/v1/requests/r1/execution"]
    assert bodies == [{"state": "started"}, {"state": "started"}, {"state": "finished", "ok": False}]

    async def twin() -> tuple[bool, bool]:
        async with AsyncApprovals(api_url=stand_in.url, api_key="k") as aio:
            first, again = await aio.start_execution("r2"), await aio.start_execution("r2")
            await aio.finish_execution("r2", result={"out": "x" * 100_000})
            return first, again

    assert asyncio.run(twin()) == (True, False)
    sent = stand_in.calls[-1][2]
    assert sent["state"] == "finished" and sent["ok"] is True
    assert 4000 < len(sent["result"]["out"]) < 5000  # clipped before sending: fits any body limit


def test_an_execution_the_request_does_not_allow_is_an_error_not_a_skip(client: HttpApprovals) -> None:
    with pytest.raises(TransitionRefused, match="may not run yet"):
        client.start_execution("pending-1")
    with pytest.raises(TransitionRefused):
        client.finish_execution("pending-1")
