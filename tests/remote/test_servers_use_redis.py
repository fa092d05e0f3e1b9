"""hitl's own processes talk to Redis whatever HITL_API_URL says: an agent's setting left in a
shared environment must never turn `hitl bot` (its /v1 API and /mcp) into a client of itself."""

from __future__ import annotations

import asyncio

import httpx
import redis
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from hitl.embedded import free_port
from tests.gateway.test_server import SIGNING, _start_bot
from tests.helpers import hitl_env
from tests.mcp.conftest import call
from tests.remote.conftest import Listener


def test_hitl_bot_with_an_agents_api_url_in_its_environment_still_files_into_redis(
    redis_url: str, prefix: str, conn: redis.Redis
) -> None:
    decoy = Listener()  # where HITL_API_URL points: nothing must ever connect to it
    port = free_port()
    env = hitl_env(
        redis_url, prefix, PORT=str(port), SLACK_SIGNING_SECRET=SIGNING, SLACK_BOT_TOKEN="xoxb-t",
        SLACK_API_URL="http://127.0.0.1:9/", HITL_API_KEYS="ci:sekrit",
        HITL_API_URL=f"http://127.0.0.1:{decoy.sock.getsockname()[1]}", HITL_API_KEY="sekrit",
    )
    proc, log = _start_bot(env, port)
    try:
        base = f"http://127.0.0.1:{port}"
        auth = {"Authorization": "Bearer sekrit"}
        filed = httpx.post(f"{base}/v1/requests", headers=auth, timeout=30,
                           json={"action": "deploy", "summary": "Deploy", "mode": "gate"})
        assert filed.status_code == 201, filed.text

        async def over_mcp() -> dict:
            async with httpx.AsyncClient(headers=auth, timeout=30) as http, Client(
                streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=30
            ) as client:
                return (await call(client, "request_approval", action="deploy", summary="Via MCP",
                                   wait_seconds=0)).json

        via_mcp = asyncio.run(over_mcp())
    finally:
        proc.terminate()
        proc.wait(20)
        decoy.close()
    pending = {i.decode() for i in conn.zrange(f"{prefix}:pending", 0, -1)}
    assert {filed.json()["id"], via_mcp["id"]} <= pending, log.read_text()
    assert decoy.accepted == 0
