"""Override mode: the tool runs at once, and a later veto still reaches the agent."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import END, START, StateGraph

from hitl import Approvals
from hitl.integrations.langgraph import approval_interrupt
from hitl.integrations.openai_agents import run_with_approvals
from hitl.integrations.outcome import Outcome, OutcomeKind
from hitl.status import Mode
from tests.conftest import make_settings
from tests.helpers import publish_policy, start_worker, stop
from tests.integrations.test_langgraph import CONFIG
from tests.integrations.test_openai_agents import mailer

POLICY = "actions:\n  send_email: {mode: override, window: %s}\n"


def override_client(tmp_path: Path, redis_url: str, prefix: str, window: str) -> Approvals:
    client = Approvals(settings=make_settings(redis_url, prefix))
    publish_policy(client, POLICY % window)
    return client


@pytest.fixture
def vetoable(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Approvals]:
    """Policy: send_email runs at once under a 60 s veto window."""
    with override_client(tmp_path, redis_url, prefix, "60s") as client:
        yield client


@pytest.fixture
def short_window(tmp_path: Path, redis_url: str, prefix: str) -> Iterator[Approvals]:
    """Policy: send_email runs at once under a 1 s veto window; a real worker closes it."""
    proc = start_worker(redis_url, prefix, HITL_TIMER_LEASE="2")
    try:
        with override_client(tmp_path, redis_url, prefix, "1s") as client:
            yield client
    finally:
        stop(proc)


def run_graph(approvals: Approvals) -> tuple[dict[str, Any], Outcome]:
    """A real graph whose node calls `approval_interrupt`; returns its state and the outcome."""
    seen: list[Outcome] = []

    class State(TypedDict, total=False):
        to: str
        result: str

    def send(state: State) -> State:
        outcome = approval_interrupt("send_email", {"to": state["to"]}, approvals=approvals)
        seen.append(outcome)
        return {"result": f"sent to {outcome.args['to']}" if outcome.runs else outcome.message}

    builder = StateGraph(State)
    builder.add_node("send", send)
    builder.add_edge(START, "send")
    builder.add_edge("send", END)
    values = builder.compile(checkpointer=InMemorySaver()).invoke({"to": "all@example.com"}, CONFIG)
    assert values["result"] == "sent to all@example.com"  # ran at once, no interrupt
    (outcome,) = seen
    return values, outcome


def test_langgraph_override_veto_reaches_the_agent_with_the_reason(vetoable: Approvals) -> None:
    _values, outcome = run_graph(vetoable)
    assert outcome.mode is Mode.OVERRIDE and outcome.vetoable
    vetoable.decide(outcome.request_id, "veto", by="U0ALICE", comment="wrong list")
    vetoed = outcome.watch_veto(vetoable, timeout=30)
    assert (vetoed.kind, vetoed.comment, vetoed.by, vetoed.runs) == (OutcomeKind.VETOED, "wrong list", ("U0ALICE",), False)
    assert vetoed.message == "Vetoed by U0ALICE after it ran: wrong list. Undo `send_email` if you can."


def test_langgraph_override_without_a_veto_is_finalized_when_the_window_closes(short_window: Approvals) -> None:
    _values, outcome = run_graph(short_window)
    closed = outcome.watch_veto(short_window, timeout=30)
    assert (closed.kind, closed.runs, closed.request_id) == (OutcomeKind.FINALIZED, True, outcome.request_id)
    assert "stands" in closed.message


def test_a_gate_outcome_is_not_watched(approvals: Approvals) -> None:
    """Only override outcomes wait: anything else comes back as it is."""
    handle = approvals.request(action="send_email", summary="s", params={"to": "a"})
    approvals.decide(handle.id, "reject", by="U0ALICE", comment="no")
    outcome = Outcome.from_decision(handle.decision(), {"to": "a"})
    assert outcome.watch_veto(approvals, timeout=0.1) is outcome


def run_agent(approvals: Approvals, overrides: list[Outcome], sent: list[str]) -> Any:
    return asyncio.run(run_with_approvals(
        mailer(sent), "email everyone", approvals=approvals, run_id="run-1", overrides=overrides,
    ))


def test_openai_override_veto_reaches_the_agent_async(vetoable: Approvals) -> None:
    sent: list[str] = []
    overrides: list[Outcome] = []
    result = run_agent(vetoable, overrides, sent)
    assert sent == ["all@example.com"] and result.final_output == "final: sent to all@example.com"
    (outcome,) = overrides
    assert (outcome.action, outcome.mode) == ("send_email", Mode.OVERRIDE)

    async def watch() -> Outcome:
        async_client = vetoable.asyncio()
        try:
            watching = asyncio.ensure_future(outcome.awatch_veto(async_client, timeout=30))
            await asyncio.to_thread(
                vetoable.decide, outcome.request_id, "veto", "U0BOB", "do not email everyone"
            )
            return await watching
        finally:
            await async_client.aclose()

    vetoed = asyncio.run(watch())
    assert (vetoed.kind, vetoed.comment) == (OutcomeKind.VETOED, "do not email everyone")
    assert "Vetoed by U0BOB after it ran: do not email everyone" in vetoed.message


def test_openai_override_without_a_veto_is_finalized(short_window: Approvals) -> None:
    sent: list[str] = []
    overrides: list[Outcome] = []
    run_agent(short_window, overrides, sent)
    (outcome,) = overrides
    closed = outcome.watch_veto(short_window, timeout=30)
    assert closed.kind is OutcomeKind.FINALIZED and sent == ["all@example.com"]
