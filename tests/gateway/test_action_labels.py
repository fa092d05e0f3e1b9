"""Agents do not choose the size of shared state: 10,000 action names filed over HTTP by
one API key give at most the policy's actions plus HITL_METRICS_MAX_ACTIONS others their
own metric and stats labels, the rest count as `other`, and the stats of actions outside
the policy expire with retention."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.gateway.web import WebServer, build_web_app
from hitl import Approvals
from hitl.metrics import OTHER_ACTION, ActionLabels, admit_policy_actions
from tests.conftest import make_settings

SECRET = "agent-secret-0123456789"
NAMES = 10_000
MAX_OTHERS = 200
RETENTION = 600
POLICY_ACTIONS = ["purge_table", "send_email"]


@pytest.fixture
def server(redis_url: str, prefix: str) -> Iterator[tuple[str, Approvals]]:
    settings = make_settings(redis_url, prefix, api_keys={"agent": SECRET}, retention=RETENTION)
    approvals = Approvals(settings=settings)
    admit_policy_actions(approvals.redis, approvals.keys, POLICY_ACTIONS, MAX_OTHERS)  # as `hitl bot` does
    web = WebServer(build_web_app(approvals), host="127.0.0.1", port=0).start()
    try:
        yield web.base_url, approvals
    finally:
        web.stop()
        approvals.close()


def _flood(base: str, names: list[str]) -> None:
    """File one request per name, as plans of 1,000 steps (one POST /v1/batches each)."""
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {SECRET}"}, timeout=120) as http:
        for start in range(0, len(names), 1000):
            items = [{"action": n, "summary": "x"} for n in names[start:start + 1000]]
            resp = http.post("/v1/batches", json={"summary": "many", "items": items, "action": "purge_table"})
            assert resp.status_code == 201, resp.text


def _labels(text: str, family: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for fam in text_string_to_metric_families(text):
        for sample in fam.samples:
            if sample.name == family:
                out[sample.labels["action"]] = out.get(sample.labels["action"], 0) + sample.value
    return out


def test_ten_thousand_action_names_get_bounded_labels(server: tuple[str, Approvals]) -> None:
    base, approvals = server
    names = [f"agent_made_{i:05d}" for i in range(NAMES)] + POLICY_ACTIONS
    _flood(base, names)
    text = httpx.get(base + "/metrics", timeout=30).text
    created = _labels(text, "hitl_requests_created_total")
    assert len(created) <= len(POLICY_ACTIONS) + MAX_OTHERS + 1
    assert set(POLICY_ACTIONS) <= set(created)  # the policy's actions keep their names
    assert created[OTHER_ACTION] == NAMES - MAX_OTHERS
    plans = -(-len(names) // 1000)  # each plan is a request too, filed as purge_table
    assert sum(created.values()) == len(names) + plans
    assert len(ActionLabels(approvals.redis, approvals.keys).admitted()) == MAX_OTHERS
    # Stats: one hash per label, not per name; those outside the policy expire with retention.
    stats = [k.decode() for k in approvals.redis.scan_iter(approvals.keys.stats("*"), count=1000)]
    assert len(stats) <= len(POLICY_ACTIONS) + MAX_OTHERS + 1
    for action in POLICY_ACTIONS:
        assert approvals.redis.ttl(approvals.keys.stats(action)) == -1
    other = approvals.redis.ttl(approvals.keys.stats(OTHER_ACTION))
    assert 0 < other <= RETENTION
    assert approvals.redis.scard(approvals.keys.actions) <= len(POLICY_ACTIONS) + MAX_OTHERS + 1


def test_a_decided_unlisted_action_keeps_its_stats_for_retention_only(server: tuple[str, Approvals]) -> None:
    _base, approvals = server
    req = approvals.request(action="made_up_by_an_agent", summary="x", mode="gate")
    approvals.decide(req.id, "approve", by="U0ALICE")
    r, keys = approvals.redis, approvals.keys
    assert r.hget(keys.stats("made_up_by_an_agent"), "approved") == b"1"
    assert 0 < r.ttl(keys.stats("made_up_by_an_agent")) <= RETENTION
    assert 0 < r.ttl(keys.durations("made_up_by_an_agent")) <= RETENTION
    listed = approvals.request(action="purge_table", summary="x", mode="gate")
    approvals.decide(listed.id, "approve", by="U0ALICE")
    assert r.ttl(keys.stats("purge_table")) == -1 and r.ttl(keys.durations("purge_table")) == -1
