"""Grants: "approve, and the next ones like it for a while".

A reviewer approving a gate request may also grant the same action, from the same
requester (the API key that filed it, `via`, and `requested_by`), in the same channel
with the same approvers, for at most a chosen time and a number of uses, optionally with
some parameters pinned to this request's values. While a grant holds, the CREATE script
approves a matching request at once and spends one use in the same atomic call (see
`hitl.scripts._GRANTS`), so concurrent requests never spend more than the grant has.

Only hitl's own processes create grants (the bot, after the reviewer's approval went
through the TRANSITION script): an API key cannot grant, and nothing here is reachable
from `/v1` or MCP. The policy in force decides what is grantable (`grants:` in
`hitl.policy`): CREATE records it on each request as `Request.grantable`, and spends a
grant only while the policy in force still allows one for that request. A quorum request
grants only once its quorum chose to (`GRANT_VOTE`). The kill switch suspends grants.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import redis

from hitl import scripts
from hitl.errors import HitlError
from hitl.keys import Keys
from hitl.models import Request
from hitl.redisvalues import as_str
from hitl.store import key_names, now_ms

# The durations a reviewer is offered, in seconds (those up to the policy's `max`).
CHOICES: tuple[tuple[float, str], ...] = (
    (900, "15 minutes"), (3600, "1 hour"), (4 * 3600, "4 hours"), (8 * 3600, "8 hours"),
    (24 * 3600, "1 day"), (7 * 86400, "7 days"),
)
DEFAULT_SECONDS = 3600.0  # "Approve for 1 hour"


class GrantEvent(StrEnum):
    """Audit event types of grants (`{p}:events`)."""

    VOTED = "grant_voted"  # one of a quorum chose to grant; not live yet
    CREATED = "grant_created"
    USED = "grant_used"  # a request approved by a grant (written by CREATE)
    REVOKED = "grant_revoked"


class Ended(StrEnum):
    """Why a grant is no longer live (besides running out of time)."""

    REVOKED = "revoked"
    USED_UP = "used_up"


class NotGrantable(HitlError):
    """The policy in force does not let this request be granted, or the choice is too wide."""


class VoteOutcome(StrEnum):
    CREATED = "created"
    VOTED = "voted"  # waiting for the rest of the quorum
    REFUSED = "refused"  # not approved (rejected, expired meanwhile), or not by this person


@dataclass(frozen=True, slots=True)
class Vote:
    outcome: VoteOutcome
    grant_id: str | None = None
    until: float | None = None  # epoch seconds
    uses: int | None = None
    votes: int = 0
    quorum: int = 1


@dataclass(frozen=True, slots=True)
class Grant:
    """A grant as `/hitl grants` lists it."""

    id: str
    action: str
    via: str
    requested_by: str
    channel: str
    by: list[str]
    until: float  # epoch seconds
    uses: int
    uses_left: int
    request: str
    pins: dict[str, Any] = field(default_factory=dict)
    ended: Ended | None = None

    @property
    def live(self) -> bool:
        return self.ended is None and self.uses_left > 0 and self.until * 1000 > now_ms()


def new_grant_id() -> str:
    """`g` and 10 hex digits: short enough to type in `/hitl grants revoke`."""
    return "g" + secrets.token_hex(5)


def is_grant_id(text: str) -> bool:
    return len(text) == 11 and text[0] == "g" and all(c in "0123456789abcdef" for c in text[1:])


def choices(req: Request) -> list[tuple[float, str]]:
    """The durations offered for `req`: those within its policy's `max` (the max itself
    when it is shorter than every choice)."""
    limits = req.grantable
    if limits is None:
        return []
    within = [(s, label) for s, label in CHOICES if s <= limits.max]
    return within or [(limits.max, f"{limits.max / 60:g} minutes")]


def pinnable(req: Request) -> dict[str, Any]:
    """The parameters a grant may pin: the scalar ones (text, numbers, true/false)."""
    scalar = str | int | float | bool
    return {k: v for k, v in req.effective_params.items() if isinstance(v, scalar)}


def check_choice(req: Request, seconds: float, uses: int, pins: Sequence[str]) -> dict[str, Any]:
    """The pins as {param: value}; `NotGrantable` naming what is out of bounds."""
    limits = req.grantable
    if limits is None or req.batch or req.items:
        raise NotGrantable(f"the policy does not let {req.action} be granted")
    if not 0 < seconds <= limits.max:
        raise NotGrantable(f"a grant on {req.action} may last at most {limits.max / 3600:g} h")
    if not 1 <= uses <= limits.max_uses:
        raise NotGrantable(f"a grant on {req.action} may cover 1 to {limits.max_uses} requests")
    values = pinnable(req)
    unknown = [p for p in pins if p not in values]
    if unknown:
        raise NotGrantable(f"cannot pin {', '.join(unknown)}: not a text, number or true/false parameter")
    return {p: values[p] for p in pins}


def _parse(raw: Mapping[Any, Any]) -> Grant | None:
    h = {as_str(k): as_str(v) for k, v in raw.items()}
    if not h.get("id"):
        return None
    return Grant(
        id=h["id"], action=h.get("action", ""), via=h.get("via", ""), requested_by=h.get("requested_by", ""),
        channel=h.get("channel", ""), by=json.loads(h.get("by") or "[]"),
        until=int(h.get("until_ms") or 0) / 1000, uses=int(h.get("uses") or 0),
        uses_left=int(h.get("uses_left") or 0), request=h.get("request", ""),
        pins=json.loads(h.get("pins") or "{}"), ended=Ended(h["ended"]) if h.get("ended") else None,
    )


class GrantStore:
    """Grants in Redis, for hitl's own processes (the bot's listeners, `/hitl grants`)."""

    def __init__(self, client: redis.Redis, keys: Keys, retention: int = 30 * 86400) -> None:
        self.redis = client
        self.keys = keys
        self.retention = retention
        self._vote = client.register_script(scripts.GRANT_VOTE)
        self._revoke = client.register_script(scripts.GRANT_REVOKE)

    def vote(self, req: Request, by: str, *, seconds: float, uses: int, pins: Sequence[str] = ()) -> Vote:
        """`by` approved `req` and chose to grant: record it; the grant goes live once the
        request's quorum chose so. Call only after the approval succeeded."""
        pinned = check_choice(req, seconds, uses, pins)
        grant_id = new_grant_id()
        payload = {
            "id": grant_id, "request": req.id, "by": by, "seconds": seconds, "uses": uses,
            "pins": pinned or {},
            "covers": {
                "action": req.action, "via": req.via or "", "requested_by": req.requested_by or "",
                "channel": req.channel or "", "quorum": req.quorum,
                "approvers": json.dumps(req.approvers, separators=(",", ":")) if req.approvers else "[]",
            },
            "retention": self.retention,
            "events": {"voted": GrantEvent.VOTED.value, "created": GrantEvent.CREATED.value},
        }
        keys_ = [
            self.keys.grant_votes(req.id), self.keys.req(req.id), self.keys.grants,
            self.keys.grants_action(req.action), self.keys.grant(grant_id), self.keys.events,
        ]
        text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
        res = self._vote(keys=keys_, args=[text])
        kind = VoteOutcome(as_str(res[0]))
        if kind is VoteOutcome.CREATED:
            return Vote(kind, grant_id, int(res[1]) / 1000, int(res[2]), req.quorum, req.quorum)
        if kind is VoteOutcome.VOTED:
            return Vote(kind, votes=int(res[1]), quorum=int(res[2]))
        return Vote(kind)

    def get(self, grant_id: str) -> Grant | None:
        if not is_grant_id(grant_id):
            return None
        return _parse(self.redis.hgetall(self.keys.grant(grant_id)))

    def live(self) -> list[Grant]:
        """Every live grant, soonest to end first."""
        ids = [as_str(i) for i in self.redis.zrangebyscore(self.keys.grants, f"({now_ms()}", "+inf")]
        pipe = self.redis.pipeline(transaction=False)
        for gid in ids:
            pipe.hgetall(self.keys.grant(gid))
        grants = [g for g in (_parse(raw) for raw in pipe.execute()) if g is not None]
        return [g for g in grants if g.live]

    def revoke(self, *, by: str, ids: Sequence[str] = (), action: str | None = None) -> list[str]:
        """End the grants `ids`, or every grant on `action`, at once; the ids revoked."""
        names = key_names(self.keys)
        payload: dict[str, Any] = {
            "names": {"grant": names["grant"], "grants_action": names["grants_action"]},
            "by": by, "event": GrantEvent.REVOKED.value,
        }
        if action is not None:
            payload["action"] = action
        else:
            payload["ids"] = [i for i in ids if is_grant_id(i)]
            if not payload["ids"]:
                return []
        res = self._revoke(keys=[self.keys.grants, self.keys.events], args=[json.dumps(payload)])
        return [as_str(r) for r in res]
