"""Single-use tokens: the ids of dashboard links already used, in Redis.

A link from `/hitl dashboard` opens the dashboard once. Spending is one `SET NX`, so of
any number of concurrent uses (a link forwarded, pasted twice, replayed from a proxy log)
exactly one gets in, whichever web process answers it. The id is kept only as long as the
link itself would work: after that the link's own expiry refuses it.
"""

from __future__ import annotations

import math

import redis

from hitl.keys import Keys


class SpentTokens:
    """Which single-use token ids have been used."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def spend(self, token_id: str, valid_for: float) -> bool:
        """True for the first use of `token_id`, False for every later one. `valid_for` is
        how many more seconds the token would be accepted (the record lives that long)."""
        ttl = max(1, math.ceil(valid_for))
        return bool(self.redis.set(self.keys.dashboard_link(token_id), "1", nx=True, ex=ttl))
