"""Which strings are Slack user and user-group ids.

Approvers, escalation `notify` lists and `requested_by` end up in mentions the bot posts,
so anything else (`<!channel>`, links, markup) is refused when it enters the system rather
than escaped on the way out. These are the only copies of the id patterns: the Block Kit
helpers in bot/slack/blocks/text.py use them to decide what becomes a mention or a link.
"""

from __future__ import annotations

import re
from typing import TypeGuard

USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")
GROUP_ID = re.compile(r"^S[A-Z0-9]{2,30}$")
# Public, private (legacy G…) and direct-message channels.
CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{2,30}$")
# Good enough to tell an email from an id; Slack itself decides whether it names someone.
EMAIL = re.compile(r"^[^@\s<>|]{1,64}@[^@\s<>|]{1,255}\.[^@\s<>|.]{2,63}$")


def is_user(value: object) -> TypeGuard[str]:
    """A Slack user id (`U…` or an Enterprise Grid `W…`)."""
    return isinstance(value, str) and bool(USER_ID.match(value))


def is_group(value: object) -> bool:
    """A Slack user group id (`S…`)."""
    return isinstance(value, str) and bool(GROUP_ID.match(value))


def is_email(value: object) -> bool:
    return isinstance(value, str) and bool(EMAIL.match(value))


def check_mentionable(values: list[str]) -> list[str]:
    """The ids, stripped and de-duplicated in order; ValueError names the first bad one."""
    out: list[str] = []
    for who in values:
        cleaned = who.strip() if isinstance(who, str) else who
        if not (is_user(cleaned) or is_group(cleaned)):
            raise ValueError(
                f"{who!r} is not a Slack user id (U…/W…) or user group id (S…)"
            )
        if cleaned not in out:
            out.append(cleaned)
    return out
