"""The asyncio Redis pool of a web process: bounded, and waiting for a free connection.

redis-py's asyncio pool refuses a command outright once 100 connections are in use
("Too many connections", a `ConnectionError`), so one agent's burst of 150 concurrent
POSTs, or 280 long-polls waking together, was answered "Redis is unreachable" while
Redis was up. Here a command waits for a free connection (up to `wait` seconds) instead,
and a wait that runs out raises `RedisBusy`: load, to be answered "busy, retry in N s",
never an outage.
"""

from __future__ import annotations

from typing import Any

import redis
import redis.asyncio as aioredis

# Seconds a caller is told to wait before retrying after `RedisBusy`.
BUSY_RETRY_AFTER = 1


class RedisBusy(redis.ConnectionError):
    """Every connection of this process's pool stayed in use for the whole wait: the
    process is overloaded, Redis is not down. A `ConnectionError`, so code that does not
    tell the two apart still fails safe."""

    retry_after = BUSY_RETRY_AFTER

    def __init__(self, size: int, wait: float) -> None:
        super().__init__(
            f"busy: all {size} Redis connections of this process stayed in use for {wait:g} s; "
            f"retry in {self.retry_after} s"
        )


class WaitingPool(aioredis.BlockingConnectionPool):
    """`BlockingConnectionPool` whose exhausted wait says `RedisBusy`, not an outage."""

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)
        except redis.ConnectionError as exc:
            if isinstance(exc.__cause__, TimeoutError):
                raise RedisBusy(self.max_connections, float(self.timeout or 0)) from None
            raise


def async_client(url: str, *, size: int, wait: float, **kwargs: Any) -> aioredis.Redis:
    """An asyncio client on a pool of at most `size` connections, each command waiting up
    to `wait` seconds for one (the client owns the pool: `aclose()` closes it)."""
    pool = WaitingPool.from_url(url, max_connections=size, timeout=wait, **kwargs)
    return aioredis.Redis.from_pool(pool)


__all__ = ["BUSY_RETRY_AFTER", "RedisBusy", "WaitingPool", "async_client"]
