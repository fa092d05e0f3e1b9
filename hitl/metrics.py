"""Prometheus figures kept in Redis, so every bot and worker process adds to the same ones.

Why Redis and not each process's memory: `hitl bot` and any number of `hitl worker`
processes record what they see (a request created, a decision, a late timer, a Slack
429), and `/metrics` must show the sum whatever process answers the scrape. Counters and
histogram buckets are hash fields incremented with HINCRBY (one hash per metric family,
see `hitl.keys`), written inside the transition scripts for requests and decisions, and
by `MetricsStore` for what workers and the Slack client observe. A histogram keeps one
field per bucket (not cumulative); the reader makes them cumulative.

Field names are JSON label lists. The Lua writers (cjson) and Python (json) may spell the
same labels differently (cjson escapes "/"), so readers decode and sum.
"""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from hitl.keys import Keys
from hitl.redisvalues import as_str
from hitl.settings import METRICS_MAX_ACTIONS_DEFAULT
from hitl.status import Mode, WebhookOutcome

log = logging.getLogger(__name__)

# Bucket bounds (seconds) of `hitl_decision_seconds`: human review takes seconds to days.
DECISION_BOUNDS: tuple[float, ...] = (
    1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200
)
# Bucket bounds (seconds) of `hitl_timer_lateness_seconds`: a tick is 0.2 s by default.
LATENESS_BOUNDS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
# How long per-hour figures (the dashboard's charts) are kept.
HOUR_TTL = 8 * 86400
# Action names outside the policy given their own label when nothing says otherwise.
DEFAULT_MAX_ACTIONS = METRICS_MAX_ACTIONS_DEFAULT
# The label every action past the bound is counted under (metrics and per-action stats).
OTHER_ACTION = "other"
# The label `/metrics` gives a private channel (or one Slack has not said is public).
PRIVATE_CHANNEL = "private"


class Family(StrEnum):
    """The metric families counted in Redis, one hash each."""

    CREATED = "created"
    FINAL = "final"
    DECISION = "decision"
    LATENESS = "lateness"
    SLACK = "slack"
    WEBHOOKS = "webhooks"


class SlackOutcome(StrEnum):
    """How one Slack Web API attempt ended (`hitl_slack_calls_total{outcome}`)."""

    OK = "ok"
    ERROR = "error"
    RATELIMITED = "ratelimited"


def bucket_index(bounds: Sequence[float], value: float) -> int:
    """1-based index of the bucket holding `value`; len(bounds) + 1 is +Inf (as in Lua)."""
    for i, bound in enumerate(bounds, start=1):
        if value <= bound:
            return i
    return len(bounds) + 1


def _field(*labels: object) -> str:
    return json.dumps(list(labels), separators=(",", ":"))


class MetricsStore:
    """Writes what a process observes outside the transition scripts (one HINCRBY each)."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def slack_call(self, method: str, outcome: SlackOutcome) -> None:
        self.redis.hincrby(self.keys.metrics(Family.SLACK), _field(method, outcome.value), 1)

    def webhook_delivery(self, outcome: WebhookOutcome) -> None:
        self.redis.hincrby(self.keys.metrics(Family.WEBHOOKS), _field(outcome.value), 1)

    def timer_lateness(self, seconds: float) -> None:
        """One fired timer, `seconds` after it was due."""
        key = self.keys.metrics(Family.LATENESS)
        pipe = self.redis.pipeline(transaction=False)
        pipe.hincrby(key, _field(bucket_index(LATENESS_BOUNDS, seconds)), 1)
        pipe.hincrby(key, _field("count"), 1)
        pipe.hincrbyfloat(key, _field("sum"), max(seconds, 0.0))
        pipe.execute()


class ActionLabels:
    """Which action names get labels of their own (see `hitl.scripts` `scope_of`, which
    enforces it where the counters are written): every action the policy names, plus at
    most `max_others` others, first come first served; the rest count as `other`."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys

    def admit_policy(self, actions: Iterable[str], *, max_others: int = DEFAULT_MAX_ACTIONS) -> None:
        """Make `actions` (the policy's action names) the listed ones, replacing the last
        list, and bound the others to `max_others`. Whoever publishes a policy calls this."""
        names = sorted(set(actions))
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.actions_policy)
        if names:
            pipe.sadd(self.keys.actions_policy, *names)
        pipe.set(self.keys.actions_limit, max_others)
        pipe.execute()

    def listed(self) -> set[str]:
        return {as_str(a) for a in self.redis.smembers(self.keys.actions_policy)}

    def admitted(self) -> set[str]:
        """Actions outside the policy that got a label of their own."""
        return {as_str(a) for a in self.redis.smembers(self.keys.actions_admitted)}

    def private(self) -> set[str]:
        """Labels some request in a private (or not known to be public) channel used."""
        return {as_str(a) for a in self.redis.smembers(self.keys.actions_private)}


def admit_policy_actions(client: redis.Redis, keys: Keys, actions: Iterable[str], max_others: int) -> None:
    """Where a policy is loaded (today `hitl bot` and `hitl worker` at start; the policy
    publisher once the policy lives in Redis): its action names keep their own labels."""
    try:
        ActionLabels(client, keys).admit_policy(actions, max_others=max_others)
    except redis.RedisError as exc:  # counted under bounded labels anyway; retried at next start
        log.warning("could not record the policy's action names for metric labels: %s", exc)


@dataclass
class Histogram:
    """One labelled histogram read back: per-bucket counts (not cumulative), sum, count."""

    bounds: tuple[float, ...]
    buckets: list[int]
    sum: float = 0.0
    count: int = 0

    def cumulative(self) -> list[tuple[str, int]]:
        """(le, cumulative count) pairs as Prometheus wants them, ending with +Inf."""
        out, running = [], 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            out.append(("+Inf" if bound == float("inf") else _le(bound), running))
        return out

    def quantile(self, q: float) -> float | None:
        """An upper estimate of the q-quantile: the bound of the bucket that holds it."""
        total = sum(self.buckets)
        if not total:
            return None
        running = 0
        for bound, n in zip((*self.bounds, float("inf")), self.buckets, strict=True):
            running += n
            if running >= q * total:
                return bound
        return float("inf")


def empty(bounds: tuple[float, ...]) -> Histogram:
    return Histogram(bounds, [0] * (len(bounds) + 1))


def _le(bound: float) -> str:
    return repr(float(bound))


def _decode(raw: dict[bytes, bytes]) -> dict[tuple[Any, ...], float]:
    out: dict[tuple[Any, ...], float] = defaultdict(float)
    for k, v in raw.items():
        out[tuple(json.loads(k))] += float(v)
    return out


def _histograms(
    fields: dict[tuple[Any, ...], float], bounds: tuple[float, ...], width: int
) -> dict[tuple[Any, ...], Histogram]:
    """Group `labels..., bucket|sum|count` fields (`width` labels) into histograms."""
    out: dict[tuple[Any, ...], Histogram] = {}
    for key, value in fields.items():
        labels, last = key[:width], key[width]
        h = out.setdefault(labels, empty(bounds))
        if last == "sum":
            h.sum += value
        elif last == "count":
            h.count += int(value)
        elif isinstance(last, int) and 1 <= last <= len(bounds) + 1:
            h.buckets[last - 1] += int(value)
    return out


@dataclass
class Snapshot:
    """Every figure `/metrics` exposes, read from Redis at one moment."""

    created: dict[tuple[str, str], int] = field(default_factory=dict)
    final: dict[tuple[str, str], int] = field(default_factory=dict)
    pending: dict[tuple[str, str], int] = field(default_factory=dict)
    oldest_pending_seconds: float = 0.0
    decision: dict[str, Histogram] = field(default_factory=dict)
    lateness: Histogram = field(default_factory=lambda: empty(LATENESS_BOUNDS))
    slack: dict[tuple[str, str], int] = field(default_factory=dict)
    webhooks: dict[str, int] = field(default_factory=dict)
    paused: dict[str, int] = field(default_factory=dict)


# Read-only, for a Redis without ZINTERCARD (before 7.0): the pending requests counted by
# channel and mode in one call, O(pending) hash reads.
# KEYS[1] pending zset   ARGV[1] req hash key template ("{}" for the id)
# Returns {channel, mode, count, ...}.
_PENDING_BREAKDOWN = r"""
local template = ARGV[1]
local s = string.find(template, '{}', 1, true)
local head, tail = string.sub(template, 1, s - 1), string.sub(template, s + 2)
local counts, order = {}, {}
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local f = redis.call('HMGET', head .. id .. tail, 'channel', 'mode')
  if f[2] then
    local key = (f[1] or '') .. '\0' .. f[2]
    if not counts[key] then counts[key] = 0; table.insert(order, key) end
    counts[key] = counts[key] + 1
  end
end
local out = {}
for _, key in ipairs(order) do
  local z = string.find(key, '\0', 1, true)
  table.insert(out, string.sub(key, 1, z - 1)); table.insert(out, string.sub(key, z + 1))
  table.insert(out, counts[key])
end
return out
"""


def scanned_breakdown(client: redis.Redis, keys: Keys) -> dict[tuple[str, str], int]:
    """`pending_breakdown` by reading every waiting request's channel and mode (any Redis)."""
    raw = client.eval(_PENDING_BREAKDOWN, 1, keys.pending, keys.req("{}"))
    return {(as_str(raw[i]), as_str(raw[i + 1])): int(raw[i + 2]) for i in range(0, len(raw), 3)}


def pending_breakdown(client: redis.Redis, keys: Keys) -> dict[tuple[str, str], int]:
    """Waiting requests by (channel, mode), from the indexes the scripts keep.

    ZINTERCARD of each channel's and each mode's index (Redis 7), in one pipeline; a
    request without a channel counts under "". Older Redis: one read-only script."""
    try:
        channels = sorted(as_str(c) for c in client.smembers(keys.channels))
        modes = [m.value for m in Mode]
        pipe = client.pipeline(transaction=False)
        for mode in modes:
            pipe.zcard(keys.pending_mode(mode))
        for ch in channels:
            for mode in modes:
                pipe.zintercard(2, [keys.pending_channel(ch), keys.pending_mode(mode)])
        res = pipe.execute()
    except redis.ResponseError:  # no ZINTERCARD before Redis 7.0
        return scanned_breakdown(client, keys)
    per_mode = dict(zip(modes, res[: len(modes)], strict=True))
    out: dict[tuple[str, str], int] = {}
    counts = iter(res[len(modes):])
    for ch in channels:
        for mode in modes:
            n = int(next(counts))
            if n:
                out[(ch, mode)] = n
                per_mode[mode] -= n
    for mode, rest in per_mode.items():
        if rest > 0:
            out[("", mode)] = int(rest)
    return out


# The families that have a public twin (counting requests in public channels only).
SCOPED = frozenset({Family.CREATED, Family.FINAL, Family.DECISION})


def read(client: redis.Redis, keys: Keys, now: float | None = None, *, public: bool = False) -> Snapshot:
    """Everything, in two round trips (a pipeline, then the pending breakdown). `public`:
    request figures of public channels only (for people who are not admins)."""
    pipe = client.pipeline(transaction=False)
    for fam in Family:
        pipe.hgetall(keys.metrics_public(fam) if public and fam in SCOPED else keys.metrics(fam))
    pipe.zrange(keys.pending, 0, 0, withscores=True)
    pipe.smembers(keys.paused)
    *families, oldest, paused = pipe.execute()
    raw = dict(zip(Family, (_decode(f) for f in families), strict=True))
    now = time.time() if now is None else now
    snap = Snapshot(
        created={(a, m): int(v) for (a, m), v in raw[Family.CREATED].items()},
        final={(a, s): int(v) for (a, s), v in raw[Family.FINAL].items()},
        slack={(m, o): int(v) for (m, o), v in raw[Family.SLACK].items()},
        webhooks={o: int(v) for (o,), v in raw[Family.WEBHOOKS].items()},
    )
    snap.pending = pending_breakdown(client, keys)
    if oldest:
        snap.oldest_pending_seconds = max(now - oldest[0][1] / 1000, 0.0)
    decision = _histograms(raw[Family.DECISION], DECISION_BOUNDS, 1)
    snap.decision = {labels[0]: h for labels, h in decision.items()}
    late = _histograms(raw[Family.LATENESS], LATENESS_BOUNDS, 0)
    if () in late:
        snap.lateness = late[()]
    scopes = {as_str(s) for s in paused}
    snap.paused = {"*": int("*" in scopes), **{s: 1 for s in scopes}}
    return snap


@dataclass
class Hour:
    """One hour's decisions, for the dashboard's charts over time."""

    start: float  # epoch seconds
    final: dict[tuple[str, str], int]
    decision: dict[str, Histogram]


def read_hours(
    client: redis.Redis, keys: Keys, hours: int = 24, now: float | None = None, *, public: bool = False
) -> list[Hour]:
    """The last `hours` hours, oldest first (an hour with nothing is empty, not missing);
    `public`: public channels' requests only."""
    current = int((time.time() if now is None else now) // 3600)
    span = range(current - hours + 1, current + 1)
    pipe = client.pipeline(transaction=False)
    for h in span:
        pipe.hgetall(keys.metrics_public_hour(h) if public else keys.metrics_hour(h))
    out = []
    for h, raw in zip(span, pipe.execute(), strict=True):
        fields = _decode(raw)
        final = {(k[1], k[2]): int(v) for k, v in fields.items() if k[0] == "final"}
        dec = {k[1:]: v for k, v in fields.items() if k[0] == "decision"}
        hist = {labels[0]: hh for labels, hh in _histograms(dec, DECISION_BOUNDS, 1).items()}
        out.append(Hour(h * 3600.0, final, hist))
    return out
