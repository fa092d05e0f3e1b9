"""pydantic-ai: deferred tools (`requires_approval=True`, `ApprovalRequired`) decided in Slack.

Two ways in, one capability underneath:

- **Inline** (the process waits): ``agent.run(prompt, capabilities=[SlackApprovals(approvals,
  run_id=...)])``. The capability is pydantic-ai's own ``handle_deferred_tool_calls`` hook
  (what `HandleDeferredToolCalls` wraps): each approval call becomes a card, the run waits
  for the decision and goes on with ``ToolApproved(override_args=...)`` (an edit) or
  ``ToolDenied(message)`` (the reviewer's words, or "no one decided" on expiry).
- **Deferred** (the pause outlives the process): `run_with_approvals(agent, prompt,
  approvals=..., run_id=...)` lets the run end with `DeferredToolRequests`, stores the
  message history under the run id (`hitl.runstates`), waits for Slack and resumes with
  `DeferredToolResults`. Call it again with the same `run_id` after a crash: it re-attaches
  to the same requests (no second card) and resumes from the stored history.

Either way the capability also gates where the tool runs (``wrap_tool_execute``): an
approved call runs only if the request in the store says so, with the stored arguments,
at most once (`hitl.executions`). An approval handed to pydantic-ai by anyone else (a
`DeferredToolResults` built by hand, an ``override_args`` the reviewer never saw) is not
a decision: the call is deferred again until Slack decides, and runs with Slack's
arguments.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter
from pydantic_ai import Agent, RunContext
from pydantic_ai.capabilities import AbstractCapability
from pydantic_ai.capabilities.abstract import ValidatedToolArgs, WrapToolExecuteHandler
from pydantic_ai.exceptions import ApprovalRequired
from pydantic_ai.messages import ModelMessage, ModelMessagesTypeAdapter, ModelResponse, ToolCallPart
from pydantic_ai.tools import (
    DeferredToolRequests,
    DeferredToolResults,
    ToolApproved,
    ToolDefinition,
    ToolDenied,
)

from hitl.client import Approvals, RequestHandle
from hitl.errors import InvalidRequest
from hitl.integrations.naming import idempotency_key
from hitl.integrations.outcome import Outcome, OutcomeKind
from hitl.runstates import FileRunStates, RunStates, RunStateStore
from hitl.status import Mode

__all__ = ["FileRunStates", "RunStateStore", "RunStates", "SlackApprovals", "run_with_approvals"]

RunId = str | Callable[[RunContext[Any]], str]

# The stored pause: the message history and the approval calls it waits on.
_REQUESTS = TypeAdapter(DeferredToolRequests)


def call_args(call: ToolCallPart) -> dict[str, Any]:
    """The arguments the model proposed, as a dict; names the tool whose are not a JSON object."""
    try:
        args = call.args_as_dict()
    except ValueError as exc:
        raise InvalidRequest(f"{call.tool_name}.arguments", f"are not a JSON object ({exc})") from None
    try:
        json.dumps(args, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"{call.tool_name}.arguments", f"are not JSON-serialisable ({exc})") from None
    return args


def _made_at(messages: Sequence[ModelMessage], tool_call_id: str) -> tuple[int, ToolCallPart | None]:
    """The index of the model response that made the call `tool_call_id`, and that call."""
    for n in range(len(messages) - 1, -1, -1):
        message = messages[n]
        if isinstance(message, ModelResponse):
            for part in message.parts:
                if isinstance(part, ToolCallPart) and part.tool_call_id == tool_call_id:
                    return n, part
    return -1, None


def proposed(messages: Sequence[ModelMessage], call: ToolCallPart) -> ToolCallPart:
    """The call as the model made it (in the history); pydantic-ai hands the tool hooks the
    call with ``override_args`` already applied, and those are not what was filed."""
    return _made_at(messages, call.tool_call_id)[1] or call


def call_key(run_id: str, messages: Sequence[ModelMessage], tool_call_id: str) -> str:
    """The request key of one tool call: the run, the model response that made it, its id.

    Providers' tool call ids are not unique across turns (pydantic-ai's test models reuse
    one per tool), so the position of the response in the history is part of the key: a
    model that asks again after a rejection gets a new request, a re-run of the same
    pause re-attaches to its own.
    """
    return idempotency_key("pai", run_id, _made_at(messages, tool_call_id)[0], tool_call_id)


@dataclass
class SlackApprovals(AbstractCapability[Any]):
    """Approvals for a pydantic-ai agent's deferred tool calls, decided in Slack.

    `run_id` names the run (a string, or a function of the `RunContext`, e.g. reading
    ``ctx.deps``); it keys the requests, so the same id re-attaches instead of posting a
    second card. `tools` names tools to gate on every call besides those pydantic-ai
    already defers (``requires_approval=True``); a tool that raises `ApprovalRequired`
    itself needs no listing. With `inline` False the capability
    only gates and leaves deferred calls to the caller (`run_with_approvals` does that).
    `wait_timeout` bounds each wait (`WaitTimeout`); `request_kwargs` go to every request
    (channel, approvers, timeout...).
    """

    approvals: Approvals
    run_id: RunId
    tools: frozenset[str] = frozenset()
    inline: bool = True
    wait_timeout: float | None = None
    request_kwargs: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def get_serialization_name(cls) -> str | None:
        return None  # holds a live client: never part of a serialized agent spec

    def _run(self, ctx: RunContext[Any]) -> str:
        return self.run_id(ctx) if callable(self.run_id) else self.run_id

    def file(self, run_id: str, messages: Sequence[ModelMessage], call: ToolCallPart) -> RequestHandle:
        """File (or re-attach to) the request for `call`."""
        return self.approvals.request(
            action=call.tool_name, summary=f"Run {call.tool_name}", params=call_args(call),
            idempotency_key=call_key(run_id, messages, call.tool_call_id), run_id=run_id,
            **self.request_kwargs,
        )

    async def decide(self, run_id: str, messages: Sequence[ModelMessage], call: ToolCallPart) -> Outcome:
        """The stored outcome of `call`'s request, waiting while a gate is undecided."""
        handle = await asyncio.to_thread(self.file, run_id, messages, call)
        if handle.mode is not Mode.GATE:  # auto, notify, override, shadow: act at once
            decision = await asyncio.to_thread(handle.decision)
        else:
            decision = await asyncio.to_thread(handle.wait, self.wait_timeout)
        return Outcome.from_decision(decision, call_args(call))

    async def results(
        self, run_id: str, messages: Sequence[ModelMessage], requests: DeferredToolRequests
    ) -> DeferredToolResults:
        """Slack's answer to every approval call of `requests`, as pydantic-ai takes it."""
        answers: dict[str, ToolApproved | ToolDenied | bool] = {}
        by: dict[str, str] = {}
        for call in requests.approvals:
            outcome = await self.decide(run_id, messages, call)
            if outcome.runs:
                edited = dict(outcome.args) if outcome.kind is OutcomeKind.EDITED else None
                answers[call.tool_call_id] = ToolApproved(override_args=edited)
            else:
                answers[call.tool_call_id] = ToolDenied(outcome.message)
            if outcome.by:
                by[call.tool_call_id] = ", ".join(outcome.by)
        return DeferredToolResults(approvals=dict(answers), answered_by=by)

    async def handle_deferred_tool_calls(
        self, ctx: RunContext[Any], *, requests: DeferredToolRequests
    ) -> DeferredToolResults | None:
        if not self.inline or not requests.approvals:
            return None
        return await self.results(self._run(ctx), ctx.messages, requests)

    async def wrap_tool_execute(
        self,
        ctx: RunContext[Any],
        *,
        call: ToolCallPart,
        tool_def: ToolDefinition,
        args: ValidatedToolArgs,
        handler: WrapToolExecuteHandler,
    ) -> Any:
        """Run an approved call only as the store decided: its arguments, at most once.

        Every call that reaches its tool as approved is checked, whichever way it was
        deferred (``requires_approval``, the tool raising `ApprovalRequired`, `tools`).
        """
        always = tool_def.kind == "unapproved" or call.tool_name in self.tools
        if not ctx.tool_call_approved:
            if always:
                raise ApprovalRequired()
            return await handler(args)  # not approved yet: the tool itself may ask (ApprovalRequired)
        # Whatever approved it in pydantic-ai, the store decides (a forged approval is nothing).
        call = proposed(ctx.messages, call)
        handle = await asyncio.to_thread(self.file, self._run(ctx), ctx.messages, call)
        outcome = Outcome.from_decision(await asyncio.to_thread(handle.decision), call_args(call))
        if outcome.kind is OutcomeKind.UNDECIDED:
            raise ApprovalRequired()  # still pending in Slack: defer again, wait for the real decision
        outcome = await asyncio.to_thread(outcome.start, self.approvals)
        if not outcome.runs:
            return outcome.message
        try:
            result = await handler(dict(outcome.args))  # the approved arguments, not the caller's
        except BaseException:
            await asyncio.to_thread(outcome.finish, self.approvals, ok=False)
            raise
        await asyncio.to_thread(outcome.finish, self.approvals)
        return result


def _output_type(agent: Agent[Any, Any]) -> Any:
    """The agent's output type with `DeferredToolRequests` added, so a pause ends the run."""
    current = agent.output_type
    types = list(current) if isinstance(current, Sequence) and not isinstance(current, str) else [current]
    return types if DeferredToolRequests in types else [*types, DeferredToolRequests]


def _encode(messages: list[ModelMessage], requests: DeferredToolRequests) -> bytes:
    return json.dumps({
        "messages": json.loads(ModelMessagesTypeAdapter.dump_json(messages)),
        "requests": json.loads(_REQUESTS.dump_json(requests)),
    }).encode()


def _decode(data: bytes) -> tuple[list[ModelMessage], DeferredToolRequests]:
    doc = json.loads(data)
    messages = ModelMessagesTypeAdapter.validate_python(doc["messages"])
    return messages, _REQUESTS.validate_python(doc["requests"])


async def run_with_approvals(
    agent: Agent[Any, Any],
    prompt: str | None,
    *,
    approvals: Approvals,
    run_id: str,
    deps: Any = None,
    tools: Sequence[str] = (),
    wait_timeout: float | None = None,
    states: RunStateStore | None = None,
    **request_kwargs: Any,
) -> Any:
    """Run `agent` until it has no approval call left, each one decided in Slack.

    Returns pydantic-ai's last `AgentRunResult`. Each pause is stored under `run_id`
    (default: Redis through this client, `hitl.runstates.RunStates`; an agent over HTTP
    passes `FileRunStates(directory)`) before anything waits, so calling again with the
    same `run_id` after the process died resumes the same pause (`prompt` is then
    ignored) and re-attaches to the same requests. A run that also defers external calls
    (`CallDeferred`) returns with them unresolved, for the caller.
    """
    store = states if states is not None else RunStates.of(approvals)
    key = idempotency_key("pai-run", run_id)
    gate = SlackApprovals(
        approvals, run_id, frozenset(tools), inline=False, wait_timeout=wait_timeout,
        request_kwargs=dict(request_kwargs),
    )
    output_type = _output_type(agent)
    result: Any = None
    stored = store.load(key)
    if stored is None:
        result = await agent.run(prompt, deps=deps, output_type=output_type, capabilities=[gate])
        if not isinstance(result.output, DeferredToolRequests):
            return result
        messages, requests = result.all_messages(), result.output
    else:
        messages, requests = _decode(stored)
    while True:
        if not requests.approvals and result is not None:
            return result  # only external calls are left: the caller's to resolve
        store.save(key, _encode(messages, requests))
        answers = await gate.results(run_id, messages, requests)
        result = await agent.run(
            message_history=messages, deferred_tool_results=answers, deps=deps,
            output_type=output_type, capabilities=[gate],
        )
        if not isinstance(result.output, DeferredToolRequests):
            store.delete(key)
            return result
        messages, requests = result.all_messages(), result.output
