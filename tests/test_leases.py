"""The lease keeper shared by the delivery loop and the webhook sender, and the loop base
they (and the ticker, maintenance and webhook feed) start and stop by."""

from __future__ import annotations

import threading

import redis

from hitl.embedded import free_port
from hitl.keys import Keys
from hitl.store import now_ms
from hitl.webhooks import HookTimers, hook_member
from tests.helpers import eventually
from workers.health import RedisHealth
from workers.leases import LeaseKeeper
from workers.loop import Loop, ThreadSpec


def _keeper(conn: redis.Redis, prefix: str, lease_ms: int) -> tuple[LeaseKeeper, Keys]:
    keys = Keys(prefix)
    return LeaseKeeper(HookTimers(conn, keys).extend, lease_ms, health=RedisHealth(), what="test leases"), keys


def _score(conn: redis.Redis, keys: Keys, member: str) -> float | None:
    return conn.zscore(keys.timers, member)


def test_a_held_lease_is_pushed_forward(conn: redis.Redis, prefix: str) -> None:
    keeper, keys = _keeper(conn, prefix, lease_ms=60_000)
    member, lease = hook_member("r1", 1), now_ms() + 1_000
    conn.zadd(keys.timers, {member: lease})
    keeper.hold(member, lease)
    before = now_ms()

    assert keeper.renew() == set()

    score = _score(conn, keys, member)
    assert score is not None and score >= before + 60_000
    assert keeper.pop(member) == score  # settled with the score Redis has now


def test_a_lost_lease_is_dropped_and_never_extended_again(conn: redis.Redis, prefix: str) -> None:
    keeper, keys = _keeper(conn, prefix, lease_ms=60_000)
    kept, lost = hook_member("r1", 1), hook_member("r2", 1)
    lease = now_ms() + 1_000
    conn.zadd(keys.timers, {kept: lease, lost: lease})
    keeper.hold(kept, lease)
    keeper.hold(lost, lease)
    theirs = lease + 5  # another worker claimed it after our lease ran out
    conn.zadd(keys.timers, {lost: theirs})

    assert keeper.renew() == {lost}
    assert lost not in keeper and kept in keeper and len(keeper) == 1
    assert _score(conn, keys, lost) == theirs

    assert keeper.renew() == set()
    assert _score(conn, keys, lost) == theirs  # still theirs: not touched again
    assert keeper.pop(lost) is None


def test_an_outage_keeps_what_is_held(prefix: str) -> None:
    down = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    health = RedisHealth()
    keeper = LeaseKeeper(HookTimers(down, Keys(prefix)).extend, 60_000, health=health, what="test leases")
    member = hook_member("r1", 1)
    keeper.hold(member, 123)

    assert keeper.renew() == set()
    assert keeper.pop(member) == 123  # nothing is known lost: the next round tries again


def test_the_keeper_extends_before_the_lease_runs_out(conn: redis.Redis, prefix: str) -> None:
    keeper, keys = _keeper(conn, prefix, lease_ms=600)
    member, lease = hook_member("r1", 1), now_ms() + 600
    conn.zadd(keys.timers, {member: lease})
    keeper.hold(member, lease)
    stop = threading.Event()
    thread = threading.Thread(target=keeper.run, args=(stop,), daemon=True)
    thread.start()
    try:
        # renewed every third of the lease: the score moves while the first lease still runs
        eventually(lambda: (_score(conn, keys, member) or 0) > lease, timeout=5, what="an extension")
        assert now_ms() < lease + 600
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()


class _Waiter(Loop):
    name = "waiter"

    def __init__(self) -> None:
        super().__init__()
        self.ran = threading.Event()
        self.woken = 0

    def _threads(self) -> list[ThreadSpec]:
        return [("test-waiter", self._run)]

    def _run(self) -> None:
        self.ran.set()
        self._stop.wait()

    def _wake(self) -> None:
        self.woken += 1


def test_a_loop_starts_once_and_stops_once() -> None:
    loop = _Waiter()
    loop.stop()  # before start: nothing to join
    assert loop.woken == 1

    fresh = _Waiter()
    assert fresh.start() is fresh.start()
    assert fresh.ran.wait(5)
    threads = [t for t in threading.enumerate() if t.name == "test-waiter"]
    fresh.stop()
    fresh.stop()
    assert fresh.woken == 1 and fresh.stopping
    assert not any(t.is_alive() for t in threads)
