"""A LangChain v1 agent whose `send_email` tool waits for a Slack approval.

    REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.langgraph_agent

The stock `HumanInTheLoopMiddleware` pauses the agent; `LangGraphResumer` files the card,
waits for the decision in Redis and resumes the thread. The model is scripted (no network);
with `--self-approve` a background thread plays the Slack reviewer (approving with an
edited address) so the example runs end to end without Slack.
"""

from __future__ import annotations

import sys
import threading
import time

from langchain.agents import create_agent
from langchain.agents.middleware import HumanInTheLoopMiddleware
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.memory import InMemorySaver

from examples.fake_models import chat, tool_calls
from hitl import Approvals
from hitl.integrations.langgraph import LangGraphResumer
from hitl.queries import pending


@tool
def send_email(to: str, subject: str) -> str:
    """Send an email."""
    print(f"[tool] send_email(to={to!r}, subject={subject!r})")
    return f"sent to {to}"


def reviewer(approvals: Approvals) -> None:
    """Stands in for a person clicking Edit in Slack."""
    while not (waiting := pending(approvals.store)):
        time.sleep(0.05)
    req = waiting[0]
    print(f"[slack] card: {req.action} {req.params}")
    approvals.decide(req.id, "approve", by="U0ALICE", params={**req.params, "to": "billing@example.com"})


def main() -> None:
    approvals = Approvals()
    planned = tool_calls(("send_email", {"to": "ceo@example.com", "subject": "Invoice"}))
    model = chat(planned, AIMessage("Done."))
    agent = create_agent(
        model, tools=[send_email], checkpointer=InMemorySaver(),
        middleware=[HumanInTheLoopMiddleware(interrupt_on={"send_email": True})],
    )
    if "--self-approve" in sys.argv:
        threading.Thread(target=reviewer, args=(approvals,), daemon=True).start()
    config = {"configurable": {"thread_id": "invoice-run-1"}}
    values = LangGraphResumer(agent, approvals).run({"messages": [("user", "Email the invoice")]}, config)
    for message in values["messages"]:
        print(f"[{message.type}] {message.content or message.tool_calls}")
    approvals.close()


if __name__ == "__main__":
    main()
