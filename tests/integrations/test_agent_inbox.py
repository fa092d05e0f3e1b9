"""Agent Inbox answers (`HumanResponse`): recorded only as a verified reviewer's decision.

The graph runs as LangGraph Server runs it: a node calling `approval_interrupt`, resumed
with the answer as the resume value. LangGraph Server puts the user its auth handler
verified in ``configurable.langgraph_auth_user``; a ``"user"`` inside the answer is what
any caller of the resume endpoint can write, and counts for nothing.
"""

from __future__ import annotations

from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command

from hitl import Approvals, InvalidRequest
from hitl.integrations.langgraph import approval_interrupt, langgraph_server_user, record_inbox_response
from hitl.integrations.outcome import Outcome, OutcomeKind
from hitl.status import EventType, Status
from tests.helpers import events

ASKED = {"to": "all@example.com"}
APPROVERS = ["U0ALICE", "U0BOB"]
THREAD = {"thread_id": "inbox-thread"}


def server_config(user: str | None = None) -> dict[str, Any]:
    """A run's config as LangGraph Server builds it, with its authenticated user if any."""
    configurable: dict[str, Any] = dict(THREAD)
    if user is not None:
        configurable["langgraph_auth_user"] = {"identity": user, "is_authenticated": True}
    return {"configurable": configurable}


class Graph:
    """A one-node graph that asks before sending; `sent` is every run of the tool."""

    def __init__(self, approvals: Approvals, **request: Any) -> None:
        self.approvals = approvals
        self.sent: list[dict[str, Any]] = []
        self.outcomes: list[Outcome] = []

        class State(TypedDict, total=False):
            result: str

        def send(state: State) -> State:
            outcome = approval_interrupt(
                "send_email", ASKED, approvals=approvals, summary="Email everyone", **request
            )
            self.outcomes.append(outcome)
            if outcome.runs:
                self.sent.append(outcome.args)
                return {"result": "sent"}
            return {"result": outcome.message}

        builder = StateGraph(State)
        builder.add_node("send", send)
        builder.add_edge(START, "send")
        builder.add_edge("send", END)
        self.graph = builder.compile(checkpointer=InMemorySaver())

    def start(self) -> str:
        out = self.graph.invoke({}, server_config())
        (intr,) = out["__interrupt__"]
        return intr.value["hitl_request_id"]

    def answer(self, response: Any, user: str | None = None) -> dict[str, Any]:
        return self.graph.invoke(Command(resume=response), server_config(user))


def test_an_accept_naming_a_user_without_a_verified_identity_records_nothing(approvals: Approvals) -> None:
    """The defect: an accept carrying "user": "U0ALICE" was recorded as Alice's approval.
    With no identity source (the default), no Inbox answer is ever recorded."""
    graph = Graph(approvals, approvers=APPROVERS)
    rid = graph.start()
    out = graph.answer({"type": "accept", "args": None, "user": "U0ALICE"})
    assert graph.sent == []
    assert out["result"].startswith("Not decided yet: `send_email` is still waiting for a decision in Slack")
    assert "Rejected" not in out["result"]
    assert approvals.get(rid).status() is Status.PENDING
    assert [e["type"] for e in events(approvals.redis, approvals.keys.prefix, rid)] == [EventType.CREATED]


def test_a_verified_reviewer_is_recorded_as_the_decider_and_the_user_field_is_ignored(
    approvals: Approvals,
) -> None:
    graph = Graph(approvals, reviewer=langgraph_server_user, approvers=APPROVERS)
    rid = graph.start()
    out = graph.answer({"type": "accept", "args": None, "user": "U0MALLORY"}, user="U0ALICE")
    assert out["result"] == "sent" and graph.sent == [ASKED]
    decision = approvals.get(rid).decision()
    assert (decision.status, decision.by) == (Status.APPROVED, ["U0ALICE"])
    assert graph.outcomes[-1].by == ("U0ALICE",)


def test_the_requester_may_not_approve_their_own_request_from_the_inbox(approvals: Approvals) -> None:
    graph = Graph(approvals, reviewer=langgraph_server_user, approvers=APPROVERS, requested_by="U0BOB")
    rid = graph.start()
    out = graph.answer({"type": "accept", "args": None}, user="U0BOB")
    assert graph.sent == [] and out["result"].startswith("Not decided yet")
    assert "requested this action" in out["result"]
    assert approvals.get(rid).status() is Status.PENDING


@pytest.mark.parametrize(("approvers", "user", "why"), [
    (APPROVERS, "U0CAROL", "U0CAROL is not one of this request's approvers"),
    (None, "U0ALICE", "names no approvers"),
])
def test_a_reviewer_outside_the_approver_rules_is_refused(
    approvals: Approvals, approvers: list[str] | None, user: str, why: str
) -> None:
    graph = Graph(approvals, reviewer=langgraph_server_user, approvers=approvers)
    rid = graph.start()
    out = graph.answer({"type": "accept", "args": None}, user=user)
    assert graph.sent == [] and out["result"].startswith("Not decided yet") and why in out["result"]
    assert approvals.get(rid).status() is Status.PENDING


def test_an_unauthenticated_server_user_is_no_identity() -> None:
    assert langgraph_server_user({"configurable": {"langgraph_auth_user": {"identity": "U0A", "is_authenticated": False}}}) is None
    assert langgraph_server_user({"configurable": {}}) is None
    assert langgraph_server_user(server_config("U0ALICE")) == "U0ALICE"


# -- record_inbox_response itself, with a verified reviewer --------------------------------
def ask(approvals: Approvals, **kw: Any) -> Any:
    return approvals.request(action="send_email", summary="Email everyone", params=ASKED, approvers=APPROVERS, **kw)


def test_edit_approves_with_the_edited_arguments(approvals: Approvals) -> None:
    handle = ask(approvals)
    edited = {"type": "edit", "args": {"action": "send_email", "args": {"to": "team@example.com"}}}
    outcome = record_inbox_response(approvals, handle, edited, ASKED, reviewer="U0ALICE")
    assert (outcome.kind, outcome.args, outcome.by) == (OutcomeKind.EDITED, {"to": "team@example.com"}, ("U0ALICE",))
    stored = handle.decision()
    assert (stored.status, stored.params) == (Status.APPROVED, {"to": "team@example.com"})


def test_response_rejects_with_the_text_as_the_reason(approvals: Approvals) -> None:
    handle = ask(approvals)
    outcome = record_inbox_response(approvals, handle, {"type": "response", "args": "not today"}, ASKED, reviewer="U0BOB")
    assert (outcome.kind, outcome.comment, outcome.runs) == (OutcomeKind.REJECTED, "not today", False)
    assert (handle.status(), handle.decision().comment) == (Status.REJECTED, "not today")


def test_ignore_cancels_the_request(approvals: Approvals) -> None:
    handle = ask(approvals)
    outcome = record_inbox_response(approvals, handle, {"type": "ignore", "args": None}, ASKED, reviewer="U0ALICE")
    assert (outcome.kind, outcome.runs) == (OutcomeKind.CANCELLED, False)
    assert handle.status() is Status.CANCELLED


@pytest.mark.parametrize("answer", [
    {"type": "accept", "args": None},
    {"type": "edit", "args": {"action": "send_email", "args": {"to": "x@example.com"}}},
    {"type": "response", "args": "late words"},
    {"type": "ignore", "args": None},
])
def test_a_request_decided_in_slack_first_keeps_its_own_decision(approvals: Approvals, answer: dict[str, Any]) -> None:
    handle = ask(approvals)
    approvals.decide(handle.id, "reject", by="U0BOB", comment="decided in Slack")
    outcome = record_inbox_response(approvals, handle, answer, ASKED, reviewer="U0ALICE")
    assert (outcome.kind, outcome.by, outcome.comment) == (OutcomeKind.REJECTED, ("U0BOB",), "decided in Slack")
    assert handle.status() is Status.REJECTED


def test_an_unknown_answer_type_is_refused_naming_the_field(approvals: Approvals) -> None:
    handle = ask(approvals)
    with pytest.raises(InvalidRequest) as err:
        record_inbox_response(approvals, handle, {"type": "maybe"}, ASKED, reviewer="U0ALICE")
    assert err.value.field == "type"
    assert handle.status() is Status.PENDING


def test_an_edit_with_bad_arguments_is_refused_and_nothing_is_recorded(approvals: Approvals) -> None:
    handle = ask(approvals)
    with pytest.raises(InvalidRequest) as err:
        record_inbox_response(
            approvals, handle, {"type": "edit", "args": {"args": {"to": object()}}}, ASKED, reviewer="U0ALICE"
        )
    assert err.value.field == "args.args.to"
    assert handle.status() is Status.PENDING
