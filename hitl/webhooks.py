"""Redis side of decision webhooks: reading final outcomes off the audit stream, the
timers that schedule delivery attempts, and recording every attempt in the stream.

Why a consumer group on `{prefix}:events`: every final transition already appends one
event there (inside the transition script), so reading it needs no change to the scripts
and misses nothing. A worker acknowledges an event only after it has armed the first
delivery attempt; one that dies before that leaves the event pending, and another worker
claims it after `CLAIM_IDLE_MS`.

Why the timers zset for attempts (`{id}|hook|{n}`), not RQ's scheduler: like every other
timer, an attempt is leased by one worker's ticker, kept leased while it runs, and taken
over by another worker within `HITL_TIMER_LEASE` if its worker dies; RQ's scheduler needs
a lock that fails over only after about a minute and dies loudly in a Redis outage.
Delivery is therefore at least once.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, cast

import redis

from hitl import scripts
from hitl.keys import Keys, TimerKind, parse_timer_member, timer_member
from hitl.redisvalues import as_str
from hitl.status import FINAL_EVENTS, EventType, WebhookOutcome
from hitl.streams import Entry, StreamReply

# The consumer group every worker's feed reads in.
GROUP = "webhooks"
# An event pending this long with a consumer that never acknowledged it is taken over.
CLAIM_IDLE_MS = 30_000


class FinalFeed:
    """The `webhooks` consumer group on the audit stream: final events, each acknowledged
    once its first delivery attempt is armed."""

    def __init__(self, conn: redis.Redis, keys: Keys, consumer: str) -> None:
        self.redis = conn
        self.keys = keys
        self.consumer = consumer

    def ensure_group(self) -> None:
        """Create the group at the stream's end (a new deployment does not replay history)."""
        try:
            self.redis.xgroup_create(self.keys.events, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, block_ms: int, count: int = 100) -> list[tuple[str, str | None]]:
        """(event id, request id when the event is final) for the next events: first those
        a dead consumer left pending, then new ones (blocking up to `block_ms`)."""
        # Redis 7 answers [next, claimed, deleted], Redis 6.2 [next, claimed].
        claimed = self.redis.xautoclaim(
            self.keys.events, GROUP, self.consumer, CLAIM_IDLE_MS, start_id="0-0", count=count
        )
        entries = list(claimed[1])
        if not entries:
            streams: dict[Any, Any] = {self.keys.events: ">"}
            reply = self.redis.xreadgroup(GROUP, self.consumer, streams, count=count, block=block_ms)
            got = cast(StreamReply, reply)
            entries = [e for _stream, items in got or [] for e in items]
        out = []
        for eid, fields in entries:
            f = {as_str(k): as_str(v) for k, v in (fields or {}).items()}
            final = f.get("type") in {e.value for e in FINAL_EVENTS}
            out.append((as_str(eid), f.get("id") if final else None))
        return out

    def ack(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            self.redis.xack(self.keys.events, GROUP, *event_ids)


# SETTLE: finish a leased attempt: drop its timer and, for a retry, arm the next attempt,
# in one step (so a worker dying in between neither loses nor doubles the delivery).
# Nothing happens when the lease was lost (the score changed: another worker took the
# attempt over and settles it itself).
# KEYS[1] timers zset
# ARGV[1] JSON {"member": attempt's member, "held": lease score it holds,
#               "next": next attempt's member or "", "due": when it is due (ms)}
# Returns 1 when settled, 0 when the lease was lost.
_SETTLE = r"""
local arg = cjson.decode(ARGV[1])
local current = redis.call('ZSCORE', KEYS[1], arg.member)
if not current or tonumber(current) ~= tonumber(arg.held) then return 0 end
redis.call('ZREM', KEYS[1], arg.member)
if arg.next ~= '' then redis.call('ZADD', KEYS[1], arg.due, arg.next) end
return 1
"""


def hook_member(request_id: str, attempt: int) -> str:
    """The timer member of delivery attempt `attempt` (1 = the first) for a request."""
    return timer_member(request_id, TimerKind.HOOK, attempt)


def parse_hook_member(member: str) -> tuple[str, int]:
    """(request id, attempt) of a hook timer member."""
    rid, _kind, attempt = parse_timer_member(member)
    return rid, attempt or 1


class HookTimers:
    """The `{id}|hook|{n}` members of the timers zset: one per delivery attempt due."""

    def __init__(self, conn: redis.Redis, keys: Keys) -> None:
        self.redis = conn
        self.keys = keys
        self._settle = conn.register_script(_SETTLE)
        self._extend = conn.register_script(scripts.EXTEND_LEASES)

    def arm_first(self, request_ids: Sequence[str], due_ms: int) -> int:
        """Arm attempt 1 for these requests at `due_ms`; one already armed is left alone
        (a final event read twice does not send twice). Returns how many were armed."""
        if not request_ids:
            return 0
        first = {hook_member(rid, 1): due_ms for rid in request_ids}
        added = self.redis.zadd(self.keys.timers, first, nx=True)
        return int(added or 0)

    def settle(self, member: str, held: int, *, next_member: str | None = None, due_ms: int = 0) -> bool:
        """Drop a finished attempt's timer (leased at score `held`) and, when given, arm
        `next_member` at `due_ms`; False (and nothing changed) if the lease was lost."""
        doc = {"member": member, "held": held, "next": next_member or "", "due": due_ms}
        return bool(self._settle(keys=[self.keys.timers], args=[json.dumps(doc)]))

    def release(self, member: str, held: int, due_ms: int) -> bool:
        """Give a leased attempt back, due at `due_ms`, for any worker to take."""
        return self.settle(member, held, next_member=member, due_ms=due_ms)

    def extend(self, held: Mapping[str, int], until_ms: int) -> set[str]:
        """Push the leases still held {member: score} to `until_ms`; the members extended."""
        if not held:
            return set()
        doc = {"held": dict(held), "until": until_ms}
        return {as_str(m) for m in self._extend(keys=[self.keys.timers], args=[json.dumps(doc)])}

    def pending(self, request_id: str, attempts: int) -> dict[str, float]:
        """The hook timers armed for a request among attempts 1..`attempts` {member: score}
        (for tests and operators)."""
        members = [hook_member(request_id, n) for n in range(1, attempts + 1)]
        scores = self.redis.zmscore(self.keys.timers, members)
        return {m: float(s) for m, s in zip(members, scores, strict=True) if s is not None}


class WebhookLog:
    """Appends one audit event per delivery attempt (`type=webhook`)."""

    def __init__(self, conn: redis.Redis, keys: Keys) -> None:
        self.redis = conn
        self.keys = keys

    def attempt(
        self,
        request_id: str,
        *,
        webhook_id: str,
        attempt: int,
        outcome: WebhookOutcome,
        url: str,
        status_code: int | None = None,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> str:
        fields = {
            "type": EventType.WEBHOOK.value, "id": request_id, "webhook_id": webhook_id,
            "attempt": attempt, "outcome": outcome.value, "url": url,
            "status_code": "" if status_code is None else status_code, "error": error or "",
            "retry_in": "" if retry_in is None else retry_in,
        }
        return as_str(self.redis.xadd(self.keys.events, fields))  # type: ignore[arg-type]

    def attempts(self, request_id: str) -> list[dict[str, str]]:
        """Every attempt for a request, oldest first (reads the whole stream: tests, CLI)."""
        out = []
        for _eid, fields in cast(list[Entry], self.redis.xrange(self.keys.events)):
            f = {as_str(k): as_str(v) for k, v in fields.items()}
            if f.get("type") == EventType.WEBHOOK.value and f.get("id") == request_id:
                out.append(f)
        return out


def webhook_id(request_id: str) -> str:
    """The same id on every attempt for one request, so receivers can deduplicate."""
    return f"msg_{request_id}"


__all__ = [
    "CLAIM_IDLE_MS", "GROUP", "FinalFeed", "HookTimers", "WebhookLog", "hook_member", "parse_hook_member",
    "webhook_id",
]
