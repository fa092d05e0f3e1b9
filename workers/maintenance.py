"""The maintenance loop every worker runs: audit trim and stale-request cleanup.

Every worker runs the loop so that any one alive is enough, but a Redis lock held for one
period (`HITL_MAINTENANCE_INTERVAL`) means one of them does the round per period.
"""

from __future__ import annotations

import logging

import redis

from hitl.keys import Keys
from hitl.retention import Retention, Round
from hitl.settings import Settings
from workers.loop import Loop, ThreadSpec

log = logging.getLogger(__name__)


class Maintenance(Loop):
    """Trims the audit stream and cleans stale requests, about once per period."""

    name = "maintenance"

    def __init__(self, connection: redis.Redis, settings: Settings) -> None:
        super().__init__()
        self.retention = Retention(
            connection, Keys(settings.prefix), retention=settings.retention,
            audit_retention=settings.audit_retention,
        )
        self.interval = settings.maintenance_interval

    def run_once(self) -> Round | None:
        """One round if this worker takes the period's lock; None when another has it."""
        if not self.retention.acquire(self.interval):
            return None
        done = self.retention.run()
        if done.cleaned:
            log.warning(
                "maintenance: removed %d request(s) still undecided past deadline + HITL_RETENTION "
                "(audited as 'cleaned'): %s", len(done.cleaned), ", ".join(done.cleaned[:10]),
            )
        if done.trim.trimmed:
            log.info("maintenance: trimmed %d audit events before %s", done.trim.trimmed, done.trim.min_id)
        if done.trim.held_back_by:
            log.info(
                "maintenance: audit trim held back at %s by request %s, still stored",
                done.trim.min_id, done.trim.held_back_by,
            )
        return done

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except redis.RedisError as exc:
                log.warning("maintenance: Redis error (%s); retrying next period", exc)
            except Exception:  # a bug here must not silently end trimming for good
                log.exception("maintenance: round failed; retrying next period")
            self._stop.wait(self.interval)

    def _threads(self) -> list[ThreadSpec]:
        return [("hitl-maintenance", self.run)]
