"""What the web process serves for operators: `GET /metrics` and the `/dashboard`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.metrics import metrics_routes
from hitl.client import Approvals


def observability_routes(approvals: Approvals) -> list[BaseRoute]:
    """The routes `bot.web.build_web_app` mounts: Prometheus metrics and the dashboard."""
    return [*metrics_routes(approvals.redis, approvals.keys)]
