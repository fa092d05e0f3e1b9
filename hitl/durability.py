"""The start-up check that Redis will keep what hitl-router writes to it.

Redis is the single source of truth: a pending request, an acknowledged approval and a
timer exist nowhere else. With persistence off (the default of many installs, and of the
embedded Redis) a restart forgets them all; with an evicting `maxmemory-policy` a full
Redis silently drops requests instead of refusing new ones. Neither shows until it is too
late, so `hitl bot` and `hitl worker` look at the configuration when they start and say,
in one line per problem, what to set. Managed Redis services often refuse `CONFIG`; then
one info line says the check could not be made (their own settings page is the place to
look).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum

import redis

from hitl.redisvalues import as_str

log = logging.getLogger("hitl.durability")

# The settings the check reads, with `CONFIG GET`.
_CHECKED = ("appendonly", "appendfsync", "save", "maxmemory-policy")


class Finding(StrEnum):
    """What the check found; each has one line of advice."""

    PERSISTENCE_OFF = "persistence_off"  # no AOF, no RDB snapshots
    SNAPSHOTS_ONLY = "snapshots_only"  # RDB only: a crash loses the writes since the last one
    FSYNC_NEVER = "fsync_never"  # AOF left to the OS: a crash loses up to ~30 s
    EVICTION = "eviction"  # keys may be evicted when memory is full
    UNCHECKED = "unchecked"  # CONFIG refused (managed Redis, ACLs)


@dataclass(frozen=True, slots=True)
class Report:
    """One finding and the line to log about it."""

    finding: Finding
    message: str

    @property
    def level(self) -> int:
        return logging.INFO if self.finding is Finding.UNCHECKED else logging.WARNING


def inspect(config: dict[str, str]) -> list[Report]:
    """The findings for a Redis configuration (`CONFIG GET` of `_CHECKED`)."""
    out: list[Report] = []
    aof = config.get("appendonly", "no") == "yes"
    save = config.get("save", "").strip()
    if not aof and not save:
        out.append(Report(Finding.PERSISTENCE_OFF, (
            "Redis persistence is off (appendonly no, save \"\"): a restart loses every pending "
            "request, approval and timer; set appendonly yes and appendfsync everysec"
        )))
    elif not aof:
        out.append(Report(Finding.SNAPSHOTS_ONLY, (
            f"Redis keeps only RDB snapshots (save \"{save}\"): a crash loses every decision since the "
            "last one; set appendonly yes and appendfsync everysec"
        )))
    elif config.get("appendfsync") == "no":
        out.append(Report(Finding.FSYNC_NEVER, (
            "Redis appendfsync is no: a crash can lose the last ~30 s of decisions; "
            "set appendfsync everysec (or always)"
        )))
    policy = config.get("maxmemory-policy", "noeviction")
    if policy != "noeviction":
        out.append(Report(Finding.EVICTION, (
            f"Redis maxmemory-policy is {policy}: when memory fills, Redis may evict pending "
            "requests and timers; set maxmemory-policy noeviction"
        )))
    return out


def read_config(conn: redis.Redis) -> dict[str, str] | None:
    """The checked settings, or None when this Redis refuses `CONFIG GET`."""
    try:
        pipe = conn.pipeline(transaction=False)
        for name in _CHECKED:
            pipe.config_get(name)
        merged: dict[str, str] = {}
        for part in pipe.execute():
            merged.update({as_str(k): as_str(v) for k, v in part.items()})
        return merged
    except redis.ResponseError:  # unknown command (renamed away), NOPERM, managed services
        return None


def check(conn: redis.Redis, who: str) -> list[Report]:
    """Log one line per finding, prefixed with the process (`hitl bot`, `hitl worker`).

    Never raises on a Redis error: being unable to check must not stop the process (an
    unreachable Redis is the reconnect logic's business, not this check's).
    """
    try:
        config = read_config(conn)
    except redis.RedisError as exc:
        log.info("%s: could not check Redis persistence (%s)", who, exc)
        return [Report(Finding.UNCHECKED, str(exc))]
    if config is None:
        report = Report(Finding.UNCHECKED, (
            "could not check Redis persistence and eviction (CONFIG GET refused); make sure the "
            "service keeps an append-only file (fsync every second) and never evicts keys"
        ))
        reports = [report]
    else:
        reports = inspect(config)
    for report in reports:
        log.log(report.level, "%s: %s", who, report.message)
    return reports
