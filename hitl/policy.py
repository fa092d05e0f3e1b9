"""The policy: which mode, channel, approvers and timers each action gets.

A YAML file (``HITL_POLICY_FILE``) validated with pydantic and re-read when it changes.
`route()` turns what an agent asked for plus the policy into a `Route`; arguments given to
`request()` may only raise oversight above what the policy says, never lower it.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from hitl.errors import ConfigError
from hitl.models import EscalationStep, RequestInput
from hitl.status import OVERSIGHT_ORDER, Mode, Risk

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


Duration = Annotated[float, BeforeValidator(parse_duration)]


class PolicyStep(BaseModel):
    model_config = ConfigDict(extra="forbid")
    after: Duration
    notify: list[str] = Field(default_factory=list)
    channel: str | None = None


class ActionPolicy(BaseModel):
    """What the policy says for one action (or for a rule's matches)."""

    model_config = ConfigDict(extra="forbid")
    mode: Mode | None = None
    channel: str | None = None
    approvers: list[str] | None = None
    quorum: int | None = Field(default=None, ge=1, le=10)
    timeout: Duration | None = None
    window: Duration | None = None
    escalation: list[PolicyStep] | None = None


class RuleMatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reversible: bool | None = None
    risk: list[Risk] | Risk | None = None
    agent: list[str] | str | None = None

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
        return True


class Rule(ActionPolicy):
    when: RuleMatch


class ConfidencePolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    gate_below: float = Field(default=DEFAULT_GATE_BELOW, ge=0, le=1)
    urgent_below: float = Field(default=DEFAULT_URGENT_BELOW, ge=0, le=1)


class Defaults(ActionPolicy):
    pass


class Policy(BaseModel):
    """The whole policy file."""

    model_config = ConfigDict(extra="forbid")
    defaults: Defaults = Field(default_factory=Defaults)
    actions: dict[str, ActionPolicy] = Field(default_factory=dict)
    rules: list[Rule] = Field(default_factory=list)
    confidence: ConfidencePolicy = Field(default_factory=ConfidencePolicy)
    autonomy: dict[str, Any] = Field(default_factory=dict)

    @classmethod
    def from_yaml(cls, text: str, source: str = "policy") -> Policy:
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{source}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the top level must be a mapping")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            raise ConfigError(f"{source}: {where}: {msg}") from None

    @classmethod
    def load(cls, path: Path) -> Policy:
        try:
            text = path.read_text()
        except OSError as exc:
            raise ConfigError(f"HITL_POLICY_FILE: cannot read {path} ({exc.strerror})") from None
        return cls.from_yaml(text, str(path))

    def for_action(self, req: RequestInput) -> ActionPolicy:
        """The action's own entry, else the first matching rule, else nothing."""
        if req.action in self.actions:
            return self.actions[req.action]
        for rule in self.rules:
            if rule.when.matches(req):
                return rule
        return ActionPolicy()


class Route(BaseModel):
    """Where a request goes and what timers it gets: the policy applied to one request."""

    mode: Mode
    urgent: bool
    channel: str | None
    approvers: list[str]
    quorum: int
    timeout: float
    window: float
    escalation: list[EscalationStep]


def more_oversight(a: Mode, b: Mode) -> Mode:
    return a if OVERSIGHT_ORDER.index(a) >= OVERSIGHT_ORDER.index(b) else b


def route(req: RequestInput, policy: Policy, default_channel: str | None = None) -> Route:
    """Apply the policy: request arguments can only raise oversight, never lower it."""
    entry = policy.for_action(req)
    d = policy.defaults
    policy_mode = entry.mode or d.mode
    if policy_mode is None:
        mode = req.mode or Mode.GATE
    else:
        mode = more_oversight(req.mode, policy_mode) if req.mode else policy_mode
    urgent = False
    if req.confidence is not None:
        if req.confidence < policy.confidence.gate_below:
            mode = Mode.GATE
        urgent = req.confidence < policy.confidence.urgent_below
    timeout = req.timeout or entry.timeout or d.timeout or DEFAULT_TIMEOUT
    window = req.window or entry.window or d.window or DEFAULT_WINDOW
    approvers = req.approvers if req.approvers is not None else (entry.approvers or d.approvers or [])
    quorum = max(req.quorum or 1, entry.quorum or d.quorum or 1)
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
        channel=req.channel or entry.channel or d.channel or default_channel,
        approvers=approvers,
        quorum=quorum,
        timeout=timeout,
        window=window,
        escalation=steps,
    )


class PolicySource:
    """The policy in force, re-read when its file changes.

    A malformed new version is logged and ignored: the previous policy stays in force, so a
    typo in production never lowers oversight.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._policy = Policy() if path is None else Policy.load(path)
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
                    self._policy = Policy.load(self.path)
                    self.last_error = None
                    log.info("policy reloaded from %s", self.path)
                except ConfigError as exc:
                    self.last_error = str(exc)
                    log.error("policy not reloaded, previous one stays in force: %s", exc)
        return self._policy

    def reload(self) -> Policy:
        """Force a re-read now (tests, `/hitl policy reload`)."""
        self._checked = 0.0
        self._mtime = None
        return self.current()
