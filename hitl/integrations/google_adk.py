"""Google ADK: ``require_confirmation`` tools confirmed from Slack, the arguments bound.

ADK pauses a tool that needs confirmation with an ``adk_request_confirmation`` call and
runs it once a `ToolConfirmation` comes back. Two pieces make Slack that confirmation:

- `run_with_confirmations(runner, user_id=..., session_id=..., message=..., approvals=...)`
  runs the agent; each pending confirmation becomes a card (keyed by session and tool
  call, so a re-run re-attaches instead of posting a second card); once Slack decides it
  answers ADK with ``confirmed`` and a payload naming the request and the SHA-256 of the
  arguments it approved. The session (ADK's own session service: use a persistent one,
  e.g. `SqliteSessionService`, for a pause to outlive the process) holds the pause, so
  calling again with the same session id after a crash resumes it.
- `SlackConfirmation`, a Runner plugin, enforces the decision where the tool runs: a
  confirmed call runs only if its request in the store is approved, only if the
  confirmation's argument hash is the hash of the arguments Slack approved (a
  confirmation for other arguments, or one with no hash, is refused), with exactly
  those arguments, at most once. A declined or expired call answers the model with the
  reviewer's words or "no one decided", not ADK's generic "rejected".

ADK itself checks that a confirmation's original call matches the history, so the model's
call cannot be swapped; the hash binds the confirmation to what the reviewer approved,
which may be an edit (ADK's issue: approved 100, ran 999).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from google.adk.events.event import Event
from google.adk.plugins.base_plugin import BasePlugin
from google.adk.runners import Runner
from google.adk.tools.base_tool import BaseTool
from google.adk.tools.tool_context import ToolContext
from google.genai import types

from hitl.client import Approvals
from hitl.errors import InvalidRequest
from hitl.integrations.naming import idempotency_key
from hitl.integrations.outcome import Outcome
from hitl.status import Mode

__all__ = ["CONFIRMATION_CALL", "SlackConfirmation", "args_hash", "run_with_confirmations"]

# The function call ADK emits to ask for a confirmation (google.adk.utils._function_call_names).
CONFIRMATION_CALL = "adk_request_confirmation"
# Payload keys of the confirmation we send back.
REQUEST_ID = "hitl_request_id"
ARGS_SHA256 = "args_sha256"


def args_hash(args: dict[str, Any]) -> str:
    """The SHA-256 of the arguments as canonical JSON (sorted keys, no spaces)."""
    data = json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(data.encode()).hexdigest()


def call_key(session_id: str, function_call_id: str) -> str:
    return idempotency_key("adk", session_id, function_call_id)


def _args(name: str, args: Any) -> dict[str, Any]:
    if not isinstance(args, dict):
        raise InvalidRequest(f"{name}.arguments", f"must be a JSON object, not {type(args).__name__}")
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{name}.arguments", f"are not JSON-serialisable ({exc})") from None
    return args


def file_request(
    approvals: Approvals, session_id: str, name: str, call_id: str, args: dict[str, Any], **kw: Any
) -> Any:
    """File (or re-attach to) the request of tool call `call_id` in session `session_id`."""
    return approvals.request(
        action=name, summary=f"Run {name}", params=args, idempotency_key=call_key(session_id, call_id),
        run_id=session_id, **kw,
    )


class SlackConfirmation(BasePlugin):
    """The Runner plugin that runs a confirmed tool only as the store decided.

    Pass it to the `Runner` (``plugins=[SlackConfirmation(approvals)]``); `request_kwargs`
    must match those given to `run_with_confirmations` (they are part of the request).
    """

    def __init__(self, approvals: Approvals, **request_kwargs: Any) -> None:
        super().__init__(name="hitl_slack_confirmation")
        self.approvals = approvals
        self.request_kwargs = request_kwargs

    async def before_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        confirmation = tool_context.tool_confirmation
        call_id = tool_context.function_call_id
        if confirmation is None or not call_id:
            return None  # no answer yet: ADK asks for one (or the tool needs none)
        asked = _args(tool.name, dict(tool_args))
        session_id = tool_context.session.id
        handle = await asyncio.to_thread(
            file_request, self.approvals, session_id, tool.name, call_id, asked, **self.request_kwargs
        )
        outcome = Outcome.from_decision(await asyncio.to_thread(handle.decision), asked)
        if not outcome.runs:  # whatever the confirmation says, the store says no (or not yet)
            return {"error": outcome.message}
        payload = confirmation.payload if isinstance(confirmation.payload, dict) else {}
        if not confirmation.confirmed or payload.get(ARGS_SHA256) != args_hash(outcome.args):
            return {"error": (
                f"Refused: this confirmation of `{tool.name}` does not carry the hash of the arguments "
                "approved in Slack, so it was not run. Ask for approval again."
            )}
        outcome = await asyncio.to_thread(outcome.start, self.approvals)
        if not outcome.runs:
            return {"error": outcome.message}
        try:
            result = await tool.run_async(args=dict(outcome.args), tool_context=tool_context)
        except BaseException:
            await asyncio.to_thread(outcome.finish, self.approvals, ok=False)
            raise
        await asyncio.to_thread(outcome.finish, self.approvals)
        return result if isinstance(result, dict) else {"result": result}


def pending_confirmations(events: Iterable[Event]) -> list[types.FunctionCall]:
    """The ``adk_request_confirmation`` calls of a session whose tool call has not ended.

    As ADK counts them: a confirmation is consumed once the agent answered the original
    call after the user's confirmation. One answered but never consumed (the process died
    while the confirmed tool ran) is pending again, so a re-run answers it again and the
    plugin finds its execution started: the tool is not run twice.
    """
    events = list(events)
    asks = {c.id: c for e in events for c in e.get_function_calls() if c.name == CONFIRMATION_CALL and c.id}
    by_original = {
        str(original["id"]): ask_id for ask_id, c in asks.items()
        if isinstance(original := (c.args or {}).get("originalFunctionCall"), dict) and original.get("id")
    }
    answered: set[str] = set()
    consumed: set[str] = set()
    for event in events:
        for response in event.get_function_responses():
            if event.author == "user":
                if response.id in asks:
                    answered.add(response.id)
            elif (ask_id := by_original.get(response.id or "")) in answered:
                consumed.add(str(ask_id))
    return [c for ask_id, c in asks.items() if ask_id not in consumed]


async def _answer(
    approvals: Approvals, session_id: str, call: types.FunctionCall, wait_timeout: float | None, **kw: Any
) -> types.Part:
    original = (call.args or {}).get("originalFunctionCall") or {}
    name, call_id = str(original.get("name") or "tool"), str(original.get("id") or "")
    if not call_id:
        raise InvalidRequest("originalFunctionCall.id", f"is missing from confirmation {call.id!r}")
    asked = _args(name, original.get("args") or {})
    handle = await asyncio.to_thread(file_request, approvals, session_id, name, call_id, asked, **kw)
    if handle.mode is Mode.GATE:
        decision = await asyncio.to_thread(handle.wait, wait_timeout)
    else:
        decision = await asyncio.to_thread(handle.decision)
    outcome = Outcome.from_decision(decision, asked)
    response = {
        "confirmed": outcome.runs,
        "payload": {REQUEST_ID: outcome.request_id, ARGS_SHA256: args_hash(outcome.args)},
    }
    answer = types.FunctionResponse(name=CONFIRMATION_CALL, id=call.id, response=response)
    return types.Part(function_response=answer)


async def run_with_confirmations(
    runner: Runner,
    *,
    user_id: str,
    session_id: str,
    message: str | None,
    approvals: Approvals,
    wait_timeout: float | None = None,
    **request_kwargs: Any,
) -> list[Event]:
    """Run the agent until no confirmation is pending, each one decided in Slack.

    Returns the events of the last run. When the session already waits on confirmations
    (this is a re-run after the process died), they are answered and `message` is not
    sent again; `message` None only resumes (nothing waiting: returns ``[]``). The runner
    must carry `SlackConfirmation` (with the same `request_kwargs`); without it nothing
    would enforce the decision, so the run is refused before anything is filed.
    """
    if not any(isinstance(p, SlackConfirmation) for p in runner.plugin_manager.plugins):
        raise InvalidRequest(
            "runner.plugins", "must include SlackConfirmation(approvals), which enforces the decision"
        )
    sessions = runner.session_service
    session = await sessions.get_session(app_name=runner.app_name, user_id=user_id, session_id=session_id)
    if session is None:
        session = await sessions.create_session(
            app_name=runner.app_name, user_id=user_id, session_id=session_id
        )
    waiting = pending_confirmations(session.events)
    events: list[Event] = []
    if not waiting:
        if message is None:  # resume only, and nothing waits
            return []
        text = types.Content(role="user", parts=[types.Part(text=message)])
        events = [e async for e in runner.run_async(user_id=user_id, session_id=session_id, new_message=text)]
        waiting = pending_confirmations(events)
    while waiting:
        parts = [await _answer(approvals, session_id, c, wait_timeout, **request_kwargs) for c in waiting]
        answer = types.Content(role="user", parts=parts)
        run = runner.run_async(user_id=user_id, session_id=session_id, new_message=answer)
        events = [e async for e in run]
        waiting = pending_confirmations(events)
    return events
