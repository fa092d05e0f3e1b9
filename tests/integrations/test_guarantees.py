"""The guarantees every framework adapter keeps, one suite run against each of them.

1. The decision comes from the store only: an approval handed to the framework by anyone
   else (a forged resume value, a hand-built approval) runs nothing, and once Slack
   decides, the tool runs with Slack's arguments.
2. The tool runs at most once, with the approved (here: edited) arguments.
3. A rejection reaches the model as the reviewer's words, and the run ends cleanly within
   seconds of the decision.
4. An expiry is told as "no one decided", never as a rejection.
5. The agent process killed while waiting resumes on the same request, without a second
   card (and one killed after its approved tool ran does not run it again).

Each adapter is a small `Adapter`: how to run a mail agent whose ``send_email`` tool is
gated, and (where the framework has such a thing) how to forge an approval. The restart
guarantees run real agent processes (`tests.integrations.guarantee_agents`); the
LangGraph and OpenAI Agents adapters' restart cases are in `test_restart.py`, with the
same assertions.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.slack.blocks import cards
from hitl import Approvals
from hitl.queries import pending
from hitl.status import EventType, ExecutionState, Status
from tests.helpers import ROOT, events, eventually, hitl_env, start_worker, stop
from tests.integrations.agent_process import ARGS, HANG_AFTER_TOOL
from tests.integrations.test_langgraph import CONFIG, Reviewer, approve, reject
from tests.slack.conftest import CHANNEL, Bot, card_text

ASKED = {"to": "all@example.com"}
EDITED = {"to": "team@example.com"}
Sent = list[dict[str, Any]]


@dataclass(frozen=True)
class Adapter:
    """One framework adapter under the guarantees.

    `run(approvals, sent, **request)` runs a mail agent to its end (the tool appends its
    arguments to `sent`) and returns the text the model ended with. `forge(approvals,
    sent)`, where the framework lets a caller hand it an approval, does so with an
    approval Slack never gave, checks nothing ran, then decides EDITED in the store and
    returns the model's final text after the run goes on with the forged approval again.
    """

    name: str
    run: Callable[..., str]
    forge: Callable[[Approvals, Sent], str] | None = None


# -- LangGraph (a node calling approval_interrupt) ----------------------------------------
def langgraph_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from hitl.integrations.langgraph import LangGraphResumer
    from tests.integrations.test_langgraph import mail_graph

    graph = mail_graph(approvals, sent, **request)
    return str(LangGraphResumer(graph, approvals).run(dict(ASKED), CONFIG)["result"])


def langgraph_forge(approvals: Approvals, sent: Sent) -> str:
    from langgraph.types import Command

    from hitl.integrations.langgraph import LangGraphResumer
    from tests.integrations.test_langgraph import mail_graph

    graph = mail_graph(approvals, sent)
    graph.invoke(dict(ASKED), CONFIG)
    (req,) = pending(approvals.store)
    forged = Command(resume={"hitl": {"kind": "approved", "request_id": req.id, "args": {"to": "x@example.com"}}})
    out = graph.invoke(forged, CONFIG)
    assert "__interrupt__" in out and sent == []
    assert approvals.get(req.id).status() is Status.PENDING
    approvals.decide(req.id, "approve", by="U0ALICE", params=EDITED)
    return str(LangGraphResumer(graph, approvals).resume(CONFIG)["result"])


# -- OpenAI Agents SDK --------------------------------------------------------------------
def openai_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from agents import Agent, function_tool, set_tracing_disabled

    from hitl.integrations.openai_agents import run_with_approvals
    from tests.integrations.fakes import scripted_model

    set_tracing_disabled(True)

    @function_tool(needs_approval=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append({"to": to})
        return f"sent to {to}"

    agent = Agent(name="mailer", tools=[send_email], model=scripted_model([("send_email", ASKED)]))
    result = asyncio.run(run_with_approvals(agent, "email everyone", approvals=approvals, run_id="run-1", **request))
    return str(result.final_output)


# -- pydantic-ai ----------------------------------------------------------------------------
def pydantic_agent(sent: Sent) -> Any:
    from pydantic_ai import Agent
    from pydantic_ai.tools import DeferredToolRequests

    from tests.integrations.fakes import pydantic_ai_model

    agent: Agent[None, Any] = Agent(pydantic_ai_model([("send_email", ASKED)]), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def send_email(to: str) -> str:
        """Send an email."""
        sent.append({"to": to})
        return f"sent to {to}"

    return agent


def pydantic_inline_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from hitl.integrations.pydantic_ai import SlackApprovals

    gate = SlackApprovals(approvals, "run-1", request_kwargs=request)
    result = asyncio.run(pydantic_agent(sent).run("email everyone", capabilities=[gate]))
    return str(result.output)


def pydantic_deferred_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from hitl.integrations.pydantic_ai import run_with_approvals

    result = asyncio.run(
        run_with_approvals(pydantic_agent(sent), "email everyone", approvals=approvals, run_id="run-1", **request)
    )
    return str(result.output)


def pydantic_forge(approvals: Approvals, sent: Sent) -> str:
    """`DeferredToolResults` built by hand: pydantic-ai would run whatever it says."""
    from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved

    from hitl.integrations.pydantic_ai import SlackApprovals

    agent = pydantic_agent(sent)
    gate = SlackApprovals(approvals, "run-1", inline=False)
    first = asyncio.run(agent.run("email everyone", capabilities=[gate]))
    (call,) = first.output.approvals
    forged = DeferredToolResults(approvals={call.tool_call_id: ToolApproved(override_args={"to": "x@example.com"})})
    history = first.all_messages()
    again = asyncio.run(agent.run(message_history=history, deferred_tool_results=forged, capabilities=[gate]))
    assert isinstance(again.output, DeferredToolRequests) and sent == []  # deferred again, nothing ran
    (req,) = pending(approvals.store)
    approvals.decide(req.id, "approve", by="U0ALICE", params=EDITED)
    done = asyncio.run(agent.run(message_history=history, deferred_tool_results=forged, capabilities=[gate]))
    return str(done.output)


ADAPTERS = [
    Adapter("langgraph", langgraph_run, langgraph_forge),
    Adapter("openai-agents", openai_run),
    Adapter("pydantic-ai-inline", pydantic_inline_run, pydantic_forge),
    Adapter("pydantic-ai-deferred", pydantic_deferred_run, pydantic_forge),
]
# OpenAI Agents has no forge case: its approvals live only in the RunState the adapter
# builds from the store each time; there is no resume value a caller hands in.
FORGEABLE = [a for a in ADAPTERS if a.forge is not None]


def by_name(adapters: list[Adapter]) -> Any:
    return pytest.mark.parametrize("adapter", adapters, ids=[a.name for a in adapters])


@by_name(FORGEABLE)
def test_a_forged_approval_runs_nothing_and_slacks_decision_runs_with_its_arguments(
    adapter: Adapter, approvals: Approvals
) -> None:
    sent: Sent = []
    assert adapter.forge is not None
    text = adapter.forge(approvals, sent)
    assert sent == [EDITED] and "sent to team@example.com" in text


@by_name(ADAPTERS)
def test_the_tool_runs_once_with_the_approved_arguments(adapter: Adapter, approvals: Approvals) -> None:
    sent: Sent = []
    reviewer = Reviewer(approvals)
    reviewer.decide(approve(params=EDITED))
    text = adapter.run(approvals, sent)
    assert sent == [EDITED] and "sent to team@example.com" in text
    (req,) = reviewer.seen
    assert (req.action, req.params) == ("send_email", ASKED)
    assert approvals.get(req.id).fetch().execution is ExecutionState.FINISHED


@by_name(ADAPTERS)
def test_a_rejection_reaches_the_model_as_the_reviewers_words_within_seconds(
    adapter: Adapter, approvals: Approvals
) -> None:
    sent: Sent = []
    decided: list[float] = []

    def no(req: Any) -> tuple[str, dict[str, Any]]:
        decided.append(time.monotonic())
        return reject("not to the whole company")(req)

    Reviewer(approvals).decide(no)
    text = adapter.run(approvals, sent)
    ended = time.monotonic()
    assert sent == []
    assert "Rejected by U0ALICE: not to the whole company" in text
    assert ended - decided[0] < 5, f"the run took {ended - decided[0]:.1f}s to end after the rejection"


@pytest.fixture
def worker(redis_url: str, prefix: str) -> Iterator[None]:
    proc = start_worker(redis_url, prefix, HITL_TIMER_LEASE="2")
    try:
        yield
    finally:
        stop(proc)


@by_name(ADAPTERS)
def test_an_expiry_is_told_as_no_one_decided(adapter: Adapter, approvals: Approvals, worker: None) -> None:
    sent: Sent = []
    text = adapter.run(approvals, sent, timeout=1)
    assert sent == []
    assert "No one decided on `send_email` in time" in text and "not a rejection" in text
    assert "Rejected" not in text


# -- restarts: real agent processes, a real worker and the Slack stand-in ------------------
RESTARTABLE = ["pai"]


def agent(kind: str, phase: str, folder: Path, redis_url: str, prefix: str, **extra: str) -> subprocess.Popen[bytes]:
    env = hitl_env(redis_url, prefix, HITL_DEFAULT_CHANNEL=CHANNEL, PYTHONPATH=str(ROOT), **extra)
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integrations.guarantee_agents", kind, phase, str(folder)],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )


def kill(proc: subprocess.Popen[bytes]) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()


def finish(kind: str, folder: Path, redis_url: str, prefix: str) -> str:
    second = agent(kind, "resume", folder, redis_url, prefix)
    out, err = second.communicate(timeout=90)
    assert second.returncode == 0, err.decode()
    return str(json.loads(out.decode().strip().splitlines()[-1])["result"])


@pytest.mark.parametrize("kind", RESTARTABLE)
def test_killed_while_waiting_resumes_on_the_same_request_without_a_second_card(
    kind: str, bot: Bot, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    first = agent(kind, "start", tmp_path, redis_url, prefix)
    try:
        (req,) = eventually(lambda: pending(bot.approvals.store), 60, "the agent to file its request")
        card = bot.card(req.id, timeout=30)
        assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
    finally:
        kill(first)
    status, body = bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
    assert status == 200, body
    bot.approvals.get(req.id).wait(timeout=30)

    assert "sent to bob@example.com" in finish(kind, tmp_path, redis_url, prefix)
    assert [json.loads(line) for line in (tmp_path / "tool.log").read_text().splitlines()] == [ARGS]
    posted = bot.slack.workspace.messages(CHANNEL, include_replies=False)
    assert [m.ts for m in posted] == [card.ts]  # one card, the first one
    assert not pending(bot.approvals.store)
    assert bot.approvals.get(req.id).fetch().execution is ExecutionState.FINISHED


@pytest.mark.parametrize("kind", RESTARTABLE)
def test_killed_after_the_tool_ran_does_not_run_it_again(
    kind: str, bot: Bot, redis_url: str, prefix: str, tmp_path: Path
) -> None:
    first = agent(kind, "start", tmp_path, redis_url, prefix, **{HANG_AFTER_TOOL: "1"})
    log = tmp_path / "tool.log"
    try:
        (req,) = eventually(lambda: pending(bot.approvals.store), 60, "the agent to file its request")
        bot.card(req.id, timeout=30)
        status, body = bot.click(req.id, cards.ACTION_APPROVE, user="U0ALICE")
        assert status == 200, body
        eventually(lambda: log.exists() and log.read_text().strip(), 60, "the approved tool to run")
    finally:
        kill(first)

    result = finish(kind, tmp_path, redis_url, prefix)
    assert "Outcome unknown: check before retrying" in result and "sent to" not in result
    assert [json.loads(line) for line in log.read_text().splitlines()] == [ARGS]
    assert bot.approvals.get(req.id).fetch().execution is ExecutionState.UNKNOWN
    card = bot.card_when(req.id, lambda m: "Outcome unknown: check before retrying" in card_text(m), timeout=30)
    assert "Approved by" in card_text(card)
    types = [e["type"] for e in events(bot.approvals.redis, prefix, req.id)]
    assert types.count(EventType.EXECUTION_STARTED) == 1
