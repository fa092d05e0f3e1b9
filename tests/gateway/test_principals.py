"""API keys are principals (issue 15, item 3), tried as a hostile agent would: each agent
holds one API key and talks to the real web app over HTTP, nothing more.

Key A ("ci") and key B ("laptop") come from HITL_API_KEYS (tests/gateway/conftest.py);
stored keys are made with `hitl keys create`, in a subprocess as an operator would, or with
`ApiKeyStore` where only the key's rules matter.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest
import redis

from bot.gateway.web import WebServer, build_web_app
from hitl import Approvals
from hitl.apikeys import ApiKeyStore, Rate
from tests.conftest import make_settings
from tests.gateway.conftest import KEYS, Gateway
from tests.helpers import ROOT, events, eventually, hitl_env

GATE = {"action": "deploy", "summary": "Deploy v1.2 to production", "mode": "gate", "timeout": 600}
SECRET_REQUEST = {
    "action": "export_payroll", "summary": "Export the payroll of every employee", "mode": "gate",
    "channel": "C0SECRET", "params": {"salary_table": "hr.salaries"}, "timeout": 600,
}


def as_key(gw: Gateway, secret: str) -> httpx.Client:
    return httpx.Client(base_url=gw.url, headers={"Authorization": f"Bearer {secret}"}, timeout=30)


@pytest.fixture
def b(gateway: Gateway) -> Iterator[httpx.Client]:
    with as_key(gateway, "sekrit-laptop") as client:
        yield client


def key_store(gw: Gateway) -> ApiKeyStore:
    return ApiKeyStore(gw.approvals.redis, gw.approvals.keys)


def hitl_cli(redis_url: str, prefix: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hitl.cli", "keys", *args], env=hitl_env(redis_url, prefix), cwd=ROOT,
        capture_output=True, text=True, timeout=60,
    )


def filed(client: httpx.Client, body: dict) -> dict:
    resp = client.post("/v1/requests", json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def unknown_like(resp: httpx.Response, client: httpx.Client, method: str, path: str, rid: str) -> None:
    """`resp` (for someone else's id) is exactly what an unknown id gets: status and body."""
    fake = "r" + "0" * (len(rid) - 1)
    unknown = client.request(method, path.format(id=fake))
    assert unknown.status_code == 404
    assert resp.status_code == 404, resp.text
    assert resp.text == unknown.text.replace(fake, rid)


# -- ownership ----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/requests/{id}"), ("GET", "/v1/requests/{id}?wait=1"), ("POST", "/v1/requests/{id}/cancel")],
)
def test_another_keys_private_request_is_404_like_an_unknown_id(
    gateway: Gateway, b: httpx.Client, method: str, path: str
) -> None:
    rid = filed(gateway.http, SECRET_REQUEST)["id"]
    resp = b.request(method, path.format(id=rid))
    unknown_like(resp, b, method, path, rid)
    assert "payroll" not in resp.text and "salaries" not in resp.text and "C0SECRET" not in resp.text
    # A's request is untouched, and A still reads it.
    assert gateway.approvals.store.get(rid).status.value == "pending"
    assert gateway.http.get(f"/v1/requests/{rid}").json()["summary"] == SECRET_REQUEST["summary"]


def test_another_key_cannot_record_the_execution_of_an_approved_request(gateway: Gateway, b: httpx.Client) -> None:
    rid = filed(gateway.http, GATE)["id"]
    gateway.approvals.decide(rid, "approve", by="U0ALICE")
    fake = "r" + "0" * (len(rid) - 1)
    theirs = b.post(f"/v1/requests/{rid}/execution", json={"state": "started"})
    unknown = b.post(f"/v1/requests/{fake}/execution", json={"state": "started"})
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.text == unknown.text.replace(fake, rid)
    # The owner's first start is still the first: B's attempt marked nothing.
    mine = gateway.http.post(f"/v1/requests/{rid}/execution", json={"state": "started"})
    assert (mine.status_code, mine.json()) == (200, {"started": True})


def test_the_steps_of_another_keys_plan_are_404(gateway: Gateway, b: httpx.Client) -> None:
    resp = gateway.http.post("/v1/batches", json={"summary": "two deploys", "items": [GATE, GATE]})
    assert resp.status_code == 201, resp.text
    ids = [resp.json()["plan"]["id"], *(i["id"] for i in resp.json()["items"])]
    for rid in ids:
        unknown_like(b.get(f"/v1/requests/{rid}"), b, "GET", "/v1/requests/{id}", rid)
        unknown_like(b.post(f"/v1/requests/{rid}/cancel"), b, "POST", "/v1/requests/{id}/cancel", rid)
        assert gateway.http.get(f"/v1/requests/{rid}").status_code == 200
    assert all(gateway.approvals.store.get(rid).status.value == "pending" for rid in ids)


def test_an_admin_key_reads_and_cancels_every_request(gateway: Gateway) -> None:
    rid = filed(gateway.http, SECRET_REQUEST)["id"]
    _, secret = key_store(gateway).create("ops", rate=Rate(20), admin=True)
    with as_key(gateway, secret) as admin:
        read = admin.get(f"/v1/requests/{rid}")
        assert read.status_code == 200 and read.json()["summary"] == SECRET_REQUEST["summary"]
        cancelled = admin.post(f"/v1/requests/{rid}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    cancel_event = [e for e in events(gateway.approvals.redis, gateway.approvals.keys.prefix, rid)
                    if e["type"] == "cancelled"]
    assert cancel_event and json.loads(cancel_event[0]["by"]) == ["api:ops"]


# -- idempotency keys are per API key -------------------------------------------------------

def test_a_shared_idempotency_key_gives_independent_requests(gateway: Gateway, b: httpx.Client) -> None:
    key = "deploy-2026-12-02"
    a_view = filed(gateway.http, {**SECRET_REQUEST, "idempotency_key": key})
    # B, with the same key and the same content: its own new request, not A's.
    b_same = b.post("/v1/requests", json={**SECRET_REQUEST, "idempotency_key": key})
    assert b_same.status_code == 201, b_same.text
    assert b_same.json()["id"] != a_view["id"]
    # B, with the same key and other content: no 422 naming A's request.
    b_other = b.post("/v1/requests", json={**GATE, "idempotency_key": "other"})
    b_clash = b.post("/v1/requests", json={**GATE, "summary": "something else", "idempotency_key": key})
    assert b_other.status_code == 201
    assert b_clash.status_code == 422 and b_clash.json()["field"] == "idempotency_key"
    assert a_view["id"] not in b_clash.text and b_same.json()["id"] in b_clash.text
    assert repr(key) in b_clash.json()["error"]  # the caller's own key, as it gave it
    # Each key's repeat finds its own request.
    again_a = gateway.http.post("/v1/requests", json={**SECRET_REQUEST, "idempotency_key": key})
    again_b = b.post("/v1/requests", json={**SECRET_REQUEST, "idempotency_key": key})
    assert (again_a.status_code, again_a.json()["id"]) == (200, a_view["id"])
    assert (again_b.status_code, again_b.json()["id"]) == (200, b_same.json()["id"])
    # The stored request keeps the key as its caller gave it.
    assert gateway.approvals.store.get(b_same.json()["id"]).idempotency_key == key


def test_a_shared_idempotency_key_on_plans_gives_independent_plans(gateway: Gateway, b: httpx.Client) -> None:
    body = {"summary": "two deploys", "items": [GATE, GATE], "idempotency_key": "plan-1"}
    a_plan = gateway.http.post("/v1/batches", json=body)
    b_plan = b.post("/v1/batches", json=body)
    assert a_plan.status_code == 201 and b_plan.status_code == 201, b_plan.text
    assert b_plan.json()["id"] != a_plan.json()["id"]
    assert a_plan.json()["id"] not in b_plan.text


def test_the_trusted_python_client_keeps_bare_idempotency_keys(gateway: Gateway) -> None:
    first = gateway.approvals.request(action="deploy", summary="Deploy", idempotency_key="k1")
    again = gateway.approvals.request(action="deploy", summary="Deploy", idempotency_key="k1")
    assert again.id == first.id
    assert gateway.approvals.redis.get(gateway.approvals.keys.idem("k1")) == first.id.encode()


# -- action patterns ----------------------------------------------------------------------

def test_an_action_outside_the_keys_patterns_is_403_naming_it(gateway: Gateway) -> None:
    _, secret = key_store(gateway).create("billing-agent", rate=Rate(20), actions=["send_*", "crm.*"])
    with as_key(gateway, secret) as agent:
        refused = agent.post("/v1/requests", json={**GATE, "action": "delete_user"})
        assert refused.status_code == 403, refused.text
        assert refused.json()["field"] == "action"
        assert "delete_user" in refused.json()["error"] and "billing-agent" in refused.json()["error"]
        assert filed(agent, {**GATE, "action": "send_invoice"})["action"] == "send_invoice"
        assert filed(agent, {**GATE, "action": "crm.update"})["action"] == "crm.update"
        plan = agent.post("/v1/batches", json={
            "summary": "invoice then purge", "items": [{**GATE, "action": "send_invoice"},
                                                        {**GATE, "action": "purge_table"}],
        })
        assert plan.status_code == 403 and plan.json()["field"] == "items.1.action"
        assert "purge_table" in plan.json()["error"]
    actions = {gateway.approvals.store.get(i.decode()).action
               for i in gateway.approvals.redis.zrange(gateway.approvals.keys.pending, 0, -1)}
    assert actions == {"send_invoice", "crm.update"}  # nothing refused was filed


# -- rate limits --------------------------------------------------------------------------

def test_a_burst_over_the_rate_is_429_shared_by_every_web_process(gateway: Gateway) -> None:
    _, secret = key_store(gateway).create("chatty", rate=Rate.parse("0.5/s"))  # a burst of 1
    other = Approvals(settings=gateway.approvals.settings)
    second = WebServer(build_web_app(other), host="127.0.0.1", port=0).start()
    try:
        with as_key(gateway, secret) as one, httpx.Client(
            base_url=second.base_url, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        ) as two:
            answers = [c.get("/v1/requests/r0000") for c in (one, two, one, two)]
            over = [r for r in answers if r.status_code == 429]
            assert answers[0].status_code == 404 and len(over) == 3, [r.status_code for r in answers]
            assert int(over[0].headers["Retry-After"]) >= 1
            assert "'chatty' is over its rate (0.5/s)" in over[0].json()["error"]
            # Another key is not held back by this one's burst.
            assert gateway.http.get("/v1/requests/r0000").status_code == 404
            # And the key gets through again once its bucket refills.
            eventually(lambda: one.get("/v1/requests/r0000").status_code == 404, 10, "a token again")
    finally:
        second.stop()
        other.close()


# -- revocation and the CLI ---------------------------------------------------------------

def test_keys_create_prints_the_secret_last_and_stores_only_its_hash(
    gateway: Gateway, redis_url: str, prefix: str, conn: redis.Redis
) -> None:
    made = hitl_cli(redis_url, prefix, "create", "billing-agent", "--actions", "send_*,crm.*", "--rate", "5/s")
    assert made.returncode == 0, made.stderr
    secret = made.stdout.strip().splitlines()[-1]
    assert secret.startswith("hitl_") and len(secret) >= 40
    # Every key and value under the prefix, serialised (DUMP keeps short strings verbatim).
    stored = b"".join(k + (conn.dump(k) or b"") for k in conn.scan_iter(match=f"{prefix}:*"))
    assert secret.encode() not in stored
    assert hashlib.sha256(secret.encode()).hexdigest().encode() in stored
    # The secret works, as that key.
    with as_key(gateway, secret) as agent:
        rid = filed(agent, {**GATE, "action": "send_invoice"})["id"]
    assert gateway.approvals.store.get(rid).via == "billing-agent"
    listed = hitl_cli(redis_url, prefix, "list")
    assert "billing-agent" in listed.stdout and "send_*,crm.*" in listed.stdout and "5/s" in listed.stdout
    assert secret not in listed.stdout and hashlib.sha256(secret.encode()).hexdigest() not in listed.stdout
    again = hitl_cli(redis_url, prefix, "create", "billing-agent")
    assert again.returncode == 3 and "exists" in again.stderr


def test_a_revoked_key_is_401_on_its_next_call(gateway: Gateway, redis_url: str, prefix: str) -> None:
    made = hitl_cli(redis_url, prefix, "create", "temp-agent")
    secret = made.stdout.strip().splitlines()[-1]
    with as_key(gateway, secret) as agent:
        rid = filed(agent, GATE)["id"]
        assert agent.get(f"/v1/requests/{rid}").status_code == 200
        revoked = hitl_cli(redis_url, prefix, "revoke", "temp-agent")
        assert revoked.returncode == 0, revoked.stderr
        after = agent.get(f"/v1/requests/{rid}")
    assert after.status_code == 401 and after.json()["error"] == "wrong API key"


def test_bootstrap_keys_get_the_default_rate(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_keys=KEYS, api_rate="0.5/s")
    approvals = Approvals(settings=settings)
    server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
    try:
        with httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer sekrit-ci"}) as ci:
            codes = [ci.get("/v1/requests/r0000").status_code for _ in range(4)]
    finally:
        server.stop()
        approvals.close()
    assert codes == [404, 429, 429, 429]


def test_openapi_describes_the_403_and_429_answers(gateway: Gateway) -> None:
    paths = gateway.http.get("/openapi.json").json()["paths"]
    for path in ("/v1/requests", "/v1/batches"):
        assert "403" in paths[path]["post"]["responses"]
    for path, method in (("/v1/requests", "post"), ("/v1/requests/{id}", "get"),
                         ("/v1/requests/{id}/cancel", "post"), ("/v1/requests/{id}/execution", "post"),
                         ("/v1/batches", "post")):
        answer = paths[path][method]["responses"]["429"]
        assert "Retry-After" in answer["headers"]
    assert "another key" in paths["/v1/requests/{id}"]["get"]["responses"]["404"]["description"]
