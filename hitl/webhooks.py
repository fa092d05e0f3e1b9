"""Redis side of decision webhooks: reading final outcomes off the audit stream, and
recording every delivery attempt in it.

Why a consumer group on `{prefix}:events`: every final transition already appends one
event there (inside the transition script), so reading it needs no change to the scripts
and misses nothing. A worker acknowledges an event only after it has enqueued the
delivery; one that dies before that leaves the event pending, and another worker claims
it after `CLAIM_IDLE_MS`. Delivery is therefore at least once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis

from hitl.keys import Keys
from hitl.status import FINAL_EVENTS, EventType, WebhookOutcome

# The consumer group every worker's feed reads in.
GROUP = "webhooks"
# An event pending this long with a consumer that never acknowledged it is taken over.
CLAIM_IDLE_MS = 30_000


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class FinalFeed:
    """The `webhooks` consumer group on the audit stream: final events, each acknowledged
    once its delivery is enqueued."""

    def __init__(self, conn: redis.Redis, keys: Keys, consumer: str) -> None:
        self.redis = conn
        self.keys = keys
        self.consumer = consumer

    def ensure_group(self) -> None:
        """Create the group at the stream's end (a new deployment does not replay history)."""
        try:
            self.redis.xgroup_create(self.keys.events, GROUP, id="$", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def read(self, block_ms: int, count: int = 100) -> list[tuple[str, str | None]]:
        """(event id, request id when the event is final) for the next events: first those
        a dead consumer left pending, then new ones (blocking up to `block_ms`)."""
        _next, stale, _deleted = self.redis.xautoclaim(
            self.keys.events, GROUP, self.consumer, CLAIM_IDLE_MS, start_id="0-0", count=count
        )
        entries = list(stale)
        if not entries:
            streams = {self.keys.events: ">"}
            got = self.redis.xreadgroup(GROUP, self.consumer, streams, count=count, block=block_ms)
            entries = [e for _stream, items in got or [] for e in items]
        out = []
        for eid, fields in entries:
            f = {_s(k): _s(v) for k, v in (fields or {}).items()}
            final = f.get("type") in {e.value for e in FINAL_EVENTS}
            out.append((_s(eid), f.get("id") if final else None))
        return out

    def ack(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            self.redis.xack(self.keys.events, GROUP, *event_ids)


class WebhookLog:
    """Appends one audit event per delivery attempt (`type=webhook`)."""

    def __init__(self, conn: redis.Redis, keys: Keys) -> None:
        self.redis = conn
        self.keys = keys

    def attempt(
        self,
        request_id: str,
        *,
        webhook_id: str,
        attempt: int,
        outcome: WebhookOutcome,
        url: str,
        status_code: int | None = None,
        error: str | None = None,
        retry_in: float | None = None,
    ) -> str:
        fields = {
            "type": EventType.WEBHOOK.value, "id": request_id, "webhook_id": webhook_id,
            "attempt": attempt, "outcome": outcome.value, "url": url,
            "status_code": "" if status_code is None else status_code, "error": error or "",
            "retry_in": "" if retry_in is None else retry_in,
        }
        return _s(self.redis.xadd(self.keys.events, fields))  # type: ignore[arg-type]

    def attempts(self, request_id: str) -> list[dict[str, str]]:
        """Every attempt for a request, oldest first (reads the whole stream: tests, CLI)."""
        out = []
        for _eid, fields in self.redis.xrange(self.keys.events):
            f = {_s(k): _s(v) for k, v in fields.items()}
            if f.get("type") == EventType.WEBHOOK.value and f.get("id") == request_id:
                out.append(f)
        return out


def webhook_id(request_id: str) -> str:
    """The same id on every attempt for one request, so receivers can deduplicate."""
    return f"msg_{request_id}"


__all__ = ["CLAIM_IDLE_MS", "GROUP", "FinalFeed", "WebhookLog", "webhook_id"]
