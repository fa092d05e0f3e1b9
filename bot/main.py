"""`hitl bot`: Socket Mode when SLACK_APP_TOKEN is set, else HTTP on $PORT."""

from __future__ import annotations

import logging

from bot.app import build_app
from bot.server import BotServer
from hitl.client import Approvals
from hitl.durability import check as check_durability
from hitl.settings import Settings

log = logging.getLogger(__name__)


def run(settings: Settings) -> None:
    approvals = Approvals(settings=settings)
    check_durability(approvals.redis, "hitl bot")
    app_token = settings.secret("slack_app_token")
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        app = build_app(settings, approvals=approvals, socket_mode=True)
        log.info("hitl bot: Socket Mode")
        SocketModeHandler(app, app_token).start()
        return
    app = build_app(settings, approvals=approvals)
    server = BotServer(
        app, approvals.redis, port=settings.port, signing_secret=settings.secret("slack_signing_secret") or ""
    )
    log.info("hitl bot: listening on http://0.0.0.0:%d/slack/events (health: /healthz)", server.port)
    try:
        server.serve_forever()
    finally:
        server.httpd.server_close()
