"""A short-lived cache of who is in which Slack channel, shared by every bot process.

Who may see a request depends on membership of its channel (`bot/access.py`). Asking
Slack (`conversations.members`, Tier 4) on every `/hitl list` line would be slow, so the
answer is kept here for `ttl` seconds: long enough to serve a burst of clicks and lists,
short enough that someone removed from a private channel loses sight of it within a minute.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

import redis

from hitl.keys import Keys

# Seconds a channel's member list is trusted before Slack is asked again.
MEMBERS_TTL = 60


class ChannelMembers:
    """Owns the `{p}:chmembers:{channel}` strings: a JSON list of user ids each, with a TTL."""

    def __init__(self, conn: redis.Redis, keys: Keys, ttl: int = MEMBERS_TTL) -> None:
        self.redis = conn
        self.keys = keys
        self.ttl = ttl

    def get(self, channel: str) -> frozenset[str] | None:
        """The cached members of `channel`, or None when Slack must be asked."""
        raw = self.redis.get(self.keys.channel_members(channel))
        if raw is None:
            return None
        return frozenset(json.loads(raw))

    def put(self, channel: str, members: Iterable[str]) -> None:
        """Remember `channel`'s members for `ttl` seconds."""
        self.redis.set(self.keys.channel_members(channel), json.dumps(sorted(members)), ex=self.ttl)
