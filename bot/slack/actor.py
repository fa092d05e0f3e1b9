"""Who acted: the Slack user behind an interaction, checked once before any listener runs.

Listeners read the clicker as `body["user"]["id"]` (a slash command's `user_id`, App
Home's `event["user"]`). Slack's signature proves Slack sent a request, not that it names
a user: a validly signed `block_actions` without one failed inside the listener, after or
before its ack (a 500, a traceback, a reviewer told nothing). `require_actor`, a global
Bolt middleware, refuses such a request with 400 and one log line; nothing is read from
Redis and nothing is decided.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from slack_bolt.response import BoltResponse

from hitl.slackids import is_user

log = logging.getLogger(__name__)

# Payload types a person's action produces; each carries `user: {"id": ...}`.
_INTERACTIONS = frozenset({
    "block_actions", "block_suggestion", "view_submission", "view_closed", "shortcut", "message_action",
    "interactive_message", "dialog_submission",
})
# Events whose listeners act for `event.user`.
_USER_EVENTS = frozenset({"app_home_opened"})


def actor_of(body: dict[str, Any]) -> str | None:
    """The Slack user id a request acts for; None when it names none (or not an id).
    Requests that act for no one (other events) answer None too: see `needs_actor`."""
    if body.get("type") in _INTERACTIONS:
        user = body.get("user")
        who = user.get("id") if isinstance(user, dict) else None
    elif "command" in body:
        who = body.get("user_id")
    else:
        event = body.get("event")
        who = event.get("user") if isinstance(event, dict) else None
    return who if is_user(who) else None


def needs_actor(body: dict[str, Any]) -> bool:
    """Whether hitl's listeners act for a person on this request."""
    if body.get("type") in _INTERACTIONS or "command" in body:
        return True
    event = body.get("event")
    return isinstance(event, dict) and event.get("type") in _USER_EVENTS


def require_actor(body: dict[str, Any], next: Callable[[], Any]) -> Any:
    """Bolt middleware: 400 for a request that must name a user and does not."""
    if not needs_actor(body) or actor_of(body) is not None:
        return next()
    kind = body.get("type") or ("slash command" if "command" in body else "event")
    log.warning("refused a signed Slack %s that names no user (nothing was recorded)", kind)
    error = f"{kind}: names no Slack user (user.id); nothing was recorded"
    headers: dict[str, str | Sequence[str]] = {"content-type": "application/json"}
    return BoltResponse(status=400, body=json.dumps({"error": error}), headers=headers)
