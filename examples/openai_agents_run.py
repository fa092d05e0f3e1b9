"""An OpenAI Agents SDK agent whose `delete_record` tool needs a Slack approval.

    REDIS_URL=redis://127.0.0.1:6379/0 python -m examples.openai_agents_run

`run_with_approvals` turns each interruption into a card, stores the RunState in Redis and
resumes the run once decided (run it again with the same run_id after a crash). The model
is scripted (no network); with `--self-reject` a background thread plays the Slack
reviewer and rejects with a reason, which the model reads as the tool's result. It decides
only the request this run files (`examples.reviewer`); the example prints which Redis it
uses first.
"""

from __future__ import annotations

import asyncio
import sys

from agents import Agent, function_tool, set_tracing_disabled

from examples.fake_models import scripted_model
from examples.reviewer import RunApprovals, announce, stand_in
from hitl import Approvals
from hitl.integrations.openai_agents import run_with_approvals
from hitl.models import Request

set_tracing_disabled(True)


@function_tool(needs_approval=True)
def delete_record(record: str) -> str:
    """Delete a customer record."""
    print(f"[tool] delete_record({record!r})")
    return f"deleted {record}"


def reject_with_reason(approvals: Approvals, req: Request) -> None:
    """Stands in for a person clicking Reject in Slack and giving a reason."""
    print(f"[slack] card: {req.action} {req.params} ({req.context})")
    approvals.decide(req.id, "reject", by="U0ALICE", comment="that customer has an open invoice")


async def main() -> None:
    approvals = RunApprovals()
    self_reject = "--self-reject" in sys.argv
    announce(approvals, reviewer=self_reject)
    model = scripted_model([("delete_record", {"record": "C-42"})])
    agent = Agent(name="crm", tools=[delete_record], model=model)
    if self_reject:
        stand_in(approvals, reject_with_reason)
    result = await run_with_approvals(agent, "Delete customer C-42", approvals=approvals, run_id="crm-run-1")
    print(f"[model] {result.final_output}")
    approvals.close()


if __name__ == "__main__":
    asyncio.run(main())
