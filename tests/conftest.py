"""Test setup: a real Redis, isolated per test by key prefix.

Uses the Redis on 127.0.0.1:6379 when it answers (database 11, so a developer's data in
database 0 is never touched), else an embedded redis-server this setup starts and stops
itself. `HITL_TEST_REDIS_URL` overrides both.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

from hitl import Approvals, waiters
from hitl.embedded import EmbeddedRedis, redis_answers
from hitl.settings import Settings

LOCAL_REDIS = "redis://127.0.0.1:6379/11"


@pytest.fixture(autouse=True)
def _own_dispatchers() -> Iterator[None]:
    """Each test starts with no waiter dispatcher left by an earlier test in this process.

    A dispatcher lives per (Redis URL, prefix) for the life of the process and every test has
    its own prefix, so without this a test counting its dispatcher's connections (all named
    `hitl-waiter-{pid}`) also counted those of whichever tests ran before it in the same xdist
    process: the answer depended on the order the tests were handed out."""
    yield
    waiters.shutdown()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("HITL_TEST_REDIS_URL")
    if url:
        yield url
    elif redis_answers(LOCAL_REDIS):
        yield LOCAL_REDIS
    else:
        with EmbeddedRedis() as embedded:
            yield embedded.url


def cleanup(conn: redis.Redis, prefix: str) -> None:
    for pattern in (f"{prefix}:*", f"rq:*{prefix}-*"):
        batch = list(conn.scan_iter(match=pattern, count=1000))
        if batch:
            conn.delete(*batch)


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    name = f"t{uuid.uuid4().hex[:10]}"
    yield name
    conn = redis.Redis.from_url(redis_url)
    cleanup(conn, name)
    conn.close()


@pytest.fixture
def conn(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def make_settings(redis_url: str, prefix: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "redis_url": redis_url, "prefix": prefix, "timer_lease": 2.0, "timer_tick": 0.05,
        "webhook_feed_block": 0.05, **overrides
    }
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix)


@pytest.fixture
def approvals(settings: Settings) -> Iterator[Approvals]:
    with Approvals(settings=settings) as client:
        yield client
