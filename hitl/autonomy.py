"""Earned autonomy: promotions the data proposes and people decide, demotions that wait for no one.

Every change is one new published policy version (`PolicyStore.publish`) that differs from
the version in force in one action's `mode`, so the history says who loosened or tightened
what and why. Its source says the kind (``promotion: ...`` / ``demotion: ...``, see
`PolicyVersion.reason`) and its text starts with the evidence it was decided on, as a YAML
comment, so `hitl audit export` and `hitl policy show` carry the snapshot.

The Slack side (`bot.slack.autonomy`) posts the cards and calls `promote`/`not_yet`; the
workers' loop calls `propose` and `undone_by_file` (see `workers.autonomy`).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import yaml

from hitl.models import Request
from hitl.policy import DEFAULT_WINDOW, ActionPolicy, Policy
from hitl.policystore import PolicyStore, PolicyVersion, Published
from hitl.stats import ActionStats
from hitl.status import Mode, Verb

# The ladder, from most oversight to least: a promotion is one step right, a demotion one left.
LADDER: tuple[Mode, ...] = (Mode.SHADOW, Mode.GATE, Mode.OVERRIDE, Mode.NOTIFY, Mode.AUTO)
# Who publishes a demotion (nobody pressed anything) and the prefix of the evidence line.
SYSTEM = "hitl-autonomy"
EVIDENCE = "# evidence: "
# How long an unanswered proposal stays open before the data may propose again.
PROPOSAL_TTL = 7 * 86400.0


class Outcome(StrEnum):
    """What a Promote / Not yet press did."""

    PROMOTED = "promoted"
    WAITING = "waiting"  # counted; the quorum is not met yet
    SNOOZED = "snoozed"
    NOT_ADMIN = "not_admin"
    NO_PROPOSAL = "no_proposal"  # decided already, or expired
    CHANGED = "changed"  # the policy moved under it (the action is no longer in that mode)


class Cause(StrEnum):
    """Why an action was demoted."""

    VETO = "veto"
    CRITICAL = "critical rejection"
    REJECTIONS = "rejections"


@dataclass(frozen=True)
class Proposal:
    """One promotion the data supports: `action` from `current` to `target`, and why."""

    action: str
    current: Mode
    target: Mode
    evidence: dict[str, Any] = field(default_factory=dict)
    version: int = 0  # the policy version it was computed against

    def record(self) -> str:
        return json.dumps({**asdict(self), "current": self.current.value, "target": self.target.value})

    @classmethod
    def parse(cls, text: str) -> Proposal:
        data = json.loads(text)
        return cls(data["action"], Mode(data["current"]), Mode(data["target"]), data.get("evidence") or {},
                   int(data.get("version") or 0))

    def question(self, policy: Policy) -> str:
        """ "Promote `send_email` from gate to override (10-minute veto window)?" """
        extra = ""
        if self.target is Mode.OVERRIDE:
            entry = policy.actions.get(self.action)
            window = (entry.window if entry else None) or policy.defaults.window or DEFAULT_WINDOW
            extra = f" ({window / 60:g}-minute veto window)"
        return f"Promote `{self.action}` from {self.current.value} to {self.target.value}{extra}?"


@dataclass(frozen=True)
class Undone:
    """A promotion a file version published afterwards took back."""

    action: str
    promoted_to: Mode
    now: Mode
    version: int  # the file version


def mode_of(policy: Policy, action: str) -> Mode:
    """The mode the policy gives `action` by name (else the defaults, else gate)."""
    entry = policy.actions.get(action)
    return (entry.mode if entry else None) or policy.defaults.mode or Mode.GATE


@dataclass(frozen=True)
class ModeChange:
    """One version at which an action's mode changed (the first one shown sets the start)."""

    version: int
    at: float
    mode: Mode
    reason: str  # file, promotion or demotion (`PolicyVersion.reason`)
    by: str


# Published versions' policies by sha256, parsed once: versions never change, and the
# dashboard asks for the latest 50 on every refresh of every open page.
_PARSED: dict[str, Policy] = {}
_PARSED_MAX = 256


def _parsed(v: PolicyVersion) -> Policy:
    policy = _PARSED.get(v.sha256)
    if policy is None:
        if len(_PARSED) >= _PARSED_MAX:
            _PARSED.clear()
        policy = _PARSED[v.sha256] = v.policy()
    return policy


def mode_history(versions: list[PolicyVersion], actions: list[str]) -> dict[str, list[ModeChange]]:
    """Per action, the versions (oldest first) at which its mode changed: the dashboard's
    mode over time, read from the published history rather than kept twice. Each version is
    parsed once, whatever the number of actions."""
    changes: dict[str, list[ModeChange]] = {a: [] for a in actions}
    for v in versions:
        policy = _parsed(v)
        for action, seen in changes.items():
            mode = mode_of(policy, action)
            if not seen or seen[-1].mode is not mode:
                seen.append(ModeChange(v.version, v.applied_at, mode, v.reason, v.applied_by))
    return changes


def ceiling_of(policy: Policy, action: str, *, irreversible: bool = False) -> Mode:
    """The highest mode a promotion may take `action` to: its own entry in `ceilings`, else
    `ceiling`, except that an action some of whose requests were irreversible or critical
    stops at gate unless `ceilings` names it: nothing un-does such a call, so an override
    window (a veto after the fact) is no oversight for it."""
    if action in policy.autonomy.ceilings:
        return policy.autonomy.ceilings[action]
    if irreversible and LADDER.index(policy.autonomy.ceiling) > LADDER.index(Mode.GATE):
        return Mode.GATE
    return policy.autonomy.ceiling


def step_up(mode: Mode, ceiling: Mode) -> Mode | None:
    """The next mode up the ladder, or None at the top or at the ceiling."""
    i, top = LADDER.index(mode), LADDER.index(ceiling)
    return LADDER[i + 1] if i < top and i + 1 < len(LADDER) else None


def step_down(mode: Mode) -> Mode | None:
    i = LADDER.index(mode)
    return LADDER[i - 1] if i > 0 else None


def evidence(stats: ActionStats, limits_current: Mode, policy: Policy, now: float) -> dict[str, Any]:
    """The numbers a proposal shows and a promotion is audited with."""
    return {
        "decisions": stats.decisions,
        "approved_unedited": stats.approved_unedited_rate,
        "override_rate": stats.override_rate,
        "last_critical_rejection": stats.critical_rejected_at,
        "p99_review_seconds": stats.p99_seconds,
        "counts": dict(stats.counts),
        "at": now,
    }


def candidate(policy: Policy, version: int, stats: ActionStats, now: float | None = None) -> Proposal | None:
    """The promotion `stats` supports under `policy`, if any: every gating criterion met
    (decisions, approved unedited, override rate, no recent critical rejection) and the
    next step within the ceiling."""
    now = now or time.time()
    current = mode_of(policy, stats.action)
    target = step_up(current, ceiling_of(policy, stats.action, irreversible=stats.irreversible > 0))
    if target is None:
        return None
    ready = stats.readiness(current, policy.autonomy, now)
    if not all(c.met for c in ready.criteria if c.gating):
        return None
    return Proposal(stats.action, current, target, evidence(stats, current, policy, now), version)


def propose(store: PolicyStore, stats: list[ActionStats], now: float | None = None) -> list[Proposal]:
    """The proposals newly opened: at most one per action while one is open (SET NX), none
    while Not yet holds. The caller posts a card for each."""
    in_force = store.current()
    opened = []
    for s in stats:
        p = candidate(in_force.policy, in_force.version, s, now)
        if p is not None and store.open_proposal(p.action, p.record(), ttl=PROPOSAL_TTL):
            opened.append(p)
    return opened


def _publish_mode(
    store: PolicyStore, action: str, mode: Mode, *, by: str, source: str, snapshot: dict[str, Any]
) -> Published:
    """Publish the version in force with `action`'s mode set to `mode`, nothing else changed."""
    policy = store.current().policy
    entry = policy.actions.get(action) or ActionPolicy()
    actions = {**policy.actions, action: entry.model_copy(update={"mode": mode})}
    changed = policy.model_copy(update={"actions": actions})
    text = EVIDENCE + json.dumps(snapshot, separators=(",", ":"), sort_keys=True) + "\n" + yaml.safe_dump(
        changed.model_dump(mode="json", exclude_defaults=True), sort_keys=False
    )
    return store.publish(changed, text, by=by, source=source)


def promote(
    store: PolicyStore, action: str, admin: str, admins: list[str]
) -> tuple[Outcome, Published | None]:
    """An admin pressed Promote. Admins only (never an API key: this is reached from Slack
    alone); at `autonomy.quorum` distinct admins the promotion is published."""
    if admin not in admins:
        return Outcome.NOT_ADMIN, None
    record = store.proposal(action)
    if record is None:
        return Outcome.NO_PROPOSAL, None
    proposal = Proposal.parse(record)
    policy = store.current().policy
    if mode_of(policy, action) is not proposal.current:
        store.close_proposal(action)
        return Outcome.CHANGED, None
    if store.vote(action, admin) < policy.autonomy.quorum:
        return Outcome.WAITING, None
    if not store.close_proposal(action):
        return Outcome.NO_PROPOSAL, None  # another admin's press published it
    source = f"promotion: {action} {proposal.current.value} -> {proposal.target.value}, approved by {admin}"
    published = _publish_mode(store, action, proposal.target, by=admin, source=source,
                              snapshot={"action": action, **proposal.evidence})
    store.clear_rejections(action)
    return Outcome.PROMOTED, published


def not_yet(store: PolicyStore, action: str, admin: str, admins: list[str]) -> Outcome:
    """An admin pressed Not yet: no proposal for `autonomy.snooze`."""
    if admin not in admins:
        return Outcome.NOT_ADMIN
    snooze = store.current().policy.autonomy.snooze
    return Outcome.SNOOZED if store.close_proposal(action, snooze=snooze) else Outcome.NO_PROPOSAL


@dataclass(frozen=True)
class Demotion:
    action: str
    was: Mode
    now: Mode
    cause: Cause
    version: int
    by: str = SYSTEM

    def text(self) -> str:
        why = {
            Cause.VETO: f"<@{self.by}> vetoed it",
            Cause.CRITICAL: f"<@{self.by}> marked a rejection critical",
            Cause.REJECTIONS: "too many rejections in the window",
        }[self.cause]
        return (f"⬇️ `{self.action}` moved back from {self.was.value} to {self.now.value} "
                f"(policy version {self.version}): {self.cause.value} ({why})")

    def record(self) -> str:
        return json.dumps({**asdict(self), "was": self.was.value, "now": self.now.value,
                           "cause": self.cause.value})

    @classmethod
    def parse(cls, record: str) -> Demotion:
        raw = json.loads(record)
        return cls(raw["action"], Mode(raw["was"]), Mode(raw["now"]), Cause(raw["cause"]),
                   int(raw["version"]), raw.get("by") or SYSTEM)


def demote(
    store: PolicyStore, action: str, cause: Cause, *, by: str = SYSTEM, detail: str = ""
) -> Demotion | None:
    """Move `action` one step back at once (None when already at the bottom), and keep the
    news for the admins (`take_demotions`): whichever process demoted, somebody tells them."""
    current = mode_of(store.current().policy, action)
    lower = step_down(current)
    if lower is None:
        return None
    source = f"demotion: {action} {current.value} -> {lower.value}, {cause.value}"
    if by != SYSTEM:
        source += f" by {by}"
    published = _publish_mode(store, action, lower, by=by, source=source,
                              snapshot={"action": action, "cause": cause.value, "detail": detail})
    store.close_proposal(action)
    store.clear_rejections(action)
    demotion = Demotion(action, current, lower, cause, published.version, by)
    store.push_demotion(demotion.record())
    return demotion


def take_demotions(store: PolicyStore) -> list[Demotion]:
    """The demotions no one has told the admins about yet, each handed to one caller only."""
    return [Demotion.parse(r) for r in store.take_demotions()]


def after_decision(
    store: PolicyStore, action: str, *, vetoed: bool = False, rejected: bool = False, critical: bool = False,
    by: str = SYSTEM, now: float | None = None,
) -> Demotion | None:
    """A veto, a critical rejection, or the `autonomy.demote_after`-th rejection in the
    window demotes `action`; anything else changes nothing."""
    limits = store.current().policy.autonomy
    if vetoed:
        return demote(store, action, Cause.VETO, by=by)
    if critical:
        return demote(store, action, Cause.CRITICAL, by=by)
    at = now or time.time()
    if rejected and limits.demote_after and (
        store.count_rejection(action, at, limits.demote_window) >= limits.demote_after
    ):
        return demote(store, action, Cause.REJECTIONS, by=by,
                      detail=f"{limits.demote_after} rejections within {limits.demote_window:g} s")
    return None


def may_demote(req: Request, verb: Verb) -> bool:
    """Whether a decision can move the ladder at all (a rejection or veto, not in shadow)."""
    return req.mode is not Mode.SHADOW and verb in (Verb.REJECT, Verb.VETO)


def after_request_decided(store: PolicyStore, req: Request, verb: Verb, *, by: str,
                          critical: bool = False) -> Demotion | None:
    """What a person's decision does to the autonomy ladder, whatever surface it came from
    (a Slack modal, a plan's Reject all, Python, LangGraph's Agent Inbox): a veto of an
    override, a rejection marked critical, or one rejection too many demotes `req.action`
    at once. A shadow request's verdict is evidence, never a demotion."""
    if not may_demote(req, verb):
        return None
    rejected = verb is Verb.REJECT
    return after_decision(store, req.action, vetoed=verb is Verb.VETO and req.mode is Mode.OVERRIDE,
                          rejected=rejected, critical=critical and rejected, by=by)


def undone_by_file(store: PolicyStore, history: list[PolicyVersion] | None = None) -> list[Undone]:
    """The promotions the latest version took back, when it is a file version; reported
    once per version (the first caller claims it, `PolicyStore.claim_report`)."""
    versions = history if history is not None else store.history()
    if not versions or versions[-1].reason != "file" or len(versions) < 2:
        return []
    latest = versions[-1]
    if not store.claim_report(latest.version):
        return []
    policy = latest.policy()
    promoted: dict[str, Mode] = {}
    for v in reversed(versions[:-1]):
        if v.reason == "file":
            break
        if v.reason == "promotion":
            action = v.source.split()[1]
            promoted.setdefault(action, mode_of(v.policy(), action))
    return [Undone(a, m, mode_of(policy, a), latest.version) for a, m in sorted(promoted.items())
            if mode_of(policy, a) is not m]


def diff(a: Policy, b: Policy) -> dict[str, Any]:
    """What changed from `a` to `b`: each changed leaf as ``{from: ..., to: ...}``."""
    return _diff(a.model_dump(mode="json"), b.model_dump(mode="json"))


def _diff(x: Any, y: Any) -> Any:
    if isinstance(x, dict) and isinstance(y, dict):
        out = {}
        for k in [*x, *(k for k in y if k not in x)]:
            if x.get(k) != y.get(k):
                out[k] = _diff(x.get(k), y.get(k))
        return out
    return {"from": x, "to": y}


def change_summary(before: Policy | None, after: Policy) -> str:
    """One line for the history: the modes that changed, else how many keys did."""
    if before is None:
        return "first version"
    d = diff(before, after)
    if not d:
        return "no change"
    # Each named action's effective mode before and after (an action first named by a
    # promotion was routed by the defaults before).
    modes = [f"{name}: {mode_of(before, name).value} -> {mode_of(after, name).value}"
             for name in (d.get("actions") or {}) if mode_of(before, name) is not mode_of(after, name)]
    rest = sorted(k for k in d if k != "actions" or not modes)
    return "; ".join(modes + ([f"changed: {', '.join(rest)}"] if rest else []))


def evidence_of(version: PolicyVersion) -> dict[str, Any] | None:
    """The snapshot a promotion or demotion was published with (None for a file)."""
    first = version.text.split("\n", 1)[0]
    if version.reason == "file" or not first.startswith(EVIDENCE):
        return None
    try:
        data = json.loads(first[len(EVIDENCE):])
    except ValueError:
        return None
    return data if isinstance(data, dict) else None
