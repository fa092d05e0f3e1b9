"""The HTTP API, as an agent in another language would call it: every endpoint, every
kind of bad input, each answer naming the field or the reason with the contract's status code."""

from __future__ import annotations

import json
import threading
import time

import httpx
import pytest
import redis

from bot.gateway.web import WebServer, build_web_app
from hitl import Approvals, InvalidRequest
from hitl.views import EXPIRED_COMMENT
from tests.conftest import make_settings
from tests.gateway.conftest import Gateway
from tests.helpers import events, eventually, start_worker, stop

GATE = {"action": "deploy", "summary": "Deploy v1.2 to production", "mode": "gate", "timeout": 600}
VIEW_FIELDS = {
    "id", "action", "summary", "mode", "status", "channel", "created_at", "deadline", "params", "decision", "execution",
    "policy_version",
}
DECISION_FIELDS = {"status", "approved", "by", "comment", "params", "decided_at", "grant"}

# (method, path, body) of every authenticated endpoint; {id} is filled with a real id.
ENDPOINTS = [
    ("POST", "/v1/requests", GATE),
    ("GET", "/v1/requests/{id}", None),
    ("POST", "/v1/requests/{id}/cancel", None),
    ("POST", "/v1/batches", {"summary": "plan", "items": [GATE]}),
    ("POST", "/v1/requests/{id}/execution", {"state": "started"}),
]


def call(client: httpx.Client, method: str, path: str, body: object = None, rid: str = "x") -> httpx.Response:
    return client.request(method, path.format(id=rid), json=body)


def file(gw: Gateway, **overrides: object) -> dict:
    resp = gw.http.post("/v1/requests", json={**GATE, **overrides})
    assert resp.status_code == 201, resp.text
    return resp.json()


# -- auth ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_missing_and_wrong_keys_are_401(gateway: Gateway, method: str, path: str, body: object) -> None:
    rid = file(gateway)["id"]
    with gateway.anonymous() as anon:
        missing = call(anon, method, path, body, rid)
        anon.headers["Authorization"] = "Bearer not-a-key"
        wrong = call(anon, method, path, body, rid)
        anon.headers["Authorization"] = "sekrit-ci"  # the secret without the Bearer scheme
        no_scheme = call(anon, method, path, body, rid)
    assert missing.status_code == 401 and "missing API key" in missing.json()["error"]
    assert wrong.status_code == 401 and wrong.json()["error"] == "wrong API key"
    assert no_scheme.status_code == 401
    assert gateway.approvals.store.get(rid).status.value == "pending"  # nothing was cancelled


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS)
def test_no_keys_configured_is_401_saying_so(redis_url: str, prefix: str, method: str, path: str, body: object) -> None:
    approvals = Approvals(settings=make_settings(redis_url, prefix))
    server = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
    try:
        resp = call(httpx.Client(base_url=server.base_url, headers={"Authorization": "Bearer anything"}),
                    method, path, body)
    finally:
        server.stop()
        approvals.close()
    assert resp.status_code == 401
    assert "no API keys are configured" in resp.json()["error"]


def test_audit_log_records_which_key_filed(gateway: Gateway, conn, prefix: str) -> None:
    rid = file(gateway)["id"]
    with gateway.anonymous() as laptop:
        laptop.headers["Authorization"] = "Bearer sekrit-laptop"
        other = laptop.post("/v1/requests", json={**GATE, "summary": "from the laptop"}).json()["id"]
    created = {e["id"]: json.loads(e["doc"]) for e in events(conn, prefix) if e["type"] == "created"}
    assert created[rid]["via"] == "ci"
    assert created[other]["via"] == "laptop"
    assert gateway.approvals.store.get(rid).via == "ci"


def test_via_cannot_be_set_by_the_caller(gateway: Gateway) -> None:
    resp = gateway.http.post("/v1/requests", json={**GATE, "via": "someone-else"})
    assert resp.status_code == 422
    assert resp.json()["field"] == "via"


# -- POST /v1/requests --------------------------------------------------------------------

def test_create_answers_201_with_the_request_view(gateway: Gateway) -> None:
    resp = gateway.http.post("/v1/requests", json={**GATE, "params": {"version": "1.2"}})
    assert resp.status_code == 201
    view = resp.json()
    assert set(view) == VIEW_FIELDS
    assert view["status"] == "pending" and view["mode"] == "gate" and view["decision"] is None
    assert view["params"] == {"version": "1.2"}
    assert view["channel"] == "C0APPROVALS"
    assert view["created_at"].endswith("Z") and view["deadline"].endswith("Z")
    assert gateway.approvals.store.get(view["id"]).summary == GATE["summary"]


def test_same_idempotency_key_is_200_with_the_same_request(gateway: Gateway) -> None:
    first = gateway.http.post("/v1/requests", json={**GATE, "idempotency_key": "deploy-42"})
    again = gateway.http.post("/v1/requests", json={**GATE, "idempotency_key": "deploy-42"})
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]


@pytest.mark.parametrize("path", ["/v1/requests", "/v1/batches"])
def test_malformed_json_is_400(gateway: Gateway, path: str) -> None:
    resp = gateway.http.post(path, content=b'{"action": "deploy", ', headers={"Content-Type": "application/json"})
    assert resp.status_code == 400
    assert "malformed JSON" in resp.json()["error"]
    not_object = gateway.http.post(path, json=["deploy"])
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"action": "deploy"}, "summary", "is required"),
        ({**GATE, "params": "version=1.2"}, "params", "must be a JSON object"),
        ({**GATE, "quorum": "two"}, "quorum", "integer"),
        ({**GATE, "confidence": 2}, "confidence", "less than or equal to 1"),
        ({**GATE, "params": {"blob": "x" * (256 * 1024)}}, "params", "the limit is 262,144"),
        ({**GATE, "mode": "yolo"}, "mode", "is not one of"),
        ({**GATE, "colour": "red"}, "colour", "not a known argument"),
        ({**GATE, "callback_url": "http://169.254.169.254/latest/meta-data"}, "callback_url", "HITL_WEBHOOK_ALLOWED"),
    ],
)
def test_invalid_input_is_422_naming_the_field(gateway: Gateway, body: dict, field: str, words: str) -> None:
    resp = gateway.http.post("/v1/requests", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field
    assert words in resp.json()["error"]
    assert gateway.approvals.store.redis.zcard(gateway.approvals.keys.pending) == 0  # nothing filed


def test_callback_url_outside_the_allow_list_is_refused_by_the_client_too(gateway: Gateway) -> None:
    with pytest.raises(InvalidRequest) as err:
        gateway.approvals.request(**GATE, callback_url="https://evil.example/hook")
    assert err.value.field == "callback_url"
    # a prefix admits its own host only: no look-alike host, no user@ smuggling
    for sneaky in ("http://127.0.0.1:9@evil.example/hook", "http://127.0.0.1:9.evil.example/hook"):
        with pytest.raises(InvalidRequest) as err:
            gateway.approvals.request(**GATE, callback_url=sneaky)
        assert err.value.field == "callback_url", sneaky
    ok = gateway.approvals.request(**GATE, callback_url="http://127.0.0.1:9/hook")
    assert ok.fetch().callback_url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/requests", b"[" * 200_000 + b"]" * 200_000),
        ("/v1/requests", b'{"action": "deploy", "summary": "x", "params": ' + b'{"a":' * 150_000 + b"1" + b"}" * 150_001),
        ("/v1/batches", b'{"summary": "plan", "items": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"),
        # parses, but deeper than anything hitl stores: refused before any validator or encoder
        ("/v1/requests", b'{"action": "deploy", "summary": "x", "approvers": ' + b"[" * 900 + b"]" * 900 + b"}"),
    ],
)
def test_a_body_nested_thousands_of_levels_deep_is_400_naming_body(gateway: Gateway, path: str, body: bytes) -> None:
    resp = gateway.http.post(path, content=body, headers={"Content-Type": "application/json"})
    assert resp.status_code == 400, resp.text
    assert resp.json()["field"] == "body" and "deeper than 64 levels" in resp.json()["error"]
    assert gateway.approvals.store.redis.zcard(gateway.approvals.keys.pending) == 0  # nothing filed
    assert file(gateway)["status"] == "pending"  # and the process serves on


# -- GET /v1/requests/{id} ----------------------------------------------------------------

def test_unknown_id_is_404(gateway: Gateway) -> None:
    for method, path in (("GET", "/v1/requests/nope"), ("POST", "/v1/requests/nope/cancel")):
        resp = gateway.http.request(method, path)
        assert resp.status_code == 404
        assert "no request with id 'nope'" in resp.json()["error"]


@pytest.mark.parametrize("suffix", [":done", ":posting"])
def test_ids_that_cannot_be_request_ids_answer_exactly_like_unknown_ids(gateway: Gateway, suffix: str) -> None:
    """`<id>:done` names the request's done list in Redis (there once it is final): any
    string that is not an id must be a 404, never a Redis error."""
    rid = file(gateway)["id"]
    other = file(gateway, summary="still waiting")["id"]
    assert gateway.http.post(f"/v1/requests/{rid}/cancel").status_code == 200  # the done list exists now
    for target in (rid, other):
        bad = target + suffix
        for method, path, body in (("GET", f"/v1/requests/{bad}", None), ("GET", f"/v1/requests/{bad}?wait=1", None),
                                   ("POST", f"/v1/requests/{bad}/cancel", None),
                                   ("POST", f"/v1/requests/{bad}/execution", {"state": "started"})):
            resp = gateway.http.request(method, path, json=body)
            assert resp.status_code == 404, (method, path, resp.text)
            assert resp.json() == {"error": f"no request with id {bad!r}", "field": "id"}
    assert gateway.approvals.store.get(other).status.value == "pending"  # nothing was cancelled
    assert gateway.approvals.store.get(rid).status.value == "cancelled"


@pytest.mark.parametrize("wait", ["61", "-1", "soon", "nan"])
def test_wait_outside_0_to_60_is_422_naming_wait(gateway: Gateway, wait: str) -> None:
    rid = file(gateway)["id"]
    resp = gateway.http.get(f"/v1/requests/{rid}", params={"wait": wait})
    assert resp.status_code == 422
    assert resp.json()["field"] == "wait"


def test_long_poll_answers_the_moment_the_request_is_decided(gateway: Gateway) -> None:
    rid = file(gateway, params={"n": 1})["id"]
    result: dict = {}

    def poll() -> None:
        start = time.monotonic()
        result["resp"] = gateway.http.get(f"/v1/requests/{rid}", params={"wait": 30})
        result["took"] = time.monotonic() - start

    poller = threading.Thread(target=poll)
    poller.start()
    # Decide once the long-poll is parked: registered with this process's waiter dispatcher
    # (the web app runs in this process) and its first check of the request done.
    dispatcher = gateway.approvals.dispatcher()
    eventually(lambda: rid in dispatcher.registered() and dispatcher.checks_queued() == 0, 10, "the long-poll")
    gateway.approvals.decide(rid, "approve", by="U0ALICE", comment="ship it", params={"n": 2})
    poller.join(30)
    view = result["resp"].json()
    assert result["resp"].status_code == 200
    assert result["took"] < 10
    assert view["status"] == "approved"
    assert set(view["decision"]) == DECISION_FIELDS
    assert view["decision"] == {
        "status": "approved", "approved": True, "by": ["U0ALICE"], "comment": "ship it", "params": {"n": 2},
        "decided_at": view["decision"]["decided_at"], "grant": None,
    }
    assert view["decision"]["decided_at"].endswith("Z")


def test_long_poll_on_a_final_request_answers_at_once(gateway: Gateway) -> None:
    rid = file(gateway)["id"]
    gateway.approvals.decide(rid, "reject", by="U0ALICE", comment="not on a Friday")
    start = time.monotonic()
    resp = gateway.http.get(f"/v1/requests/{rid}", params={"wait": 60})
    assert time.monotonic() - start < 5
    assert resp.json()["decision"]["comment"] == "not on a Friday"
    assert resp.json()["decision"]["approved"] is False


def test_long_poll_times_out_with_the_current_view(gateway: Gateway) -> None:
    rid = file(gateway)["id"]
    start = time.monotonic()
    resp = gateway.http.get(f"/v1/requests/{rid}", params={"wait": 1})
    assert 0.9 < time.monotonic() - start < 10
    assert resp.status_code == 200 and resp.json()["status"] == "pending"


def test_expired_says_no_one_decided_in_time(gateway: Gateway, redis_url: str, prefix: str) -> None:
    worker = start_worker(redis_url, prefix)
    try:
        rid = file(gateway, timeout=1)["id"]
        view = gateway.http.get(f"/v1/requests/{rid}", params={"wait": 30}).json()
    finally:
        stop(worker)
    assert view["status"] == "expired"
    assert view["decision"]["comment"] == EXPIRED_COMMENT
    assert "No one decided in time" in view["decision"]["comment"]
    for word in ("denied", "rejected"):
        assert word not in json.dumps(view["decision"]).lower()


# -- cancel ---------------------------------------------------------------------------------

def test_cancel_is_200_then_409_once_final(gateway: Gateway) -> None:
    rid = file(gateway)["id"]
    first = gateway.http.post(f"/v1/requests/{rid}/cancel")
    assert first.status_code == 200 and first.json()["status"] == "cancelled"
    again = gateway.http.post(f"/v1/requests/{rid}/cancel")
    assert again.status_code == 409
    assert "already cancelled" in again.json()["error"]
    decided = file(gateway)["id"]
    gateway.approvals.decide(decided, "approve", by="U0ALICE")
    late = gateway.http.post(f"/v1/requests/{decided}/cancel")
    assert late.status_code == 409 and "already approved" in late.json()["error"]
    assert gateway.approvals.store.get(decided).status.value == "approved"


# -- batches --------------------------------------------------------------------------------

def test_batch_files_a_plan_and_its_items(gateway: Gateway, conn, prefix: str) -> None:
    body = {"summary": "Migrate the billing DB", "items": [
        {"action": "snapshot", "summary": "Snapshot billing"},
        {"action": "migrate", "summary": "Run migration 42", "params": {"id": 42}},
    ], "requested_by": "U0BOB"}
    resp = gateway.http.post("/v1/batches", json=body)
    assert resp.status_code == 201, resp.text
    out = resp.json()
    assert out["plan"]["summary"] == "Migrate the billing DB"
    assert [i["action"] for i in out["items"]] == ["snapshot", "migrate"]
    assert all(set(v) == VIEW_FIELDS for v in [out["plan"], *out["items"]])
    created = {e["id"]: json.loads(e["doc"]) for e in events(conn, prefix) if e["type"] == "created"}
    assert {created[v["id"]]["via"] for v in [out["plan"], *out["items"]]} == {"ci"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"items": [GATE]}, "summary"),
        ({"summary": "plan"}, "items"),
        ({"summary": "plan", "items": "all of them"}, "items"),
        ({"summary": "plan", "items": []}, "items"),
        ({"summary": "plan", "items": [{"action": "a"}]}, "items.0.summary"),
        ({"summary": "plan", "items": [{**GATE, "confidence": 2}]}, "items.0.confidence"),
        ({"summary": "plan", "items": [{**GATE, "params": {"b": "x" * (256 * 1024)}}]}, "items.0.params"),
    ],
)
def test_batch_invalid_input_is_422_naming_the_field(gateway: Gateway, body: dict, field: str) -> None:
    resp = gateway.http.post("/v1/batches", json=body)
    assert resp.status_code == 422, resp.text
    assert resp.json()["field"] == field


# -- OpenAPI and docs ---------------------------------------------------------------------

def test_openapi_describes_every_endpoint_and_docs_render_offline(gateway: Gateway) -> None:
    with gateway.anonymous() as anon:
        doc = anon.get("/openapi.json").json()
        page = anon.get("/docs")
        bundle = anon.get("/docs/static/swagger-ui-bundle.js")
    assert {
        "/v1/requests", "/v1/requests/{id}", "/v1/requests/{id}/cancel", "/v1/requests/{id}/execution", "/v1/batches",
    } <= set(doc["paths"])
    view = doc["components"]["schemas"]["RequestView"]
    assert set(view["properties"]) == VIEW_FIELDS
    assert "callback_url" in doc["components"]["schemas"]["RequestInput"]["properties"]
    assert page.status_code == 200 and "/openapi.json" in page.text
    assert "https://" not in page.text and "http://" not in page.text  # nothing from a CDN
    assert bundle.status_code == 200 and "SwaggerUIBundle" in bundle.text


def test_execution_route_starts_once_then_answers_409_and_records_the_finish(
    gateway: Gateway, conn: redis.Redis, prefix: str
) -> None:
    """The HTTP shape of `start_execution` / `finish_execution` (hitl.executions)."""
    rid = file(gateway)["id"]
    early = gateway.http.post(f"/v1/requests/{rid}/execution", json={"state": "started"})
    assert early.status_code == 409 and early.json()["field"] == "id" and "pending" in early.json()["error"]
    gateway.approvals.decide(rid, "approve", by="U0ALICE")
    first = gateway.http.post(f"/v1/requests/{rid}/execution", json={"state": "started"})
    assert (first.status_code, first.json()) == (200, {"started": True})
    again = gateway.http.post(f"/v1/requests/{rid}/execution", json={"state": "started"})
    assert again.status_code == 409 and again.json()["field"] == "id"
    assert "outcome unknown: check before retrying" in again.json()["error"]
    assert gateway.http.get(f"/v1/requests/{rid}").json()["execution"] == "unknown"
    done = gateway.http.post(
        f"/v1/requests/{rid}/execution",
        json={"state": "finished", "ok": True, "result": {"sent": 3, "token": "abc123"}},
    )
    assert (done.status_code, done.json()) == (200, {"finished": True})
    assert gateway.http.get(f"/v1/requests/{rid}").json()["execution"] == "finished"
    (finished,) = [e for e in events(conn, prefix, rid) if e["type"] == "execution_finished"]
    assert json.loads(finished["result"]) == {"sent": 3, "token": "••••••"}  # kept, secret masked


@pytest.mark.parametrize(("body", "field"), [
    ({"state": "running"}, "state"), ({}, "state"), ({"state": "finished", "ok": "maybe"}, "ok"),
    ({"state": "started", "extra": 1}, "extra"),
])
def test_execution_route_names_the_bad_field(gateway: Gateway, body: dict, field: str) -> None:
    rid = file(gateway)["id"]
    resp = gateway.http.post(f"/v1/requests/{rid}/execution", json=body)
    assert resp.status_code == 422 and resp.json()["field"] == field
    assert gateway.http.post("/v1/requests/nope/execution", json={"state": "started"}).status_code == 404
