"""pydantic-ai: the real Agent, its FunctionModel, deferred tools decided in Redis."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic_ai import Agent, RunContext
from pydantic_ai.exceptions import ApprovalRequired
from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved

from hitl import Approvals
from hitl.integrations.pydantic_ai import SlackApprovals, run_with_approvals
from hitl.queries import pending
from hitl.status import ExecutionState, Status
from tests.integrations.fakes import pydantic_ai_model
from tests.integrations.test_langgraph import Reviewer, approve, reject


def mailer(sent: list[str], to: str = "all@example.com") -> Agent[None, Any]:
    agent: Agent[None, Any] = Agent(pydantic_ai_model([("send_email", {"to": to})]), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    return agent


def test_inline_handler_waits_for_slack_and_runs_the_edited_call(approvals: Approvals) -> None:
    sent: list[str] = []
    reviewer = Reviewer(approvals)
    reviewer.decide(approve(params={"to": "team@example.com"}))
    result = asyncio.run(mailer(sent).run("email everyone", capabilities=[SlackApprovals(approvals, "run-1")]))
    assert sent == ["team@example.com"] and result.output == "final: sent to team@example.com"
    (req,) = reviewer.seen
    assert (req.action, req.params, req.run_id) == ("send_email", {"to": "all@example.com"}, "run-1")
    assert approvals.get(req.id).fetch().execution is ExecutionState.FINISHED


def test_inline_rejection_reaches_the_model_as_the_reviewers_words(approvals: Approvals) -> None:
    sent: list[str] = []
    Reviewer(approvals).decide(reject("not to the whole company"))
    result = asyncio.run(mailer(sent).run("email everyone", capabilities=[SlackApprovals(approvals, "run-1")]))
    assert sent == []
    assert "Rejected by U0ALICE: not to the whole company" in result.output


def test_deferred_run_resumes_with_the_decision(approvals: Approvals) -> None:
    sent: list[str] = []
    Reviewer(approvals).decide(approve())
    result = asyncio.run(run_with_approvals(mailer(sent), "email everyone", approvals=approvals, run_id="run-1"))
    assert sent == ["all@example.com"] and result.output == "final: sent to all@example.com"


def test_a_forged_approval_is_deferred_again(approvals: Approvals) -> None:
    sent: list[str] = []
    agent = mailer(sent)
    gate = SlackApprovals(approvals, "run-1", inline=False)
    first = asyncio.run(agent.run("email everyone", capabilities=[gate]))
    assert isinstance(first.output, DeferredToolRequests)
    (call,) = first.output.approvals
    forged = DeferredToolResults(approvals={call.tool_call_id: ToolApproved(override_args={"to": "x@example.com"})})
    again = asyncio.run(agent.run(message_history=first.all_messages(), deferred_tool_results=forged, capabilities=[gate]))
    assert isinstance(again.output, DeferredToolRequests) and sent == []
    (req,) = pending(approvals.store)
    assert req.status is Status.PENDING


def test_a_tool_raising_approval_required_is_decided_in_slack(approvals: Approvals) -> None:
    """The other way pydantic-ai defers: the tool itself raises `ApprovalRequired`
    (here above a limit) and runs again once approved."""
    paid: list[int] = []
    agent: Agent[None, Any] = Agent(pydantic_ai_model([("pay", {"amount": 900})]))

    @agent.tool
    def pay(ctx: RunContext[None], amount: int) -> str:
        """Pay an amount."""
        if amount > 100 and not ctx.tool_call_approved:
            raise ApprovalRequired()
        paid.append(amount)
        return f"paid {amount}"

    reviewer = Reviewer(approvals)
    reviewer.decide(approve(params={"amount": 90}))
    result = asyncio.run(agent.run("pay", capabilities=[SlackApprovals(approvals, "run-1")]))
    assert paid == [90] and result.output == "final: paid 90"
    (req,) = reviewer.seen
    assert (req.action, req.params) == ("pay", {"amount": 900})


def test_tools_listed_are_gated_on_every_call(approvals: Approvals) -> None:
    """A plain tool named in `tools` is deferred before it runs, and a rejection stops it."""
    ran: list[str] = []
    agent: Agent[None, Any] = Agent(pydantic_ai_model([("drop_table", {"name": "users"})]))

    @agent.tool_plain
    def drop_table(name: str) -> str:
        """Drop a table."""
        ran.append(name)
        return f"dropped {name}"

    Reviewer(approvals).decide(reject("that is production"))
    gate = SlackApprovals(approvals, "run-1", tools=frozenset({"drop_table"}))
    result = asyncio.run(agent.run("clean up", capabilities=[gate]))
    assert ran == [] and "Rejected by U0ALICE: that is production" in result.output


def test_a_run_id_from_the_run_context_keys_the_requests(approvals: Approvals) -> None:
    """One capability on the agent, the run id read from `deps`: two runs, two requests."""
    sent: list[str] = []
    agent = mailer(sent)
    gate = SlackApprovals(approvals, lambda ctx: f"thread-{ctx.deps}")
    reviewer = Reviewer(approvals)
    reviewer.decide(approve(), approve())
    for thread in ("a", "b"):
        asyncio.run(agent.run("email everyone", deps=thread, capabilities=[gate]))
    assert sent == ["all@example.com", "all@example.com"]
    assert sorted(r.run_id for r in reviewer.seen) == ["thread-a", "thread-b"]
