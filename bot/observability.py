"""What the web process serves for operators: `GET /metrics` and the `/dashboard`."""

from __future__ import annotations

from starlette.routing import BaseRoute

from bot.auth import Authenticator
from bot.dashboard import dashboard_routes
from bot.metrics import metrics_routes
from hitl.client import Approvals


def observability_routes(approvals: Approvals, keys: Authenticator) -> list[BaseRoute]:
    """The routes `bot.web.build_web_app` mounts: Prometheus metrics and the dashboard
    (which lets in API keys `keys` besides the links `/hitl dashboard` hands out)."""
    return [*metrics_routes(approvals.redis, approvals.keys), *dashboard_routes(approvals, keys)]
