"""A pydantic-ai agent whose `refund` tool (`requires_approval=True`) is decided in Slack.

    REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.pydantic_ai_agent

`SlackApprovals` is a pydantic-ai capability: each deferred call becomes a card, the run
waits for the decision inline and goes on with `ToolApproved(override_args=...)` or
`ToolDenied(reason)`. The model is pydantic-ai's `FunctionModel`, scripted (no network);
with `--self-approve` a background thread plays the reviewer and lowers the amount, so
the tool runs with the edited arguments. It decides only the request this run files.
"""

from __future__ import annotations

import asyncio
import sys

from pydantic_ai import Agent

from examples.fake_models import pydantic_ai_model
from examples.reviewer import RunApprovals, announce, stand_in
from hitl import Approvals
from hitl.integrations.pydantic_ai import SlackApprovals
from hitl.models import Request

agent = Agent(pydantic_ai_model([("refund", {"order": "A-17", "amount": 900})]))


@agent.tool_plain(requires_approval=True)
def refund(order: str, amount: int) -> str:
    """Refund part of an order."""
    print(f"[tool] refund(order={order!r}, amount={amount})")
    return f"refunded {amount} on {order}"


def approve_less(approvals: Approvals, req: Request) -> None:
    """Stands in for a person editing the amount in Slack, then approving."""
    print(f"[slack] card: {req.action} {req.params}")
    approvals.decide(req.id, "approve", by="U0ALICE", params={**req.params, "amount": 300})


async def main() -> None:
    approvals = RunApprovals()
    announce(approvals, reviewer="--self-approve" in sys.argv)
    if "--self-approve" in sys.argv:
        stand_in(approvals, approve_less)
    slack = SlackApprovals(approvals, run_id="refund-run-1")
    result = await agent.run("Refund order A-17", capabilities=[slack])
    print(f"[model] {result.output}")
    approvals.close()


if __name__ == "__main__":
    asyncio.run(main())
