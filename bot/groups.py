"""Which Slack user groups a person belongs to, cached in Redis.

`usergroups.users.list` is Tier 2 (about 20 calls a minute), so members are cached for a
few minutes in Redis, shared by every bot process, instead of asked per click.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)

# Seconds a group's member list is trusted before Slack is asked again.
CACHE_TTL = 300


class GroupResolver:
    def __init__(self, client: WebClient, conn: redis.Redis, prefix: str) -> None:
        self.client = client
        self.redis = conn
        self.prefix = prefix

    def members(self, group_id: str) -> list[str]:
        key = f"{self.prefix}:usergroup:{group_id}"
        cached = self.redis.get(key)
        if cached is not None:
            return json.loads(cached)
        try:
            users = list(self.client.usergroups_users_list(usergroup=group_id)["users"])
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return []
        self.redis.set(key, json.dumps(users), ex=CACHE_TTL)
        return users

    def groups_of(self, user: str, group_ids: Iterable[str]) -> list[str]:
        """Those of `group_ids` that `user` belongs to."""
        return [g for g in group_ids if g.startswith("S") and user in self.members(g)]
