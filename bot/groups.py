"""Which Slack user groups a person belongs to, cached in Redis.

`usergroups.users.list` is Tier 2 (about 20 calls a minute), so members are cached for a
few minutes in Redis (`hitl.membership.GroupMembers`), shared by every bot process,
instead of asked per click.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from hitl.keys import Keys
from hitl.membership import GroupMembers

log = logging.getLogger(__name__)


class GroupResolver:
    def __init__(self, client: WebClient, conn: redis.Redis, prefix: str) -> None:
        self.client = client
        self.cache = GroupMembers(conn, Keys(prefix))

    def members(self, group_id: str) -> list[str]:
        cached = self.cache.get(group_id)
        if cached is not None:
            return sorted(cached)
        try:
            users = list(self.client.usergroups_users_list(usergroup=group_id)["users"])
        except SlackApiError as exc:
            log.warning("usergroups.users.list %s failed: %s", group_id, exc.response.get("error"))
            return []
        self.cache.put(group_id, users)
        return users

    def groups_of(self, user: str, group_ids: Iterable[str]) -> list[str]:
        """Those of `group_ids` that `user` belongs to."""
        return [g for g in group_ids if g.startswith("S") and user in self.members(g)]
