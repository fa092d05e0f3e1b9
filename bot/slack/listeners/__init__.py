"""Bolt listeners grouped by kind; each module has `register(app)`."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners import actions, autonomy, commands, events, grants, views


def register(app: App) -> None:
    actions.register(app)
    autonomy.register(app)
    views.register(app)
    commands.register(app)
    events.register(app)
    grants.register(app)
