"""A Google ADK agent whose `transfer` tool (`require_confirmation=True`) is confirmed in Slack.

    REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.google_adk_agent

`run_with_confirmations` turns ADK's confirmation request into a card and answers it with
Slack's decision and the hash of the approved arguments; the `SlackConfirmation` plugin
runs the tool only with those arguments. The model is ADK's `MockModel`, scripted (no
network); with `--self-approve` a background thread plays the reviewer and lowers the
amount, so the tool runs with 100, not the 999 the model asked for.
"""

from __future__ import annotations

import asyncio
import sys

from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import FunctionTool

from examples.fake_models import adk_model
from examples.reviewer import RunApprovals, announce, stand_in
from hitl import Approvals
from hitl.integrations.google_adk import SlackConfirmation, run_with_confirmations
from hitl.models import Request


def transfer(account: str, amount: int) -> str:
    """Transfer money to an account."""
    print(f"[tool] transfer(account={account!r}, amount={amount})")
    return f"transferred {amount} to {account}"


def approve_less(approvals: Approvals, req: Request) -> None:
    """Stands in for a person editing the amount in Slack, then approving."""
    print(f"[slack] card: {req.action} {req.params}")
    approvals.decide(req.id, "approve", by="U0ALICE", params={**req.params, "amount": 100})


async def main() -> None:
    approvals = RunApprovals()
    announce(approvals, reviewer="--self-approve" in sys.argv)
    if "--self-approve" in sys.argv:
        stand_in(approvals, approve_less)
    model = adk_model([("transfer", {"account": "ACME-1", "amount": 999})])
    agent = LlmAgent(name="payer", model=model, tools=[FunctionTool(transfer, require_confirmation=True)])
    app = App(name="payments", root_agent=agent, plugins=[SlackConfirmation(approvals)])
    runner = Runner(app=app, session_service=InMemorySessionService())
    events = await run_with_confirmations(
        runner, user_id="u", session_id="pay-run-1", message="Pay ACME", approvals=approvals
    )
    print("[model]", " ".join(p.text for e in events if e.content for p in e.content.parts or [] if p.text))
    approvals.close()


if __name__ == "__main__":
    asyncio.run(main())
