"""Framework adapters: a Slack approval as the natural pause of an agent framework.

- `hitl.integrations.langgraph`: `approval_interrupt`, `LangGraphResumer` (also the bridge
  for LangChain v1's `HumanInTheLoopMiddleware`), `ApprovalNode`, and a worker job that
  resumes a LangGraph Server thread (extra ``hitl-router[langgraph]``).
- `hitl.integrations.openai_agents`: `run_with_approvals` and `RunStateStore` for the
  OpenAI Agents SDK (extra ``hitl-router[openai-agents]``).

Both keep the pending decision in Redis, outside the agent's process, so a pause survives
that process dying; both build their idempotency keys here so a re-run re-attaches to the
request it filed before instead of posting a second card.
"""

from __future__ import annotations

from hitl.integrations.outcome import Outcome, OutcomeKind

__all__ = ["Outcome", "OutcomeKind"]
