"""An agent process for the restart tests: `python -m tests.integrations.agent_process KIND PHASE DIR`.

KIND is ``lg-node`` (a graph whose node calls `approval_interrupt`), ``lg-agent`` (a
LangChain v1 agent with `HumanInTheLoopMiddleware`) or ``openai`` (an Agents SDK agent with
a `needs_approval` tool). PHASE ``start`` runs the agent until it waits on Slack (the test
then SIGKILLs it); ``resume`` is the new process that finishes the run. State lives only
in Redis (REDIS_URL, HITL_REDIS_PREFIX) and, for LangGraph, a SQLite checkpointer in DIR;
with HITL_API_URL and HITL_API_KEY instead, the agent talks HTTP and keeps its run in DIR.
Every tool run appends a line to DIR/tool.log; the final result is printed as JSON. With
HITL_TEST_HANG_AFTER_TOOL set, the tool hangs after appending (the test kills it there).
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any, TypedDict

from hitl import Approvals

THREAD = "restart-thread"
# Set in the environment: the tool hangs once it has done its work, for the test to SIGKILL.
HANG_AFTER_TOOL = "HITL_TEST_HANG_AFTER_TOOL"
ARGS = {"to": "bob@example.com", "subject": "invoice"}


def record(folder: Path, args: dict[str, Any]) -> str:
    with (folder / "tool.log").open("a") as fh:
        fh.write(json.dumps(args, sort_keys=True) + "\n")
    if os.environ.get(HANG_AFTER_TOOL):  # the test kills the process here: the tool ran, the run did not end
        time.sleep(3600)
    return f"sent to {args['to']}"


def langgraph_node(phase: str, folder: Path, approvals: Approvals) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    from hitl.integrations.langgraph import LangGraphResumer, approval_interrupt

    class State(TypedDict, total=False):
        result: str

    def send(state: State) -> State:
        outcome = approval_interrupt("send_email", ARGS, approvals=approvals, summary="Email bob the invoice")
        return {"result": record(folder, outcome.args) if outcome.runs else outcome.message}

    builder = StateGraph(State)
    builder.add_node("send", send)
    builder.add_edge(START, "send")
    builder.add_edge("send", END)
    saver = SqliteSaver(sqlite3.connect(folder / "checkpoints.db", check_same_thread=False))
    graph = builder.compile(checkpointer=saver)
    resumer = LangGraphResumer(graph, approvals)
    config = {"configurable": {"thread_id": THREAD}}
    values = resumer.run({}, config) if phase == "start" else resumer.resume(config)
    return {"result": values["result"]}


def langgraph_agent(phase: str, folder: Path, approvals: Approvals) -> dict[str, Any]:
    from langchain.agents import create_agent
    from langchain.agents.middleware import HumanInTheLoopMiddleware
    from langchain_core.messages import AIMessage
    from langchain_core.tools import tool
    from langgraph.checkpoint.sqlite import SqliteSaver

    from hitl.integrations.langgraph import LangGraphResumer
    from tests.integrations.fakes import chat, tool_calls

    @tool
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        return record(folder, {"to": to, "subject": subject})

    # The model's first turn was checkpointed before the kill: the new process only answers.
    replies = [tool_calls(("send_email", ARGS)), AIMessage("done")] if phase == "start" else [AIMessage("done")]
    saver = SqliteSaver(sqlite3.connect(folder / "checkpoints.db", check_same_thread=False))
    agent = create_agent(
        chat(*replies), tools=[send_email], checkpointer=saver,
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
    )
    resumer = LangGraphResumer(agent, approvals)
    config = {"configurable": {"thread_id": THREAD}}
    if phase == "start":
        values = resumer.run({"messages": [("user", "email bob the invoice")]}, config)
    else:
        values = resumer.resume(config)
    return {"result": [m.content for m in values["messages"] if m.type == "tool"][-1]}


def openai_agent(phase: str, folder: Path, approvals: Approvals) -> dict[str, Any]:
    from agents import Agent, function_tool, set_tracing_disabled

    from hitl.integrations.openai_agents import FileRunStates, run_with_approvals
    from tests.integrations.fakes import scripted_model

    set_tracing_disabled(True)

    @function_tool(needs_approval=True)
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        return record(folder, {"to": to, "subject": subject})

    agent = Agent(name="mailer", tools=[send_email], model=scripted_model([("send_email", ARGS)]))
    # An agent over HTTP (HITL_API_URL) holds no Redis connection: its paused run lives in DIR.
    states = FileRunStates(folder / "runs") if os.environ.get("HITL_API_URL") else None
    result = asyncio.run(
        run_with_approvals(agent, "email bob the invoice", approvals=approvals, run_id=THREAD, states=states)
    )
    return {"result": result.final_output}


KINDS = {"lg-node": langgraph_node, "lg-agent": langgraph_agent, "openai": openai_agent}


def main() -> None:
    kind, phase, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with Approvals() as approvals:
        out = KINDS[kind](phase, folder, approvals)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
