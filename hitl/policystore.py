"""The published policy: a versioned document in Redis, the one every request is routed by.

The policy takes effect when it is published (`hitl policy apply FILE`, or `hitl bot` and
`hitl worker` started with ``HITL_POLICY_FILE``, see `PolicyPublisher`), never because a
client process has a file of its own: an agent's process routes nothing by itself. Each
publication is one script call (`scripts.PUBLISH_POLICY`) that assigns the next version,
keeps every version (source text, canonical JSON, sha256, who, when, from where), writes
the compiled table the CREATE script routes with (`compile_table`) and audits it
(`policy.applied`). Publishing what is already in force creates no version, so restarts do
not churn. Nothing published is version 0: the empty `Policy()`.

Clients route first with the version they last saw in force, for friendly errors
(`PolicyStore.routed`): no read per request, since CREATE routes again from the table, its
answer is what is stored, and it says which version it used (`saw`): another version makes
the client read the new one before its next request, and a refusal is always checked
against the version now in force before it is raised.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from hitl import patterns, scripts
from hitl.errors import InvalidRequest
from hitl.keys import Keys
from hitl.metrics import DEFAULT_MAX_ACTIONS, admit_policy_actions
from hitl.policy import RELOAD_CHECK_INTERVAL, ActionPolicy, Policy, PolicySource, Rule
from hitl.redisvalues import as_str
from hitl.status import EventType

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PolicyVersion:
    """One published version: what it was and who published it, when, from where."""

    version: int
    sha256: str
    applied_by: str
    applied_at: float  # epoch seconds
    source: str  # where it came from: a file path, or "" when not said
    text: str  # the source text as applied (YAML)
    canonical: str  # the validated policy as canonical JSON (what the sha256 is of)

    def policy(self) -> Policy:
        return Policy.from_data(json.loads(self.canonical), f"policy version {self.version}")

    @property
    def reason(self) -> str:
        """Why this version exists: ``promotion`` or ``demotion`` (published by
        `hitl.autonomy`, whose sources start so), else ``file``."""
        head = self.source.split(":", 1)[0]
        return head if head in ("promotion", "demotion") else "file"


@dataclass(frozen=True, slots=True)
class PolicyInForce:
    """The version in force and its policy; `meta` is None for version 0 (nothing published)."""

    version: int
    policy: Policy
    meta: PolicyVersion | None = None


@dataclass(frozen=True, slots=True)
class Published:
    """What a publication did: the version now in force, and whether it is a new one."""

    version: int
    changed: bool


@dataclass(frozen=True, slots=True)
class PolicyError:
    """A policy file a publisher could not publish (the version in force stays)."""

    message: str
    source: str
    at: float  # epoch seconds


NOTHING_PUBLISHED = PolicyInForce(0, Policy())


def canonical(policy: Policy) -> str:
    """The validated policy as canonical JSON: equal policies give equal text (and sha256),
    however their YAML was written."""
    data = policy.model_dump(mode="json")
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _entry(entry: ActionPolicy) -> dict[str, Any]:
    """One action's (or rule's, or the defaults') settings as CREATE reads them: a field
    the policy leaves unset is absent, so Lua's `or` picks the next one down."""
    out: dict[str, Any] = {}
    if entry.mode is not None:
        out["mode"] = entry.mode.value
    if entry.channel:
        out["channel"] = entry.channel
    if entry.approvers:
        out["approvers"] = list(entry.approvers)
    for name in ("quorum", "timeout", "window"):
        value = getattr(entry, name)
        if value is not None:
            out[name] = value
    if entry.escalation is not None:
        out["escalation"] = [
            {"after": s.after, "notify": list(s.notify), **({"channel": s.channel} if s.channel else {})}
            for s in entry.escalation
        ]
    if entry.agent_approvers is not None:
        out["agent_approvers"] = entry.agent_approvers
    if entry.grants is not None:  # read by CREATE: what a grant may cover (hitl.grants)
        out["grants"] = entry.grants.model_dump()
    return out


def _as_list(value: Any) -> list[Any] | None:
    if value is None:
        return None
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def _rule(rule: Rule) -> dict[str, Any]:
    when: dict[str, Any] = {}
    if rule.when.reversible is not None:
        when["reversible"] = rule.when.reversible
    for name in ("risk", "agent"):
        values = _as_list(getattr(rule.when, name))
        if values is not None:
            when[name] = values
    # glob patterns, compiled here once to the anchored Lua patterns CREATE matches with
    if rule.when.action is not None:
        when["action"] = [patterns.lua(p) for p in rule.when.action]
    if rule.when.params is not None:
        when["params"] = {name: [patterns.lua(p) for p in pats] for name, pats in rule.when.params.items()}
    return {**_entry(rule), "when": when}


def compile_table(policy: Policy) -> dict[str, Any]:
    """The policy as the table CREATE routes with: JSON text per part, one per action, so
    the script decodes only the entry of the action it routes (and the rules if needed)."""
    return {
        "defaults": _compact(_entry(policy.defaults)),
        "confidence": _compact(
            {"gate_below": policy.confidence.gate_below, "urgent_below": policy.confidence.urgent_below}
        ),
        "rules": _compact([_rule(r) for r in policy.rules]),
        "actions": {name: _compact(_entry(entry)) for name, entry in policy.actions.items()},
    }


def publish_args(
    keys: Keys, policy: Policy, text: str, *, by: str, source: str
) -> tuple[list[str], list[str]]:
    """KEYS and ARGV for `scripts.PUBLISH_POLICY`."""
    body = canonical(policy)
    payload = {
        "version_key": keys.policy_version("{}"), "event": EventType.POLICY_APPLIED.value,
        "sha256": hashlib.sha256(body.encode()).hexdigest(), "canonical": body, "text": text,
        "applied_by": by, "source": source, "table": compile_table(policy),
    }
    return [keys.policy_table, keys.policy_seq, keys.events, keys.policy_error], [_compact(payload)]


def _parse_published(result: Sequence[Any]) -> Published:
    return Published(int(result[1] or 0), as_str(result[0]) == "applied")


def _parse_version(raw: Mapping[Any, Any]) -> PolicyVersion | None:
    h = {as_str(k): as_str(v) for k, v in raw.items()}
    if not h:
        return None
    return PolicyVersion(
        version=int(h["version"]), sha256=h.get("sha256", ""), applied_by=h.get("applied_by", ""),
        applied_at=int(h.get("applied_at") or 0) / 1000, source=h.get("source", ""), text=h.get("text", ""),
        canonical=h.get("canonical", "{}"),
    )


def _parse_error(raw: Mapping[Any, Any]) -> PolicyError | None:
    h = {as_str(k): as_str(v) for k, v in raw.items()}
    if not h.get("message"):
        return None
    return PolicyError(h["message"], h.get("source", ""), float(h.get("at") or 0))


class PolicyStore:
    """The published policy in one Redis (sync): publish, read the version in force, list
    versions, and record a file that could not be published."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._publish = client.register_script(scripts.PUBLISH_POLICY)
        self._cached = NOTHING_PUBLISHED
        self._stale = True  # nothing read yet

    def publish(self, policy: Policy, text: str, *, by: str, source: str = "") -> Published:
        """Make `policy` the version in force (a new version unless it already is)."""
        return _parse_published(self._publish(*publish_args(self.keys, policy, text, by=by, source=source)))

    def version_in_force(self) -> int:
        raw = self.redis.hget(self.keys.policy_table, "version")
        return int(raw) if raw else 0

    def current(self) -> PolicyInForce:
        """The version in force with its policy: one read of the version, the document only
        when the version changed since the last call."""
        version = self.version_in_force()
        cached = self._cached
        if version != cached.version:
            meta = self.version(version) if version else None
            cached = PolicyInForce(version, meta.policy(), meta) if meta else NOTHING_PUBLISHED
        self._cached, self._stale = cached, False
        return cached

    def routed(self, build: Callable[[PolicyInForce], T]) -> T:
        """`build` (a request's routing) with the version last seen in force; when that
        refuses, once more with the version now in force if it is another."""
        policy = self.current() if self._stale else self._cached
        try:
            return build(policy)
        except InvalidRequest:
            fresh = self.current()
            if fresh.version == policy.version:
                raise
            return build(fresh)

    def saw(self, version: int) -> None:
        """CREATE routed a request under `version`: read it before the next one if it is new."""
        if version != self._cached.version:
            self._stale = True

    def version(self, version: int) -> PolicyVersion | None:
        return _parse_version(self.redis.hgetall(self.keys.policy_version(version)))

    def history(self, last: int | None = None) -> list[PolicyVersion]:
        """Every published version, oldest first; with `last`, only the latest that many
        (the dashboard refreshes every few seconds and needs no version from last year)."""
        newest = int(self.redis.get(self.keys.policy_seq) or 0)
        first = 1 if last is None else max(newest - last + 1, 1)
        pipe = self.redis.pipeline(transaction=False)
        for n in range(first, newest + 1):
            pipe.hgetall(self.keys.policy_version(n))
        return [v for v in (_parse_version(raw) for raw in pipe.execute()) if v is not None]

    def report_error(self, message: str, *, source: str) -> None:
        """Record why a policy file was not published; the next publication clears it."""
        fields: dict[str | bytes, str] = {"message": message, "source": source, "at": repr(time.time())}
        self.redis.hset(self.keys.policy_error, mapping=fields)  # type: ignore[arg-type]

    def last_error(self) -> PolicyError | None:
        return _parse_error(self.redis.hgetall(self.keys.policy_error))

    # -- the promotion loop's state (hitl.autonomy) -------------------------------------------
    def open_proposal(self, action: str, record: str, *, ttl: float) -> bool:
        """Open a proposal for `action` unless one is open or Not yet snoozed it; atomic
        (SET NX), so two checkers never post two cards."""
        if self.redis.exists(self.keys.autonomy_snooze(action)):
            return False
        key = self.keys.autonomy_proposal(action)
        return bool(self.redis.set(key, record, nx=True, px=round(ttl * 1000)))

    def proposal(self, action: str) -> str | None:
        raw = self.redis.get(self.keys.autonomy_proposal(action))
        return as_str(raw) if raw is not None else None

    def vote(self, action: str, admin: str) -> int:
        """Count `admin`'s Promote; how many distinct admins have pressed it."""
        pipe = self.redis.pipeline()
        pipe.sadd(self.keys.autonomy_votes(action), admin)
        pipe.scard(self.keys.autonomy_votes(action))
        return int(pipe.execute()[1])

    def close_proposal(self, action: str, *, snooze: float | None = None) -> bool:
        """End the open proposal (True if this call ended it: a second click finds none);
        with `snooze`, no new one for that many seconds."""
        pipe = self.redis.pipeline()
        pipe.delete(self.keys.autonomy_proposal(action))
        pipe.delete(self.keys.autonomy_votes(action))
        if snooze:
            pipe.set(self.keys.autonomy_snooze(action), "1", px=round(snooze * 1000))
        return bool(pipe.execute()[0])

    def count_rejection(self, action: str, at: float, window: float) -> int:
        """Record a rejection of `action`; how many fell within the last `window` seconds."""
        key, now = self.keys.autonomy_rejections(action), round(at * 1000)
        pipe = self.redis.pipeline()
        pipe.zadd(key, {f"{now}-{time.monotonic_ns()}": now})
        pipe.zremrangebyscore(key, "-inf", now - round(window * 1000))
        pipe.zcard(key)
        pipe.pexpire(key, round(window * 1000))
        return int(pipe.execute()[2])

    def clear_rejections(self, action: str) -> None:
        self.redis.delete(self.keys.autonomy_rejections(action))

    def push_demotion(self, record: str) -> None:
        """Keep a demotion for the admins, whoever tells them (the listener or the workers)."""
        self.redis.rpush(self.keys.autonomy_demotions, record)

    def take_demotions(self, limit: int = 20) -> list[str]:
        """The oldest untold demotions, removed: each is told by one process only."""
        raw = self.redis.lpop(self.keys.autonomy_demotions, limit)
        return [as_str(r) for r in raw or []]

    def return_demotion(self, record: str) -> None:
        """Put back one that could not be told, first in line for the next try."""
        self.redis.lpush(self.keys.autonomy_demotions, record)

    def claim_report(self, version: int) -> bool:
        """True once per version: the first caller reports what that file version undid."""
        return bool(self.redis.set(self.keys.autonomy_reported(version), "1", nx=True))


class AsyncPolicyStore:
    """The asyncio twin of `PolicyStore`'s reading side, for the asyncio client."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.redis = client
        self.keys = keys
        self._cached = NOTHING_PUBLISHED
        self._stale = True

    async def current(self) -> PolicyInForce:
        raw = await self.redis.hget(self.keys.policy_table, "version")
        version = int(raw) if raw else 0
        cached = self._cached
        if version != cached.version:
            meta = None
            if version:
                meta = _parse_version(await self.redis.hgetall(self.keys.policy_version(version)))
            cached = PolicyInForce(version, meta.policy(), meta) if meta else NOTHING_PUBLISHED
        self._cached, self._stale = cached, False
        return cached

    async def routed(self, build: Callable[[PolicyInForce], Awaitable[T]]) -> T:
        """`PolicyStore.routed`, awaited."""
        policy = await self.current() if self._stale else self._cached
        try:
            return await build(policy)
        except InvalidRequest:
            fresh = await self.current()
            if fresh.version == policy.version:
                raise
            return await build(fresh)

    def saw(self, version: int) -> None:
        if version != self._cached.version:
            self._stale = True


class PolicyPublisher:
    """`hitl bot` and `hitl worker` with ``HITL_POLICY_FILE``: publish the file at start and
    whenever it changes. A bad new file is not published: the version in force stays, and
    the error is recorded for `/hitl policy` and `hitl policy show` (`last_error`). A bad
    file at start is a `ConfigError` (the process does not start)."""

    name = "policy"

    def __init__(
        self, path: Path, store: PolicyStore, *, by: str, interval: float = RELOAD_CHECK_INTERVAL,
        max_others: int = DEFAULT_MAX_ACTIONS,
    ) -> None:
        self.source = PolicySource(path)
        self.store = store
        self.by = by
        self.max_others = max_others  # HITL_METRICS_MAX_ACTIONS
        self.interval = interval
        self._published: Policy | None = None
        self._reported: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def last_error(self) -> str | None:
        return self.source.last_error

    def sync(self) -> Published | None:
        """Publish the file if it changed since the last publication; None when it did not."""
        policy = self.source.current()
        error = self.source.last_error
        if error and error != self._reported:
            self.store.report_error(error, source=str(self.source.path))
            self._reported = error
        if policy is self._published:
            return None
        published = self.store.publish(policy, self.source.text, by=self.by, source=str(self.source.path))
        self._published, self._reported = policy, None
        # The published policy's action names keep metric labels of their own.
        admit_policy_actions(self.store.redis, self.store.keys, policy.actions, self.max_others)
        if published.changed:
            log.info("policy version %d published from %s", published.version, self.source.path)
        return published

    def start(self) -> PolicyPublisher:
        """Publish now (Redis permitting), then watch the file in a daemon thread."""
        self._attempt()
        self._thread = threading.Thread(target=self._run, name="hitl-policy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._attempt()

    def _attempt(self) -> None:
        try:
            self.sync()
        except redis.RedisError as exc:  # published once Redis answers again
            log.warning("policy not published yet, Redis unreachable: %s", exc)
