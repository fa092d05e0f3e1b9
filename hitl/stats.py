"""Per-action statistics and the progressive-autonomy recommendation.

Counters are kept by the transition scripts (`{p}:stats:{action}`) and the last 1,000
times to decision per action (`{p}:durations:{action}`), so reading them is two round
trips per action, whatever the history.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

from hitl.policy import AutonomyThresholds
from hitl.status import Mode
from hitl.store import Store, _s

# Each step up the autonomy ladder, from more oversight to less.
LADDER = {Mode.GATE: Mode.OVERRIDE, Mode.OVERRIDE: Mode.AUTO}

__all__ = ["LADDER", "ActionStats", "AutonomyThresholds", "action_stats", "all_actions", "paused_scopes"]


@dataclass
class ActionStats:
    action: str
    counts: dict[str, int]
    median_seconds: float | None
    critical_rejected_at: float | None

    @property
    def decisions(self) -> int:
        c = self.counts
        return sum(c.get(k, 0) for k in ("approved", "rejected", "vetoed", "finalized"))

    @property
    def approved_unedited_rate(self) -> float | None:
        gate = self.counts.get("approved", 0) + self.counts.get("rejected", 0)
        return self.counts.get("approved_unedited", 0) / gate if gate else None

    @property
    def override_rate(self) -> float | None:
        """Share of override-mode actions a person vetoed."""
        window = self.counts.get("vetoed", 0) + self.counts.get("finalized", 0)
        return self.counts.get("vetoed", 0) / window if window else None

    @property
    def shadow_agreement(self) -> float | None:
        """Share of shadow requests where the reviewer would have done what the agent did."""
        judged = self.counts.get("shadow_approve", 0) + self.counts.get("shadow_reject", 0)
        return self.counts.get("shadow_approve", 0) / judged if judged else None

    def recommendation(
        self, current: Mode, limits: AutonomyThresholds, now: float | None = None
    ) -> str | None:
        """A sentence when the action has earned a step up the ladder, else None."""
        nxt = LADDER.get(current)
        if nxt is None or self.decisions < limits.min_decisions:
            return None
        rate = self.approved_unedited_rate
        if rate is None or rate < limits.min_approved_unedited:
            return None
        now = now or time.time()
        quiet = limits.no_critical_rejection_days * 86400
        if self.critical_rejected_at and now - self.critical_rejected_at < quiet:
            return None
        if (self.override_rate or 0) > limits.max_override_rate:
            return None
        return (
            f"{self.action} has earned a step from {current.value} to {nxt.value}: "
            f"{self.decisions} decisions, {rate:.0%} approved unedited, "
            f"no critical rejection in {limits.no_critical_rejection_days:g} days"
        )


def action_stats(store: Store, action: str) -> ActionStats:
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(store.keys.stats(action))
    pipe.lrange(f"{store.keys.prefix}:durations:{action}", 0, -1)
    raw, durations = pipe.execute()
    counts = {_s(k): int(v) for k, v in raw.items() if _s(k) != "critical_rejected_ms"}
    crit = raw.get(b"critical_rejected_ms")
    times = [int(d) / 1000 for d in durations]
    return ActionStats(
        action=action,
        counts=counts,
        median_seconds=statistics.median(times) if times else None,
        critical_rejected_at=int(crit) / 1000 if crit else None,
    )


def all_actions(store: Store) -> list[str]:
    return sorted(_s(a) for a in store.redis.smembers(store.keys.actions))


def paused_scopes(store: Store) -> list[str]:
    return sorted(_s(s) for s in store.redis.smembers(store.keys.paused))
