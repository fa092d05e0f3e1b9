"""OpenAI Agents SDK: the real Runner and RunState, a scripted model, decisions in Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Agent, function_tool, set_tracing_disabled

from hitl import Approvals, InvalidRequest
from hitl.integrations.openai_agents import run_with_approvals
from hitl.queries import pending
from tests.helpers import start_worker, stop
from tests.integrations.fakes import scripted_model
from tests.integrations.test_langgraph import Reviewer, approve, reject

set_tracing_disabled(True)


def mailer(sent: list[str], to: str = "all@example.com") -> Agent[Any]:
    @function_tool(needs_approval=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    return Agent(name="mailer", tools=[send_email], model=scripted_model([("send_email", {"to": to})]))


def run(agent: Agent[Any], approvals: Approvals, **kw: Any) -> Any:
    return asyncio.run(run_with_approvals(agent, "email everyone", approvals=approvals, run_id="run-1", **kw))


def test_card_shows_tool_args_agent_and_context_and_approval_runs_it(approvals: Approvals) -> None:
    sent: list[str] = []
    reviewer = Reviewer(approvals)
    reviewer.decide(approve())
    result = run(mailer(sent), approvals, context={"customer": "acme"})
    assert sent == ["all@example.com"] and result.final_output == "final: sent to all@example.com"
    (req,) = reviewer.seen
    assert (req.action, req.params, req.agent, req.run_id) == ("send_email", {"to": "all@example.com"}, "mailer", "run-1")
    assert "acme" in req.context
    assert approvals.redis.get(approvals.keys.run_state("run-1")) is None  # finished: state gone


def test_reject_reason_reaches_the_model_as_the_tool_result(approvals: Approvals) -> None:
    sent: list[str] = []
    Reviewer(approvals).decide(reject("not to the whole company"))
    result = run(mailer(sent), approvals)
    assert sent == []
    assert "Rejected by U0ALICE: not to the whole company" in result.final_output


def test_edit_runs_the_tool_with_the_edited_arguments(approvals: Approvals) -> None:
    sent: list[str] = []
    Reviewer(approvals).decide(approve(params={"to": "team@example.com"}))
    result = run(mailer(sent), approvals)
    assert sent == ["team@example.com"]
    assert result.final_output == "final: sent to team@example.com"


@pytest.fixture
def worker(redis_url: str, prefix: str) -> Iterator[None]:
    proc = start_worker(redis_url, prefix, HITL_TIMER_LEASE="2")
    try:
        yield
    finally:
        stop(proc)


def test_expiry_tells_the_model_nobody_decided(approvals: Approvals, worker: None) -> None:
    sent: list[str] = []
    result = run(mailer(sent), approvals, timeout=1)
    assert sent == []
    assert "No one decided on `send_email` in time" in result.final_output
    assert "not a rejection" in result.final_output and "Rejected" not in result.final_output


def test_state_over_the_cap_is_refused_and_nothing_is_filed(approvals: Approvals) -> None:
    sent: list[str] = []
    with pytest.raises(InvalidRequest) as err:
        run(mailer(sent), approvals, max_state_bytes=500)
    assert err.value.field == "run_state" and "the limit is 500" in str(err.value)
    assert pending(approvals.store) == []
    assert approvals.redis.get(approvals.keys.run_state("run-1")) is None
    assert sent == []
