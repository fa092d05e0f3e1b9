"""Events: App Home shows the requests waiting for the viewer."""

from __future__ import annotations

import logging
from typing import Any

import redis
from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.slack.blocks import views
from bot.slack.deps import Deps, deps_of
from hitl.queries import waiting_for

log = logging.getLogger(__name__)


def publish_home(deps: Deps, user: str) -> None:
    viewer = deps.viewer(user)
    placed = waiting_for(
        deps.store, user, lambda groups: deps.groups.groups_of(user, groups),
        visible=None if viewer.admin else viewer.may_see,
    )
    try:
        deps.client.views_publish(user_id=user, view=views.home_view(user, placed))
    except SlackApiError as exc:
        log.warning("views.publish for %s failed: %s", user, exc.response.get("error"))


def register(app: App) -> None:
    @app.event("app_home_opened")
    def home(event: dict[str, Any], context: dict) -> None:
        if event.get("tab", "home") == "home":
            try:
                publish_home(deps_of(context), event["user"])
            except redis.RedisError as exc:  # the tab keeps its last view; nothing to record
                log.warning("App Home for %s not refreshed, Redis unreachable: %s", event["user"], exc)
