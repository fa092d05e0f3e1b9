"""Redis outages, as one worker process sees them: one line when one starts, one when it ends.

Every loop of `hitl worker` (the RQ loop, the ticker, the delivery loop) reports each Redis
failure and each success here and backs off with `Backoff`, so an outage of any length is
ridden out quietly: no loop exits, and the log says when Redis went away and came back.
"""

from __future__ import annotations

import logging
import threading
import time

import redis

log = logging.getLogger("workers.health")

# Errors that mean "Redis is not answering" (as opposed to a bug or a refused command).
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    redis.ConnectionError, redis.TimeoutError, redis.exceptions.BusyLoadingError, ConnectionError, OSError,
)


class RedisHealth:
    """Tracks whether Redis answers, logging the start and end of each outage once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._down_since: float | None = None

    @property
    def down(self) -> bool:
        return self._down_since is not None

    def failed(self, exc: BaseException, where: str) -> None:
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                log.warning("Redis unreachable (%s in %s): retrying with back-off until it answers",
                            exc, where)

    def ok(self) -> None:
        if self._down_since is None:  # the common case, without the lock
            return
        with self._lock:
            if self._down_since is not None:
                log.warning("Redis reachable again after %.1f s", time.monotonic() - self._down_since)
                self._down_since = None


class Backoff:
    """Exponential back-off between `first` and `cap` seconds, reset by success."""

    def __init__(self, first: float = 0.1, cap: float = 2.0) -> None:
        self.first = first
        self.cap = cap
        self.current = first

    def next(self) -> float:
        delay = self.current
        self.current = min(self.current * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.current = self.first
