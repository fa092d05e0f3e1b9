"""The policy: which mode, channel, approvers and timers each action gets.

A YAML file validated with pydantic. It takes effect once published to Redis
(`hitl policy apply`, or `hitl bot`/`hitl worker` with ``HITL_POLICY_FILE``, see
`hitl.policystore`): clients route with the published version, and the CREATE script
enforces it. `route()` turns what an agent asked for plus the policy into a `Route`;
arguments given to `request()` may only raise oversight above what the policy says, never
lower it. `PolicySource` is the file, re-read when it changes.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    ValidationError,
    model_validator,
)

from hitl import patterns
from hitl.errors import ConfigError, InvalidRequest
from hitl.models import MAX_DURATION, EscalationStep, RequestInput
from hitl.slackids import check_mentionable, is_group
from hitl.status import OVERSIGHT_ORDER, ApproverSource, Mode, Risk
from hitl.yamlsafe import MAX_BYTES as MAX_POLICY_BYTES
from hitl.yamlsafe import load_bytes, load_text

log = logging.getLogger(__name__)

# Gate timeout when neither the request nor the policy sets one (seconds).
DEFAULT_TIMEOUT = 3600.0
# Override (veto) window when neither the request nor the policy sets one (seconds).
DEFAULT_WINDOW = 600.0
# Confidence below which a request is raised to gate, and below which it is urgent.
DEFAULT_GATE_BELOW = 0.8
DEFAULT_URGENT_BELOW = 0.6
# How often a loaded policy file is checked for changes (seconds).
RELOAD_CHECK_INTERVAL = 1.0

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def parse_duration(value: Any) -> float:
    """`30s`, `10m`, `1h`, `2d` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 30s, 10m or 1h")
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"{value!r} is not a duration such as 30s, 10m or 1h")
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if seconds <= 0:
        raise ValueError("a duration must be positive")
    return seconds


def _policy_duration(value: Any) -> float:
    seconds = parse_duration(value)
    if seconds > MAX_DURATION:
        raise ValueError(f"{value!r} is longer than the limit of 30 days")
    return seconds


Duration = Annotated[float, BeforeValidator(_policy_duration)]
# Approvers and `notify` lists: Slack user or user group ids only, never markup.
Mentions = Annotated[list[str], AfterValidator(check_mentionable)]


class PolicyStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: Duration
    notify: Mentions = Field(default_factory=list)
    channel: str | None = None


# What `grants:` allows when it leaves a limit out.
DEFAULT_GRANT_MAX = 8 * 3600.0
DEFAULT_GRANT_USES = 50
MAX_GRANT_USES = 1000


class GrantPolicy(BaseModel):
    """`grants:` for an action (or in defaults): whether reviewers may approve "this and the
    next ones like it for a while", and for how long and how many uses at most (see
    `hitl.grants`). Without a `grants:` entry nothing is grantable. An irreversible or
    `critical` request is grantable only when the action's own entry says `irreversible:
    true`: defaults and rules cannot say it for every action at once."""

    model_config = ConfigDict(extra="forbid")
    max: Duration = DEFAULT_GRANT_MAX
    max_uses: int = Field(default=DEFAULT_GRANT_USES, ge=1, le=MAX_GRANT_USES)
    irreversible: StrictBool = False


class ActionPolicy(BaseModel):
    """What the policy says for one action (or for a rule's matches)."""

    model_config = ConfigDict(extra="forbid")
    mode: Mode | None = None
    channel: str | None = None
    approvers: Mentions | None = None
    quorum: int | None = Field(default=None, ge=1, le=10)
    timeout: Duration | None = None
    window: Duration | None = None
    escalation: list[PolicyStep] | None = None
    # False: a request may not name approvers at all (not even a subset of the policy's).
    agent_approvers: StrictBool | None = None
    grants: GrantPolicy | None = None

    @model_validator(mode="after")
    def _quorum_reachable(self) -> ActionPolicy:
        if self.approvers and self.quorum and not _reachable(self.approvers, self.quorum):
            raise ValueError(
                f"quorum {self.quorum} can never be met by the {len(self.approvers)} approvers "
                "listed (add people or a user group, or lower the quorum)"
            )
        return self


def _reachable(approvers: list[str], quorum: int) -> bool:
    """Whether `quorum` distinct people can come from `approvers` (a group may hold many)."""
    return any(is_group(a) for a in approvers) or len(approvers) >= quorum


def _patterns(value: list[str] | str) -> list[str]:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise ValueError("list at least one pattern")
    return [patterns.check(v) for v in values]


Patterns = Annotated[list[str] | str, AfterValidator(_patterns)]


class RuleMatch(BaseModel):
    """What a request must be for a rule to apply: every condition given must hold.

    `action` and `params` are glob patterns (`hitl.patterns`): the action name, and per named
    parameter its value, must match one of them; a parameter value that is not plain (it
    chains commands, climbs a directory, is not a string) never matches."""

    model_config = ConfigDict(extra="forbid")
    reversible: bool | None = None
    risk: list[Risk] | Risk | None = None
    agent: list[str] | str | None = None
    action: Patterns | None = None
    params: dict[Annotated[str, Field(min_length=1)], Patterns] | None = Field(default=None, min_length=1)

    def matches(self, req: RequestInput) -> bool:
        if self.reversible is not None and req.reversible is not self.reversible:
            return False
        if self.risk is not None:
            risks = self.risk if isinstance(self.risk, list) else [self.risk]
            if req.risk not in risks:
                return False
        if self.agent is not None:
            agents = self.agent if isinstance(self.agent, list) else [self.agent]
            if req.agent not in agents:
                return False
        if self.action is not None and not patterns.matches(list(self.action), req.action):
            return False
        for name, wanted in (self.params or {}).items():
            value = req.params.get(name)
            if not patterns.plain(value) or not patterns.matches(list(wanted), value):
                return False
        return True


def _no_blanket_irreversible(entry: ActionPolicy, where: str) -> None:
    if entry.grants is not None and entry.grants.irreversible:
        raise ValueError(
            f"{where}: grants.irreversible may only be set for one action (under actions:), "
            "never for every action at once"
        )


class Rule(ActionPolicy):
    when: RuleMatch

    @model_validator(mode="after")
    def _grants_per_action(self) -> Rule:
        _no_blanket_irreversible(self, "a rule")
        return self


class ConfidencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gate_below: float = Field(default=DEFAULT_GATE_BELOW, ge=0, le=1)
    urgent_below: float = Field(default=DEFAULT_URGENT_BELOW, ge=0, le=1)


class Defaults(ActionPolicy):
    @model_validator(mode="after")
    def _grants_per_action(self) -> Defaults:
        _no_blanket_irreversible(self, "defaults")
        return self


class AutonomyThresholds(BaseModel):
    """When an action has earned a step up the autonomy ladder (`autonomy:` in the policy).

    The one source of these thresholds: validated when the policy loads (a misspelt key
    fails `hitl policy check`), read by `hitl.stats` and `/hitl stats`.
    """

    model_config = ConfigDict(extra="forbid")
    min_decisions: int = Field(default=100, ge=1)
    min_approved_unedited: float = Field(default=0.95, ge=0, le=1)
    no_critical_rejection_days: float = Field(default=14, ge=0)
    max_override_rate: float = Field(default=0.05, ge=0, le=1)
    # The promotion loop (`hitl.autonomy`): where proposals go (else the admins by DM), how
    # many admins must press Promote, how long Not yet lasts, the highest mode a promotion
    # may reach (per action in `ceilings`), and how many rejections in `demote_window`
    # step an action back without waiting for anyone.
    channel: str | None = None
    quorum: int = Field(default=1, ge=1, le=10)
    snooze: Duration = 14 * 86400.0
    ceiling: Mode = Mode.OVERRIDE
    ceilings: dict[str, Mode] = Field(default_factory=dict)
    demote_after: int | None = Field(default=None, ge=1)
    demote_window: Duration = 86400.0


class Policy(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Field(default_factory=Defaults)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    confidence: ConfidencePolicy = Field(default_factory=ConfidencePolicy)
    autonomy: AutonomyThresholds = Field(default_factory=AutonomyThresholds)

    @classmethod
    def from_yaml(cls, text: str | bytes, source: str = "policy") -> Policy:
        """Parse and validate; any problem is one `ConfigError` line naming the key."""
        raw = load_bytes(text, source) if isinstance(text, bytes) else load_text(text, source)
        return cls.from_data(raw or {}, source)

    @classmethod
    def from_data(cls, data: Any, source: str = "policy") -> Policy:
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{source}: {_summarise(exc)}") from None

    @classmethod
    def load(cls, path: Path) -> Policy:
        return cls.read(path)[0]

    @classmethod
    def read(cls, path: Path) -> tuple[Policy, str]:
        """The policy in `path` and the text it was parsed from (what gets published)."""
        try:
            with path.open("rb") as fh:
                # One byte past the cap is enough to know the file is too big.
                raw = fh.read(MAX_POLICY_BYTES + 1)
        except OSError as exc:
            raise ConfigError(f"HITL_POLICY_FILE: cannot read {path} ({exc.strerror})") from None
        policy = cls.from_yaml(raw, str(path))  # refuses invalid UTF-8 first
        return policy, raw.decode()

    def for_action(self, req: RequestInput) -> ActionPolicy:
        """The action's own entry, else the first matching rule, else nothing."""
        if req.action in self.actions:
            return self.actions[req.action]
        for rule in self.rules:
            if rule.when.matches(req):
                return rule
        return ActionPolicy()

    def allows_agent_approvers(self, entry: ActionPolicy) -> bool:
        """Whether a request routed by `entry` may name its own approvers (default yes)."""
        for value in (entry.agent_approvers, self.defaults.agent_approvers):
            if value is not None:
                return value
        return True


def _summarise(exc: ValidationError, shown: int = 3) -> str:
    """pydantic's report as one line: each problem's key and message, the first few only.

    Unknown keys come first: a misspelt name is the likeliest mistake, and the other
    errors in the same block often follow from it.
    """
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    parts = []
    for err in errors[:shown]:
        where = ".".join(str(p) for p in err["loc"]) or "policy"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "is not a known key"
        parts.append(f"{where}: {msg}")
    more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
    return "; ".join(parts) + more


class Route(BaseModel):
    """Where a request goes and what timers it gets: the policy applied to one request."""

    mode: Mode
    urgent: bool
    low_confidence: bool = False
    channel: str | None
    mirror_channels: list[str] = Field(default_factory=list)
    approvers: list[str]
    # Who named the approvers: the policy (possibly narrowed by the request), or the agent.
    approvers_from: ApproverSource | None = None
    quorum: int
    timeout: float
    window: float
    escalation: list[EscalationStep]


def more_oversight(a: Mode, b: Mode) -> Mode:
    return a if OVERSIGHT_ORDER.index(a) >= OVERSIGHT_ORDER.index(b) else b


def route(req: RequestInput, policy: Policy, default_channel: str | None = None) -> Route:
    """Apply the policy to one request. The one place the oversight rule is written:
    arguments given to `request()` may only ADD oversight to what the policy says.

    - mode: the stricter of request and policy; low confidence raises it to gate.
    - quorum: the larger of request and policy, and never more than the approvers can meet.
    - approvers: when the policy names approvers, the request may narrow them to a subset
      that can still meet the quorum; an empty list is always refused (it never means
      "anyone"). Without policy approvers a request may name its own (narrowing "anyone in
      the channel": the bot still lets only people who could decide anyway decide, see
      `bot.access`). `agent_approvers: false` refuses any approvers a request names.
    - channel: a channel the policy names always gets the card; a different channel asked
      for becomes an extra mirror. Without one, the request's channel, else the default.
    - timeout: the request's (bounded when parsed), else the policy's.
    - window: the longer of request and policy (a shorter veto window is less oversight).
    - escalation: always the policy's.

    Raises `InvalidRequest` naming the field when the request asks for less oversight in a
    way that cannot be silently raised (approvers, quorum).
    """
    entry = policy.for_action(req)
    d = policy.defaults
    mode = _mode(req, entry.mode or d.mode)
    urgent = low_confidence = False
    if req.confidence is not None:
        low_confidence = req.confidence < policy.confidence.gate_below
        if low_confidence:
            mode = Mode.GATE
        urgent = req.confidence < policy.confidence.urgent_below
    quorum = max(req.quorum or 1, entry.quorum or d.quorum or 1)
    allowed = entry.approvers or d.approvers or []
    if req.approvers is not None and not policy.allows_agent_approvers(entry):
        raise InvalidRequest(
            "approvers",
            f"the policy does not let agents name approvers for {req.action}; leave approvers out",
        )
    approvers = _approvers(req.approvers, allowed, quorum)
    source = None
    if approvers:
        source = ApproverSource.POLICY if allowed else ApproverSource.AGENT
    channel, mirrors = _channels(req.channel, entry.channel or d.channel, default_channel)
    timeout = req.timeout or entry.timeout or d.timeout or DEFAULT_TIMEOUT
    floor = entry.window or d.window
    window = (req.window or DEFAULT_WINDOW) if floor is None else max(req.window or 0.0, floor)
    ladder = entry.escalation if entry.escalation is not None else d.escalation
    if ladder is None:
        # Default: one reminder to the approvers halfway to the deadline.
        steps = [EscalationStep(after=timeout / 2, notify=list(approvers))]
    else:
        steps = [EscalationStep(after=s.after, notify=s.notify, channel=s.channel) for s in ladder]
    steps = [s for s in steps if s.after < timeout]
    return Route(
        mode=mode,
        urgent=urgent,
        low_confidence=low_confidence,
        channel=channel,
        mirror_channels=mirrors,
        approvers=approvers,
        approvers_from=source,
        quorum=quorum,
        timeout=timeout,
        window=window,
        escalation=steps,
    )


def _mode(req: RequestInput, policy_mode: Mode | None) -> Mode:
    if policy_mode is None:
        return req.mode or Mode.GATE
    return more_oversight(req.mode, policy_mode) if req.mode else policy_mode


def _approvers(asked: list[str] | None, allowed: list[str], quorum: int) -> list[str]:
    """The request's approvers checked against the policy's (see `route`)."""
    if asked is not None and not asked:
        raise InvalidRequest(
            "approvers", "name at least one approver, or leave it out to use the policy's"
        )
    if asked is None:
        chosen = list(allowed)
    else:
        outside = [a for a in asked if allowed and a not in allowed]
        if outside:
            raise InvalidRequest(
                "approvers",
                f"{', '.join(outside)} not among the policy's approvers for this action; "
                f"choose from {', '.join(allowed)}, or leave approvers out",
            )
        chosen = list(asked)
    if chosen and not _reachable(chosen, quorum):
        field = "approvers" if asked is not None else "quorum"
        raise InvalidRequest(
            field,
            f"{len(chosen)} approver(s) can never meet the quorum of {quorum}; name at least "
            f"{quorum} (or a user group)"
            + (f" from {', '.join(allowed)}" if allowed else ""),
        )
    return chosen


def _channels(
    asked: str | None, policy_channel: str | None, default: str | None
) -> tuple[str | None, list[str]]:
    """The card's channel and any mirror channels (see `route`)."""
    if policy_channel is None:
        return asked or default, []
    if asked and asked != policy_channel:
        return policy_channel, [asked]
    return policy_channel, []


class PolicySource:
    """The policy in force, re-read when its file changes.

    A malformed new version is logged and ignored: the previous policy stays in force, so a
    typo in production never lowers oversight.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._policy, self.text = (Policy(), "") if path is None else Policy.read(path)
        self._mtime = self._stat()
        self._checked = time.monotonic()
        self.last_error: str | None = None

    def _stat(self) -> float | None:
        try:
            return self.path.stat().st_mtime_ns if self.path else None
        except OSError:
            return None

    def current(self) -> Policy:
        if self.path is None:
            return self._policy
        now = time.monotonic()
        if now - self._checked < RELOAD_CHECK_INTERVAL:
            return self._policy
        with self._lock:
            self._checked = now
            mtime = self._stat()
            if mtime != self._mtime:
                self._mtime = mtime
                try:
                    self._policy, self.text = Policy.read(self.path)
                    self.last_error = None
                    log.info("policy reloaded from %s", self.path)
                except Exception as exc:
                    # Policy.load reports every known problem as ConfigError; anything else
                    # (a parser bug, RecursionError) must not stop requests either.
                    message = (
                        str(exc) if isinstance(exc, ConfigError)
                        else f"{self.path}: {type(exc).__name__}: {exc}"
                    )
                    self.last_error = " ".join(message.split())
                    log.error("policy not reloaded, previous one stays in force: %s", self.last_error)
        return self._policy

    def reload(self) -> Policy:
        """Force a re-read now (tests, `/hitl policy reload`)."""
        self._checked = 0.0
        self._mtime = None
        return self.current()
