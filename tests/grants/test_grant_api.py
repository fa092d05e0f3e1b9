"""Over the HTTP API and MCP, a request a grant approved says so (`decision.grant`)."""

from __future__ import annotations

import asyncio

from hitl import Approvals
from hitl.grants import GrantStore, VoteOutcome
from hitl.settings import Settings
from tests.gateway.conftest import SECRET, running_gateway
from tests.helpers import publish_policy
from tests.mcp.conftest import API_KEY, call, serve

POLICY = """
defaults:
  grants: {max: 8h, max_uses: 50}
"""


def _grant_from(approvals: Approvals, request_id: str) -> str:
    approvals.decide(request_id, "approve", by="U0ALICE")
    vote = GrantStore(approvals.store.redis, approvals.store.keys).vote(
        approvals.fetch(request_id), "U0ALICE", seconds=3600, uses=5
    )
    assert vote.outcome is VoteOutcome.CREATED and vote.grant_id
    return vote.grant_id


def test_the_http_api_says_which_grant_approved_a_request(redis_url: str, prefix: str) -> None:
    with running_gateway(redis_url, prefix) as gw:
        publish_policy(gw.approvals, POLICY)
        body = {"action": "deploy", "summary": "Deploy", "mode": "gate", "requested_by": "U0DAVE"}
        first = gw.http.post("/v1/requests", json=body).json()
        assert first["decision"] is None
        grant_id = _grant_from(gw.approvals, first["id"])
        again = gw.http.post("/v1/requests", json=body)
        assert again.status_code == 201
        decision = again.json()["decision"]
        assert decision["approved"] and decision["grant"]["id"] == grant_id
        assert decision["grant"]["by"] == ["U0ALICE"] and decision["grant"]["uses_left"] == 4
        # the human decision on the first request names no grant; a body cannot claim one
        assert gw.http.get(f"/v1/requests/{first['id']}").json()["decision"]["grant"] is None
        assert gw.http.post("/v1/requests", json={**body, "grantable": {"max": 60, "max_uses": 1}}).status_code == 422
        with Approvals(api_url=gw.url, api_key=SECRET) as agent:  # the Python client over HTTP
            decided = agent.request(action="deploy", summary="Deploy", mode="gate", requested_by="U0DAVE").wait()
        assert decided.grant is not None and decided.grant.id == grant_id and decided.grant.uses_left == 3
        schemas = gw.http.get("/openapi.json").json()["components"]["schemas"]
        assert "grant" in schemas["DecisionView"]["properties"]


def test_mcp_says_which_grant_approved_a_request(settings: Settings, approvals: Approvals) -> None:
    publish_policy(approvals, POLICY)

    async def scenario() -> tuple[dict, dict]:
        with serve(settings, {API_KEY: "agent-one"}) as server:
            async with server.client(API_KEY) as client:
                first = (await call(client, "request_approval", action="deploy", summary="Deploy", wait_seconds=0)).json
                await asyncio.to_thread(_grant_from, approvals, first["id"])
                again = (await call(client, "request_approval", action="deploy", summary="Deploy", wait_seconds=0)).json
                return first, again

    _, again = asyncio.run(scenario())
    assert again["decision"]["approved"] and again["decision"]["grant"]["by"] == ["U0ALICE"]
