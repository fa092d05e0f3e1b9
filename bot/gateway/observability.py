"""What the web process serves for operators: `GET /metrics` and the `/dashboard`."""

from __future__ import annotations

import threading

from slack_sdk import WebClient
from starlette.routing import BaseRoute

from bot.gateway.auth import Authenticator
from bot.gateway.dashboard import dashboard_routes
from bot.gateway.metrics import metrics_routes
from hitl.client import Approvals
from hitl.settings import Settings


class LazySlack:
    """The Slack client both ask about channels (privacy, membership), made on first use:
    a web process without SLACK_BOT_TOKEN serves them too, knowing no channel is public."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: WebClient | None = None
        self._lock = threading.Lock()

    def __call__(self) -> WebClient | None:
        if not self.settings.secret("slack_bot_token"):
            return None
        with self._lock:
            if self._client is None:
                from bot.slack.client import web_client

                self._client = web_client(self.settings)
            return self._client


def observability_routes(approvals: Approvals, keys: Authenticator) -> list[BaseRoute]:
    """The routes `bot.gateway.web.build_web_app` mounts: Prometheus metrics (behind
    HITL_METRICS_TOKEN when set) and the dashboard (which lets in admin API keys besides
    the links `/hitl dashboard` hands out)."""
    slack = LazySlack(approvals.settings)
    token = approvals.settings.secret("metrics_token")
    return [
        *metrics_routes(approvals.redis, approvals.keys, token=token, slack=slack),
        *dashboard_routes(approvals, keys, slack=slack),
    ]
