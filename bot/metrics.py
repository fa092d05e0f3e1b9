"""`GET /metrics`: the figures every process counted in Redis, in Prometheus text format.

A custom `prometheus_client` collector reads `hitl.metrics.read` at scrape time, so the
answer is the same (and the sum of every bot and worker) whichever web process serves the
scrape. Nothing is kept in this process's memory. Mount `metrics_routes(...)` on the web
app (a list of Starlette routes).
"""

from __future__ import annotations

from collections.abc import Iterator

import redis
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hitl import metrics
from hitl.keys import Keys

METRICS_PATH = "/metrics"


class RedisCollector(Collector):
    """Reads hitl-router's shared figures from Redis on every scrape."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys

    def collect(self) -> Iterator[Metric]:
        snap = metrics.read(self.client, self.keys)
        created = CounterMetricFamily(
            "hitl_requests_created", "Requests filed, by action and the mode they were filed in",
            labels=["action", "mode"],
        )
        for (action, mode), n in sorted(snap.created.items()):
            created.add_metric([action, mode], n)
        yield created
        final = CounterMetricFamily(
            "hitl_requests_final", "Requests that reached a final status, by action and status",
            labels=["action", "status"],
        )
        for (action, status), n in sorted(snap.final.items()):
            final.add_metric([action, status], n)
        yield final
        pending = GaugeMetricFamily(
            "hitl_pending", "Requests waiting now (pending or in an override window), by channel and mode",
            labels=["channel", "mode"],
        )
        for (channel, mode), n in sorted(snap.pending.items()):
            pending.add_metric([channel, mode], n)
        yield pending
        yield GaugeMetricFamily(
            "hitl_oldest_pending_seconds", "Age of the oldest waiting request (0 when none waits)",
            value=snap.oldest_pending_seconds,
        )
        decision = HistogramMetricFamily(
            "hitl_decision_seconds", "Time from a request's creation to its final status, by action",
            labels=["action"],
        )
        for action, hist in sorted(snap.decision.items()):
            decision.add_metric([action], hist.cumulative(), hist.sum)
        yield decision
        lateness = HistogramMetricFamily(
            "hitl_timer_lateness_seconds",
            "How long after its due time a timer (expiry, window, escalation) fired",
        )
        lateness.add_metric([], snap.lateness.cumulative(), snap.lateness.sum)
        yield lateness
        slack = CounterMetricFamily(
            "hitl_slack_calls", "Slack Web API attempts, by method and outcome (ok, error, ratelimited)",
            labels=["method", "outcome"],
        )
        for (method, outcome), n in sorted(snap.slack.items()):
            slack.add_metric([method, outcome], n)
        yield slack
        hooks = CounterMetricFamily(
            "hitl_webhook_deliveries", "Decision webhook delivery attempts, by outcome", labels=["outcome"]
        )
        for outcome, n in sorted(snap.webhooks.items()):
            hooks.add_metric([outcome], n)
        yield hooks
        paused = GaugeMetricFamily(
            "hitl_paused", "Kill switch: 1 while a scope (* or an action) is paused", labels=["scope"]
        )
        for scope, on in sorted(snap.paused.items()):
            paused.add_metric([scope], on)
        yield paused


def registry(client: redis.Redis, keys: Keys) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(client, keys))
    return reg


def metrics_routes(client: redis.Redis, keys: Keys) -> list[Route]:
    """`GET /metrics` as a Starlette route, to mount on the web app."""
    reg = registry(client, keys)

    async def scrape(request: Request) -> Response:
        try:
            body = await run_in_threadpool(generate_latest, reg)
        except redis.RedisError as exc:
            return Response(f"Redis unreachable: {exc}\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route(METRICS_PATH, scrape, methods=["GET"])]
