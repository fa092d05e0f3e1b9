"""Retention: what keeps Redis memory bounded.

Two things would otherwise grow forever:

- the audit stream `{prefix}:events` (one `created` event per request carries the whole
  request document, about 2 KB with 1 KB of params), trimmed here with `XTRIM MINID` to
  `HITL_AUDIT_RETENTION`;
- requests left pending or open past their deadline (their timers lost, say, in an old
  Redis without persistence): nothing ever decides or expires them, so once their deadline
  plus `HITL_RETENTION` has passed they are removed, hash, indexes and timers, and the
  removal is audited.

Why the trim is safe for live requests: a stored request reads its document from its
`created` event (`hitl.scripts.READ`), so trimming that event would break the request.
Settings refuse an audit retention shorter than the request retention, and on top of
that the trim never passes the `created` event of a request whose hash still exists: a
request with a very long timeout holds the trim back (logged) instead of being broken.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import cast

import redis

from hitl import scripts
from hitl.keys import Keys
from hitl.redisvalues import as_str
from hitl.status import EventType
from hitl.store import key_names
from hitl.streams import Entry

# Stream entries read per round trip while looking for the oldest live request.
PAGE = 1000
# Stale requests cleaned per maintenance round (the rest wait for the next round).
CLEAN_LIMIT = 1000

# TRIM: drop audit events older than a stream id and record that it happened.
# KEYS[1] events stream
# ARGV[1] min_id: the oldest event id to keep  ARGV[2] event type to record ("trimmed")
# Returns how many events were trimmed.
TRIM = r"""
local events_key = KEYS[1]
local min_id, event_type = ARGV[1], ARGV[2]
local trimmed = redis.call('XTRIM', events_key, 'MINID', min_id)
if trimmed > 0 then
  redis.call('XADD', events_key, '*', 'type', event_type, 'min_id', min_id, 'count', trimmed)
end
return trimmed
"""

# CLEAN: remove one request left undecided past its deadline plus retention, audited.
# KEYS[1] req hash   KEYS[2] done list   KEYS[3] timers zset   KEYS[4] events stream
# KEYS[5] deadlines zset
# ARGV[1] key name templates (JSON, `hitl.store.key_names`)  ARGV[2] request id
# ARGV[3] cutoff (epoch s): a deadline at or before it is stale  ARGV[4] event type ("cleaned")
# Returns "cleaned", "orphan" (only index entries were left) or "live" (untouched).
CLEAN = scripts._COMMON + r"""
local req_key, done_key, timers_key, events_key, deadlines_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local names, id, cutoff, event_type = cjson.decode(ARGV[1]), ARGV[2], tonumber(ARGV[3]), ARGV[4]
local deadline = tonumber(redis.call('ZSCORE', deadlines_key, id))
if not deadline or deadline > cutoff then return 'live' end
local fields = redis.call('HMGET', req_key, 'status', 'mode', 'channel', 'action', 'timers')
local status, mode, channel, action, timers = fields[1], fields[2], fields[3], fields[4], fields[5]
if not status then
  redis.call('ZREM', deadlines_key, id)
  redis.call('ZREM', names.pending, id)
  redis.call('ZREM', timers_key, id .. '|timeout', id .. '|window', id .. '|sync')
  return 'orphan'
end
if status ~= 'pending' and status ~= 'open' then return 'live' end
unindex(names, id, channel, mode)
for _, member in ipairs(cjson.decode(timers or '[]')) do redis.call('ZREM', timers_key, member) end
redis.call('ZREM', timers_key, id .. '|sync')
redis.call('DEL', req_key, done_key)
redis.call('XADD', events_key, '*', 'type', event_type, 'id', id, 'action', action or '',
  'status', status, 'deadline', tostring(deadline))
return 'cleaned'
"""


class CleanOutcome(StrEnum):
    """What `CLEAN` did to one request."""

    CLEANED = "cleaned"
    ORPHAN = "orphan"
    LIVE = "live"


@dataclass(frozen=True, slots=True)
class Trim:
    """One audit trim: how many events went, and the request that held it back, if any."""

    trimmed: int
    min_id: str
    held_back_by: str | None = None


@dataclass(slots=True)
class Round:
    """One maintenance round."""

    trim: Trim
    cleaned: list[str] = field(default_factory=list)


class Retention:
    """Owns the audit trim, the stale-request cleanup and the lock that lets one worker do
    them once per period."""

    def __init__(self, client: redis.Redis, keys: Keys, *, retention: float, audit_retention: float) -> None:
        self.redis = client
        self.keys = keys
        self.retention = retention
        self.audit_retention = audit_retention
        self._trim = client.register_script(TRIM)
        self._clean = client.register_script(CLEAN)
        self._token = uuid.uuid4().hex

    def acquire(self, period: float) -> bool:
        """Take the maintenance lock for `period` seconds; False when another worker has it.

        The lock is not released after the round: it marks the period as done, so however
        many workers run, the round happens about once per period.
        """
        period_ms = max(1, int(period * 1000))
        return bool(self.redis.set(self.keys.maintenance_lock, self._token, nx=True, px=period_ms))

    def trim_audit(self, now: float | None = None) -> Trim:
        """Trim events older than the audit retention, never past a stored request's document."""
        now = time.time() if now is None else now
        cutoff_ms = int((now - self.audit_retention) * 1000)
        min_id, held = f"{cutoff_ms}-0", None
        start = "-"
        while held is None:
            batch = cast(
                list[Entry], self.redis.xrange(self.keys.events, min=start, max=f"({cutoff_ms}-0", count=PAGE)
            )
            created = [
                (as_str(eid), as_str(fields[b"id"]))
                for eid, fields in batch
                if fields.get(b"type") == EventType.CREATED.value.encode() and b"id" in fields
            ]
            if created:
                pipe = self.redis.pipeline(transaction=False)
                for _eid, rid in created:
                    pipe.exists(self.keys.req(rid))
                for (eid, rid), alive in zip(created, pipe.execute(), strict=True):
                    if alive:
                        min_id, held = eid, rid
                        break
            if len(batch) < PAGE:
                break
            start = "(" + as_str(batch[-1][0])
        trimmed = int(self._trim(keys=[self.keys.events], args=[min_id, EventType.TRIMMED.value]))
        return Trim(trimmed=trimmed, min_id=min_id, held_back_by=held)

    def clean_stale(self, now: float | None = None, limit: int = CLEAN_LIMIT) -> list[str]:
        """Remove requests still undecided at their deadline plus retention; their ids."""
        now = time.time() if now is None else now
        cutoff = now - self.retention
        k = self.keys
        stale = self.redis.zrangebyscore(k.deadlines, "-inf", cutoff, start=0, num=limit)
        cleaned = []
        names = json.dumps(key_names(k))
        for rid in map(as_str, stale):
            keys_ = [k.req(rid), k.done(rid), k.timers, k.events, k.deadlines]
            args = [names, rid, repr(cutoff), EventType.CLEANED.value]
            outcome = CleanOutcome(as_str(self._clean(keys=keys_, args=args)))
            if outcome is CleanOutcome.CLEANED:
                cleaned.append(rid)
        return cleaned

    def run(self, now: float | None = None) -> Round:
        """One round: clean stale requests first (so their documents can go), then trim."""
        cleaned = self.clean_stale(now)
        return Round(trim=self.trim_audit(now), cleaned=cleaned)
