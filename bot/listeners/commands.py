"""`/hitl`: the operator's view of the queue, answered ephemerally and from indexes.

The reply goes in `ack()` itself: every subcommand is a few Redis round trips, well
inside Slack's 3 seconds, and needs no response_url.
"""

from __future__ import annotations

import re
from typing import Any

from slack_bolt import Ack, App

from bot import views
from bot.deps import Deps, deps_of
from hitl import queries
from hitl.errors import RequestNotFound

# How many requests `/hitl list` shows.
LIST_LIMIT = 20

_CHANNEL_REF = re.compile(r"^<#(C[A-Z0-9]+)(?:\|[^>]*)?>$")


def _channel_arg(deps: Deps, arg: str) -> str | None:
    match = _CHANNEL_REF.match(arg)
    if match:
        return match.group(1)
    return arg or None


def answer(deps: Deps, user: str, text: str) -> tuple[str, list[dict]]:
    """(fallback text, blocks) for one `/hitl` invocation."""
    sub, _, rest = text.strip().partition(" ")
    sub, rest = sub.lower(), rest.strip()
    store = deps.store
    if sub == "status":
        st = queries.queue_status(store)
        blocks = views.status_blocks(st.by_channel, st.by_mode, st.oldest, st.next_deadline)
        return f"{st.total} requests waiting", blocks
    if sub == "list":
        if rest == "mine":
            reqs = queries.waiting_for(store, user, lambda g: deps.groups.groups_of(user, g), LIST_LIMIT)
            return f"{len(reqs)} waiting for you", views.list_blocks(reqs, "Waiting for you")
        channel = _channel_arg(deps, rest)
        reqs = queries.pending(store, channel, LIST_LIMIT)
        title = f"Waiting in <#{channel}>" if channel else "Waiting"
        return f"{len(reqs)} waiting", views.list_blocks(reqs, title)
    if sub == "show":
        if not rest:
            return "Usage: /hitl show <request id>", views.help_blocks()
        try:
            req = store.get(rest.split()[0])
        except RequestNotFound:
            return f"No request with id {rest.split()[0]!r}.", []
        return f"Request {req.id}", views.show_blocks(req, queries.events_of(store, req.id))
    return "hitl commands", views.help_blocks()


def register(app: App) -> None:
    @app.command("/hitl")
    def hitl(ack: Ack, command: dict[str, Any], context: dict) -> None:
        text, blocks = answer(deps_of(context), command["user_id"], command.get("text") or "")
        if blocks:
            ack(text=text, blocks=blocks, response_type="ephemeral")
        else:
            ack(text=text, response_type="ephemeral")
