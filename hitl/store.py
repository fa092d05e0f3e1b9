"""The Redis store: requests, their atomic transitions, and the blocking wake-up.

`Store` (sync) and `AsyncStore` (asyncio) share everything but the I/O: arguments are
built and results parsed by the module-level helpers, and every write goes through one
Lua script in `hitl.scripts`, so the store itself never does read-modify-write in Python.
"""

from __future__ import annotations

import functools
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from hitl import scripts
from hitl.errors import (
    AlreadyDecided,
    DeadlinePassed,
    IdempotencyConflict,
    InvalidRequest,
    NotAllowed,
    RequestNotFound,
    StaleVersion,
    TransitionRefused,
)
from hitl.ids import known_shape
from hitl.keys import TIMER_SEP, Keys, TimerKind, sync_member, timer_member
from hitl.metrics import Family
from hitl.models import CardPlacement, EscalationStep, Placed, Request
from hitl.redisvalues import as_str
from hitl.status import Mode, Status, Transition

# Fields of a request document that routing decides: never sent to CREATE, which routes
# the request itself and appends its own values (see `scripts.CREATE`).
ROUTED_FIELDS = (
    "mode", "urgent", "low_confidence", "channel", "mirror_channels", "approvers", "approvers_from",
    "quorum", "timeout", "window", "escalation", "created_at", "deadline", "batch", "items",
    "policy_version", "grantable",
)

_REFUSALS = {
    "requester": "you requested this action, so someone else has to approve it",
    "not_approver": "you are not one of the approvers of this request",
    "voted": "you have already approved this request; it needs another approver",
    "anonymous": "a decision needs the id of the person who takes it",
    "plan": "a plan is decided through its steps (approve or reject each, or all at once)",
}


def now_ms() -> int:
    return int(time.time() * 1000)


@functools.cache
def key_names(keys: Keys) -> dict[str, str]:
    """Key name templates for the scripts ("{}" marks the variable part), from `Keys`."""
    slot = "{}"
    return {
        "req": keys.req(slot), "done": keys.done(slot), "idem": keys.idem(slot), "stats": keys.stats(slot),
        "durations": keys.durations(slot), "pending": keys.pending,
        "pending_channel": keys.pending_channel(slot), "pending_mode": keys.pending_mode(slot),
        "deadlines": keys.deadlines, "channels": keys.channels, "actions": keys.actions,
        "m_created": keys.metrics(Family.CREATED), "m_final": keys.metrics(Family.FINAL),
        "m_decision": keys.metrics(Family.DECISION), "m_hour": keys.metrics_hour(slot),
        "pm_created": keys.metrics_public(Family.CREATED), "pm_final": keys.metrics_public(Family.FINAL),
        "pm_decision": keys.metrics_public(Family.DECISION), "pm_hour": keys.metrics_public_hour(slot),
        "actions_policy": keys.actions_policy, "actions_admitted": keys.actions_admitted,
        "actions_limit": keys.actions_limit, "actions_private": keys.actions_private,
        "chprivate": keys.channel_privacy(slot),
        "grant": keys.grant(slot), "grants": keys.grants, "grants_action": keys.grants_action(slot),
        "t_timeout": timer_member(slot, TimerKind.TIMEOUT), "t_window": timer_member(slot, TimerKind.WINDOW),
        "t_sync": sync_member(slot),
        "t_esc": timer_member(slot, TimerKind.ESC) + TIMER_SEP + slot,
    }


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def fingerprint(doc: Mapping[str, Any], steps: Sequence[str] = ()) -> str:
    """What an idempotency key promises stays the same: action, summary and params (and a
    plan's steps' fingerprints, in order). sha256 of their canonical JSON."""
    content = {
        "action": doc["action"], "summary": doc["summary"], "params": doc["params"], "steps": list(steps),
    }
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


# Idempotency slots of requests filed through an API key: "via:{name}:{key}", so the same
# key from two API keys names two requests and neither learns of the other. The trusted
# Python client (via None) keeps the bare key.
_SCOPE = "via:"


def idem_slot(doc: Mapping[str, Any]) -> str:
    """Where CREATE files `doc`'s idempotency key ("" when it has none)."""
    key = doc.get("idempotency_key") or ""
    return f"{_SCOPE}{doc['via']}:{key}" if key and doc.get("via") else key


def caller_key(slot: str) -> str:
    """The idempotency key as its caller gave it, from a slot `idem_slot` built."""
    return slot[len(_SCOPE):].partition(":")[2] if slot.startswith(_SCOPE) else slot


def _create_spec(doc: dict[str, Any], fp: str) -> dict[str, Any]:
    """One request's bookkeeping entry in CREATE's input (its document goes in its own ARGV
    slot, without the fields CREATE routes itself: see `create_plan_args`)."""
    return {
        "idem": idem_slot(doc), "fingerprint": fp,
        "trace": _json(doc["trace"]) if doc.get("trace") else "",
    }


def _unrouted(doc: Mapping[str, Any]) -> str:
    """The document as CREATE takes it: what the agent sent, without any routed field."""
    return _json({k: v for k, v in doc.items() if k not in ROUTED_FIELDS})


def create_plan_args(
    keys: Keys, head: dict[str, Any], steps: Sequence[dict[str, Any]], retention: int, metrics: bool = True,
    default_channel: str | None = None,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV for `scripts.CREATE`: `head` (a request, or a plan) and its `steps`."""
    step_specs = [_create_spec(d, fingerprint(d)) for d in steps]
    head_spec = _create_spec(head, fingerprint(head, [s["fingerprint"] for s in step_specs]))
    payload = {
        "names": key_names(keys), "retention": retention, "default_channel": default_channel or "",
        "requests": [head_spec, *step_specs],
    }
    if metrics:
        payload["metrics"] = True
    docs = [_unrouted(head), *(_unrouted(d) for d in steps)]
    return [keys.timers, keys.events, keys.paused, keys.policy_table], [_json(payload), *docs]


def create_args(
    keys: Keys, doc: dict[str, Any], retention: int, metrics: bool = True, default_channel: str | None = None
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV for `scripts.CREATE` of one request."""
    return create_plan_args(keys, doc, (), retention, metrics, default_channel)


Created = tuple[str, Mode, Status, dict[str, Any]]


def parse_created(result: Sequence[Any]) -> list[Created] | str:
    """CREATE's answer: (id, mode, status, routed fields) per request created, or the
    existing head's id.

    Raises `IdempotencyConflict` when the key belongs to a request with other content, and
    `InvalidRequest` naming the field the policy in force refused."""
    kind = as_str(result[0])
    if kind == "existing":
        return as_str(result[1])
    if kind == "conflict":
        raise IdempotencyConflict(caller_key(as_str(result[1])), as_str(result[2]), as_str(result[3]))
    if kind == "invalid":
        raise InvalidRequest(as_str(result[1]), as_str(result[2]))
    return [
        (
            as_str(result[i]), Mode(as_str(result[i + 1])), Status(as_str(result[i + 2])),
            json.loads(as_str(result[i + 3])),
        )
        for i in range(1, len(result), 4)
    ]


def apply_routes(docs: Sequence[dict[str, Any]], created: Sequence[Created]) -> None:
    """Put CREATE's routing into the documents as filed, so they read as stored."""
    for doc, (_rid, _mode, _status, routed) in zip(docs, created, strict=True):
        doc.update(routed)


def _fields(raw: Sequence[Any]) -> dict[str, str]:
    """`scripts.READ`'s flat [field, value, ...] answer as a dict."""
    return {as_str(raw[i]): as_str(raw[i + 1]) for i in range(0, len(raw), 2)}


def parse_request(raw: Sequence[Any]) -> Request:
    """Build a `Request` from `scripts.READ`'s answer: the document overlaid with live fields."""
    h = _fields(raw)
    doc = json.loads(h["doc"])
    doc["status"] = h["status"]
    doc["mode"] = h["mode"]
    doc["version"] = int(h["version"])
    doc["votes"] = json.loads(h.get("votes") or "[]")
    doc["by"] = json.loads(h.get("by") or "[]")
    doc["comment"] = h.get("comment") or None
    doc["decided_params"] = json.loads(h["params"]) if h.get("params") else None
    doc["verdict"] = h.get("verdict") or None
    doc["decided_at"] = int(h["decided_ms"]) / 1000 if h.get("decided_ms") else None
    doc["escalated"] = int(h.get("escalated") or 0)
    doc["paused"] = h.get("paused") == "1"
    doc["execution"] = h.get("execution") or None
    doc["grant"] = json.loads(h["grant"]) if h.get("grant") else None
    if h.get("deadline"):
        doc["deadline"] = float(h["deadline"])
    return Request.model_validate(doc)


def parse_placement(raw: Sequence[Any]) -> CardPlacement:
    """Build a request's `CardPlacement` from the same `scripts.READ` answer `parse_request`
    reads: the placement fields live in the request's hash, so both come in one round trip."""
    h = _fields(raw)
    return CardPlacement(
        channel=h.get("card_channel") or None,
        ts=h.get("card_ts") or None,
        digest=h.get("digest") or None,
        mirrors=json.loads(h["mirrors"]) if h.get("mirrors") else [],
    )


def parse_placed(raw: Sequence[Any]) -> Placed:
    """A request and where it shows, from one `scripts.READ` answer."""
    return Placed(parse_request(raw), parse_placement(raw))


def transition_args(
    keys: Keys,
    request_id: str,
    verb: Transition,
    *,
    by: str | None,
    groups: Sequence[str],
    comment: str | None,
    params: dict[str, Any] | None,
    version: int | None,
    retention: int,
    metrics: bool = True,
) -> tuple[list[str], list[Any]]:
    """KEYS and ARGV for `scripts.TRANSITION`; the script reads the time from Redis.
    `RequestNotFound` for a string that is no request id (the script builds keys from it)."""
    known_shape(request_id)
    payload: dict[str, Any] = {
        "names": key_names(keys), "retention": retention, "id": request_id, "verb": verb, "by": by or "",
        "groups": list(groups), "comment": comment or "", "params": "" if params is None else _json(params),
        "version": "" if version is None else str(version),
    }
    if metrics:
        payload["metrics"] = True
    return [keys.timers, keys.events], [_json(payload)]


def check_transition(request_id: str, verb: Transition, result: Sequence[Any]) -> Status:
    """Raise the right `TransitionRefused` for a refused transition; return the new status."""
    kind = as_str(result[0])
    if kind == "missing":
        raise RequestNotFound(request_id)
    if kind == "ok":
        return Status(as_str(result[1]))
    raise _refusal(request_id, verb, result)


def check_traced(request_id: str, verb: Transition, result: Sequence[Any]) -> tuple[Status, dict[str, str]]:
    """`check_transition`, plus the request's stored trace context ({} when untraced)."""
    status = check_transition(request_id, verb, result)
    raw = as_str(result[5]) if len(result) > 5 else ""
    return status, (json.loads(raw) if raw else {})


def _refusal(request_id: str, verb: str, result: Sequence[Any]) -> TransitionRefused:
    reason, status = as_str(result[1]), as_str(result[2])
    if reason == "final":
        return AlreadyDecided(request_id, status, json.loads(as_str(result[4]) or "[]"))
    if reason == "expired":
        return DeadlinePassed(request_id, status, float(as_str(result[5])))
    if reason == "stale":
        return StaleVersion(
            request_id, "stale", f"request {request_id} changed since this card was drawn; look again"
        )
    if reason in _REFUSALS:
        return NotAllowed(request_id, reason, _REFUSALS[reason])
    return TransitionRefused(request_id, "verb", f"cannot {verb} request {request_id} while it is {status}")


def parse_outcome(token: Any) -> dict[str, Any] | None:
    return None if token is None else json.loads(token)


def apply_outcome(req: Request, outcome: dict[str, Any]) -> Request:
    """The request as the final transition left it, from the outcome on the done list."""
    return req.model_copy(
        update={
            "status": Status(outcome["status"]),
            "by": outcome["by"],
            "comment": outcome["comment"] or None,
            "decided_params": outcome["params"],
            "verdict": outcome["verdict"] or None,
            "decided_at": outcome["decided_ms"] / 1000,
            "grant": outcome.get("grant"),
        }
    )


def escalation_step(req: Request, step: int) -> EscalationStep | None:
    return req.escalation[step - 1] if 0 < step <= len(req.escalation) else None


class _Base:
    def __init__(
        self, keys: Keys, retention: int, metrics: bool = True, default_channel: str | None = None
    ) -> None:
        self.keys = keys
        self.retention = retention
        # Whether the scripts count into the shared Prometheus figures (HITL_METRICS).
        self.metrics = metrics
        # HITL_DEFAULT_CHANNEL: where a card goes when neither policy nor request says.
        self.default_channel = default_channel

    def _create_args(
        self, head: dict[str, Any], steps: Sequence[dict[str, Any]] = ()
    ) -> tuple[list[str], list[Any]]:
        return create_plan_args(self.keys, head, steps, self.retention, self.metrics, self.default_channel)

    def read_keys(self, request_id: str) -> list[str]:
        """KEYS of `scripts.READ` for one request; `RequestNotFound` for a string that is
        no request id, before it can name any key."""
        return [self.keys.req(known_shape(request_id)), self.keys.events]


class Store(_Base):
    """Synchronous access to requests in Redis."""

    def __init__(
        self, client: redis.Redis, keys: Keys, retention: int = 30 * 86400, metrics: bool = True,
        default_channel: str | None = None,
    ) -> None:
        super().__init__(keys, retention, metrics, default_channel)
        self.redis = client
        self._create = client.register_script(scripts.CREATE)
        self._read = client.register_script(scripts.READ)
        self._transition = client.register_script(scripts.TRANSITION)
        self._escalate = client.register_script(scripts.ESCALATE)
        self._claim = client.register_script(scripts.CLAIM)
        self._ack = client.register_script(scripts.ACK)
        self._pause = client.register_script(scripts.PAUSE)

    def create(self, doc: dict[str, Any]) -> tuple[bool, str, Mode, Status]:
        """Store a new request, routed by the script with the policy in force (`doc` gets
        the routed fields); `(False, existing_id, ...)` when its idempotency key is known
        with the same content. Raises `IdempotencyConflict` when the content differs, and
        `InvalidRequest` when the policy in force refuses it."""
        created = parse_created(self._create(*self._create_args(doc)))
        if isinstance(created, str):
            existing = self.get(created)
            return False, existing.id, existing.mode, existing.status
        apply_routes([doc], created)
        rid, mode, status, _ = created[0]
        return True, rid, mode, status

    def create_plan(self, plan: dict[str, Any], steps: Sequence[dict[str, Any]]) -> Request | None:
        """Store a plan and its steps in one script call, all or nothing; None when created,
        the existing plan when its idempotency key is known with the same plan and steps."""
        created = parse_created(self._create(*self._create_args(plan, steps)))
        if isinstance(created, str):
            return self.get(created)
        apply_routes([plan, *steps], created)
        return None

    def create_many(self, docs: Sequence[dict[str, Any]]) -> None:
        """Store several unrelated new requests in one round trip (seeding, benchmarks)."""
        pipe = self.redis.pipeline(transaction=False)
        for doc in docs:
            keys_, argv = self._create_args(doc)
            self._create(keys=keys_, args=argv, client=pipe)
        for doc, result in zip(docs, pipe.execute(), strict=True):
            created = parse_created(result)
            if not isinstance(created, str):
                apply_routes([doc], created)

    def get(self, request_id: str) -> Request:
        raw = self._read(keys=self.read_keys(request_id))
        if not raw:
            raise RequestNotFound(request_id)
        return parse_request(raw)

    def get_many(self, ids: Sequence[str]) -> list[Request]:
        """Requests by id in one round trip; ids that aged out are skipped."""
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            self._read(keys=[self.keys.req(rid), self.keys.events], client=pipe)
        return [parse_request(raw) for raw in pipe.execute() if raw]

    def get_placed(self, request_id: str) -> Placed:
        """A request and where it shows in Slack (for the bot and the delivery workers)."""
        raw = self._read(keys=self.read_keys(request_id))
        if not raw:
            raise RequestNotFound(request_id)
        return parse_placed(raw)

    def get_many_placed(self, ids: Sequence[str]) -> list[Placed]:
        """`get_many`, each request with where it shows; one round trip."""
        if not ids:
            return []
        pipe = self.redis.pipeline(transaction=False)
        for rid in ids:
            self._read(keys=[self.keys.req(rid), self.keys.events], client=pipe)
        return [parse_placed(raw) for raw in pipe.execute() if raw]

    def status(self, request_id: str) -> Status:
        value = self.redis.hget(self.keys.req(known_shape(request_id)), "status")
        if value is None:
            raise RequestNotFound(request_id)
        return Status(as_str(value))

    def transition(
        self,
        request_id: str,
        verb: Transition,
        *,
        by: str | None = None,
        groups: Sequence[str] = (),
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> Status:
        """Apply `verb` (a person's `Verb` or a `SystemVerb`) atomically; the new status.

        Raises the `TransitionRefused` subclass that says why when it is refused."""
        return self.transition_traced(
            request_id, verb, by=by, groups=groups, comment=comment, params=params, version=version
        )[0]

    def transition_traced(
        self,
        request_id: str,
        verb: Transition,
        *,
        by: str | None = None,
        groups: Sequence[str] = (),
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> tuple[Status, dict[str, str]]:
        """`transition`, plus the request's stored trace context, read by the same script
        (so a transition joins the request's trace without a second round trip)."""
        keys_, argv = transition_args(
            self.keys, request_id, verb, by=by, groups=groups, comment=comment, params=params,
            version=version, retention=self.retention, metrics=self.metrics,
        )
        return check_traced(request_id, verb, self._transition(keys=keys_, args=argv))

    def escalate(self, request_id: str, step: int) -> bool:
        keys_ = [self.keys.req(request_id), self.keys.timers, self.keys.events]
        res = self._escalate(keys=keys_, args=[request_id, step, now_ms()])
        return as_str(res[0]) == "ok"

    def claim_timers(self, lease: float, limit: int = 500) -> list[tuple[str, int, int]]:
        """Lease due timers: [(member, due_ms, lease_score)]."""
        res = self._claim(keys=[self.keys.timers], args=[now_ms(), int(lease * 1000), limit])
        return [
            (as_str(res[i]), int(float(res[i + 1])), int(float(res[i + 2]))) for i in range(0, len(res), 3)
        ]

    def ack_timer(self, member: str, lease_score: int) -> bool:
        return bool(self._ack(keys=[self.keys.timers], args=[member, lease_score]))

    def pause(self, scope: str, by: str, *, on: bool = True) -> bool:
        """Kill switch on or off for `scope` ("*" or an action), audited; False if unchanged."""
        verb = "pause" if on else "resume"
        return bool(self._pause(keys=[self.keys.paused, self.keys.events], args=[verb, scope, by]))


class AsyncStore(_Base):
    """The asyncio twin of `Store`, for agents running in an event loop."""

    def __init__(
        self, client: aioredis.Redis, keys: Keys, retention: int = 30 * 86400, metrics: bool = True,
        default_channel: str | None = None,
    ) -> None:
        super().__init__(keys, retention, metrics, default_channel)
        self.redis = client
        self._create = client.register_script(scripts.CREATE)
        self._read = client.register_script(scripts.READ)
        self._transition = client.register_script(scripts.TRANSITION)

    async def create(self, doc: dict[str, Any]) -> tuple[bool, str, Mode, Status]:
        created = parse_created(await self._create(*self._create_args(doc)))
        if isinstance(created, str):
            existing = await self.get(created)
            return False, existing.id, existing.mode, existing.status
        apply_routes([doc], created)
        rid, mode, status, _ = created[0]
        return True, rid, mode, status

    async def create_plan(self, plan: dict[str, Any], steps: Sequence[dict[str, Any]]) -> Request | None:
        created = parse_created(await self._create(*self._create_args(plan, steps)))
        if isinstance(created, str):
            return await self.get(created)
        apply_routes([plan, *steps], created)
        return None

    async def get(self, request_id: str) -> Request:
        raw = await self._read(keys=self.read_keys(request_id))
        if not raw:
            raise RequestNotFound(request_id)
        return parse_request(raw)

    async def status(self, request_id: str) -> Status:
        value = await self.redis.hget(self.keys.req(known_shape(request_id)), "status")
        if value is None:
            raise RequestNotFound(request_id)
        return Status(as_str(value))

    async def transition(
        self,
        request_id: str,
        verb: Transition,
        *,
        by: str | None = None,
        groups: Sequence[str] = (),
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> Status:
        return (await self.transition_traced(
            request_id, verb, by=by, groups=groups, comment=comment, params=params, version=version
        ))[0]

    async def transition_traced(
        self,
        request_id: str,
        verb: Transition,
        *,
        by: str | None = None,
        groups: Sequence[str] = (),
        comment: str | None = None,
        params: dict[str, Any] | None = None,
        version: int | None = None,
    ) -> tuple[Status, dict[str, str]]:
        keys_, argv = transition_args(
            self.keys, request_id, verb, by=by, groups=groups, comment=comment, params=params,
            version=version, retention=self.retention, metrics=self.metrics,
        )
        return check_traced(request_id, verb, await self._transition(keys=keys_, args=argv))
