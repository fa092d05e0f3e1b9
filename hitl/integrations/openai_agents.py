"""OpenAI Agents SDK: tools marked `needs_approval` are decided in Slack.

`run_with_approvals(agent, input, approvals=..., run_id=...)` runs the agent; each
`ToolApprovalItem` in `result.interruptions` becomes a card (tool name, arguments, agent
name, the run's context). The serialized `RunState` is stored under the run id (in Redis,
or a directory for an agent over HTTP: `hitl.runstates`), so a process that dies while
waiting loses nothing: calling
`run_with_approvals` again with the same `run_id` re-attaches to the same requests (no
second card), applies `state.approve(item)` or `state.reject(item, rejection_message=...)`
and resumes with `Runner.run(agent, state)` until no interruption is left.

The run always resumes from the stored JSON, never from live objects, so approvals are
honoured across a JSON round trip by construction. Decisions are read from the requests
(re-attached by idempotency key), never from the stored state, and each approved call
runs at most once (`hitl.executions`).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agents import Agent, Runner, RunState
from agents.items import ToolApprovalItem

from hitl.client import Approvals, RequestHandle
from hitl.errors import InvalidRequest
from hitl.integrations.naming import idempotency_key
from hitl.integrations.outcome import Outcome, OutcomeKind
from hitl.models import MAX_CONTEXT_CHARS
from hitl.runstates import FileRunStates, RunStates, RunStateStore
from hitl.status import Mode

__all__ = ["FileRunStates", "RunStateStore", "RunStates", "run_with_approvals"]

# Largest serialized RunState kept for a paused run: a run's whole history lives in it,
# and Redis holds one per waiting run. Above it the run is refused, nothing is filed.
MAX_STATE_BYTES = 1024 * 1024


def encode_state(run_id: str, state: dict[str, Any], max_bytes: int = MAX_STATE_BYTES) -> bytes:
    """The state as stored; raises `InvalidRequest("run_state")` over the size cap."""
    data = json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode()
    if len(data) > max_bytes:
        raise InvalidRequest(
            "run_state",
            f"run {run_id!r} is {len(data):,} bytes as JSON; the limit is {max_bytes:,}. "
            "Shorten the run's history (or raise max_bytes) before asking for approval",
        )
    return data


def tool_args(item: ToolApprovalItem) -> dict[str, Any]:
    """The call's arguments as a dict; names the tool whose arguments are not a JSON object."""
    raw = item.arguments or "{}"
    try:
        args = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as exc:
        raise InvalidRequest(f"{item.name}.arguments", f"are not JSON ({exc}): {raw[:200]!r}") from None
    if not isinstance(args, dict):
        raise InvalidRequest(f"{item.name}.arguments", f"must be a JSON object, not {type(args).__name__}")
    return args


def card_context(item: ToolApprovalItem, run_id: str, context: Any) -> str:
    """What a reviewer reads under Details: which agent, which run, the run's context."""
    agent = getattr(item.agent, "name", None) or "agent"
    lines = [f"Agent `{agent}` wants to call `{item.name}` (run `{run_id}`)."]
    if context is not None:
        lines.append(f"Run context: {context!r}")
    return "\n".join(lines)[:MAX_CONTEXT_CHARS]


def with_edited_args(state: Any, edits: dict[str, dict[str, Any]]) -> Any:
    """The state JSON with each edited call's `arguments` replaced (matched by call_id).

    The SDK fingerprints every call's arguments in its `tool_invocations` ledger and refuses
    a call id whose arguments changed; the edited calls' entries are dropped so they are
    registered afresh with the reviewer's arguments.
    """
    if isinstance(state, dict):
        out = {k: with_edited_args(v, edits) for k, v in state.items()}
        ledger = out.get("tool_invocations")
        if isinstance(ledger, dict):
            out["tool_invocations"] = {k: v for k, v in ledger.items() if k not in edits}
        call = state.get("call_id") or state.get("callId")
        if call in edits and "arguments" in state:
            out["arguments"] = json.dumps(edits[call])
        return out
    if isinstance(state, list):
        return [with_edited_args(v, edits) for v in state]
    return state


async def _decide(handle: RequestHandle, asked: dict[str, Any], timeout: float | None) -> Outcome:
    if handle.mode is not Mode.GATE:  # auto, notify, override, shadow: act at once
        return Outcome.from_decision(handle.fetch().decision(), asked)
    decision = await asyncio.to_thread(handle.wait, timeout)
    return Outcome.from_decision(decision, asked)


async def run_with_approvals(
    agent: Agent[Any],
    input: Any,
    *,
    approvals: Approvals,
    run_id: str,
    context: Any = None,
    wait_timeout: float | None = None,
    max_state_bytes: int = MAX_STATE_BYTES,
    overrides: list[Outcome] | None = None,
    states: RunStateStore | None = None,
    **request_kwargs: Any,
) -> Any:
    """Run `agent` until it has no interruption left, every approval decided in Slack.

    `run_id` names the run: call again with the same id after a crash and the stored state
    is resumed (`input` is then ignored). Rejections, vetoes and expiries reach the model
    as the tool's result (`rejection_message`), each worded for what happened. Raises
    `InvalidRequest` naming the tool argument or the state that cannot be filed; nothing
    is filed then. Other keyword arguments go to every request (channel, approvers,
    timeout...); `wait_timeout` bounds each wait (`WaitTimeout`).

    Each approved call runs at most once: its execution is started (`Outcome.start`) just
    before the run resumes and finished once the run comes back. A re-run that finds a
    call started and never finished (the process died in between) does not run it again:
    the model hears "Outcome unknown: check before retrying" instead, and the Slack card
    says so.

    The paused run's state is kept in `states` (default: Redis, through this client's
    connection, `hitl.runstates.RunStates`; an agent over HTTP passes
    `hitl.runstates.FileRunStates(directory)`).

    Override mode runs the tool at once, so a veto can only come after. Pass a list as
    `overrides` and every call that ran under a veto window is appended to it; then
    `await outcome.awatch_veto(approvals.asyncio(), timeout)` (or `outcome.watch_veto`)
    returns VETOED with the reviewer's reason, or FINALIZED, for the agent to act on.
    """
    store = states if states is not None else RunStates.of(approvals)
    stored = store.load(run_id)
    state_json = None if stored is None else json.loads(stored)
    if state_json is None:
        result = await Runner.run(agent, input, context=context)
        if not result.interruptions:
            return result
        state_json = result.to_state().to_json()
    while True:
        state = await RunState.from_json(agent, state_json)
        items = state.get_interruptions()
        asked = [tool_args(item) for item in items]  # every check before anything is written
        store.save(run_id, encode_state(run_id, state_json, max_state_bytes))
        turn = state_json.get("current_turn", 0)
        handles = [
            approvals.request(
                action=item.name or "tool",
                summary=f"{getattr(item.agent, 'name', 'agent')}: run {item.name}",
                params=args, agent=getattr(item.agent, "name", None), run_id=run_id,
                context=card_context(item, run_id, context),
                idempotency_key=idempotency_key("oa", run_id, turn, item.call_id or n), **request_kwargs,
            )
            for n, (item, args) in enumerate(zip(items, asked, strict=True))
        ]
        outcomes = [await _decide(h, a, wait_timeout) for h, a in zip(handles, asked, strict=True)]
        if overrides is not None:
            overrides.extend(o for o in outcomes if o.vetoable and o not in overrides)
        edits = {
            item.call_id: o.args for item, o in zip(items, outcomes, strict=True)
            if o.kind is OutcomeKind.EDITED and item.call_id
        }
        if edits:
            state = await RunState.from_json(agent, with_edited_args(state_json, edits))
            items = state.get_interruptions()
        # At most once: a call that started before (this run died after it) is not run again.
        outcomes = [o.start(approvals) for o in outcomes]
        for item, outcome in zip(items, outcomes, strict=True):
            if outcome.runs:
                state.approve(item)
            else:
                state.reject(item, rejection_message=outcome.message)
        result = await Runner.run(agent, state, context=context)
        for outcome in outcomes:  # the run came back: the approved calls ran
            if outcome.runs:
                outcome.finish(approvals)
        if not result.interruptions:
            store.delete(run_id)
            return result
        state_json = result.to_state().to_json()
