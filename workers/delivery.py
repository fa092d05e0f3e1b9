"""The delivery loop: card syncs run on a few threads, one channel per thread at a time.

The ticker hands over every due `{id}|sync` timer it claims. Syncs are grouped by the
channel their card lives (or will live) in; a free thread takes a whole channel's batch,
so per-channel pacing holds while channels are served side by side, and a channel's
batch is drawn once per message (coalesced: a request is queued or running at most once
in this process, and a sync always renders the latest state when it runs).

A lease is kept while its work runs: every held sync's score is pushed forward every
third of the lease, so no other worker re-runs work still in progress, however long the
backlog. A sync re-armed while it runs (the request changed again) runs once more after
the current run, never twice at once. A worker that dies loses its leases within one
lease and the others take the syncs over.
"""

from __future__ import annotations

import logging
import threading
from collections import deque

import redis

from bot.slack.delivery import CardSync, Result, SyncOutcome
from hitl.keys import Keys, sync_member
from hitl.logs import log_context
from hitl.placement import Placement
from hitl.settings import Settings
from hitl.store import Store, now_ms
from workers.health import OUTAGE_ERRORS, RedisHealth
from workers.leases import LeaseKeeper
from workers.loop import Loop, ThreadSpec

log = logging.getLogger(__name__)

# Threads making Slack calls in one worker process (channels served at once).
THREADS = 8
# Seconds a held sync's lease lasts by default (`hitl worker` uses HITL_TIMER_LEASE);
# renewed every third of it while held.
LEASE = 10.0
# Channel of requests whose channel could not be read (the batch reports them).
UNKNOWN = ""


class DeliveryLoop(Loop):
    """Holds claimed card syncs and runs them, channel by channel, on a thread pool."""

    name = "delivery"
    join_timeout = 20.0  # a running sync finishes its Slack calls

    def __init__(
        self, connection: redis.Redis, settings: Settings, *, threads: int = THREADS, lease: float = LEASE,
        health: RedisHealth | None = None,
    ) -> None:
        super().__init__()
        keys = Keys(settings.prefix)
        self.store = Store(connection, keys, settings.retention)
        self.placement = Placement(connection, keys, settings.retention)
        self.sync = CardSync(self.store, self.placement, settings)
        self.default_channel = settings.default_channel or UNKNOWN
        self.threads = threads
        self.lease_ms = int(lease * 1000)
        self.health = health or RedisHealth()
        self._cond = threading.Condition()
        # the `{id}|sync` members held, each by the lease score it holds in the timers zset
        self.leases = LeaseKeeper(self.placement.extend, self.lease_ms, health=self.health,
                                  what="card delivery leases")
        self._again: set[str] = set()  # re-armed while running: run once more afterwards
        self._running: set[str] = set()
        self._queued: set[str] = set()  # waiting in a lane
        self._lanes: dict[str, list[str]] = {}  # channel -> request ids waiting
        self._ready: deque[str] = deque()  # channels with waiting work and no thread on them
        self._busy: set[str] = set()

    # -- intake (the ticker's thread) ------------------------------------------------------

    def submit(self, items: list[tuple[str, int]]) -> None:
        """Take over claimed syncs [(request id, lease score)]: extend, then queue them."""
        until = now_ms() + self.lease_ms
        extended = self.placement.extend({sync_member(rid): lease for rid, lease in items}, until)
        fresh: list[str] = []
        with self._cond:
            for rid, lease in items:
                member = sync_member(rid)
                self.leases.hold(member, until if member in extended else lease)
                if rid in self._running:
                    self._again.add(rid)
                elif rid not in self._queued:
                    fresh.append(rid)
        channels = self._channels(fresh)
        with self._cond:
            for rid in fresh:
                channel = channels.get(rid, self.default_channel)
                if rid in self._queued:
                    continue
                self._queued.add(rid)
                self._lanes.setdefault(channel, []).append(rid)
                if channel not in self._busy and channel not in self._ready:
                    self._ready.append(channel)
            self._cond.notify_all()

    def _channels(self, ids: list[str]) -> dict[str, str]:
        """The channel each request's card lives in, or will (the default channel, else
        UNKNOWN, when it names none)."""
        return {rid: channel or self.default_channel for rid, channel in self.placement.channels(ids).items()}

    @property
    def backlog(self) -> int:
        """Syncs held by this process, waiting or running."""
        return len(self.leases)

    # -- the pool --------------------------------------------------------------------------

    def _take(self) -> tuple[str, list[str]] | None:
        with self._cond:
            while not self._ready and not self._stop.is_set():
                self._cond.wait(0.5)
            if self._stop.is_set():
                return None
            channel = self._ready.popleft()
            batch = self._lanes.pop(channel, [])
            self._busy.add(channel)
            self._running.update(batch)
            self._queued.difference_update(batch)
            return channel, batch

    def _work(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            channel, batch = taken
            if not batch:
                self._finish(channel, batch, {})
                continue
            results: dict[str, Result] = {}
            # a batch of one request: every line about it carries its id (CardSync adds
            # action and trace around each request's own Slack calls)
            with log_context(request_id=batch[0] if len(batch) == 1 else None):
                try:
                    results = self.sync.sync_channel(batch)
                    self.health.ok()
                except OUTAGE_ERRORS as exc:
                    self.health.failed(exc, "card delivery")
                except Exception:
                    log.exception("syncing cards in %s failed; their leases bring them back", channel or "?")
            self._finish(channel, batch, results)

    def _finish(self, channel: str, batch: list[str], results: dict[str, Result]) -> None:
        acks: list[tuple[str, int]] = []
        rearm: list[tuple[str, int]] = []
        again: list[str] = []
        with self._cond:
            for rid in batch:
                self._running.discard(rid)
                result = results.get(rid)
                if rid in self._again:
                    self._again.discard(rid)
                    again.append(rid)
                elif result is None:  # failed: let the lease run out, another round takes it
                    self.leases.pop(sync_member(rid))
                elif result.outcome is SyncOutcome.RETRY:
                    rearm.append((rid, result.retry_at_ms))
                    self.leases.pop(sync_member(rid))
                else:
                    acks.append((rid, self.leases.pop(sync_member(rid), 0)))
            for rid in again:
                if rid not in self._queued:
                    self._queued.add(rid)
                    self._lanes.setdefault(channel, []).append(rid)
            self._busy.discard(channel)
            if self._lanes.get(channel) and channel not in self._ready:
                self._ready.append(channel)
            self._cond.notify_all()
        try:
            self.placement.rearm_syncs(dict(rearm))
            self.placement.ack_syncs(dict(acks))
        except OUTAGE_ERRORS as exc:  # the leases run out and the syncs come back
            self.health.failed(exc, "card delivery")

    # -- leases ----------------------------------------------------------------------------

    def _keep_leases(self) -> None:
        self.leases.run(self._stop)

    # -- lifecycle -------------------------------------------------------------------------

    def _threads(self) -> list[ThreadSpec]:
        pool: list[ThreadSpec] = [(f"hitl-delivery-{n}", self._work) for n in range(self.threads)]
        return [*pool, ("hitl-delivery-leases", self._keep_leases)]

    def _wake(self) -> None:
        """Stop taking work; running syncs finish (their unsent work comes back by lease)."""
        with self._cond:
            self._cond.notify_all()
