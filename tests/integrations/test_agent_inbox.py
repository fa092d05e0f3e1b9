"""Agent Inbox answers (`HumanResponse`) recorded on the request, so Slack and the graph agree."""

from __future__ import annotations

from typing import Any

import pytest

from hitl import Approvals, InvalidRequest
from hitl.integrations.langgraph import record_inbox_response
from hitl.integrations.outcome import OutcomeKind
from hitl.status import Status

ASKED = {"to": "all@example.com"}


def ask(approvals: Approvals) -> Any:
    return approvals.request(action="send_email", summary="Email everyone", params=ASKED)


def test_accept_approves_the_request(approvals: Approvals) -> None:
    handle = ask(approvals)
    outcome = record_inbox_response(approvals, handle, {"type": "accept", "args": None, "user": "U0ALICE"}, ASKED)
    assert (outcome.kind, outcome.args, outcome.by) == (OutcomeKind.APPROVED, ASKED, ("U0ALICE",))
    assert handle.status() is Status.APPROVED


def test_edit_approves_with_the_edited_arguments(approvals: Approvals) -> None:
    handle = ask(approvals)
    edited = {"type": "edit", "args": {"action": "send_email", "args": {"to": "team@example.com"}}}
    outcome = record_inbox_response(approvals, handle, edited, ASKED)
    assert (outcome.kind, outcome.args, outcome.by) == (OutcomeKind.EDITED, {"to": "team@example.com"}, ("agent-inbox",))
    stored = handle.decision()
    assert (stored.status, stored.params) == (Status.APPROVED, {"to": "team@example.com"})


def test_response_rejects_with_the_text_as_the_reason(approvals: Approvals) -> None:
    handle = ask(approvals)
    outcome = record_inbox_response(approvals, handle, {"type": "response", "args": "not today"}, ASKED)
    assert (outcome.kind, outcome.comment, outcome.runs) == (OutcomeKind.REJECTED, "not today", False)
    assert (handle.status(), handle.decision().comment) == (Status.REJECTED, "not today")


def test_ignore_cancels_the_request(approvals: Approvals) -> None:
    handle = ask(approvals)
    outcome = record_inbox_response(approvals, handle, {"type": "ignore", "args": None}, ASKED)
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
    outcome = record_inbox_response(approvals, handle, answer, ASKED)
    assert (outcome.kind, outcome.by, outcome.comment) == (OutcomeKind.REJECTED, ("U0BOB",), "decided in Slack")
    assert handle.status() is Status.REJECTED


def test_an_unknown_answer_type_is_refused_naming_the_field(approvals: Approvals) -> None:
    handle = ask(approvals)
    with pytest.raises(InvalidRequest) as err:
        record_inbox_response(approvals, handle, {"type": "maybe"}, ASKED)
    assert err.value.field == "type"
    assert handle.status() is Status.PENDING


def test_an_edit_with_bad_arguments_is_refused_and_nothing_is_recorded(approvals: Approvals) -> None:
    handle = ask(approvals)
    with pytest.raises(InvalidRequest) as err:
        record_inbox_response(approvals, handle, {"type": "edit", "args": {"args": {"to": object()}}}, ASKED)
    assert err.value.field == "args.args.to"
    assert handle.status() is Status.PENDING
