"""Claude Code's hook protocol: a `PreToolUse` or `PermissionRequest` event in, a decision out.

Pure translation, no I/O: the web process's `POST /v1/hooks/claude-code`
(`bot.gateway.hooks`) and the `hitl hook claude-code` command (`hitl.hookcli`) share it,
so the command hook and the `http` hook answer in the same words.

Claude Code sends the event as JSON (``session_id``, ``cwd``, ``hook_event_name``,
``tool_name``, ``tool_input``, and for `PreToolUse` ``tool_use_id``) and reads
``hookSpecificOutput``: for `PreToolUse` a ``permissionDecision`` of allow, deny or ask
(with ``permissionDecisionReason`` and, on allow, ``updatedInput``); for
`PermissionRequest` a ``decision`` with ``behavior`` allow (``updatedInput``) or deny
(``message``). `PermissionRequest` has no "ask": no decision leaves the dialog to the user.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hitl import reattach
from hitl.errors import InvalidRequest, WaitTimeout
from hitl.models import Decision
from hitl.status import Mode, Status

if TYPE_CHECKING:
    from hitl.client import AsyncApprovals  # only annotations: `hitl hook` never loads the Redis client

# Actions are `claude-code.<tool name>`, so the policy names each tool (Bash, Edit, mcp__x__y).
ACTION_PREFIX = "claude-code."
AGENT = "claude-code"
# Longest summary line made from a tool call's input.
GIST_CHARS = 300
# The start of every fail-closed answer, so a person reading Claude Code's output knows whose it is.
FAIL_CLOSED = "hitl-router could not get a decision, so the tool was not run"


class HookEvent(StrEnum):
    """The hook events this answers."""

    PRE_TOOL_USE = "PreToolUse"
    PERMISSION_REQUEST = "PermissionRequest"


class Verdict(StrEnum):
    """What the hook tells Claude Code."""

    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"  # PreToolUse: show Claude Code's own prompt; PermissionRequest: no decision


class HookCall(BaseModel):
    """The fields of a hook event this uses (others, such as transcript_path, are ignored)."""

    model_config = ConfigDict(extra="ignore")
    hook_event_name: HookEvent
    tool_name: str = Field(min_length=1, max_length=200)
    tool_input: dict[str, Any] = Field(default_factory=dict)
    session_id: str | None = Field(default=None, max_length=200)
    tool_use_id: str | None = Field(default=None, max_length=200)
    cwd: str | None = Field(default=None, max_length=4096)

    @property
    def action(self) -> str:
        """``claude-code.<tool>``, with characters an action may not hold replaced."""
        name = re.sub(r"[^A-Za-z0-9_.:/-]", "_", self.tool_name.strip())
        return (ACTION_PREFIX + name)[:100]

    def summary(self) -> str:
        return f"Claude Code wants to use {self.tool_name}: {gist(self.tool_input)}"

    def request_fields(self) -> dict[str, Any]:
        """What `request()` files for this call; the policy in force decides the mode."""
        where = [f"session {self.session_id}"] if self.session_id else []
        if self.cwd:
            where.append(f"in {self.cwd}")
        fields: dict[str, Any] = {
            "action": self.action, "summary": self.summary(), "params": self.tool_input, "agent": AGENT,
        }
        if where:
            fields["context"] = "Claude Code " + ", ".join(where)
        return fields


def gist(tool_input: dict[str, Any]) -> str:
    """The part of a tool call a reviewer needs first: the command, the file, or the JSON."""
    for key in ("command", "file_path", "path", "notebook_path", "url", "query"):
        if isinstance(tool_input.get(key), str):
            text: str = tool_input[key]
            break
    else:
        text = json.dumps(tool_input, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= GIST_CHARS else text[: GIST_CHARS - 1] + "…"


def parse_event(raw: bytes | str | dict[str, Any]) -> HookCall:
    """The event Claude Code sent; `InvalidRequest` naming the field when it is not one."""
    if isinstance(raw, bytes | str):
        try:
            raw = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InvalidRequest("body", f"is not a JSON hook event ({exc})") from None
    if not isinstance(raw, dict):
        raise InvalidRequest("body", "must be a JSON object (a Claude Code hook event)")
    try:
        return HookCall.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "body"
        hint = " (this hook answers PreToolUse and PermissionRequest)" if where == "hook_event_name" else ""
        raise InvalidRequest(where, f"{err['msg']}{hint}") from None


def event_name(raw: bytes | str | dict[str, Any] | None) -> HookEvent:
    """The event's name when it can be read at all, else `PreToolUse` (for error answers)."""
    try:
        data = json.loads(raw) if isinstance(raw, bytes | str) else raw
        if isinstance(data, dict):
            return HookEvent(str(data.get("hook_event_name")))
        return HookEvent.PRE_TOOL_USE
    except (ValueError, UnicodeDecodeError, TypeError):
        return HookEvent.PRE_TOOL_USE


def output(
    event: HookEvent, verdict: Verdict, reason: str = "", updated_input: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON Claude Code reads from the hook (stdout, or the `http` hook's response body)."""
    if event is HookEvent.PRE_TOOL_USE:
        specific: dict[str, Any] = {"hookEventName": event.value, "permissionDecision": verdict.value}
        if reason:
            specific["permissionDecisionReason"] = reason
        if verdict is Verdict.ALLOW and updated_input is not None:
            specific["updatedInput"] = updated_input
        return {"hookSpecificOutput": specific}
    if verdict is Verdict.ASK:  # no decision: Claude Code shows its own dialog
        return {}
    decision: dict[str, Any] = {"behavior": verdict.value}
    if verdict is Verdict.ALLOW and updated_input is not None:
        decision["updatedInput"] = updated_input
    if verdict is Verdict.DENY:
        decision["message"] = reason
    return {"hookSpecificOutput": {"hookEventName": event.value, "decision": decision}}


def fail_closed(event: HookEvent, problem: str) -> dict[str, Any]:
    """Deny, saying what went wrong in words a person can act on."""
    return output(event, Verdict.DENY, f"{FAIL_CLOSED}: {problem}")


def still_pending(request_id: str, tool: str) -> str:
    """The deny reason when the wait ran out: the request stays pending and a repeat re-attaches."""
    return (
        f"no decision yet (request {request_id} is still pending in Slack). {tool} was not run; this is "
        "not a rejection. Make the same call again later: it re-attaches to the same request."
    )


@dataclass(frozen=True)
class Answer:
    """What hitl-router decided for one hook call, before it is put in Claude Code's words."""

    verdict: Verdict
    reason: str
    request_id: str | None = None
    updated_input: dict[str, Any] | None = None

    def output(self, event: HookEvent) -> dict[str, Any]:
        return output(event, self.verdict, self.reason, self.updated_input)


def call_key(call: HookCall) -> str:
    """The idempotency key of one tool call: session, tool and input (not tool_use_id, which
    is new each time the model makes the same call again after a "no decision yet")."""
    return reattach.derived_key("claude-code", call.session_id or "", call.action, call.tool_input)


async def decide(aio: AsyncApprovals, call: HookCall, *, via: str | None, wait: float) -> Answer:
    """File (or re-attach to) the call's request, wait up to `wait` seconds, and answer.

    The policy in force picks the mode (no entry: the defaults' mode, else gate): an auto
    or notify request is approved at once; shadow leaves the choice to Claude Code's own
    prompt (ask). A wait that runs out denies and leaves the request pending."""
    started = time.monotonic()
    req = await reattach.attach(aio, call.request_fields(), call_key(call), via=via)
    if not reattach.answerable(req):
        left = wait - (time.monotonic() - started)
        if left > 0:
            with contextlib.suppress(WaitTimeout):
                req = await aio.wait_request(req.id, left)
        if not reattach.answerable(req):
            req = await aio.fetch(req.id)
    if not reattach.answerable(req):
        return Answer(Verdict.DENY, still_pending(req.id, call.tool_name), req.id)
    decision = req.decision()
    if req.mode is Mode.SHADOW:
        return Answer(Verdict.ASK, f"hitl-router is only watching {call.action} (shadow mode)", req.id)
    if not decision.approved:
        return Answer(Verdict.DENY, deny_reason(decision), req.id)
    # Shielded: a caller cancelled mid-claim must not leave a start without its finish.
    if await asyncio.shield(reattach.claim(aio, req)) is reattach.Claim.SPENT:
        return Answer(
            Verdict.DENY,
            f"request {req.id} approved this call once and that approval was already used; make the call "
            "again to ask for a new approval",
            req.id,
        )
    edited = decision.params if decision.params != call.tool_input else None
    return Answer(Verdict.ALLOW, decision.explanation(), req.id, edited)


def deny_reason(decision: Decision) -> str:
    """What the model hears on a no: the reviewer's own words when they gave some."""
    if decision.status is Status.REJECTED and decision.comment:
        return f"The reviewer ({', '.join(decision.by) or 'unknown'}) said no: {decision.comment}"
    return decision.explanation()


__all__ = [
    "ACTION_PREFIX",
    "FAIL_CLOSED",
    "Answer",
    "HookCall",
    "HookEvent",
    "Verdict",
    "call_key",
    "decide",
    "deny_reason",
    "event_name",
    "fail_closed",
    "output",
    "parse_event",
    "still_pending",
]
