"""Claude Agent SDK: every tool call the agent makes is decided in Slack.

Two ways in, use either (both route through the same policy and requests):

- ``ClaudeAgentOptions(can_use_tool=can_use_tool(approvals))``: the SDK's permission
  callback. Answers `PermissionResultAllow` (with ``updated_input`` when a reviewer
  edited the call) or `PermissionResultDeny` (with the reviewer's reason for the model).
- ``ClaudeAgentOptions(hooks={"PreToolUse": [pre_tool_use_hook(approvals)]})``: a
  `HookMatcher` whose callback answers the hook's ``permissionDecision``.

Each call is a request for the action ``claude-code.<tool name>`` (so the policy names
the tools it gates; an auto-mode tool is answered at once), keyed by session, tool and
input (`hitl.claude_code.call_key`). The SDK stops waiting for either callback after
about 60 s and would then go on without it, so each answers within `wait` seconds
(default 55): deny, "no decision yet (request X is still pending in Slack)". The request
is never withdrawn, and the same call made again re-attaches to it and gets the decision.

Every error (the approval service down, a refused key, a bad input) is a deny whose
message says what went wrong: nothing here ever turns a failure into an allow.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

from claude_agent_sdk import (
    HookContext,
    HookInput,
    HookJSONOutput,
    HookMatcher,
    PermissionResultAllow,
    PermissionResultDeny,
    ToolPermissionContext,
)

from hitl import claude_code
from hitl.claude_code import HookCall, HookEvent, Verdict
from hitl.client import Approvals, AsyncApprovals
from hitl.remote import AsyncHttpApprovals, HttpApprovals

# What the callbacks accept: any client, Redis or HTTP, sync or asyncio.
AnyApprovals = Approvals | HttpApprovals | AsyncApprovals | AsyncHttpApprovals

__all__ = ["DEFAULT_WAIT", "can_use_tool", "pre_tool_use_hook"]

# How long a callback holds for a reviewer (seconds): under the SDK's ~60 s limit.
DEFAULT_WAIT = 55.0
# The SDK's own timeout for a hook matcher (seconds); the hook answers before it.
HOOK_TIMEOUT = 60.0

PermissionCallback = Callable[
    [str, dict[str, Any], ToolPermissionContext], Awaitable[PermissionResultAllow | PermissionResultDeny]
]
HookCallback = Callable[[HookInput, str | None, HookContext], Awaitable[HookJSONOutput]]


class _Client:
    """The asyncio client the callbacks use: given, or made from a sync `Approvals` on the
    loop the SDK runs them on (the first call), then kept."""

    def __init__(self, approvals: AnyApprovals) -> None:
        self._sync = approvals if isinstance(approvals, Approvals | HttpApprovals) else None
        self._aio: AsyncApprovals | None = None if self._sync is not None else cast(AsyncApprovals, approvals)

    def get(self) -> AsyncApprovals:
        if self._aio is None:
            assert self._sync is not None
            self._aio = cast(AsyncApprovals, self._sync.asyncio())
        return self._aio


def can_use_tool(
    approvals: AnyApprovals, *, session: str | None = None, wait: float = DEFAULT_WAIT
) -> PermissionCallback:
    """The SDK's ``can_use_tool`` callback: a reviewer in Slack allows, edits or denies each call.

    Args:
        approvals: The client (Redis or HTTP, sync or asyncio) requests are filed with.
        session: Names the agent's session in each call's key, so two sessions making the
            same call get two requests. Default: one made for this callback. Give a stable
            one (e.g. the session you resume) for a restarted agent to re-attach.
        wait: Longest hold for a decision (seconds); then deny "still pending".
    """
    client = _Client(approvals)
    session = session or uuid.uuid4().hex

    async def callback(
        tool_name: str, tool_input: dict[str, Any], context: ToolPermissionContext
    ) -> PermissionResultAllow | PermissionResultDeny:
        try:
            call = HookCall(
                hook_event_name=HookEvent.PRE_TOOL_USE, tool_name=tool_name, tool_input=tool_input,
                session_id=session, tool_use_id=context.tool_use_id,
            )
            answer = await claude_code.decide(client.get(), call, via=None, wait=wait)
        except Exception as exc:  # fail closed: an error is never an allow
            return PermissionResultDeny(message=f"{claude_code.FAIL_CLOSED}: {type(exc).__name__}: {exc}")
        if answer.verdict is Verdict.DENY:
            return PermissionResultDeny(message=answer.reason)
        # ASK (a shadow-mode tool) has no counterpart here: shadow never blocks the agent.
        return PermissionResultAllow(updated_input=answer.updated_input)

    return callback


def pre_tool_use_hook(
    approvals: AnyApprovals,
    *,
    matcher: str | None = None,
    wait: float = DEFAULT_WAIT,
    timeout: float = HOOK_TIMEOUT,
) -> HookMatcher:
    """A `HookMatcher` for ``hooks={"PreToolUse": [...]}``: allow (with ``updatedInput`` when a
    reviewer edited), deny with the reviewer's reason, or ask (a shadow-mode tool).

    Args:
        approvals: The client requests are filed with.
        matcher: Which tools the SDK sends to this hook ("Bash", "Edit|Write"); None: all.
        wait: Longest hold for a decision (seconds); then deny "still pending".
        timeout: The SDK's timeout for this matcher (seconds); keep it above `wait`.
    """
    client = _Client(approvals)

    async def callback(
        hook_input: HookInput, tool_use_id: str | None, context: HookContext
    ) -> HookJSONOutput:
        event = HookEvent.PRE_TOOL_USE
        try:
            call = claude_code.parse_event(dict(cast(dict[str, Any], hook_input)))
            event = call.hook_event_name
            answer = await claude_code.decide(client.get(), call, via=None, wait=wait)
            out = answer.output(event)
        except Exception as exc:  # fail closed: an error is never an allow
            out = claude_code.fail_closed(event, f"{type(exc).__name__}: {exc}")
        return cast(HookJSONOutput, out)

    return HookMatcher(matcher=matcher, hooks=[callback], timeout=timeout)
