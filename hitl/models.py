"""What a request and a decision look like, validated with pydantic.

`RequestInput` is what an agent hands to `Approvals.request()`: it is checked field by
field so a mistake surfaces as one `InvalidRequest` naming the argument. `Request` is the
stored record (input + routing + live state) and `Decision` is what a waiting agent gets.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hitl.errors import HitlError, InvalidRequest
from hitl.fields import FIELD_DOCS, REQUIRED, RequestFields, names
from hitl.slackids import check_mentionable, is_email, is_user
from hitl.status import ApproverSource, ExecutionState, Mode, Risk, Status

# Largest JSON encoding of `params` accepted; larger payloads belong in a link, not a card.
MAX_PARAMS_BYTES = 256 * 1024
# Longest summary: it is the card's headline text and must stay readable.
MAX_SUMMARY_CHARS = 2_000
# Longest context (markdown reasoning shown under "Details").
MAX_CONTEXT_CHARS = 20_000
# Most distinct approvals a request may require.
MAX_QUORUM = 10
# Deepest nesting of lists and objects in `params`: deeper input is refused before it is
# encoded, so it can never reach a recursive encoder (RecursionError).
MAX_PARAMS_DEPTH = 32
# Longest timeout, window or policy duration: 30 days. A deadline past that is a mistake.
MAX_DURATION = 30 * 86400.0
# Longest reviewer comment: Slack's section text limit, where the card shows it. The reject
# modal (bot/slack/blocks/views.py) allows 2,000, so a click never hits this.
MAX_COMMENT_CHARS = 3_000
# Longest callback_url.
MAX_URL_CHARS = 2_000


def to_seconds(value: float | int | timedelta | None, field: str) -> float | None:
    """Accept seconds or a timedelta, as the contract promises for `timeout` and `window`."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidRequest(field, "must be a number of seconds or a timedelta")
    if value <= 0:
        raise InvalidRequest(field, f"must be positive, got {value:g}")
    if value > MAX_DURATION:
        raise InvalidRequest(field, f"is {value:g}s; the longest allowed is 30 days ({MAX_DURATION:g}s)")
    return float(value)


def too_deep(value: Any, limit: int = MAX_PARAMS_DEPTH) -> bool:
    """Whether lists/objects nest deeper than `limit`, found without recursion.

    Only containers are stacked, so the cost is one type check per value.
    """
    containers = (dict, list, tuple)
    if not isinstance(value, containers):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        for child in item.values() if isinstance(item, dict) else item:
            if isinstance(child, containers):
                stack.append((child, depth + 1))
    return False


def check_params(params: Any, field: str = "params") -> int:
    """Refuse params that are not a bounded JSON object; return their encoded size in bytes."""
    if not isinstance(params, dict):
        raise InvalidRequest(field, "must be a JSON object")
    if too_deep(params):
        raise InvalidRequest(field, f"nests lists/objects deeper than {MAX_PARAMS_DEPTH} levels; flatten it")
    try:
        size = len(json.dumps(params, allow_nan=False, ensure_ascii=False).encode())
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(field, f"must be JSON-serialisable ({exc})") from None
    if size > MAX_PARAMS_BYTES:
        raise InvalidRequest(
            field,
            f"is {size:,} bytes as JSON; the limit is {MAX_PARAMS_BYTES:,}. "
            "Pass a reference (a URL or an id) to large data instead",
        )
    return size


def check_comment(comment: Any) -> str | None:
    """A reviewer's comment: text of at most MAX_COMMENT_CHARS characters."""
    if comment is None:
        return None
    if not isinstance(comment, str):
        raise InvalidRequest("comment", "must be text")
    if len(comment) > MAX_COMMENT_CHARS:
        raise InvalidRequest(
            "comment", f"is {len(comment):,} characters; the limit is {MAX_COMMENT_CHARS:,} (shorten it)"
        )
    return comment


class EscalationStep(BaseModel):
    """One rung of an escalation ladder, frozen into a request when it is created."""

    model_config = ConfigDict(extra="forbid")

    after: float = Field(gt=0, description="seconds after creation")
    notify: list[str] = Field(default_factory=list, description="user or group ids to mention")
    channel: str | None = Field(default=None, description="also repost the card in this channel")


def describe_fields(schema: dict[str, Any]) -> None:
    """Each property's description, from its docstring in `hitl.fields` (MCP and OpenAPI):
    a model's `json_schema_extra`."""
    for name, prop in schema.get("properties", {}).items():
        if name in FIELD_DOCS:
            prop.setdefault("description", FIELD_DOCS[name])


class RequestInput(BaseModel):
    """The agent's side of a request, before policy fills the gaps.

    Its fields are `hitl.fields.RequestFields` (and `action`, `summary`) as they are once
    checked: the bounds live here, the names and the callers' types there. The two are
    compared when this module is imported, so neither can gain a field the other lacks.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, json_schema_extra=describe_fields)

    action: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:/-]+$")
    summary: str = Field(min_length=1, max_length=MAX_SUMMARY_CHARS)
    params: dict[str, Any] = Field(default_factory=dict)
    context: str | None = Field(default=None, max_length=MAX_CONTEXT_CHARS)
    agent: str | None = Field(default=None, max_length=100)
    run_id: str | None = Field(default=None, max_length=200)
    risk: Risk | None = None
    reversible: bool | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    mode: Mode | None = None
    channel: str | None = Field(default=None, max_length=100)
    approvers: list[str] | None = None
    requested_by: str | None = Field(default=None, max_length=320)
    quorum: int | None = Field(default=None, ge=1, le=MAX_QUORUM)
    timeout: float | None = Field(default=None, gt=0, le=MAX_DURATION)
    window: float | None = Field(default=None, gt=0, le=MAX_DURATION)
    idempotency_key: str | None = Field(default=None, min_length=1, max_length=200)
    # Where the decision is POSTed once final (checked against HITL_WEBHOOK_ALLOWED when routed).
    callback_url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_CHARS)

    @field_validator("callback_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return url

    @field_validator("params", mode="before")
    @classmethod
    def _params_are_json(cls, params: Any) -> Any:
        if params is None:
            return {}
        try:
            check_params(params)
        except InvalidRequest as exc:
            raise ValueError(str(exc).split(": ", 1)[1]) from None
        return params

    @field_validator("approvers", mode="before")
    @classmethod
    def _approver_ids(cls, approvers: Any) -> Any:
        if approvers is None:
            return None
        if isinstance(approvers, str) or not isinstance(approvers, list | tuple):
            raise ValueError("must be a list of Slack user (U…/W…) or user group (S…) ids")
        return check_mentionable(list(approvers))

    @field_validator("requested_by", mode="before")
    @classmethod
    def _requester(cls, who: Any) -> Any:
        if who is None:
            return None
        who = who.strip() if isinstance(who, str) else who
        if not (is_user(who) or is_email(who)):
            raise ValueError(
                f"{who!r} is neither a Slack user id (U…/W…) nor an email address; pass the "
                "person's Slack user id, or the email they use in Slack"
            )
        return who

    @classmethod
    def parse(cls, **kwargs: Any) -> RequestInput:
        """Validate, turning pydantic's report into one `InvalidRequest` naming the field."""
        for name in ("timeout", "window"):
            kwargs[name] = to_seconds(kwargs.get(name), name)
        for name in ("action", "summary"):
            if kwargs.get(name) is None:
                kwargs.pop(name, None)
        try:
            return cls(**kwargs)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "request"
            msg = first["msg"].removeprefix("Value error, ")
            if first["type"] == "missing":
                msg = "is required"
            elif first["type"] == "enum":
                msg = f"{first['input']!r} is not one of {first['ctx']['expected']}"
            elif first["type"] == "string_pattern_mismatch":
                msg = "may only contain letters, digits and _ . : / - (no spaces); it names the tool"
            elif first["type"] == "extra_forbidden":
                msg = "is not a known argument"
            raise InvalidRequest(field, msg) from None


def _same_fields() -> None:
    """Refuse to import when `RequestInput` and `hitl.fields.RequestFields` disagree: the
    one declaration of the fields would no longer reach the clients (or the checks)."""
    declared, checked = {*REQUIRED, *names(RequestFields)}, set(RequestInput.model_fields)
    if declared != checked:
        raise TypeError(
            f"hitl.fields.RequestFields and hitl.models.RequestInput disagree: only declared "
            f"{sorted(declared - checked)}, only checked {sorted(checked - declared)}"
        )


_same_fields()


class GrantLimits(BaseModel):
    """What the policy in force let a grant on this request be at most (`grants:`)."""

    max: float = Field(description="seconds a grant may last at most")
    max_uses: int = Field(description="requests a grant may approve at most")


class GrantRef(BaseModel):
    """The grant that approved a request: which one, and who granted it."""

    id: str = Field(description="the grant's id (`/hitl grants`)")
    by: list[str] = Field(description="Slack user ids who granted it")
    until: float = Field(description="epoch seconds: when the grant ends")
    uses_left: int = Field(description="requests the grant may still approve")


class Request(BaseModel):
    """A stored request: what the agent asked, how policy routed it, and where it stands."""

    id: str
    action: str
    summary: str
    params: dict[str, Any] = Field(default_factory=dict)
    context: str | None = None
    agent: str | None = None
    run_id: str | None = None
    risk: Risk | None = None
    reversible: bool | None = None
    confidence: float | None = None
    mode: Mode
    urgent: bool = False  # confidence below the policy's urgent_below
    # Confidence below the policy's gate_below, decided when filed so the card's warning
    # follows the policy in force. None on requests filed before this field existed.
    low_confidence: bool | None = None
    channel: str | None = None
    # Channels the agent asked for besides the policy's: the card is mirrored there too.
    mirror_channels: list[str] = Field(default_factory=list)
    approvers: list[str] = Field(default_factory=list)
    # Who named the approvers: the policy's, or the agent's own (which only narrow who may
    # decide, never widen it: see bot.access). None: no approvers, or filed before this.
    approvers_from: ApproverSource | None = None
    requested_by: str | None = None
    quorum: int = 1
    timeout: float | None = None
    window: float | None = None
    escalation: list[EscalationStep] = Field(default_factory=list)
    idempotency_key: str | None = None
    callback_url: str | None = None  # decision webhook destination
    via: str | None = None  # the API key (its name) that filed it; None from the Python client
    batch: str | None = None  # an item of a plan: the plan request's id
    items: list[str] = Field(default_factory=list)  # a plan: its items' ids, in order
    created_at: float
    deadline: float | None = None  # epoch seconds: gate/shadow expiry or override window end
    paused: bool = False  # raised to gate by the kill switch
    # The published policy version CREATE routed it under (0: no policy published).
    policy_version: int = 0
    # Whether (and how far) a reviewer may grant "this and the next ones like it", as the
    # policy in force said when it was routed; None: not grantable (see hitl.grants).
    grantable: GrantLimits | None = None
    # live state
    status: Status
    version: int = 1
    votes: list[str] = Field(default_factory=list)
    by: list[str] = Field(default_factory=list)
    comment: str | None = None
    decided_params: dict[str, Any] | None = None
    verdict: str | None = None
    decided_at: float | None = None
    escalated: int = 0
    # The one tool call the approval allows (hitl.executions); None until an adapter starts it.
    execution: ExecutionState | None = None
    # The W3C trace context (traceparent, tracestate) of the `hitl.request` span, so every
    # later step's span joins the agent's trace (see hitl.tracing); empty when not traced.
    trace: dict[str, str] = Field(default_factory=dict)
    # The grant that approved it at once, when one did.
    grant: GrantRef | None = None

    @property
    def final(self) -> bool:
        return self.status.final

    @property
    def effective_params(self) -> dict[str, Any]:
        """The parameters as they stand: edited by a reviewer, else as the agent sent them."""
        return self.decided_params if self.decided_params is not None else self.params

    def decision(self) -> Decision:
        return Decision.from_request(self)


class CardPlacement(BaseModel):
    """Where a request shows in Slack: its card, the digest it is listed on, its copies.

    Kept apart from `Request` because it is delivery bookkeeping, not the request: agents,
    the HTTP API and MCP never see it; the bot (who may see a card, where it is) and the
    delivery workers (what to redraw) read it next to the request, from the same hash and
    the same READ reply (`Store.get_placed`). `hitl.placement.Placement` writes it."""

    channel: str | None = None  # the channel the card was posted in (Slack's id for it)
    ts: str | None = None  # the card's message ts; None until a card or digest is posted
    digest: str | None = None  # key of the digest card's member list, when shown on a digest
    mirrors: list[tuple[str, str]] = Field(default_factory=list)  # reposts: (channel, ts)


@dataclass(frozen=True, slots=True)
class Placed:
    """A request and where it shows, read together (one round trip)."""

    req: Request
    card: CardPlacement


class Decision(BaseModel):
    """What the agent learns. `approved` is True only when the agent may (still) act."""

    request_id: str
    action: str
    mode: Mode
    status: Status
    approved: bool
    by: list[str] = Field(default_factory=list)
    comment: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    verdict: str | None = None  # shadow mode: "approve" or "reject", what the reviewer would do
    decided_at: float | None = None
    grant: GrantRef | None = None  # approved by this grant, not by a click on its own card

    def explanation(self) -> str:
        """The outcome in words a model can act on: who decided, why, and what to do now.

        Shared by `hitl.Rejected`, the MCP tools, the HTTP API and framework adapters so
        every agent hears the same thing. An expired request says that no one decided in
        time; it never reads as a rejection.
        """
        who = f" by {', '.join(self.by)}" if self.by else ""
        why = f": {self.comment}" if self.comment else ""
        action = self.action
        match self.status:
            case Status.APPROVED if self.grant is not None:
                return (
                    f"{action} was approved by grant {self.grant.id} from {', '.join(self.grant.by)}. "
                    "Go ahead, with the parameters in params."
                )
            case Status.APPROVED:
                return f"{action} was approved{who}{why}. Go ahead, with the parameters in params."
            case Status.REJECTED:
                return f"{action} was rejected{who}{why}. Do not do it; take the reason into account."
            case Status.EXPIRED:
                return (
                    f"No one decided on {action} in time: the request expired without an answer from a "
                    "reviewer. It was not approved, so do not do it now; ask again later or ask the user."
                )
            case Status.CANCELLED:
                return f"The request for {action} was cancelled{who} before anyone decided. Do not do it."
            case Status.VETOED:
                return f"{action} was vetoed{who}{why}. Undo it if you can and do not repeat it."
            case Status.FINALIZED:
                return f"{action} stands: the veto window closed{who} without a veto."
            case Status.JUDGED:
                verdict = {"approve": "approved", "reject": "rejected"}.get(self.verdict or "", "judged")
                return f"Shadow review of {action}: the reviewer would have {verdict} it{who}{why}. Carry on."
            case Status.OPEN:
                return f"{action} may go ahead; a reviewer can still veto it until its window closes."
            case _:
                return f"No decision on {action} yet."

    @classmethod
    def from_request(cls, req: Request) -> Decision:
        if req.mode is Mode.SHADOW:
            approved = True  # shadow never blocks: the human's answer is measured, not obeyed
        else:
            approved = req.status in (Status.APPROVED, Status.FINALIZED, Status.OPEN)
        return cls(
            request_id=req.id,
            action=req.action,
            mode=req.mode,
            status=req.status,
            approved=approved,
            by=list(req.by),
            comment=req.comment,
            params=req.effective_params,
            verdict=req.verdict,
            decided_at=req.decided_at,
            grant=req.grant,
        )


class Rejected(HitlError):
    """Raised by `require_approval` when a request is not approved.

    It lives beside `Decision`, which it carries, rather than in `hitl.errors`, which every
    module (this one included) imports and which therefore imports none of them.

    Carries the reviewer's reason so an agent framework can hand it back to the model
    ("the reviewer rejected this because ...") instead of failing blindly. Its message is
    `Decision.explanation()`: an expired request says no one decided in time.
    """

    def __init__(self, decision: Decision) -> None:
        self.decision = decision
        self.reason = decision.comment
        # Decision.explanation: "... was rejected by U01: wrong id. ..."; for an expired
        # request, that no one decided in time (never "rejected").
        super().__init__(decision.explanation())
