"""Fires due timers from every worker process, and hands due card syncs to delivery.

Why not RQ's scheduler: its scores are whole seconds (a job may run up to 1 s early) and
when the worker holding its lock dies another takes over only after its maintenance
interval. The timers zset in Redis is the source of truth instead; each worker's ticker
leases due members with one script (so two tickers never take the same one). A worker
that dies holding a lease loses it after `HITL_TIMER_LEASE` seconds and another ticker
takes the timer over.

Deadlines come first: the ticker fires expiries, window ends and escalations itself, in
its own thread, and never makes a Slack call. Card syncs (`{id}|sync` members) go to the
delivery loop, and decision-webhook attempts (`{id}|hook|{n}`) to the webhook sender; both
extend their leases while they work on them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from hitl.keys import Keys, TimerKind, parse_timer_member
from hitl.store import Store
from workers.health import OUTAGE_ERRORS, Backoff, RedisHealth
from workers.loop import Loop, ThreadSpec
from workers.timers import fire

log = logging.getLogger(__name__)

# Most timers leased per claim.
CLAIM_LIMIT = 500

# Receives claimed card syncs: [(request id, lease score)].
SyncSink = Callable[[list[tuple[str, int]]], None]
# Receives claimed webhook attempts: [(timer member, lease score)].
HookSink = Callable[[list[tuple[str, int]]], None]


def _kind(member: str) -> tuple[str, TimerKind | None]:
    """(request id, kind) of a claimed member; kind None for one no `TimerKind` names
    (`fire` logs and drops it)."""
    try:
        rid, kind, _step = parse_timer_member(member)
    except ValueError:
        return member, None
    return rid, kind


class Ticker(Loop):
    """Claims due timers, fires them, and passes card syncs on."""

    name = "ticker"

    def __init__(
        self,
        connection: redis.Redis,
        prefix: str,
        *,
        lease: float,
        interval: float,
        syncs: SyncSink | None = None,
        hooks: HookSink | None = None,
        health: RedisHealth | None = None,
        metrics: bool = True,
    ) -> None:
        super().__init__()
        # metrics: whether fired timers count into the Prometheus figures (HITL_METRICS)
        self.store = Store(connection, Keys(prefix), metrics=metrics)
        self.prefix = prefix
        self.lease = lease
        self.interval = interval
        self.syncs = syncs
        self.hooks = hooks
        self.health = health or RedisHealth()

    def tick(self) -> int:
        """One claim-and-fire round; returns how many timers were claimed."""
        items = self.store.claim_timers(self.lease, CLAIM_LIMIT)
        syncs: list[tuple[str, int]] = []
        hooks: list[tuple[str, int]] = []
        for member, due_ms, lease in items:
            rid, kind = _kind(member)
            if kind is TimerKind.SYNC:
                syncs.append((rid, lease))
            elif kind is TimerKind.HOOK:  # without a sender here, the lease runs out and another takes it
                hooks.append((member, lease))
            else:
                try:
                    fire(self.store, member, due_ms, lease)
                except OUTAGE_ERRORS:
                    raise
                except Exception:  # one bad timer must not stop the others; its lease brings it back
                    log.exception("timer %s failed", member)
        if syncs and self.syncs is not None:
            self.syncs(syncs)
        if hooks and self.hooks is not None:
            self.hooks(hooks)
        return len(items)

    def run(self) -> None:
        backoff = Backoff(first=self.interval, cap=2.0)
        while not self._stop.is_set():
            try:
                claimed = self.tick()
                self.health.ok()
                backoff.reset()
                if claimed >= CLAIM_LIMIT:
                    continue
                delay = self.interval
            except OUTAGE_ERRORS as exc:
                self.health.failed(exc, "the timer ticker")
                delay = backoff.next()
            except Exception:
                log.exception("timer ticker round failed")
                delay = backoff.next()
            self._stop.wait(delay)

    def _threads(self) -> list[ThreadSpec]:
        return [("hitl-ticker", self.run)]
