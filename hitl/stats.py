"""Per-action statistics and the progressive-autonomy recommendation.

Counters are kept by the transition scripts (`{p}:stats:{action}`) and the last 1,000
times to decision per action (`{p}:durations:{action}`), so reading them is two round
trips per action, whatever the history.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass

from hitl.policy import AutonomyThresholds
from hitl.redisvalues import as_str
from hitl.status import Mode
from hitl.store import Store

# Each step up the autonomy ladder, from more oversight to less.
LADDER = {Mode.GATE: Mode.OVERRIDE, Mode.OVERRIDE: Mode.AUTO}

__all__ = [
    "LADDER", "REVIEW_BOTTLENECK_SECONDS", "ActionStats", "AutonomyThresholds", "Criterion", "Readiness",
    "action_stats", "all_actions", "paused_scopes",
]


@dataclass
class ActionStats:
    action: str
    counts: dict[str, int]
    median_seconds: float | None
    critical_rejected_at: float | None
    # 99th percentile of the last 1,000 times from creation to final (seconds).
    p99_seconds: float | None = None

    @property
    def decisions(self) -> int:
        c = self.counts
        return sum(c.get(k, 0) for k in ("approved", "rejected", "vetoed", "finalized"))

    @property
    def irreversible(self) -> int:
        """Requests of the action filed as irreversible (`reversible=False`) or `critical`."""
        return self.counts.get("irreversible", 0)

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

    def readiness(self, current: Mode, limits: AutonomyThresholds, now: float | None = None) -> Readiness:
        """How close the action is to its next step up the ladder, criterion by criterion."""
        now = now or time.time()
        criteria = [
            _at_least("decisions", "Decisions so far", self.decisions, limits.min_decisions,
                      f"{self.decisions:,} of {limits.min_decisions:,}",
                      f"needs {max(limits.min_decisions - self.decisions, 0):,} more decisions"),
        ]
        rate = self.approved_unedited_rate
        criteria.append(_at_least(
            "approved_unedited", "Approved unedited", rate or 0.0, limits.min_approved_unedited,
            f"{_pct(rate)} (needs {limits.min_approved_unedited:.0%})",
            f"{_pct(rate)} approved unedited, needs {limits.min_approved_unedited:.0%}"
            if rate is not None else "no approvals or rejections yet",
        ))
        override = self.override_rate or 0.0
        criteria.append(Criterion(
            "override_rate", "Override rate (vetoed)", self.override_rate, limits.max_override_rate,
            1.0 if override <= limits.max_override_rate else limits.max_override_rate / override,
            override <= limits.max_override_rate,
            f"{_pct(self.override_rate)} (at most {limits.max_override_rate:.0%})",
            f"{override:.0%} of override windows vetoed, at most {limits.max_override_rate:.0%}",
        ))
        quiet = limits.no_critical_rejection_days
        days = None if self.critical_rejected_at is None else (now - self.critical_rejected_at) / 86400
        criteria.append(Criterion(
            "critical_rejection", "Days since a critical rejection", days, quiet,
            1.0 if days is None or not quiet else min(days / quiet, 1.0),
            days is None or days >= quiet,
            "never" if days is None else f"{days:.1f} of {quiet:g} days",
            f"a critical rejection {days or 0:.1f} days ago; needs {quiet:g} days without one",
        ))
        agreement = self.shadow_agreement
        bar = limits.min_approved_unedited
        criteria.append(Criterion(
            "shadow_agreement", "Shadow agreement", agreement, bar,
            min((agreement or 0.0) / bar, 1.0) if bar else 1.0,
            True, "no shadow requests" if agreement is None else _pct(agreement), None, gating=False,
        ))
        p99 = self.p99_seconds
        fast = p99 is None or p99 <= REVIEW_BOTTLENECK_SECONDS
        criteria.append(Criterion(
            "review_latency", "p99 human review time", p99, REVIEW_BOTTLENECK_SECONDS,
            1.0 if fast else REVIEW_BOTTLENECK_SECONDS / (p99 or 1), fast,
            "-" if p99 is None else f"{_duration(p99)} (at most {_duration(REVIEW_BOTTLENECK_SECONDS)})",
            None if fast else f"p99 human review time is {_duration(p99 or 0)}, "
            f"over {_duration(REVIEW_BOTTLENECK_SECONDS)}", gating=False,
        ))
        return Readiness(self.action, current, LADDER.get(current), criteria)

    def recommendation(
        self, current: Mode, limits: AutonomyThresholds, now: float | None = None
    ) -> str | None:
        """A sentence when the action has earned a step up the ladder, else None; it says so
        when review has become the bottleneck (p99 review time over 30 minutes)."""
        ready = self.readiness(current, limits, now)
        if not ready.ready or ready.next is None:
            return None
        text = (
            f"{self.action} has earned a step from {current.value} to {ready.next.value}: "
            f"{self.decisions} decisions, {self.approved_unedited_rate:.0%} approved unedited, "
            f"no critical rejection in {limits.no_critical_rejection_days:g} days"
        )
        if ready.bottleneck:
            text += f". Review has become the bottleneck: {ready.bottleneck}"
        return text


# p99 human review time (creation to decision) above which review is the bottleneck.
REVIEW_BOTTLENECK_SECONDS = 30 * 60


@dataclass(frozen=True)
class Criterion:
    """One autonomy criterion: where the action stands against the policy's threshold."""

    name: str
    label: str
    value: float | None
    target: float
    progress: float  # 0..1: how close to meeting it
    met: bool
    shown: str  # the value as people read it
    why: str | None  # why not yet (when not met)
    gating: bool = True  # False: shown, but not one of the policy's thresholds


@dataclass
class Readiness:
    """An action's standing against the autonomy thresholds, for `/hitl stats` and the dashboard."""

    action: str
    current: Mode
    next: Mode | None
    criteria: list[Criterion]

    @property
    def ready(self) -> bool:
        return self.next is not None and all(c.met for c in self.criteria if c.gating)

    @property
    def why_not(self) -> list[str]:
        return [c.why for c in self.criteria if c.gating and not c.met and c.why]

    @property
    def bottleneck(self) -> str | None:
        latency = next(c for c in self.criteria if c.name == "review_latency")
        return None if latency.met else latency.why


def _at_least(name: str, label: str, value: float, target: float, shown: str, why: str) -> Criterion:
    progress = 1.0 if target <= 0 else min(value / target, 1.0)
    return Criterion(name, label, value, target, progress, value >= target, shown, why)


def _pct(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def action_stats(store: Store, action: str) -> ActionStats:
    pipe = store.redis.pipeline(transaction=False)
    pipe.hgetall(store.keys.stats(action))
    pipe.lrange(store.keys.durations(action), 0, -1)
    raw, durations = pipe.execute()
    counts = {as_str(k): int(v) for k, v in raw.items() if as_str(k) != "critical_rejected_ms"}
    crit = raw.get(b"critical_rejected_ms")
    times = [int(d) / 1000 for d in durations]
    return ActionStats(
        action=action,
        counts=counts,
        median_seconds=statistics.median(times) if times else None,
        critical_rejected_at=int(crit) / 1000 if crit else None,
        p99_seconds=_percentile(times, 0.99),
    )


def _percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank q-quantile (None without values)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(math.ceil(q * len(ordered)) - 1, 0)]


def all_actions(store: Store) -> list[str]:
    return sorted(as_str(a) for a in store.redis.smembers(store.keys.actions))


def paused_scopes(store: Store) -> list[str]:
    return sorted(as_str(s) for s in store.redis.smembers(store.keys.paused))
