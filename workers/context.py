"""What a job needs to reach Redis: the worker's own connection and the job's prefix.

Jobs receive the key prefix as an argument and reuse the connection RQ gave the worker,
so one worker pool can serve a deployment and tests can run side by side in one Redis.
"""

from __future__ import annotations

from functools import lru_cache

from redis import Redis
from rq import get_current_job

from hitl.keys import Keys
from hitl.settings import load_settings
from hitl.store import Store


@lru_cache(maxsize=1)
def _fallback_connection() -> Redis:
    return Redis.from_url(load_settings().redis)


def connection() -> Redis:
    job = get_current_job()
    return job.connection if job is not None else _fallback_connection()


def store_for(prefix: str) -> Store:
    settings = load_settings()
    return Store(connection(), Keys(prefix), settings.retention, settings.metrics)
