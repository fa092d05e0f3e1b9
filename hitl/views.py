"""The request view: what an agent outside Python sees of a request.

One set of pydantic models shared by the HTTP API, the webhooks and the OpenAPI document,
so the three can never disagree about a field. Times are ISO 8601 UTC strings, because a
TypeScript or Go agent parses those without guessing at units.

An expired request is not a rejection: nobody decided in time. Its decision says so in
plain words (`EXPIRED_COMMENT`), so a model reading it does not conclude it was denied.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from hitl.fields import PlanFields, names
from hitl.models import GrantRef, Request, RequestInput, describe_fields
from hitl.status import ExecutionState, Mode, Status

# What an expired decision says when the request carries no comment of its own.
EXPIRED_COMMENT = (
    "No one decided in time: the request reached its deadline without an approval or a "
    "rejection, so it expired. Nobody said no; but do not act on it. File a new request if "
    "the action is still needed."
)


def iso(ts: float | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC with milliseconds, e.g. 2026-11-30T04:41:03.123Z."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class DecisionView(BaseModel):
    """How a final request ended. `approved` is true only when the agent may (still) act."""

    status: Status
    approved: bool
    by: list[str] = Field(description="Slack user ids who decided, in order")
    comment: str | None = Field(description="the reviewer's reason; `expired`: that no one decided in time")
    params: dict[str, Any] = Field(description="the parameters as approved (possibly edited by the reviewer)")
    decided_at: str | None = Field(description="ISO 8601 UTC")
    grant: GrantRef | None = Field(
        default=None,
        description="the grant that approved this request at once (who granted it, until when, uses "
        "left); null when a reviewer decided it on its own card",
    )


class RequestView(BaseModel):
    """A request as the API, webhooks and MCP show it; `decision` is null until final."""

    id: str
    action: str
    summary: str
    mode: Mode
    status: Status
    channel: str | None
    created_at: str = Field(description="ISO 8601 UTC")
    deadline: str | None = Field(description="ISO 8601 UTC: expiry (gate, shadow) or end of the veto window")
    params: dict[str, Any]
    decision: DecisionView | None
    execution: ExecutionState | None = Field(
        default=None,
        description="the approved tool call: started, finished, failed, or unknown (started, and "
        "its process stopped before it finished: do not run it again); null until started",
    )
    policy_version: int = Field(
        default=0, description="the published policy version the request was routed under (0: none published)"
    )

    @classmethod
    def of(cls, req: Request) -> RequestView:
        decision = None
        if req.final:
            d = req.decision()
            comment = d.comment
            if d.status is Status.EXPIRED and not comment:
                comment = EXPIRED_COMMENT
            decision = DecisionView(
                status=d.status, approved=d.approved, by=d.by, comment=comment, params=d.params,
                decided_at=iso(d.decided_at), grant=d.grant,
            )
        return cls(
            id=req.id, action=req.action, summary=req.summary, mode=req.mode, status=req.status,
            channel=req.channel, created_at=iso(req.created_at) or "", deadline=iso(req.deadline),
            params=req.params, decision=decision, execution=req.execution,
            policy_version=req.policy_version,
        )


class ExecutionInput(BaseModel):
    """`POST /v1/requests/{id}/execution`: the approved tool call is starting, or it ended.

    ``{"state": "started"}`` answers ``{"started": true}``, or 409 when a call already
    started (then do not run the tool); ``{"state": "finished", "ok": true}`` answers
    ``{"finished": true}`` (``ok`` false when the tool raised). A finish may carry the
    tool's ``result`` (any JSON), which the audit event keeps masked and cut near 4 KiB.
    """

    model_config = {"extra": "forbid"}

    state: Literal["started", "finished"]
    ok: bool = True
    result: Any = None


class _BatchBase(BaseModel):
    model_config = ConfigDict(extra="allow", json_schema_extra=describe_fields)

    summary: str = Field(description="What the plan does as a whole: the card's headline.")
    items: list[dict[str, Any]] = Field(min_length=1, description="one request body per step")
    action: str = Field(default="plan", description="The plan's own action name, for policy and stats.")


# `POST /v1/batches`, for the OpenAPI document: the plan's own fields, and every
# `hitl.fields.PlanFields` field as `RequestInput` describes it (the server checks each step).
_PLAN_FIELDS: dict[str, Any] = {
    name: (info.annotation, info)
    for name, info in RequestInput.model_fields.items() if name in names(PlanFields)
}
BatchInput: type[_BatchBase] = create_model(
    "BatchInput",
    __base__=_BatchBase,
    __doc__="""`POST /v1/batches`: a plan reviewed on one card; `items` are request bodies.

    The other fields (channel, approvers, requested_by, timeout, ...) apply to the plan and
    every item, as `Approvals.request_batch(**common)` does.
    """,
    **_PLAN_FIELDS,
)


class BatchView(BaseModel):
    """A filed plan: its own request and one request per item, in order."""

    id: str
    plan: RequestView
    items: list[RequestView]


class ErrorBody(BaseModel):
    """Every 4xx/5xx answer: what went wrong and, for invalid input, which field."""

    error: str
    field: str | None = None


class WebhookPayload(BaseModel):
    """The body of a decision webhook (Standard Webhooks framing)."""

    type: str = "request.final"
    timestamp: str = Field(description="ISO 8601 UTC: when this delivery was prepared")
    data: RequestView


__all__ = [
    "EXPIRED_COMMENT", "BatchInput", "BatchView", "DecisionView", "ErrorBody", "ExecutionInput",
    "RequestInput", "RequestView", "WebhookPayload", "iso",
]
