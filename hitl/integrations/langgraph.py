"""LangGraph (and LangChain v1 agents): Slack approvals as LangGraph interrupts.

Four ways to pause a graph for a Slack decision, one way to resume it:

- `approval_interrupt(...)` inside a node, in place of `interrupt()`: files the request
  itself, keyed by thread id, node, step and the call's index within the node, so the
  node's re-run on resume re-attaches to the same request (no second card).
- `SlackApprovalMiddleware`: a LangChain v1 middleware that does the same around each
  gated tool call, where the tool runs.
- `ApprovalNode`: a ready node that files the planned tool calls of the last AI message
  as one plan (one card decided per step) and pauses until they are decided.
- LangChain v1's own `HumanInTheLoopMiddleware`, unchanged: its `HITLRequest` interrupt is
  filed by the resumer (one request, or one `request_batch` for several tool calls). That
  middleware applies whatever decisions its resume value carries, so only the resumer's
  answers are Slack's: where other callers can resume the thread, use one of the above.

The first three take decisions only from the store: a resume value is at most a pointer
to the call's own request; while it is undecided the graph pauses again. Each approved
call runs at most once (`hitl.executions`).

`LangGraphResumer` answers every such interrupt from the store and resumes the thread with
`Command(resume=...)`. It holds nothing in memory that matters: a new process pointed at
the same checkpointer and thread picks up where a killed one stopped.
`enqueue_server_resume` does the same for a LangGraph Server thread from an RQ job.
"""

from __future__ import annotations

import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain.agents.middleware import AgentMiddleware
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.config import get_config
from langgraph.types import Command, Interrupt, interrupt

from hitl.client import Approvals, RequestHandle
from hitl.errors import HitlError, InvalidRequest
from hitl.integrations.naming import idempotency_key, item_key
from hitl.integrations.outcome import Outcome, OutcomeKind
from hitl.models import Decision, Request
from hitl.status import ExecutionState, Mode

log = logging.getLogger(__name__)

# Marks an interrupt value as filed by `approval_interrupt` (its request id).
REQUEST_FIELD = "hitl_request_id"
# Marks a `HITLRequest` raised by `ApprovalNode`, which filed its requests itself (their ids).
REQUEST_IDS_FIELD = "hitl_request_ids"
# On an interrupt raised again after a refused resume value: why it was refused.
REFUSED_FIELD = "hitl_refused"

HumanResponse = dict[str, Any]
# Who answered in Agent Inbox, as a Slack user id, read from the run's config by something
# the caller cannot forge (e.g. `langgraph_server_user`); None when it cannot say.
ReviewerIdentity = Callable[[Mapping[str, Any]], str | None]


# -- small shared pieces ------------------------------------------------------------------
def check_args(args: Any, field: str = "args") -> dict[str, Any]:
    """Tool arguments must be a JSON object; names the first argument that is not JSON."""
    if not isinstance(args, dict):
        raise InvalidRequest(field, f"must be a dict of tool arguments, not {type(args).__name__}")
    for name, value in args.items():
        try:
            json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest(
                f"{field}.{name}", f"is not JSON-serialisable ({type(value).__name__}: {exc})"
            ) from None
    return args


def decide_now(handle: RequestHandle) -> bool:
    """Whether the agent acts without waiting: every mode but gate (the risk matrix in docs/contract.md)."""
    return handle.mode is not Mode.GATE


def current_decision(handle: RequestHandle) -> Decision:
    return handle.fetch().decision()


def _thread(config: Mapping[str, Any]) -> str:
    thread = (config.get("configurable") or {}).get("thread_id")
    if thread is None:
        raise InvalidRequest(
            "configurable.thread_id", "approvals need a checkpointed thread: pass a thread_id"
        )
    return str(thread)


def _namespace(config: Mapping[str, Any]) -> str:
    """The node's place in the graph, without task ids (which change between runs)."""
    meta = config.get("metadata") or {}
    ns = meta.get("langgraph_checkpoint_ns") or meta.get("langgraph_node") or ""
    return "|".join(part.split(":", 1)[0] for part in str(ns).split("|"))


# approval_interrupt calls so far in each running task (keyed by the task's scratchpad,
# which LangGraph creates afresh for every execution of a node). Bounded: tasks end.
_CALLS: OrderedDict[int, tuple[object, int]] = OrderedDict()
_MAX_TASKS = 4096


def _next_index(config: Mapping[str, Any]) -> int:
    from langgraph._internal._constants import CONFIG_KEY_SCRATCHPAD

    scratchpad = config["configurable"][CONFIG_KEY_SCRATCHPAD]
    owner, count = _CALLS.get(id(scratchpad), (None, 0))
    if owner is not scratchpad:
        count = 0
    _CALLS[id(scratchpad)] = (scratchpad, count + 1)
    _CALLS.move_to_end(id(scratchpad))
    while len(_CALLS) > _MAX_TASKS:
        _CALLS.popitem(last=False)
    return count


# -- Agent Inbox shapes -------------------------------------------------------------------
def human_interrupt(
    action: str, args: dict[str, Any], description: str, request_id: str, allowed: Sequence[str]
) -> dict[str, Any]:
    """Agent Inbox's `HumanInterrupt`, plus the request id the resumer waits on."""
    return {
        "action_request": {"action": action, "args": args},
        "config": {
            "allow_accept": "accept" in allowed,
            "allow_edit": "edit" in allowed,
            "allow_respond": "respond" in allowed,
            "allow_ignore": "ignore" in allowed,
        },
        "description": description,
        REQUEST_FIELD: request_id,
    }


def human_response(outcome: Outcome) -> HumanResponse:
    """Agent Inbox's `HumanResponse` for an outcome: accept, edit, response or ignore.

    Rejections, vetoes and expiries are a `response` whose text says which it was; a
    withdrawn request is `ignore`. The full outcome rides along under ``hitl``.
    """
    if outcome.kind in (OutcomeKind.APPROVED, OutcomeKind.FINALIZED):
        response: HumanResponse = {"type": "accept", "args": None}
    elif outcome.kind is OutcomeKind.EDITED:
        response = {"type": "edit", "args": {"action": outcome.action, "args": outcome.args}}
    elif outcome.kind is OutcomeKind.CANCELLED:
        response = {"type": "ignore", "args": None}
    else:
        response = {"type": "response", "args": outcome.message}
    response["hitl"] = outcome_json(outcome)
    return response


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    return {
        "kind": outcome.kind.value, "request_id": outcome.request_id, "action": outcome.action,
        "args": outcome.args, "by": list(outcome.by), "comment": outcome.comment,
        "mode": outcome.mode.value if outcome.mode else None,
    }


# Why an Agent Inbox answer without a verified reviewer is not recorded.
NO_IDENTITY = (
    "The Agent Inbox answer was not recorded: it came without a verified reviewer identity "
    "(a \"user\" in the answer is not one). The request is still pending in Slack, where it can be decided."
)


def langgraph_server_user(config: Mapping[str, Any]) -> str | None:
    """The reviewer LangGraph Server authenticated for this run, as a `ReviewerIdentity`.

    LangGraph Server runs your `@auth.authenticate` handler on every request and puts the
    user it returns in ``config["configurable"]["langgraph_auth_user"]`` itself (a client
    cannot choose it); its ``identity`` must be the reviewer's Slack user id for the answer
    to count. Outside LangGraph Server (a plain ``graph.invoke``), whoever calls the graph
    writes that config: do not use this identity source there.
    """
    user = (config.get("configurable") or {}).get("langgraph_auth_user")
    if user is None:
        return None
    if isinstance(user, Mapping):
        identity, authenticated = user.get("identity"), user.get("is_authenticated", True)
    else:
        identity, authenticated = getattr(user, "identity", None), getattr(user, "is_authenticated", True)
    if not authenticated or not isinstance(identity, str) or not identity.strip():
        return None
    return identity.strip()


def inbox_refusal(req: Request, reviewer: str | None) -> str | None:
    """Why `reviewer` may not decide `req` from Agent Inbox; None when they may try.

    The same approver rules as Slack, where they can be checked outside Slack: a verified
    identity, named among the request's approvers (channel membership and user groups
    are Slack's to check, so a request without named approvers is decided in Slack). The
    transition script then applies the rest (the requester may not approve their own).
    """
    if reviewer is None:
        return NO_IDENTITY
    if not req.approvers:
        return (
            f"The Agent Inbox answer by {reviewer} was not recorded: this request names no approvers, "
            "so only the members of its Slack channel may decide it, in Slack."
        )
    if reviewer not in req.approvers:
        return f"The Agent Inbox answer was not recorded: {reviewer} is not one of this request's approvers."
    return None


def record_inbox_response(
    approvals: Approvals,
    handle: RequestHandle,
    response: HumanResponse,
    asked: dict[str, Any],
    *,
    reviewer: str | None = None,
) -> Outcome:
    """An answer given in Agent Inbox, recorded on the request as `reviewer`'s decision, so
    Slack's card and the audit log agree with what the graph did.

    accept -> approve, edit -> approve with the edited args, response -> reject with the
    text as the reason, ignore -> cancel. `reviewer` is the verified identity of whoever
    answered (see `langgraph_server_user`); a ``"user"`` inside the answer is ignored. No
    verified reviewer, or one the approver rules refuse, records nothing: the outcome is
    UNDECIDED (the model hears "not decided yet") and the request stays pending in Slack.
    A request decided first (in Slack) keeps its own decision.
    """
    kind = response.get("type")
    if kind not in ("accept", "edit", "response", "ignore"):
        raise InvalidRequest("type", f"{kind!r} is not one of accept, edit, response, ignore")
    edited = check_args((response.get("args") or {}).get("args"), "args.args") if kind == "edit" else None
    req = handle.fetch()
    if req.final:
        return Outcome.from_decision(req.decision(), asked)
    refusal = inbox_refusal(req, reviewer)
    if refusal is not None or reviewer is None:
        log.warning("Agent Inbox answer for %s not recorded: %s", handle.id, refusal)
        return Outcome.from_decision(req.decision(), asked).undecided(refusal or NO_IDENTITY)
    try:
        if kind == "accept":
            approvals.decide(handle.id, "approve", by=reviewer)
        elif kind == "edit":
            approvals.decide(handle.id, "approve", by=reviewer, params=edited)
        elif kind == "response":
            approvals.decide(handle.id, "reject", by=reviewer, comment=str(response.get("args") or ""))
        else:
            approvals.cancel(handle.id, by=reviewer)
    except InvalidRequest:
        raise
    except HitlError as exc:
        log.warning("Agent Inbox answer for %s not recorded (%s)", handle.id, exc)
        outcome = Outcome.from_decision(current_decision(handle), asked)
        if outcome.kind is OutcomeKind.UNDECIDED:
            return outcome.undecided(f"The Agent Inbox answer by {reviewer} was not recorded: {exc}.")
        return outcome
    return Outcome.from_decision(current_decision(handle), asked)


def check_pointer(pointer: Any, request_id: str) -> None:
    """A resume's ``hitl`` part may only point at the request this tool call filed.

    Everything else in it (kind, args, by) is ignored: the decision is read from the store.
    """
    if not isinstance(pointer, dict):
        kind = type(pointer).__name__
        raise InvalidRequest("resume.hitl", f"must be an object naming request_id, not {kind}")
    named = pointer.get("request_id")
    if named is not None and named != request_id:
        raise InvalidRequest(
            "resume.hitl.request_id",
            f"names request {named!r}, but this tool call filed {request_id}: a resume may only point "
            "at the tool call's own request",
        )


def resume_outcome(
    approvals: Approvals,
    handle: RequestHandle,
    response: Any,
    asked: dict[str, Any],
    *,
    reviewer: str | None = None,
) -> Outcome | None:
    """What a resume value means for the tool call, from the store alone; None while the
    request it points at is still pending (the caller pauses again).

    A value with ``hitl`` (what `LangGraphResumer` sends) is a pointer: its request's
    stored decision is the outcome, whatever else the value says. Anything else is an
    Agent Inbox answer (`record_inbox_response`).
    """
    if isinstance(response, list) and len(response) == 1:  # Agent Inbox resumes with [response]
        response = response[0]
    if not isinstance(response, dict):
        raise InvalidRequest("resume", f"expected a HumanResponse dict, got {type(response).__name__}")
    if "hitl" in response:
        check_pointer(response["hitl"], handle.id)
        outcome = Outcome.from_decision(current_decision(handle), asked)
        return None if outcome.kind is OutcomeKind.UNDECIDED else outcome
    return record_inbox_response(approvals, handle, response, asked, reviewer=reviewer)


# -- approval_interrupt -------------------------------------------------------------------
def approval_interrupt(
    action: str,
    args: dict[str, Any],
    *,
    approvals: Approvals,
    summary: str | None = None,
    description: str | None = None,
    allowed: Sequence[str] = ("accept", "edit", "respond", "ignore"),
    reviewer: ReviewerIdentity | None = None,
    **request_kwargs: Any,
) -> Outcome:
    """Ask Slack before `action(**args)`; call it inside a node in place of `interrupt()`.

    Returns at once in auto, notify, override and shadow modes (the policy's mode; for
    override, `Outcome.kind` says VETOED if a veto landed before a re-run, and
    `outcome.watch_veto(approvals, timeout)` waits for the window to close and returns
    VETOED with the reviewer's reason or FINALIZED). In gate mode it
    interrupts the graph with Agent Inbox's `HumanInterrupt`; `LangGraphResumer` (or an
    Agent Inbox answer) resumes it and this returns the `Outcome`. The request's
    idempotency key is thread id, node, step and this call's index in the node, so the
    node's re-run on resume finds the same request.

    The resume value is only a pointer: the decision, its arguments and who took it are
    read from the store. A resume while the request is still pending interrupts again;
    a refused one (naming another request, or not a `HumanResponse`) interrupts again
    with the refusal under ``hitl_refused`` (e.g. ``resume.hitl.request_id: ...``). An
    Agent Inbox answer counts only as the verified identity `reviewer` returns for the
    run's config (e.g. `langgraph_server_user`), and only within the approver rules;
    otherwise nothing is recorded and the outcome is UNDECIDED ("not decided yet").

    An outcome that runs has its execution started (`Outcome.start`): the tool call runs at
    most once, and a re-run of the node after it started returns UNKNOWN or ALREADY_RAN,
    which do not run. Call `outcome.finish(approvals)` once the tool returned (the
    resumer also records it when the invoke that resumed the node returns).
    """
    args = check_args(args)
    config = get_config()
    key = idempotency_key(
        "lg", _thread(config), _namespace(config), (config.get("metadata") or {}).get("langgraph_step", 0),
        _next_index(config),
    )
    return _gate(
        action, args, approvals=approvals, config=config, key=key, summary=summary, description=description,
        allowed=allowed, reviewer=reviewer, request_kwargs=request_kwargs,
    )


def _gate(
    action: str,
    args: dict[str, Any],
    *,
    approvals: Approvals,
    config: Mapping[str, Any],
    key: str,
    summary: str | None,
    description: str | None,
    allowed: Sequence[str],
    reviewer: ReviewerIdentity | None,
    request_kwargs: Mapping[str, Any],
) -> Outcome:
    """File (or re-attach to) the request under `key`, pause while it is undecided, and
    return its stored outcome with the execution started: `approval_interrupt`'s body."""
    text = summary or f"Run {action}"
    handle = approvals.request(
        action=action, summary=text, params=args, idempotency_key=key,
        run_id=_thread(config), **request_kwargs,
    )
    if decide_now(handle):
        return Outcome.from_decision(current_decision(handle), args).start(approvals)
    payload = human_interrupt(action, args, description or text, handle.id, allowed)
    who = reviewer(config) if reviewer is not None else None
    asking = payload
    while True:
        # Each pass consumes the next resume value, so pausing again never wedges the thread:
        # the real decision's resume reaches this same call.
        try:
            outcome = resume_outcome(approvals, handle, interrupt(asking), args, reviewer=who)
        except InvalidRequest as exc:  # a refused resume value: say why and pause again
            log.warning("resume of %s refused: %s", handle.id, exc)
            asking = {**payload, REFUSED_FIELD: str(exc)}
            continue
        if outcome is not None:
            return outcome.start(approvals)
        asking = payload  # a pointer to a request still pending: pause again


# -- a middleware gate enforced where the tool runs ----------------------------------------
# The inbox answers a tool's middleware gate allows, from LangChain's decision names.
_INBOX_ANSWERS = {"approve": "accept", "edit": "edit", "reject": "respond", "respond": "respond"}


class SlackApprovalMiddleware(AgentMiddleware):
    """LangChain v1 agents: tool calls gated in Slack, enforced around the tool itself.

    LangChain's own `HumanInTheLoopMiddleware` runs whatever decisions its resume value
    carries, so whoever can resume the thread decides (the resumer below answers it from
    Slack, but nothing stops another caller). This middleware checks where the tool runs
    (`wrap_tool_call`): each gated call files one request (keyed by thread and tool call
    id), pauses with a pointer to it (`LangGraphResumer` and `enqueue_server_resume` resume
    it), and runs the tool only if the stored decision allows it, with the stored
    arguments, at most once. Anything else reaches the model as the tool's result.

    `interrupt_on` maps tool names to True (gated) or a LangChain `InterruptOnConfig`
    (its ``allowed_decisions`` and ``description`` are used). `reviewer` verifies Agent
    Inbox answers (see `approval_interrupt`). Other keyword arguments go to every request.
    Synchronous agents (``invoke``) only.
    """

    def __init__(
        self,
        approvals: Approvals,
        interrupt_on: Mapping[str, bool | Mapping[str, Any]],
        *,
        reviewer: ReviewerIdentity | None = None,
        **request_kwargs: Any,
    ) -> None:
        super().__init__()
        self.approvals = approvals
        self.gated = {name: ({} if on is True else dict(on)) for name, on in interrupt_on.items() if on}
        self.reviewer = reviewer
        self.request_kwargs = request_kwargs

    def wrap_tool_call(self, request: Any, handler: Callable[[Any], Any]) -> Any:
        call = request.tool_call
        gate = self.gated.get(call["name"])
        if gate is None:
            return handler(request)
        config = get_config()
        decisions = gate.get("allowed_decisions") or ["approve", "edit", "reject"]
        description = gate.get("description") if isinstance(gate.get("description"), str) else None
        outcome = _gate(
            call["name"], check_args(call["args"]), approvals=self.approvals, config=config,
            key=idempotency_key("lg", _thread(config), "tool", call["id"]),
            summary=description, description=description,
            allowed=sorted({_INBOX_ANSWERS[d] for d in decisions if d in _INBOX_ANSWERS}),
            reviewer=self.reviewer, request_kwargs=self.request_kwargs,
        )
        if not outcome.runs:
            name = call["name"]
            return ToolMessage(content=outcome.message, name=name, tool_call_id=call["id"], status="error")
        try:
            result = handler(request.override(tool_call={**call, "args": outcome.args}))
        except Exception:
            outcome.finish(self.approvals, ok=False)
            raise
        outcome.finish(self.approvals)
        return result


# -- HumanInTheLoopMiddleware / ApprovalNode interrupts ----------------------------------
def is_hitl_request(value: Any) -> bool:
    """LangChain v1's `HITLRequest` (what the middleware and `ApprovalNode` raise)."""
    return isinstance(value, dict) and isinstance(value.get("action_requests"), list)


def middleware_decision(outcome: Outcome, allowed: Sequence[str]) -> dict[str, Any]:
    """The middleware's decision for an outcome, within what the tool allows.

    Expiry and withdrawal are `respond` (the text reaches the model verbatim, not framed
    as "User rejected") when the tool allows it, else `reject` with the same text.
    """
    if outcome.kind in (OutcomeKind.APPROVED, OutcomeKind.FINALIZED):
        return {"type": "approve"}
    if outcome.kind is OutcomeKind.EDITED:
        if "edit" in allowed:
            return {"type": "edit", "edited_action": {"name": outcome.action, "args": outcome.args}}
        return {"type": "reject", "message": "the reviewer edited the arguments; this tool allows no edits"}
    if outcome.kind is OutcomeKind.REJECTED and "reject" in allowed:
        return {"type": "reject", "message": outcome.comment or "no reason given"}
    if "respond" in allowed:
        return {"type": "respond", "message": outcome.message}
    return {"type": "reject", "message": outcome.message}


def file_hitl_request(
    approvals: Approvals, value: dict[str, Any], base_key: str, **request_kwargs: Any
) -> list[tuple[RequestHandle, dict[str, Any], list[str]]]:
    """File a `HITLRequest`'s action requests: one request, or one plan for several.

    Every argument is checked before anything is filed. Re-filing with the same
    `base_key` finds the requests filed before.
    """
    actions = value["action_requests"]
    configs = {c.get("action_name"): c.get("allowed_decisions", []) for c in value.get("review_configs", [])}
    for n, a in enumerate(actions):
        check_args(a.get("args"), f"action_requests.{n}.args")
    items = [
        {
            "action": a["name"],
            "summary": _summary(a),
            "params": a["args"],
            "context": a.get("description"),
        }
        for a in actions
    ]
    if len(items) == 1:
        handles = [approvals.request(**items[0], idempotency_key=item_key(base_key, 0), **request_kwargs)]
    else:
        # The batch's key covers the plan and each step: a re-run gets the same plan back.
        summary = f"Plan of {len(items)} tool calls: " + ", ".join(a["name"] for a in actions)
        batch = approvals.request_batch(
            summary=summary, items=items, idempotency_key=base_key, **request_kwargs
        )
        handles = batch.items
    return [(h, a["args"], configs.get(a["name"], [])) for h, a in zip(handles, actions, strict=True)]


def _summary(action: dict[str, Any]) -> str:
    first = (action.get("description") or "").strip().splitlines()
    return (first[0] if first else "") or f"Run {action['name']}"


class ApprovalNode:
    """A ready node: review the planned tool calls of the last AI message.

    Files them itself as one plan (one card, a decision per step; a single call is one
    request), keyed by thread, node and step, and pauses with a `HITLRequest` that points
    at the filed requests (``hitl_request_ids``) until every one is decided;
    `LangGraphResumer` resumes it. The decisions are read from the store, never from the
    resume value. Approved calls stay on the message (edited ones with the stored
    arguments) for the `ToolNode` after it, their executions started (at most once); the
    others are answered with a `ToolMessage` carrying the reviewer's reason or the expiry
    text, and never run. Other keyword arguments go to every request.
    """

    def __init__(
        self,
        approvals: Approvals,
        tools: Sequence[str] | None = None,
        description: str = "Planned tool call",
        **request_kwargs: Any,
    ) -> None:
        self.approvals = approvals
        self.tools = set(tools) if tools is not None else None
        self.description = description
        self.request_kwargs = request_kwargs

    def __call__(self, state: dict[str, Any]) -> dict[str, Any]:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return {}
        gated = [c for c in last.tool_calls if self.tools is None or c["name"] in self.tools]
        if not gated:
            return {}
        allowed = ["approve", "edit", "reject", "respond"]
        request: dict[str, Any] = {
            "action_requests": [
                {"name": c["name"], "args": c["args"], "description": f"{self.description}: {c['name']}"}
                for c in gated
            ],
            "review_configs": [{"action_name": c["name"], "allowed_decisions": allowed} for c in gated],
        }
        config = get_config()
        thread = _thread(config)
        base = idempotency_key(
            "lg", thread, _namespace(config), (config.get("metadata") or {}).get("langgraph_step", 0), "plan"
        )
        filed = file_hitl_request(self.approvals, request, base, run_id=thread, **self.request_kwargs)
        asking = {**request, REQUEST_IDS_FIELD: [h.id for h, _, _ in filed]}
        while True:
            outcomes = [Outcome.from_decision(current_decision(h), asked) for h, asked, _ in filed]
            if all(o.kind is not OutcomeKind.UNDECIDED for o in outcomes):
                break
            interrupt(asking)  # whatever the resume value says, the store is read again
        by_id = {
            c["id"]: middleware_decision(o.start(self.approvals), allowed)
            for c, o in zip(gated, outcomes, strict=True)
        }
        kept, answers = [], []
        for call in last.tool_calls:
            d = by_id.get(call["id"], {"type": "approve"})
            if d["type"] == "approve":
                kept.append(call)
            elif d["type"] == "edit":
                kept.append({**call, "args": d["edited_action"]["args"]})
            else:
                text = d.get("message") or "not approved"
                if d["type"] == "reject":
                    text = f"Rejected by the reviewer: {text}"
                answers.append(
                    ToolMessage(content=text, name=call["name"], tool_call_id=call["id"], status="error")
                )
        updated = last.model_copy(update={"tool_calls": kept})
        return {"messages": [updated, *answers]}


# -- resuming -----------------------------------------------------------------------------
class LangGraphResumer:
    """Answers a thread's approval interrupts from Redis and resumes it.

    `run(input, config)` invokes the graph and resumes it until no approval is pending;
    `resume(config)` picks up a thread another process left waiting. Waiting blocks on the
    request's done list (no polling); `wait_timeout` bounds each wait (`WaitTimeout`).
    Other keyword arguments go to every request it files (channel, approvers, timeout...).
    """

    def __init__(
        self, graph: Any, approvals: Approvals, *, wait_timeout: float | None = None, **request_kwargs: Any
    ) -> None:
        self.graph = graph
        self.approvals = approvals
        self.timeout = wait_timeout
        self.request_kwargs = request_kwargs

    def run(self, graph_input: Any, config: dict[str, Any]) -> dict[str, Any]:
        self.graph.invoke(graph_input, config)
        return self.resume(config)

    def resume(self, config: dict[str, Any]) -> dict[str, Any]:
        thread = _thread(config)
        while True:
            state = self.graph.get_state(config)
            started: list[Outcome] = []
            ours = [i for i in state.interrupts if self.handles(i.value)]
            answers = {i.id: self.answer(i, thread, started=started) for i in ours}
            if not answers:
                return state.values
            self.graph.invoke(Command(resume=answers), config)
            # The approved calls ran in that invoke (a checkpoint holds their results). If it
            # raised, they stay started: a re-run tells the model the outcome is unknown.
            for outcome in started:
                outcome.finish(self.approvals)
            for rid in (rid for i in ours for rid in self.pointed(i.value)):
                if self.approvals.get(rid).fetch().execution is ExecutionState.STARTED:
                    self.approvals.finish_execution(rid)  # started by the graph in that invoke

    @staticmethod
    def handles(value: Any) -> bool:
        return is_hitl_request(value) or (isinstance(value, dict) and REQUEST_FIELD in value)

    @staticmethod
    def pointed(value: Any) -> list[str]:
        """The requests an interrupt of ours points at (filed in the graph, not by us)."""
        if REQUEST_FIELD in value:
            return [value[REQUEST_FIELD]]
        return list(value.get(REQUEST_IDS_FIELD) or [])

    def answer(self, intr: Interrupt, thread: str, *, started: list[Outcome] | None = None) -> Any:
        """The resume value for one interrupt, once its request(s) are final.

        `approval_interrupt`'s interrupts get a pointer to their request (the node reads the
        decision from the store and starts its execution itself). For a `HITLRequest`,
        with `started` given, each approved call's execution is started here (the tool runs
        in the graph, where no hook of ours is) and appended to `started` for the caller
        to finish; a call that started before is answered "outcome unknown" instead.
        """
        value = intr.value
        if REQUEST_FIELD in value:
            handle = self.approvals.get(value[REQUEST_FIELD])
            asked = value["action_request"]["args"]
            return human_response(Outcome.from_decision(handle.wait(self.timeout), asked))
        if REQUEST_IDS_FIELD in value:  # ApprovalNode: it reads the decisions from the store
            ids = list(value[REQUEST_IDS_FIELD])
            for rid in ids:
                self.approvals.get(rid).wait(self.timeout)
            return {"hitl": {"request_ids": ids}}
        filed = file_hitl_request(
            self.approvals, value, idempotency_key("lg", thread, intr.id),
            run_id=thread, **self.request_kwargs,
        )
        decisions = []
        for handle, asked, allowed in filed:
            decision = current_decision(handle) if decide_now(handle) else handle.wait(self.timeout)
            outcome = Outcome.from_decision(decision, asked)
            if started is not None and outcome.runs:
                outcome = outcome.start(self.approvals)
                if outcome.runs:
                    started.append(outcome)
            decisions.append(middleware_decision(outcome, allowed))
        return {"decisions": decisions}


# -- LangGraph Server ---------------------------------------------------------------------
def resume_server_thread(
    thread_id: str, assistant_id: str, url: str | None = None, timeout: float | None = None
) -> dict[str, Any] | None:
    """RQ job: answer a LangGraph Server thread's approval interrupts and resume it.

    Reads the thread's interrupts through `langgraph-sdk`, waits for each decision in Redis
    and starts a run with ``command={"resume": {interrupt_id: answer}}``. The server URL
    comes from `url` or ``LANGGRAPH_API_URL``. Returns the created run, or None when
    nothing of ours was pending.
    """
    from langgraph_sdk import get_sync_client

    client = get_sync_client(url=url or os.environ.get("LANGGRAPH_API_URL"))
    thread = client.threads.get(thread_id)
    pending = [
        Interrupt(value=i["value"], id=i["id"])
        for items in (thread.get("interrupts") or {}).values()
        for i in items
    ]
    with Approvals() as approvals:
        resumer = LangGraphResumer(None, approvals, wait_timeout=timeout)
        answers = {i.id: resumer.answer(i, thread_id) for i in pending if resumer.handles(i.value)}
    if not answers:
        return None
    return dict(client.runs.create(thread_id, assistant_id, command={"resume": answers}))


def enqueue_server_resume(
    approvals: Approvals, thread_id: str, assistant_id: str, url: str | None = None, timeout: float = 86_400
) -> Any:
    """Queue `resume_server_thread` on ``{prefix}-langgraph`` (run it with `rq worker`).

    The job waits up to `timeout` seconds for the decisions and then fails with
    `WaitTimeout` (starting no run); RQ's own job timeout is a minute longer, a backstop.
    """
    from rq import Queue

    queue = Queue(approvals.keys.queue("langgraph"), connection=approvals.redis)
    return queue.enqueue(
        resume_server_thread, thread_id, assistant_id, url, timeout, job_timeout=int(timeout) + 60
    )
