"""One agent's burst is load, not an outage: with Redis up, a web process answers 150
concurrent POSTs and 280 long-polls that wake together without a single "Redis is
unreachable" (redis-py's asyncio pool refused past 100 connections, reported as one)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest

from bot.gateway.web import build_web_app
from hitl import Approvals
from hitl.pool import RedisBusy, async_client
from tests.conftest import make_settings
from tests.gateway.conftest import KEYS, SECRET, Gateway, running_gateway
from tests.helpers import eventually

GATE = {"action": "deploy", "summary": "Deploy v1.2 to production", "mode": "gate", "timeout": 600}


@pytest.fixture
def gateway(redis_url: str, prefix: str) -> Iterator[Gateway]:
    """The usual gateway with the keys' rate out of the way: these tests are about the
    Redis pool, not about one key's rate limit (tests/gateway/test_principals.py)."""
    with running_gateway(redis_url, prefix, api_rate="1000000/s") as gw:
        yield gw


def _client(gateway: Gateway, n: int) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=gateway.url, headers={"Authorization": f"Bearer {SECRET}"}, timeout=60,
        limits=httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10),
    )


def _unreachable(answers: list[httpx.Response]) -> list[str]:
    return [r.text for r in answers if r.status_code == 503 and "unreachable" in r.text]


def test_150_concurrent_posts_are_all_filed(gateway: Gateway) -> None:
    async def burst() -> list[httpx.Response]:
        async with _client(gateway, 150) as http:
            return await asyncio.gather(*(
                http.post("/v1/requests", json={**GATE, "summary": f"Deploy {i}"}) for i in range(150)
            ))

    answers = asyncio.run(burst())
    assert _unreachable(answers) == []
    assert sorted({r.status_code for r in answers}) == [201]
    assert gateway.approvals.store.redis.zcard(gateway.approvals.keys.pending) == 150


def test_280_long_polls_woken_together_all_answer_the_decision(gateway: Gateway) -> None:
    approvals = gateway.approvals
    # Filed as the "ci" key, whose secret the polls send: a key reads only its own requests.
    ids = [approvals.request_from({**GATE, "summary": f"Deploy {i}"}, via="ci").id for i in range(280)]
    dispatcher = approvals.dispatcher()

    async def polls() -> list[httpx.Response]:
        async with _client(gateway, 280) as http:
            waiting = [asyncio.ensure_future(http.get(f"/v1/requests/{rid}", params={"wait": 30})) for rid in ids]
            await asyncio.to_thread(
                eventually, lambda: set(ids) <= set(dispatcher.registered()) and dispatcher.checks_queued() == 0,
                30, "every long-poll to park",
            )
            await asyncio.to_thread(lambda: [approvals.decide(rid, "approve", by="U0ALICE") for rid in ids])
            return await asyncio.gather(*waiting)

    answers = asyncio.run(polls())
    assert _unreachable(answers) == []
    assert sorted({r.status_code for r in answers}) == [200]
    assert {r.json()["status"] for r in answers} == {"approved"}


def test_a_pool_wait_that_runs_out_is_busy_not_unreachable(redis_url: str) -> None:
    """Past the pool's size and wait, the error says load and when to retry."""

    async def exhaust() -> None:
        client = async_client(redis_url, size=1, wait=0.2)
        try:
            held = await client.connection_pool.get_connection()
            with pytest.raises(RedisBusy, match=r"busy: .* retry in 1 s"):
                await client.ping()
            await client.connection_pool.release(held)
            assert await client.ping()
        finally:
            await client.aclose()

    asyncio.run(exhaust())


def test_a_busy_process_answers_503_busy_with_retry_after(redis_url: str, prefix: str) -> None:
    """/v1 and /healthz while every connection of the pool stays held past the wait: load,
    with Retry-After, and the request is filed once a connection is free again."""
    settings = make_settings(redis_url, prefix, api_keys=KEYS, redis_pool_size=2, redis_pool_wait=0.2)
    approvals = Approvals(settings=settings)
    app = build_web_app(approvals)
    pool = app.state.gateway.aio.redis.connection_pool

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {SECRET}"}
        async with httpx.AsyncClient(transport=transport, base_url="http://hitl", headers=headers) as http:
            held = [await pool.get_connection() for _ in range(2)]
            try:
                busy = await http.post("/v1/requests", json=GATE)
                health = await http.get("/healthz")
            finally:
                for conn in held:
                    await pool.release(conn)
            after = await http.post("/v1/requests", json=GATE)
            await app.state.gateway.aio.aclose()
            return busy, health, after

    try:
        busy, health, after = asyncio.run(scenario())
    finally:
        approvals.close()
    assert busy.status_code == 503, busy.text
    assert "busy" in busy.json()["error"] and "retry in 1 s" in busy.json()["error"]
    assert "unreachable" not in busy.text
    assert busy.headers["retry-after"] == "1"
    assert health.status_code == 503
    assert health.json() == {"ok": False, "redis": "up", "error": "busy, retry in 1 s"}
    assert health.headers["retry-after"] == "1"
    assert after.status_code == 201, after.text
