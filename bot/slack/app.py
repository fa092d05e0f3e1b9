"""The Bolt app: built here, wired to its listeners, nothing else."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import redis
from slack_bolt import App, BoltContext
from slack_sdk import WebClient

from bot.access import Access
from bot.groups import GroupResolver
from bot.slack import listeners
from bot.slack.actor import require_actor
from bot.slack.client import web_client
from bot.slack.deps import Deps
from bot.slack.verification import SafeRequestVerification
from hitl.client import Approvals
from hitl.errors import ConfigError
from hitl.membership import ChannelMembers
from hitl.settings import Settings

log = logging.getLogger(__name__)

# Threads running listeners; Bolt's default of 5 queues clicks behind slow Slack calls.
LISTENER_THREADS = 16


def build_app(
    settings: Settings,
    *,
    approvals: Approvals | None = None,
    client: WebClient | None = None,
    socket_mode: bool = False,
) -> App:
    secret = settings.secret("slack_signing_secret")
    if not secret and not socket_mode:
        raise ConfigError(
            "SLACK_SIGNING_SECRET: not set; copy the Signing Secret from your app's Basic Information page"
        )
    approvals = approvals or Approvals(settings.redis, settings=settings)
    client = client or web_client(settings)
    groups = GroupResolver(client, approvals.redis, approvals.keys.prefix)
    members = ChannelMembers(approvals.redis, approvals.keys)
    deps = Deps(
        settings=settings,
        approvals=approvals,
        client=client,
        groups=groups,
        access=Access(client, members, groups, settings.admins, settings.default_channel),
    )
    app = App(
        client=client,
        signing_secret=secret or "socket-mode",
        # Signatures are checked by SafeRequestVerification, in the same place in Bolt's
        # chain (before authorization), so a malformed timestamp is a 401, not a 500.
        request_verification_enabled=False,
        before_authorize=None if socket_mode else SafeRequestVerification(secret or "socket-mode"),
        token_verification_enabled=False,
        listener_executor=ThreadPoolExecutor(LISTENER_THREADS, thread_name_prefix="hitl-listener"),
        raise_error_for_unhandled_request=False,
    )

    @app.middleware
    def inject(context: BoltContext, next: Any) -> Any:
        context["hitl"] = deps
        return next()

    # A click, form or command that names no Slack user is refused before any listener.
    app.middleware(require_actor)
    listeners.register(app)
    return app


def health(conn: redis.Redis) -> bool:
    try:
        return bool(conn.ping())
    except redis.RedisError:
        return False
