"""hitl-router: approvals for AI agents, decided in Slack.

The public surface is small on purpose::

    from hitl import Approvals
    approvals = Approvals()
    req = approvals.request(action="send_email", summary="...", params={...})
    decision = req.wait()

`AsyncApprovals` is the same client for asyncio code, method for method.
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
    ConfigError,
    DeadlinePassed,
    HitlError,
    IdempotencyConflict,
    InvalidRequest,
    NotAllowed,
    Rejected,
    RequestNotFound,
    StaleVersion,
    TransitionRefused,
    WaitTimeout,
)
from hitl.models import Decision, Request
from hitl.status import Mode, Risk, Status, SystemVerb, Verb

__all__ = [
    "AlreadyDecided",
    "Approvals",
    "AsyncApprovals",
    "AsyncBatchHandle",
    "AsyncRequestHandle",
    "BatchHandle",
    "ConfigError",
    "DeadlinePassed",
    "Decision",
    "HitlError",
    "IdempotencyConflict",
    "InvalidRequest",
    "Mode",
    "NotAllowed",
    "Rejected",
    "Request",
    "RequestHandle",
    "RequestNotFound",
    "Risk",
    "StaleVersion",
    "Status",
    "SystemVerb",
    "TransitionRefused",
    "Verb",
    "WaitTimeout",
]
