"""`/hitl dashboard` (and the link under `/hitl stats`): a private, signed, single-use 10-minute link.

The link is only ever in an ephemeral reply, so only the person who asked sees it; it
names their workspace and user, and the web process checks both (`bot.dashauth`).
"""

from __future__ import annotations

from urllib.parse import quote

from bot import dashauth
from bot.dashauth import LINK_TTL, TokenKind
from hitl.settings import Settings

DASHBOARD_PATH = "/dashboard"


def base_url(settings: Settings) -> str:
    """Where browsers reach the web process: HITL_PUBLIC_URL, else localhost on $PORT."""
    return (settings.public_url or f"http://localhost:{settings.port}").rstrip("/")


def link(settings: Settings, team: str, user: str) -> str | None:
    """A signed link for `user` of `team`; None when they may not open the dashboard."""
    allowed = dashauth.allowed_users(settings)
    if allowed and user not in allowed:
        return None
    key = dashauth.signing_key(settings)
    if key is None:
        return base_url(settings) + DASHBOARD_PATH
    token = dashauth.mint(key, team, user, TokenKind.LINK, LINK_TTL)
    return f"{base_url(settings)}{DASHBOARD_PATH}?token={quote(token)}"


def reply(settings: Settings, team: str, user: str) -> tuple[str, list[dict]]:
    """The ephemeral answer to `/hitl dashboard`."""
    url = link(settings, team, user)
    if url is None:
        text = (
            "The dashboard is open to the people in HITL_DASHBOARD_USERS (or HITL_ADMINS); ask one of them."
        )
        return text, []
    minutes = LINK_TTL // 60
    text = (
        f"📊 <{url}|Open the hitl dashboard>: a link only you can see, valid for {minutes} minutes; "
        "it opens the dashboard once."
    )
    return text, [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def stats_line(settings: Settings, team: str, user: str) -> str | None:
    """The line under `/hitl stats` pointing at the charts."""
    url = link(settings, team, user)
    return None if url is None else f"📊 <{url}|Live charts and autonomy readiness on the dashboard>"
