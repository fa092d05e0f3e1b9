"""`hitl bot`: the web process (uvicorn on $PORT) and, with SLACK_APP_TOKEN, Socket Mode.

In Socket Mode Slack's traffic arrives over the socket, and the HTTP side still serves
the API, MCP and the health check.
"""

from __future__ import annotations

import logging

from bot.app import build_app
from bot.web import WebServer, build_web_app
from hitl.client import Approvals
from hitl.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    approvals = Approvals(settings=settings)
    app_token = settings.secret("slack_app_token")
    socket_mode = None
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bolt = build_app(settings, approvals=approvals, socket_mode=True)
        socket_mode = SocketModeHandler(bolt, app_token)
        socket_mode.connect()
        log.info("hitl bot: Socket Mode connected")
        web = build_web_app(approvals)
    else:
        bolt = build_app(settings, approvals=approvals)
        secret = settings.secret("slack_signing_secret") or ""
        web = build_web_app(approvals, bolt=bolt, signing_secret=secret)
    server = WebServer(web, port=settings.port)
    log.info(
        "hitl bot: http://0.0.0.0:%d (Slack: %s, health: /healthz, API: /v1, docs: /docs)",
        server.port, "Socket Mode" if socket_mode else "/slack/events",
    )
    try:
        server.serve_forever()
    finally:
        if socket_mode is not None:
            socket_mode.close()
        approvals.close()
