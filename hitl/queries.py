"""Read-side questions about the queue, answered from indexes (never a key scan).

What `/hitl status`, `/hitl list`, `/hitl show` and App Home ask. Each is a handful of
round trips however many requests Redis holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from hitl.models import Placed, Request
from hitl.redisvalues import as_str
from hitl.status import Mode
from hitl.store import Store

# Most pending requests examined when looking for the ones a given person may decide.
SCAN_LIMIT = 2_000


@dataclass
class QueueStatus:
    by_channel: dict[str, int] = field(default_factory=dict)
    by_mode: dict[str, int] = field(default_factory=dict)
    oldest: Request | None = None
    next_deadline: float | None = None
    # Requests waiting in channels the asker may not see: a number, nothing more.
    hidden: int = 0

    @property
    def total(self) -> int:
        return sum(self.by_mode.values())


def queue_status(store: Store, may_see_channel: Callable[[str], bool] | None = None) -> QueueStatus:
    """The queue by channel and mode; with `may_see_channel`, only the channels it allows.

    Requests in other channels are only counted in `hidden`: their modes, the oldest and
    the next deadline are taken from the visible channels alone.
    """
    if may_see_channel is not None:
        return _visible_status(store, may_see_channel)
    k = store.keys
    channels = sorted(as_str(c) for c in store.redis.smembers(k.channels))
    pipe = store.redis.pipeline(transaction=False)
    for ch in channels:
        pipe.zcard(k.pending_channel(ch))
    for mode in Mode:
        pipe.zcard(k.pending_mode(mode.value))
    pipe.zrange(k.pending, 0, 0)
    pipe.zrange(k.deadlines, 0, 0, withscores=True)
    res = pipe.execute()
    per_channel, per_mode = res[: len(channels)], res[len(channels) : len(channels) + len(Mode)]
    status = QueueStatus(
        by_channel={ch: n for ch, n in zip(channels, per_channel, strict=True) if n},
        by_mode={m.value: n for m, n in zip(Mode, per_mode, strict=True) if n},
    )
    oldest, nxt = res[-2], res[-1]
    if oldest:
        found = store.get_many([as_str(oldest[0])])
        status.oldest = found[0] if found else None
    if nxt:
        status.next_deadline = float(nxt[0][1])
    return status


# How many members two sorted sets share, counted inside Redis (ZINTERCARD needs Redis 7;
# the embedded Redis is 6.2). KEYS[1], KEYS[2]: the two sets. Returns the count.
_COUNT_BOTH = "return #redis.call('ZINTER', 2, KEYS[1], KEYS[2])"


def _visible_status(store: Store, may_see_channel: Callable[[str], bool]) -> QueueStatus:
    k = store.keys
    channels = sorted(as_str(c) for c in store.redis.smembers(k.channels))
    pipe = store.redis.pipeline(transaction=False)
    for ch in channels:
        pipe.zcard(k.pending_channel(ch))
    counts = dict(zip(channels, pipe.execute(), strict=True))
    seen = [ch for ch in channels if counts[ch] and may_see_channel(ch)]
    status = QueueStatus(by_channel={ch: counts[ch] for ch in seen})
    status.hidden = sum(counts.values()) - sum(status.by_channel.values())
    if not seen:
        return status
    count_both = store.redis.register_script(_COUNT_BOTH)
    pipe = store.redis.pipeline(transaction=False)
    for ch in seen:
        for mode in Mode:
            count_both(keys=[k.pending_channel(ch), k.pending_mode(mode.value)], client=pipe)
    for ch in seen:
        pipe.zrange(k.pending_channel(ch), 0, 0, withscores=True)
    for ch in seen:
        # deadline scores of this channel's requests (weight 0 drops the creation time)
        pipe.zinter({k.deadlines: 1, k.pending_channel(ch): 0}, withscores=True)
    res = pipe.execute()
    modes = res[: len(seen) * len(Mode)]
    for i, n in enumerate(modes):
        mode_name = list(Mode)[i % len(Mode)].value
        if n:
            status.by_mode[mode_name] = status.by_mode.get(mode_name, 0) + n
    firsts = [r[0] for r in res[len(modes) : len(modes) + len(seen)] if r]
    if firsts:
        oldest_id = as_str(min(firsts, key=lambda pair: pair[1])[0])
        found = store.get_many([oldest_id])
        status.oldest = found[0] if found else None
    deadlines = [r[0] for r in res[len(modes) + len(seen) :] if r]
    if deadlines:
        status.next_deadline = min(float(when) for _, when in deadlines)
    return status


def pending(
    store: Store,
    channel: str | None = None,
    limit: int = 20,
    visible: Callable[[Placed], bool] | None = None,
) -> list[Request]:
    """Undecided requests, oldest first, optionally in one channel, only those `visible` allows
    (it is given where each shows in Slack: whose card is in a private channel matters)."""
    key = store.keys.pending_channel(channel) if channel else store.keys.pending
    if visible is None:
        return store.get_many([as_str(i) for i in store.redis.zrange(key, 0, limit - 1)])
    out: list[Request] = []
    start, batch = 0, 200
    while len(out) < limit and start < SCAN_LIMIT:
        ids = [as_str(i) for i in store.redis.zrange(key, start, start + batch - 1)]
        if not ids:
            break
        start += batch
        out.extend(p.req for p in store.get_many_placed(ids) if visible(p))
    return out[:limit]


def may_decide(req: Request, user: str, groups: Iterable[str] = ()) -> bool:
    """The same rule the transition script enforces, for showing people what they can do."""
    if req.final or req.requested_by == user:
        return False
    if not req.approvers:
        return True
    return user in req.approvers or any(g in req.approvers for g in groups)


def waiting_for(
    store: Store,
    user: str,
    groups_of: Callable[[list[str]], list[str]],
    limit: int = 20,
    visible: Callable[[Placed], bool] | None = None,
) -> list[Placed]:
    """Requests `user` may decide (and, with `visible`, may see), soonest deadline first, each
    with where it shows in Slack (App Home says which channel a card is in).

    `groups_of(group_ids)` returns those of the given user groups the user belongs to (the
    bot answers it from Slack, cached), so Slack is asked only about groups that matter.
    """
    out: list[Placed] = []
    start = 0
    batch = 200
    while len(out) < limit and start < SCAN_LIMIT:
        ids = [as_str(i) for i in store.redis.zrange(store.keys.deadlines, start, start + batch - 1)]
        if not ids:
            break
        start += batch
        for placed in store.get_many_placed(ids):
            req = placed.req
            groups = groups_of([a for a in req.approvers if a.startswith("S")]) if req.approvers else []
            if may_decide(req, user, groups) and (visible is None or visible(placed)):
                out.append(placed)
                if len(out) == limit:
                    break
    return out


def events_of(store: Store, request_id: str) -> list[dict[str, str]]:
    """The request's audit events, in order."""
    raw = store.redis.hget(store.keys.req(request_id), "ev")
    if not raw:
        return []
    ids = as_str(raw).split(",")
    pipe = store.redis.pipeline(transaction=False)
    for eid in ids:
        pipe.xrange(store.keys.events, eid, eid)
    out = []
    for entries in pipe.execute():
        for eid, fields in entries:
            item = {as_str(k): as_str(v) for k, v in fields.items()}
            item["event_id"] = as_str(eid)
            out.append(item)
    return out
