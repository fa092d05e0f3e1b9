"""`GET /metrics`: the figures every process counted in Redis, in Prometheus text format.

A custom `prometheus_client` collector reads `hitl.metrics.read` at scrape time, so the
answer is the same (and the sum of every bot and worker) whichever web process serves the
scrape. Nothing is kept in this process's memory. Mount `metrics_routes(...)` on the web
app (a list of Starlette routes).

A scrape never names a private channel: `hitl_pending{channel}` is `private` for every
channel Slack has not said is public. With HITL_METRICS_TOKEN set, a scrape needs
`Authorization: Bearer <token>` (else 401). Action labels are bounded where they are
written (hitl.scripts `scope_of`): the policy's actions plus HITL_METRICS_MAX_ACTIONS
others, the rest `other`.
"""

from __future__ import annotations

import hmac
from collections import defaultdict
from collections.abc import Callable, Iterator

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
from slack_sdk import WebClient
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hitl import metrics
from hitl.keys import Keys
from hitl.membership import ChannelPrivacy

METRICS_PATH = "/metrics"


SlackClient = Callable[[], WebClient | None]


def _no_slack() -> WebClient | None:
    return None


class RedisCollector(Collector):
    """Reads hitl-router's shared figures from Redis on every scrape.

    A channel is named only when Slack says it is public (`hitl.membership.ChannelPrivacy`,
    asked through `slack()` when its cached answer is missing or old); every other channel
    is labelled `private`, so a scrape never names a private channel."""

    def __init__(self, client: redis.Redis, keys: Keys, slack: SlackClient = _no_slack) -> None:
        self.client = client
        self.keys = keys
        self.slack = slack
        self.privacy = ChannelPrivacy(client, keys)

    def _pending(self, snap: metrics.Snapshot) -> dict[tuple[str, str], int]:
        channels = {ch for ch, _mode in snap.pending if ch}
        private = self.privacy.labels(channels, self.slack() if channels else None)
        out: dict[tuple[str, str], int] = defaultdict(int)
        for (channel, mode), n in snap.pending.items():
            label = metrics.PRIVATE_CHANNEL if channel and private.get(channel, True) else channel
            out[(label, mode)] += n
        return dict(out)

    def collect(self) -> Iterator[Metric]:
        snap = metrics.read(self.client, self.keys)
        snap.pending = self._pending(snap)
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


def registry(client: redis.Redis, keys: Keys, slack: SlackClient = _no_slack) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(RedisCollector(client, keys, slack))
    return reg


def bearer_ok(header: str | None, token: str) -> bool:
    """Whether an `Authorization` header carries `token` (compared in constant time)."""
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


def metrics_routes(
    client: redis.Redis, keys: Keys, *, token: str | None = None, slack: SlackClient = _no_slack
) -> list[Route]:
    """`GET /metrics` as a Starlette route, to mount on the web app. With `token`
    (HITL_METRICS_TOKEN), a scrape without `Authorization: Bearer <token>` is 401.
    `slack()` gives a Slack client to ask which channels are private (None: the cached
    answers only, and an unknown channel is `private`)."""
    reg = registry(client, keys, slack)

    async def scrape(request: Request) -> Response:
        if token and not bearer_ok(request.headers.get("authorization"), token):
            return Response(
                "401: send Authorization: Bearer <HITL_METRICS_TOKEN>\n", status_code=401,
                media_type="text/plain",
                headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
            )
        try:
            body = await run_in_threadpool(generate_latest, reg)
        except redis.RedisError as exc:
            return Response(f"Redis unreachable: {exc}\n", status_code=503, media_type="text/plain")
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return [Route(METRICS_PATH, scrape, methods=["GET"])]
