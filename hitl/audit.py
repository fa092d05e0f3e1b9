"""The audit log, exported as JSON Lines for reviews and fine-tuning datasets.

Every transition appended one event to `{prefix}:events` (a Redis stream whose ids are
milliseconds), so `--since 7d` is a range read, not a scan of requests.

The stream is trimmed to `HITL_AUDIT_RETENTION` by the workers (`hitl.retention`): an
archive must be taken by a scheduled export run more often than that; overlapping
exports are harmless, since each line carries its `event_id`.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import IO, Any, cast

import redis

from hitl.keys import Keys
from hitl.redisvalues import as_str
from hitl.status import EventType
from hitl.streams import Entry

# Stream entries read per round trip.
PAGE = 1000
# Fields holding JSON text, decoded in the export so each line is one JSON object.
_JSON_FIELDS = ("doc", "params", "by", "votes")


def events(conn: redis.Redis, keys: Keys, since: float | None = None) -> Iterator[dict[str, Any]]:
    """Audit events oldest first, from `since` (epoch seconds) on."""
    start = f"{round(since * 1000)}-0" if since else "-"
    while True:
        batch = cast(list[Entry], conn.xrange(keys.events, min=start, max="+", count=PAGE))
        for eid, fields in batch:
            item: dict[str, Any] = {as_str(k): as_str(v) for k, v in fields.items()}
            ms = int(as_str(eid).split("-")[0])
            item = {"event_id": as_str(eid), "at": ms / 1000, **item}
            for name in _JSON_FIELDS:
                if item.get(name):
                    with contextlib.suppress(ValueError):
                        item[name] = json.loads(item[name])
                elif name in item:
                    item[name] = None
            if "doc" in item:  # the request as filed: original params live here
                item["request"] = item.pop("doc")
            if item.get("type") == EventType.POLICY_APPLIED.value:
                _policy_event(conn, keys, item)
            yield item
        if len(batch) < PAGE:
            return
        start = "(" + as_str(batch[-1][0])


def _policy_event(conn: redis.Redis, keys: Keys, item: dict[str, Any]) -> None:
    """A published version says why it exists (file, promotion, demotion; any other kind a
    source names) and, for the autonomy loop's, the evidence it was decided on."""
    from hitl.autonomy import evidence_of
    from hitl.policystore import _parse_version

    version = _parse_version(conn.hgetall(keys.policy_version(item.get("version") or 0)))
    item["reason"] = version.reason if version else str(item.get("source", "")).split(":", 1)[0] or "file"
    if version is not None:
        item["evidence"] = evidence_of(version)


def export(conn: redis.Redis, keys: Keys, out: IO[str], since: float | None = None) -> int:
    """Write events as JSON Lines; returns how many."""
    n = 0
    for item in events(conn, keys, since):
        out.write(json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n")
        n += 1
    return n


def since_seconds(duration: str | None) -> float | None:
    """`7d`, `12h`... before now, as epoch seconds."""
    if not duration:
        return None
    from hitl.policy import parse_duration

    return time.time() - parse_duration(duration)
