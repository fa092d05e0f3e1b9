"""hitl-router: approvals for AI agents, decided in Slack.

The public surface is small on purpose::

    from hitl import Approvals
    approvals = Approvals()
    req = approvals.request(action="send_email", summary="...", params={...})
    decision = req.wait()

`AsyncApprovals` is the same client for asyncio code, method for method. With
HITL_API_URL and HITL_API_KEY set (or `api_url=`, `api_key=`), both talk to the web
process over HTTP (`HttpApprovals`, `AsyncHttpApprovals`) and need no Redis credentials.
"""

from __future__ import annotations

from hitl.client import (
    Approvals,
    AsyncApprovals,
    AsyncBatchHandle,
    AsyncRequestHandle,
    BatchHandle,
    RequestHandle,
)
from hitl.errors import (
    AlreadyDecided,
    ApiKeyRefused,
    ApiUnavailable,
    ConfigError,
    DeadlinePassed,
    ExecutionRefused,
    HitlError,
    IdempotencyConflict,
    InvalidRequest,
    NotAllowed,
    RateLimited,
    RequestNotFound,
    ReviewerOnly,
    StaleVersion,
    TransitionRefused,
    WaitTimeout,
)
from hitl.fields import GateFields, PlanFields, RequestFields
from hitl.models import Decision, Rejected, Request
from hitl.remote import AsyncHttpApprovals, HttpApprovals
from hitl.status import ExecutionState, Mode, Risk, Status, SystemVerb, Verb

__all__ = [
    "AlreadyDecided",
    "ApiKeyRefused",
    "ApiUnavailable",
    "Approvals",
    "AsyncApprovals",
    "AsyncBatchHandle",
    "AsyncHttpApprovals",
    "AsyncRequestHandle",
    "BatchHandle",
    "ConfigError",
    "DeadlinePassed",
    "Decision",
    "ExecutionRefused",
    "ExecutionState",
    "GateFields",
    "HitlError",
    "HttpApprovals",
    "IdempotencyConflict",
    "InvalidRequest",
    "Mode",
    "NotAllowed",
    "PlanFields",
    "RateLimited",
    "Rejected",
    "Request",
    "RequestFields",
    "RequestHandle",
    "RequestNotFound",
    "ReviewerOnly",
    "Risk",
    "StaleVersion",
    "Status",
    "SystemVerb",
    "TransitionRefused",
    "Verb",
    "WaitTimeout",
]
