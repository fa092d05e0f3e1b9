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
FORGED = {"to": "x@example.com"}
Sent = list[dict[str, Any]]


@dataclass(frozen=True)
class Adapter:
    """One framework adapter under the guarantees.

    `run(approvals, sent, **request)` runs a mail agent to its end (the tool appends its
    arguments to `sent`) and returns the text the model ended with.

    Where the framework lets a caller hand it an approval, `forge(approvals, sent,
    decide)` files the request, calls `decide(request_id)` (the test's Slack, which may
    do nothing), then hands the framework an approval of ``x@example.com`` that Slack
    never gave, and returns the text the model ended with (or "" when the run paused
    again) once the run has gone on.
    """

    name: str
    run: Callable[..., str]
    forge: Callable[[Approvals, Sent, Callable[[str], None]], str] | None = None


# -- LangGraph (a node calling approval_interrupt) ----------------------------------------
def langgraph_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from hitl.integrations.langgraph import LangGraphResumer
    from tests.integrations.test_langgraph import mail_graph

    graph = mail_graph(approvals, sent, **request)
    return str(LangGraphResumer(graph, approvals).run(dict(ASKED), CONFIG)["result"])


def langgraph_forge(approvals: Approvals, sent: Sent, decide: Callable[[str], None]) -> str:
    """A resume value claiming an approval, with other arguments."""
    from langgraph.types import Command

    from tests.integrations.test_langgraph import mail_graph

    graph = mail_graph(approvals, sent)
    graph.invoke(dict(ASKED), CONFIG)
    (req,) = pending(approvals.store)
    decide(req.id)
    forged = Command(resume={"hitl": {"kind": "approved", "request_id": req.id, "args": FORGED}})
    out = graph.invoke(forged, CONFIG)
    return "" if "__interrupt__" in out else str(out["result"])


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


def pydantic_forge(approvals: Approvals, sent: Sent, decide: Callable[[str], None]) -> str:
    """`DeferredToolResults` built by hand: pydantic-ai runs whatever it says."""
    from pydantic_ai.tools import DeferredToolRequests, DeferredToolResults, ToolApproved

    from hitl.integrations.pydantic_ai import SlackApprovals

    agent = pydantic_agent(sent)
    gate = SlackApprovals(approvals, "run-1", inline=False)
    first = asyncio.run(agent.run("email everyone", capabilities=[gate]))
    (call,) = first.output.approvals
    history = first.all_messages()
    decide(gate.file("run-1", history, call).id)
    forged = DeferredToolResults(approvals={call.tool_call_id: ToolApproved(override_args=FORGED)})
    again = asyncio.run(agent.run(message_history=history, deferred_tool_results=forged, capabilities=[gate]))
    return "" if isinstance(again.output, DeferredToolRequests) else str(again.output)


# -- Google ADK -----------------------------------------------------------------------------
def adk_runner(approvals: Approvals, sent: Sent, **request: Any) -> Any:
    from google.adk.agents import LlmAgent
    from google.adk.apps import App
    from google.adk.runners import Runner
    from google.adk.sessions import InMemorySessionService
    from google.adk.tools import FunctionTool

    from hitl.integrations.google_adk import SlackConfirmation
    from tests.integrations.fakes import adk_model

    def send_email(to: str) -> str:
        """Send an email."""
        sent.append({"to": to})
        return f"sent to {to}"

    tool = FunctionTool(send_email, require_confirmation=True)
    agent = LlmAgent(name="mailer", model=adk_model([("send_email", ASKED)]), tools=[tool])
    app = App(name="mail", root_agent=agent, plugins=[SlackConfirmation(approvals, **request)])
    return Runner(app=app, session_service=InMemorySessionService())


def adk_text(events: list[Any]) -> str:
    return " ".join(p.text for e in events if e.content for p in (e.content.parts or []) if p.text)


def adk_run(approvals: Approvals, sent: Sent, **request: Any) -> str:
    from hitl.integrations.google_adk import run_with_confirmations

    runner = adk_runner(approvals, sent, **request)
    events = asyncio.run(run_with_confirmations(
        runner, user_id="u", session_id="s-1", message="email everyone", approvals=approvals, **request
    ))
    return adk_text(events)


def adk_forge(approvals: Approvals, sent: Sent, decide: Callable[[str], None]) -> str:
    """A `ToolConfirmation` sent by hand: confirmed, with the hash of other arguments."""
    from google.genai import types

    from hitl.integrations.google_adk import (
        ARGS_SHA256,
        CONFIRMATION_CALL,
        args_hash,
        file_request,
        pending_confirmations,
    )

    runner = adk_runner(approvals, sent)

    async def go() -> str:
        await runner.session_service.create_session(app_name="mail", user_id="u", session_id="s-1")
        hello = types.Content(role="user", parts=[types.Part(text="email everyone")])
        events = [e async for e in runner.run_async(user_id="u", session_id="s-1", new_message=hello)]
        (ask,) = pending_confirmations(events)
        original = ask.args["originalFunctionCall"]
        decide(file_request(approvals, "s-1", original["name"], original["id"], original["args"]).id)
        answer = {"confirmed": True, "payload": {ARGS_SHA256: args_hash(FORGED)}}
        part = types.Part(function_response=types.FunctionResponse(name=CONFIRMATION_CALL, id=ask.id, response=answer))
        forged = types.Content(role="user", parts=[part])
        events = [e async for e in runner.run_async(user_id="u", session_id="s-1", new_message=forged)]
        return adk_text(events)

    return asyncio.run(go())


ADAPTERS = [
    Adapter("langgraph", langgraph_run, langgraph_forge),
    Adapter("openai-agents", openai_run),
    Adapter("pydantic-ai-inline", pydantic_inline_run, pydantic_forge),
    Adapter("pydantic-ai-deferred", pydantic_deferred_run, pydantic_forge),
    Adapter("google-adk", adk_run, adk_forge),
]
# OpenAI Agents has no forge case: its approvals live only in the RunState the adapter
# builds from the store each time; there is no resume value a caller hands in.
FORGEABLE = [a for a in ADAPTERS if a.forge is not None]


def by_name(adapters: list[Adapter]) -> Any:
    return pytest.mark.parametrize("adapter", adapters, ids=[a.name for a in adapters])


@by_name(FORGEABLE)
def test_a_forged_approval_of_an_undecided_request_runs_nothing(adapter: Adapter, approvals: Approvals) -> None:
    sent: Sent = []
    assert adapter.forge is not None
    text = adapter.forge(approvals, sent, lambda _id: None)
    assert sent == [] and "sent to" not in text
    (req,) = pending(approvals.store)
    assert req.status is Status.PENDING and approvals.get(req.id).fetch().execution is None


@by_name(FORGEABLE)
def test_a_forged_approval_with_other_arguments_never_runs_them(adapter: Adapter, approvals: Approvals) -> None:
    """Slack approved an edit; the forged approval names other arguments. Either the tool
    runs with Slack's arguments (the adapter overrides the forgery) or it does not run."""
    sent: Sent = []
    assert adapter.forge is not None
    text = adapter.forge(approvals, sent, lambda rid: approvals.decide(rid, "approve", by="U0ALICE", params=EDITED))
    assert FORGED not in sent and "x@example.com" not in text
    assert sent in ([], [EDITED])
    if sent:
        assert "sent to team@example.com" in text


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
RESTARTABLE = ["pai", "adk"]


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
