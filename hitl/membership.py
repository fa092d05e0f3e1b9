"""Short-lived caches of who is in which Slack channel or user group, shared by every bot process.

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
# Seconds a user group's member list is trusted: `usergroups.users.list` is Tier 2
# (about 20 calls a minute), so groups are kept longer.
GROUP_TTL = 300


class _Members:
    """Owns one kind of member-list string: a JSON list of user ids per key, with a TTL."""

    def __init__(self, conn: redis.Redis, keys: Keys, ttl: int) -> None:
        self.redis = conn
        self.keys = keys
        self.ttl = ttl

    def key(self, ref: str) -> str:
        raise NotImplementedError

    def get(self, ref: str) -> frozenset[str] | None:
        """The cached members of `ref`, or None when Slack must be asked."""
        raw = self.redis.get(self.key(ref))
        if raw is None:
            return None
        return frozenset(json.loads(raw))

    def put(self, ref: str, members: Iterable[str]) -> None:
        """Remember `ref`'s members for `ttl` seconds."""
        self.redis.set(self.key(ref), json.dumps(sorted(members)), ex=self.ttl)


class ChannelMembers(_Members):
    """`{p}:chmembers:{channel}`: who is in a channel (conversations.members)."""

    def __init__(self, conn: redis.Redis, keys: Keys, ttl: int = MEMBERS_TTL) -> None:
        super().__init__(conn, keys, ttl)

    def key(self, ref: str) -> str:
        return self.keys.channel_members(ref)


class GroupMembers(_Members):
    """`{p}:usergroup:{group}`: who is in a user group (usergroups.users.list)."""

    def __init__(self, conn: redis.Redis, keys: Keys, ttl: int = GROUP_TTL) -> None:
        super().__init__(conn, keys, ttl)

    def key(self, ref: str) -> str:
        return self.keys.group_members(ref)
