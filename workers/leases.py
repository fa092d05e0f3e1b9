"""The one lease keeper behind the delivery loop and the webhook sender.

A worker that takes a timer (a card sync, a webhook attempt) holds it by the lease score
the claim wrote into the timers zset. While the work waits or runs, the keeper pushes
every held score forward every third of the lease, so no other worker takes work still in
progress. A member whose extension failed is no longer ours: its score changed (re-armed,
or claimed by another worker after our lease ran out), so the keeper drops it and never
extends it again; whoever holds it now runs and settles it.

The keeper's lock is held across the extension itself: a settle that pops a member's score
either comes before the extension (which then skips it) or after it (and gets the new
score), never in between with a score Redis no longer has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from typing import overload

from hitl.store import now_ms
from workers.health import OUTAGE_ERRORS, RedisHealth

# Pushes the leases held {member: score} to `until_ms`; returns the members extended.
Extend = Callable[[Mapping[str, int], int], set[str]]


class LeaseKeeper:
    """Timer members this process holds, each with the lease score it holds them by."""

    def __init__(self, extend: Extend, lease_ms: int, *, health: RedisHealth, what: str) -> None:
        self.extend = extend
        self.lease_ms = lease_ms
        self.health = health
        self.what = what  # named in outage logs: "card delivery leases"
        self.lock = threading.Lock()
        self._held: dict[str, int] = {}

    def hold(self, member: str, score: int) -> bool:
        """Hold `member` by `score`; True when it was not held already."""
        with self.lock:
            fresh = member not in self._held
            self._held[member] = score
            return fresh

    @overload
    def pop(self, member: str) -> int | None: ...

    @overload
    def pop(self, member: str, default: int) -> int: ...

    def pop(self, member: str, default: int | None = None) -> int | None:
        """Stop holding `member`; the score it was held by (to settle it with), else
        `default`."""
        with self.lock:
            return self._held.pop(member, default)

    def __contains__(self, member: object) -> bool:
        with self.lock:
            return member in self._held

    def __len__(self) -> int:
        with self.lock:
            return len(self._held)

    def __iter__(self) -> Iterator[str]:
        with self.lock:
            return iter(list(self._held))

    def renew(self) -> set[str]:
        """One round: extend every held lease; drop (and return) the members lost. On an
        outage nothing changes: the next round tries again."""
        with self.lock:
            if not self._held:
                return set()
            until = now_ms() + self.lease_ms
            try:
                extended = self.extend(dict(self._held), until)
                self.health.ok()
            except OUTAGE_ERRORS as exc:
                self.health.failed(exc, self.what)
                return set()
            lost = set(self._held) - extended
            for member in extended & self._held.keys():
                self._held[member] = until
            for member in lost:
                del self._held[member]
            return lost

    def run(self, stop: threading.Event) -> None:
        """Renew every third of the lease until `stop` is set."""
        while not stop.wait(self.lease_ms / 3000):
            self.renew()
