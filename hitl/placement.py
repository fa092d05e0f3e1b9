"""Where a request shows in Slack, and the bookkeeping that keeps delivery honest.

`Placement` owns every Redis write the delivery code makes: the card a request is on
(`card_channel`, `card_ts`, `mirrors`, the digest it belongs to, read back as a
`hitl.models.CardPlacement` by `Store.get_placed` and never part of the public `Request`;
and the version the card shows), the posting claims that stop a second card, the
per-channel pacing and backlog, the workspace-wide pacing of rate-tiered Slack methods,
and the leases of card syncs in progress. Each multi-step write is one Lua script taking
named inputs (a JSON document), so a worker killed half-way leaves either the old state
or the new one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import cast

import redis

from hitl import scripts
from hitl.keys import Keys, timer_member
from hitl.models import Request
from hitl.redisvalues import as_str as _s
from hitl.status import ExecutionState


class PostClaim(StrEnum):
    """Who may post a request's first card."""

    MINE = "mine"  # nobody was posting: post now
    BUSY = "busy"  # another worker is posting (or was, less than `stale_ms` ago): wait
    STALE = "stale"  # a post may have happened and its answer was lost: look before posting


@dataclass(frozen=True, slots=True)
class Shown:
    """A request as a message shows it: its id, the version drawn, and a token of what was
    drawn (the delivery code decides what goes into it; "" means "redraw")."""

    id: str
    version: int
    drawn: str

    @classmethod
    def of(cls, req: Request) -> Shown:
        """A request drawn as it is now. The token is "{version}.{escalated}" (an escalation
        changes the card without a new version), plus ".unknown" while its tool call's
        outcome is unknown (`hitl.executions`); the scripts below rebuild it to compare."""
        unknown = ".unknown" if req.execution is ExecutionState.UNKNOWN else ""
        return cls(req.id, req.version, f"{req.version}.{req.escalated}{unknown}")


# Shared by the scripts that settle syncs: what a request's card must draw now.
_CURRENT = r"""
local function current_token(req)
  local v = redis.call('HMGET', req, 'version', 'escalated', 'execution')
  if not v[1] then return nil end
  local unknown = ''
  if v[3] == 'unknown' then unknown = '.unknown' end
  return v[1] .. '.' .. (v[2] or '0') .. unknown
end
"""

# CLAIM_POST: take the right to post a request's first card.
# KEYS[1] posting claim of the request
# ARGV[1] JSON {"owner": worker id, "now": ms, "stale": ms after which a claim is stale,
#               "ttl": seconds the claim lives at most}
# The claim is written BEFORE the post and stays until the card is recorded, so a worker
# killed while Slack holds the call leaves it behind; once stale, the next worker must
# look for the card in the channel before posting again.
# Returns "mine", "busy" or "stale".
_CLAIM_POST = r"""
local arg = cjson.decode(ARGV[1])
local current = redis.call('GET', KEYS[1])
local mine = arg.owner .. '|' .. arg.now
if not current then
  redis.call('SET', KEYS[1], mine, 'EX', arg.ttl)
  return 'mine'
end
local since = tonumber(string.match(current, '|(%d+)$') or '0')
if arg.now - since < arg.stale then return 'busy' end
redis.call('SET', KEYS[1], mine, 'EX', arg.ttl)
return 'stale'
"""

# RECORD_CARD: a request's own card exists: remember where, and what it shows.
# KEYS[1] req hash   KEYS[2] posting claim   KEYS[3] the channel's unposted zset
# KEYS[4] timers zset
# ARGV[1] JSON {"id", "channel", "ts", "version" drawn, "drawn" token}
# Drops the claim and the backlog entry, and the pending sync if the card is current.
_RECORD_CARD = _CURRENT + r"""
local arg = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'card_channel', arg.channel, 'card_ts', arg.ts, 'shown', arg.drawn)
redis.call('DEL', KEYS[2])
redis.call('ZREM', KEYS[3], arg.id)
if current_token(KEYS[1]) == arg.drawn then redis.call('ZREM', KEYS[4], arg.id .. '|sync') end
return 1
"""

# RECORD_DIGEST: a digest card at (channel, ts) shows these requests.
# KEYS[1] digest member list   KEYS[2] the channel's unposted zset   KEYS[3] timers zset
# ARGV[1] JSON {"prefix", "channel", "ts", "retention": s, "shown": [{"id", "version", "drawn"}]}
# Each request's hash gets the card's place, the digest key and the version drawn; its
# posting claim goes, and so does its pending sync when the digest shows it as it is.
_RECORD_DIGEST = _CURRENT + r"""
local arg = cjson.decode(ARGV[1])
local settled = 0
for _, item in ipairs(arg.shown) do
  local req = arg.prefix .. ':req:' .. item.id
  if redis.call('EXISTS', req) == 1 then
    redis.call('LREM', KEYS[1], 0, item.id)
    redis.call('RPUSH', KEYS[1], item.id)
    redis.call('HSET', req, 'card_channel', arg.channel, 'card_ts', arg.ts, 'digest', KEYS[1],
      'shown', item.drawn)
    if current_token(req) == item.drawn then
      settled = settled + redis.call('ZREM', KEYS[3], item.id .. '|sync')
    end
  end
  redis.call('DEL', req .. ':posting')
  redis.call('ZREM', KEYS[2], item.id)
end
redis.call('EXPIRE', KEYS[1], arg.retention)
return settled
"""

# MARK_SHOWN: messages now show these requests at these versions (after chat.update).
# KEYS[1] timers zset
# ARGV[1] JSON {"prefix", "shown": [{"id", "version", "drawn"}]}
# Records what was drawn and drops the pending sync of each request drawn as it is.
_MARK_SHOWN = _CURRENT + r"""
local arg = cjson.decode(ARGV[1])
local settled = 0
for _, item in ipairs(arg.shown) do
  local req = arg.prefix .. ':req:' .. item.id
  local current = current_token(req)
  if current then
    redis.call('HSET', req, 'shown', item.drawn)
    if current == item.drawn then settled = settled + redis.call('ZREM', KEYS[1], item.id .. '|sync') end
  end
end
return settled
"""

# ADD_MIRROR: one more message showing the request (an escalation or mirror channel copy,
# or a second card found in history), kept in step with the card.
# KEYS[1] req hash   ARGV[1] JSON {"channel", "ts"}
# Returns 1 when added, 0 when already known or the request is gone.
_ADD_MIRROR = r"""
local arg = cjson.decode(ARGV[1])
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local raw = redis.call('HGET', KEYS[1], 'mirrors')
local mirrors = {}
if raw and raw ~= '' then mirrors = cjson.decode(raw) end
for _, m in ipairs(mirrors) do
  if m[1] == arg.channel and m[2] == arg.ts then return 0 end
end
table.insert(mirrors, {arg.channel, arg.ts})
redis.call('HSET', KEYS[1], 'mirrors', cjson.encode(mirrors))
return 1
"""

# RELEASE_LOST: a history read proved these uncertain posts made no card: their claims go,
# so the next claim is MINE. A claim someone re-took meanwhile (not "lost|...") is kept.
# KEYS the posting claims.  Returns how many were released.
_RELEASE_LOST = r"""
local released = 0
for _, key in ipairs(KEYS) do
  local current = redis.call('GET', key)
  if current and string.sub(current, 1, 5) == 'lost|' then
    released = released + redis.call('DEL', key)
  end
end
return released
"""

# TAKE_PACE: the right to post in a channel now, one post per `ms`.
# KEYS[1] the channel's pace key   ARGV[1] JSON {"ms": pacing interval}
# Returns 0 when taken, else the milliseconds until the channel frees up.
_TAKE_PACE = r"""
local arg = cjson.decode(ARGV[1])
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', arg.ms) then return 0 end
local left = redis.call('PTTL', KEYS[1])
if left < 1 then left = 1 end
return left
"""

# HOLD_PACE: Slack said wait (429 Retry-After): nobody posts in the channel until then.
# KEYS[1] the channel's pace key   ARGV[1] JSON {"ms": how long}
_HOLD_PACE = r"""
local arg = cjson.decode(ARGV[1])
if redis.call('PTTL', KEYS[1]) < arg.ms then redis.call('SET', KEYS[1], '1', 'PX', arg.ms) end
return 1
"""

# TAKE_SLOT: pace a workspace-limited method (chat.update is ~50/min) across every worker.
# KEYS[1] the method's next-free time (ms)
# ARGV[1] JSON {"interval": ms between calls, "burst": calls allowed at once}
# Uses Redis TIME, so workers with skewed clocks share one schedule. Returns 0 when the
# call may go now (and books its slot), else the milliseconds to wait.
_TAKE_SLOT = r"""
local arg = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
local earliest = nxt - arg.interval * (arg.burst - 1)
if now < earliest then return earliest - now end
if nxt < now then nxt = now end
redis.call('SET', KEYS[1], nxt + arg.interval, 'PX', arg.interval * arg.burst + 60000)
return 0
"""

# COOL_DOWN: Slack answered 429 for a workspace-limited method: no call before `ms`.
# KEYS[1] the method's next-free time (ms)   ARGV[1] JSON {"ms": Retry-After in ms}
_COOL_DOWN = r"""
local arg = cjson.decode(ARGV[1])
local t = redis.call('TIME')
local until_ = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + arg.ms
local nxt = tonumber(redis.call('GET', KEYS[1]) or '0')
if nxt < until_ then redis.call('SET', KEYS[1], until_, 'PX', arg.ms + 60000) end
return 1
"""


# ACK_SYNCS: drop finished card syncs, unless re-armed meanwhile (a newer score).
# KEYS[1] timers zset   ARGV[1] JSON {member: lease score it was held with}
# Returns how many were dropped.
_ACK_SYNCS = r"""
local held = cjson.decode(ARGV[1])
local dropped = 0
for member, score in pairs(held) do
  local current = redis.call('ZSCORE', KEYS[1], member)
  if current and tonumber(current) == tonumber(score) then
    dropped = dropped + redis.call('ZREM', KEYS[1], member)
  end
end
return dropped
"""


class Placement:
    """Card placement, digests, pacing, posting claims and sync leases, for one prefix."""

    def __init__(self, client: redis.Redis, keys: Keys, retention: int = 30 * 86400) -> None:
        self.redis = client
        self.keys = keys
        self.retention = retention
        self._claim_post = client.register_script(_CLAIM_POST)
        self._record_card = client.register_script(_RECORD_CARD)
        self._record_digest = client.register_script(_RECORD_DIGEST)
        self._mark_shown = client.register_script(_MARK_SHOWN)
        self._add_mirror = client.register_script(_ADD_MIRROR)
        self._release_lost = client.register_script(_RELEASE_LOST)
        self._take_pace = client.register_script(_TAKE_PACE)
        self._hold_pace = client.register_script(_HOLD_PACE)
        self._take_slot = client.register_script(_TAKE_SLOT)
        self._cool_down = client.register_script(_COOL_DOWN)
        self._extend = client.register_script(scripts.EXTEND_LEASES)
        self._ack_syncs = client.register_script(_ACK_SYNCS)

    # -- posting claims ------------------------------------------------------------------

    def claim_post(self, request_id: str, owner: str, now_ms: int, *, stale_ms: int, ttl: int) -> PostClaim:
        doc = {"owner": owner, "now": now_ms, "stale": stale_ms, "ttl": ttl}
        return PostClaim(_s(self._claim_post(keys=[self.keys.posting(request_id)], args=[json.dumps(doc)])))

    def mark_uncertain(self, request_ids: Sequence[str], ttl: int) -> None:
        """The post's answer was lost: whoever comes next looks in the channel first."""
        pipe = self.redis.pipeline(transaction=False)
        for rid in request_ids:
            pipe.set(self.keys.posting(rid), "lost|0", ex=ttl)
        pipe.execute()

    def release_posts(self, request_ids: Sequence[str]) -> None:
        """Slack refused the post: no message was made, so the claims go."""
        if request_ids:
            self.redis.delete(*[self.keys.posting(r) for r in request_ids])

    def release_lost(self, request_ids: Sequence[str]) -> int:
        """A history read proved these uncertain posts made no card: free their claims."""
        if not request_ids:
            return 0
        return int(self._release_lost(keys=[self.keys.posting(r) for r in request_ids], args=[]))

    # -- where requests show ---------------------------------------------------------------

    def record_card(self, request_id: str, channel: str, ts: str, shown: Shown) -> bool:
        doc = {"id": request_id, "channel": channel, "ts": ts, "version": shown.version, "drawn": shown.drawn}
        keys_ = [self.keys.req(request_id), self.keys.posting(request_id), self.keys.unposted(channel),
                 self.keys.timers]
        return bool(self._record_card(keys=keys_, args=[json.dumps(doc)]))

    def record_digest(self, channel: str, ts: str, shown: Sequence[Shown]) -> str:
        """Record a digest card; returns its member-list key."""
        key = self.keys.digest(channel, ts)
        doc = {"prefix": self.keys.prefix, "channel": channel, "ts": ts, "retention": self.retention,
               "shown": [{"id": s.id, "version": s.version, "drawn": s.drawn} for s in shown]}
        self._record_digest(keys=[key, self.keys.unposted(channel), self.keys.timers], args=[json.dumps(doc)])
        return key

    def mark_shown(self, shown: Sequence[Shown]) -> int:
        """Messages now show these versions; returns how many pending syncs that settled."""
        if not shown:
            return 0
        items = [{"id": s.id, "version": s.version, "drawn": s.drawn} for s in shown]
        doc = {"prefix": self.keys.prefix, "shown": items}
        return int(self._mark_shown(keys=[self.keys.timers], args=[json.dumps(doc)]))

    def shown(self, request_ids: Sequence[str]) -> dict[str, str]:
        """What each request's message was last drawn as ("" : never, or unknown)."""
        pipe = self.redis.pipeline(transaction=False)
        for rid in request_ids:
            pipe.hget(self.keys.req(rid), "shown")
        return {rid: _s(v) if v else "" for rid, v in zip(request_ids, pipe.execute(), strict=True)}

    def channels(
        self, request_ids: Sequence[str], *, pipeline: redis.client.Pipeline | None = None
    ) -> dict[str, str | None]:
        """The channel each request's card lives in (`card_channel`), or will (its `channel`);
        None when it has neither, or is gone. One round trip: the reads are queued on
        `pipeline` when given (and it is executed, with whatever was queued on it before,
        whose replies are not returned), else on a pipeline of their own."""
        if not request_ids:
            return {}
        pipe = pipeline if pipeline is not None else self.redis.pipeline(transaction=False)
        for rid in request_ids:
            pipe.hmget(self.keys.req(rid), "card_channel", "channel")
        replies = pipe.execute()[-len(request_ids):]
        out: dict[str, str | None] = {}
        for rid, (card_channel, channel) in zip(request_ids, replies, strict=True):
            value = card_channel or channel
            out[rid] = _s(value) if value else None
        return out

    def add_mirror(self, request_id: str, channel: str, ts: str) -> bool:
        doc = {"channel": channel, "ts": ts}
        return bool(self._add_mirror(keys=[self.keys.req(request_id)], args=[json.dumps(doc)]))

    def digest_members(self, key: str) -> list[str]:
        return [_s(i) for i in self.redis.lrange(key, 0, -1)]

    # -- a channel's pace and backlog ------------------------------------------------------

    def take_pace(self, channel: str, pace_ms: int) -> int:
        """0 when this caller may post in `channel` now, else milliseconds to wait."""
        return int(self._take_pace(keys=[self.keys.pace(channel)], args=[json.dumps({"ms": pace_ms})]))

    def hold_pace(self, channel: str, ms: int) -> None:
        self._hold_pace(keys=[self.keys.pace(channel)], args=[json.dumps({"ms": max(ms, 1)})])

    # -- a channel's history reads (card recovery) -------------------------------------------

    def take_read(self, channel: str, interval_ms: int) -> int:
        """0 when this caller may read `channel`'s history now (one read per `interval_ms`
        across every process), else milliseconds to wait."""
        doc = json.dumps({"ms": interval_ms})
        return int(self._take_pace(keys=[self.keys.history_read(channel)], args=[doc]))

    def hold_read(self, channel: str, ms: int) -> None:
        """Slack answered a history read 429: no read of `channel` before `ms` from now."""
        self._hold_pace(keys=[self.keys.history_read(channel)], args=[json.dumps({"ms": max(ms, 1)})])

    def recovery_scan(self, channel: str) -> dict | None:
        """The history scan in progress in `channel` (written only by the read slot's holder)."""
        raw = self.redis.get(self.keys.recovery(channel))
        return json.loads(_s(raw)) if raw else None

    def save_recovery_scan(self, channel: str, scan: dict | None, ttl: int) -> None:
        if scan is None:
            self.redis.delete(self.keys.recovery(channel))
        else:
            self.redis.set(self.keys.recovery(channel), json.dumps(scan), ex=ttl)

    def queue_unposted(self, channel: str, created_ms: Mapping[str, int]) -> None:
        if created_ms:
            self.redis.zadd(self.keys.unposted(channel), dict(created_ms), nx=True)

    def unposted(self, channel: str, limit: int) -> list[tuple[str, int]]:
        """The channel's oldest requests still waiting for a card: [(id, created ms)]."""
        raw = self.redis.zrange(self.keys.unposted(channel), 0, limit - 1, withscores=True)
        return [(_s(m), int(score)) for m, score in cast(list[tuple[bytes, float]], raw)]

    def drop_unposted(self, channel: str, request_ids: Sequence[str]) -> None:
        if request_ids:
            self.redis.zrem(self.keys.unposted(channel), *request_ids)

    # -- workspace-wide method pacing ------------------------------------------------------

    def take_slot(self, method: str, interval_ms: int, burst: int) -> int:
        doc = {"interval": interval_ms, "burst": burst}
        return int(self._take_slot(keys=[self.keys.slack_next(method)], args=[json.dumps(doc)]))

    def cool_down(self, method: str, ms: int) -> None:
        self._cool_down(keys=[self.keys.slack_next(method)], args=[json.dumps({"ms": ms})])

    # -- card sync leases ------------------------------------------------------------------

    def rearm_sync(self, request_id: str, due_ms: int) -> None:
        """Run the request's card sync again at `due_ms` (replacing any lease)."""
        self.rearm_syncs({request_id: due_ms})

    def rearm_syncs(self, due_ms: Mapping[str, int]) -> None:
        """Run these requests' card syncs again, each at its time (replacing any lease)."""
        if due_ms:
            self.redis.zadd(self.keys.timers, {timer_member(rid, "sync"): due for rid, due in due_ms.items()})

    def ack_syncs(self, held: Mapping[str, int]) -> int:
        """Drop finished syncs {request id: lease score held}, unless re-armed meanwhile."""
        if not held:
            return 0
        doc = {timer_member(rid, "sync"): score for rid, score in held.items()}
        return int(self._ack_syncs(keys=[self.keys.timers], args=[json.dumps(doc)]))

    def extend(self, held: Mapping[str, int], until_ms: int) -> set[str]:
        """Push the leases still held to `until_ms`; returns the members extended."""
        if not held:
            return set()
        doc = {"held": dict(held), "until": until_ms}
        return {_s(m) for m in self._extend(keys=[self.keys.timers], args=[json.dumps(doc)])}

    def undeliverable(self, request_id: str, action: str, error: str) -> None:
        """Audit a card Slack will never take (a permanent error)."""
        self.redis.xadd(self.keys.events, {"type": "undeliverable", "id": request_id, "action": action,
                                           "error": error})
