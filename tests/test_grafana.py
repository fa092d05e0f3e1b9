"""docs/grafana-dashboard.json: valid, and built only on metrics `/metrics` really exports."""

from __future__ import annotations

import json
import re

from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.gateway.metrics import metrics_routes
from hitl.metrics import MetricsStore, SlackOutcome
from hitl.status import WebhookOutcome
from tests.helpers import ROOT

_SAMPLE = re.compile(r"\bhitl_[a-z_]+\b")


def test_every_panel_queries_an_exported_metric(approvals) -> None:
    req = approvals.request(action="deploy", summary="Deploy", mode="gate")
    approvals.request(action="deploy", summary="Deploy again", mode="gate")
    approvals.decide(req.id, "approve", by="U1")
    recorded = MetricsStore(approvals.redis, approvals.keys)
    recorded.slack_call("chat.postMessage", SlackOutcome.RATELIMITED)
    recorded.webhook_delivery(WebhookOutcome.DELIVERED)
    recorded.timer_lateness(0.02)
    with TestClient(Starlette(routes=metrics_routes(approvals.redis, approvals.keys))) as http:
        text = http.get("/metrics").text
    exported = set()
    for family in text_string_to_metric_families(text):
        exported |= {family.name, *(s.name for s in family.samples)}
    board = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    used = {name for p in board["panels"] for t in p["targets"] for name in _SAMPLE.findall(t["expr"])}
    assert used, "the dashboard queries nothing"
    assert used <= exported, f"not exported: {sorted(used - exported)}"
    assert {"hitl_pending", "hitl_decision_seconds_bucket", "hitl_slack_calls_total", "hitl_paused"} <= used
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
