"""`hitl bot`: the web process (uvicorn on $PORT) and, with SLACK_APP_TOKEN, Socket Mode.

In Socket Mode Slack's traffic arrives over the socket, and the HTTP side still serves
the API, MCP and the health check.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

from slack_bolt.adapter.socket_mode import SocketModeHandler

from bot.gateway import mcp
from bot.gateway.mcpgateway import server as mcpgateway
from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from hitl.client import Approvals
from hitl.durability import check as check_durability
from hitl.errors import ConfigError
from hitl.membership import ChannelPrivacy
from hitl.metrics import admit_policy_actions
from hitl.policystore import PolicyPublisher
from hitl.settings import Settings

log = logging.getLogger(__name__)


# Back-off bounds (seconds) while Slack refuses the Socket Mode connection.
SOCKET_RETRY_MIN, SOCKET_RETRY_MAX = 1.0, 60.0


def _keep_connecting(handler: SocketModeHandler) -> None:
    """Connect to Slack's socket, retrying with back-off: the HTTP side (API, MCP,
    health) serves meanwhile instead of the whole process failing with Slack."""
    delay = SOCKET_RETRY_MIN
    while True:
        try:
            handler.connect()
            log.info("hitl bot: Socket Mode connected")
            return
        except Exception as exc:
            log.error("hitl bot: Socket Mode connection failed (%s); retrying in %gs", exc, delay)
            time.sleep(delay)
            delay = min(delay * 2, SOCKET_RETRY_MAX)


def learn_privacy(approvals: Approvals, settings: Settings) -> None:
    """Ask Slack, once at start, which of the policy's and the default channels are
    private: requests there are counted into the public figures only once it is known
    that they are public (`hitl.membership.ChannelPrivacy`)."""
    if not settings.secret("slack_bot_token"):
        return
    from bot.slack.client import web_client

    policy = approvals.policy.current().policy
    channels = [settings.default_channel, policy.defaults.channel,
                *(a.channel for a in policy.actions.values()), *(r.channel for r in policy.rules)]
    privacy = ChannelPrivacy(approvals.redis, approvals.keys)
    try:
        privacy.labels([c for c in channels if c], web_client(settings))
    except Exception as exc:  # never stop the bot over it: unknown channels count as private
        log.warning("could not ask Slack which channels are private: %s", exc)
def policy_publisher(settings: Settings, approvals: Approvals) -> PolicyPublisher | None:
    """With HITL_POLICY_FILE: the publisher of that file (a bad file stops the start)."""
    if settings.policy_file is None:
        return None
    return PolicyPublisher(
        settings.policy_file, approvals.policy, by=f"hitl bot@{socket.gethostname()}",
        max_others=settings.metrics_max_actions,
    )


def run(settings: Settings) -> None:
    # The bot talks to Redis itself, whatever HITL_API_URL (an agent's setting) says.
    approvals = Approvals(settings.redis, settings=settings)
    check_durability(approvals.redis, "hitl bot")
    # The policy in force keeps its action names' metric labels; a publisher (with
    # HITL_POLICY_FILE) admits them again on each publication.
    in_force = approvals.policy.current().policy
    admit_policy_actions(approvals.redis, approvals.keys, in_force.actions, settings.metrics_max_actions)
    publisher = policy_publisher(settings, approvals)
    if publisher is not None:
        publisher.start()
    learn_privacy(approvals, settings)
    app_token = settings.secret("slack_app_token")
    socket_mode = None
    mounts, lifespans = mcp.web_parts(approvals)
    gateway_mounts, gateway_lifespans = mcpgateway.web_parts(approvals)  # /mcp/gateway, when configured
    mounts, lifespans = [*mounts, *gateway_mounts], [*lifespans, *gateway_lifespans]
    if app_token:
        bolt = build_app(settings, approvals=approvals, socket_mode=True)
        socket_mode = SocketModeHandler(bolt, app_token)
        threading.Thread(target=_keep_connecting, args=(socket_mode,), daemon=True).start()
        web = build_web_app(approvals, mounts=mounts, lifespans=lifespans)
    else:
        bolt = build_app(settings, approvals=approvals)
        secret = settings.secret("slack_signing_secret") or ""
        web = build_web_app(approvals, bolt=bolt, signing_secret=secret, mounts=mounts, lifespans=lifespans)
    try:
        server = WebServer(web, host=settings.host, port=settings.port)
    except OSError as exc:
        approvals.close()
        raise ConfigError(
            f"HITL_HOST/PORT: cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc})"
        ) from None
    shown = f"[{settings.host}]" if ":" in settings.host else settings.host
    log.info(
        "hitl bot: listening on http://%s:%d (Slack: %s, health: /healthz, API: /v1, docs: /docs)",
        shown, server.port, "Socket Mode" if socket_mode else "/slack/events",
    )
    try:
        server.serve_forever()
    finally:
        if socket_mode is not None:
            socket_mode.close()
        if publisher is not None:
            publisher.stop()
        approvals.close()
