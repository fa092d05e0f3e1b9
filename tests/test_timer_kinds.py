"""Timer kinds are one enum, `hitl.keys.TimerKind`: members parse to it, the Lua scripts
write no other kind, and a member of an unknown kind is dropped rather than retried."""

from __future__ import annotations

import re

import pytest
import redis

from hitl import placement, scripts, webhooks
from hitl.keys import Keys, TimerKind, parse_timer_member, sync_member, timer_member
from hitl.store import Store, key_names, now_ms
from workers.ticker import Ticker

# `.. '|kind'` in Lua: a timer member spelled in a script.
_LUA_KIND = re.compile(r"\.\.\s*'\|([a-z_]+)'")


def _lua_sources() -> str:
    return "\n".join(
        value for module in (scripts, placement, webhooks) for value in vars(module).values()
        if isinstance(value, str) and "redis.call" in value
    )


def test_every_kind_the_lua_scripts_write_is_a_timer_kind() -> None:
    written = set(_LUA_KIND.findall(_lua_sources()))
    assert written  # the pattern still finds the literals
    assert written <= {kind.value for kind in TimerKind}


def test_the_members_the_scripts_are_given_name_timer_kinds() -> None:
    names = key_names(Keys("p"))
    for name in ("t_timeout", "t_window", "t_sync", "t_esc"):
        kind = names[name].split("|")[1]  # templates: "{}|esc|{}"
        assert kind in {k.value for k in TimerKind}


@pytest.mark.parametrize("kind", list(TimerKind))
def test_a_member_parses_back_to_its_kind(kind: TimerKind) -> None:
    assert parse_timer_member(timer_member("r1", kind, 2)) == ("r1", kind, 2)
    assert parse_timer_member(timer_member("r1", kind)) == ("r1", kind, None)
    assert parse_timer_member(sync_member("r1"))[1] is TimerKind.SYNC


def test_a_timer_of_an_unknown_kind_is_dropped_and_the_others_fire(
    conn: redis.Redis, prefix: str
) -> None:
    keys = Keys(prefix)
    due = now_ms() - 1
    conn.zadd(keys.timers, {"r1|someday": due, sync_member("r2"): due})
    synced: list[tuple[str, int]] = []
    ticker = Ticker(conn, prefix, lease=10, interval=0.05, syncs=synced.extend, metrics=False)

    assert ticker.tick() == 2

    assert conn.zscore(keys.timers, "r1|someday") is None  # acknowledged, not leased again
    assert [rid for rid, _lease in synced] == ["r2"]
    assert Store(conn, keys).claim_timers(10, 10) == []
