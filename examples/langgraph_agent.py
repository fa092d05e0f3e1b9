"""A LangChain v1 agent whose `send_email` tool waits for a Slack approval.

    REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.langgraph_agent

The stock `HumanInTheLoopMiddleware` pauses the agent; `LangGraphResumer` files the card,
waits for the decision in Redis and resumes the thread. The model is scripted (no network);
with `--self-approve` a background thread plays the Slack reviewer (approving with an
edited address) so the example runs end to end without Slack. It decides only the request
this run files (`examples.reviewer`); the example prints which Redis it uses first.
"""

from __future__ import annotations

import sys

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from examples.fake_models import chat, tool_calls
from examples.reviewer import RunApprovals, announce, stand_in
from hitl import Approvals
from hitl.integrations.langgraph import LangGraphResumer
from hitl.models import Request


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    print(f"[tool] send_email(to={to!r}, subject={subject!r})")
    return f"sent to {to}"


def approve_with_edit(approvals: Approvals, req: Request) -> None:
    """Stands in for a person clicking Edit in Slack (the address changed, then approved)."""
    print(f"[slack] card: {req.action} {req.params}")
    approvals.decide(req.id, "approve", by="U0ALICE", params={**req.params, "to": "billing@example.com"})


def main() -> None:
    approvals = RunApprovals()
    self_approve = "--self-approve" in sys.argv
    announce(approvals, reviewer=self_approve)
    planned = tool_calls(("send_email", {"to": "ceo@example.com", "subject": "Invoice"}))
    model = chat(planned, AIMessage("Done."))
    agent = create_agent(
        model, tools=[send_email], checkpointer=InMemorySaver(),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
    )
    if self_approve:
        stand_in(approvals, approve_with_edit)
    config = {"configurable": {"thread_id": "invoice-run-1"}}
    values = LangGraphResumer(agent, approvals).run({"messages": [("user", "Email the invoice")]}, config)
    for message in values["messages"]:
        print(f"[{message.type}] {message.content or message.tool_calls}")
    approvals.close()


if __name__ == "__main__":
    main()
