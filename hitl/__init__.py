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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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


# Where each public name lives. Imported on first use (PEP 562), so that `hitl hook`, `hitl
# --help` and every small command pay only for the modules they touch: the Redis client, the
# settings model and Slack's SDK cost over a second of CPU to import, and Claude Code runs
# `hitl hook` before every tool call.
_HOMES: dict[str, str] = {
    **dict.fromkeys(
        ("Approvals", "AsyncApprovals", "AsyncBatchHandle", "AsyncRequestHandle", "BatchHandle",
         "RequestHandle"),
        "hitl.client",
    ),
    **dict.fromkeys(
        ("AlreadyDecided", "ApiKeyRefused", "ApiUnavailable", "ConfigError", "DeadlinePassed",
         "ExecutionRefused", "HitlError", "IdempotencyConflict", "InvalidRequest", "NotAllowed",
         "RateLimited", "RequestNotFound", "ReviewerOnly", "StaleVersion", "TransitionRefused",
         "WaitTimeout"),
        "hitl.errors",
    ),
    **dict.fromkeys(("GateFields", "PlanFields", "RequestFields"), "hitl.fields"),
    **dict.fromkeys(("Decision", "Rejected", "Request"), "hitl.models"),
    **dict.fromkeys(("AsyncHttpApprovals", "HttpApprovals"), "hitl.remote"),
    **dict.fromkeys(("ExecutionState", "Mode", "Risk", "Status", "SystemVerb", "Verb"), "hitl.status"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'hitl' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once found, an ordinary module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


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
