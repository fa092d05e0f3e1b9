"""Short-lived caches of who is in which Slack channel or user group, shared by every bot process.

Who may see a request depends on membership of its channel (`bot/access.py`). Asking
Slack (`conversations.members`, Tier 4) on every `/hitl list` line would be slow, so the
answer is kept here for `ttl` seconds: long enough to serve a burst of clicks and lists,
short enough that someone removed from a private channel loses sight of it within a minute.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from hitl.keys import Keys

log = logging.getLogger(__name__)

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


# Seconds a channel's privacy is kept, and after how many it is asked again when read.
PRIVACY_TTL = 86400
PRIVACY_FRESH = 3600
# Seconds a failed answer (treated as private) is kept before Slack is asked again.
PRIVACY_ERROR_TTL = 60


class ChannelPrivacy:
    """`{p}:chprivate:{channel}`: "1" when a channel is private, "0" when public.

    Shared figures must never name a private channel or its actions to people outside it
    (`/metrics`, the dashboard), and the transition scripts count a request into the
    public figures only when its channel is known to be public here. So this answers from
    Slack's `conversations.info` (`is_private`), kept a day and asked again after an hour
    when read; a channel Slack will not describe (the bot is not in a private channel, an
    id that does not exist, Slack down) counts as private.
    """

    def __init__(self, conn: redis.Redis, keys: Keys) -> None:
        self.redis = conn
        self.keys = keys

    def get(self, channel: str) -> bool | None:
        """The cached answer (True: private), or None when Slack must be asked."""
        raw = self.redis.get(self.keys.channel_privacy(channel))
        return None if raw is None else raw == b"1"

    def put(self, channel: str, private: bool, ttl: int = PRIVACY_TTL) -> None:
        self.redis.set(self.keys.channel_privacy(channel), "1" if private else "0", ex=ttl)

    def is_private(self, channel: str, client: WebClient | None) -> bool:
        """Whether `channel` is private (or not known to be public), asking Slack through
        `client` when the cached answer is missing or over PRIVACY_FRESH seconds old."""
        key = self.keys.channel_privacy(channel)
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.ttl(key)
        raw, ttl = pipe.execute()
        if raw is not None and (client is None or int(ttl) > PRIVACY_TTL - PRIVACY_FRESH):
            return bool(raw == b"1")
        if client is None:
            return True
        try:
            info = client.conversations_info(channel=channel).get("channel") or {}
        except (SlackApiError, OSError) as exc:
            reason = exc.response.get("error") if isinstance(exc, SlackApiError) else exc
            log.warning("conversations.info %s failed (%s): counted as private", channel, reason)
            if raw is None:
                self.put(channel, True, PRIVACY_ERROR_TTL)
            return True if raw is None else bool(raw == b"1")
        private = bool(info.get("is_private", True))
        self.put(channel, private)
        return private

    def labels(self, channels: Iterable[str], client: WebClient | None) -> dict[str, bool]:
        """{channel: private} for each of `channels`."""
        return {ch: self.is_private(ch, client) for ch in dict.fromkeys(channels) if ch}
