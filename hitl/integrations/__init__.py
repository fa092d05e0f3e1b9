"""Framework adapters: a Slack approval as the natural pause of an agent framework.

- `hitl.integrations.langgraph`: `approval_interrupt`, `SlackApprovalMiddleware` (LangChain
  v1 agents, gated around the tool), `LangGraphResumer` (also the bridge for LangChain's
  own `HumanInTheLoopMiddleware`), `ApprovalNode`, and a worker job that resumes a
  LangGraph Server thread (extra ``hitl-router[langgraph]``).
- `hitl.integrations.openai_agents`: `run_with_approvals` for the OpenAI Agents SDK
  (extra ``hitl-router[openai-agents]``).
- `hitl.integrations.pydantic_ai`: `SlackApprovals`, a capability answering deferred tool
  calls inline and gating where the tool runs, and `run_with_approvals` for pauses that
  outlive the process (extra ``hitl-router[pydantic-ai]``).
- `hitl.integrations.google_adk`: `SlackConfirmation` for ``require_confirmation`` tools,
  the approved arguments bound to the call by their hash (extra ``hitl-router[google-adk]``).

All keep the pending decision outside the agent's process, so a pause survives that
process dying; all build their idempotency keys here so a re-run re-attaches to the
request it filed before instead of posting a second card.

The trust rules they share: a resume value is at most a pointer to the tool call's own
request, and the decision, its arguments and who took it are read from the store; an
Agent Inbox answer counts only as a verified reviewer's, within the approver rules;
an approved call runs at most once (`hitl.executions`), a re-run after a crash hearing
"outcome unknown: check before retrying". They call only the public client API.
"""

from __future__ import annotations

from hitl.integrations.outcome import Outcome, OutcomeKind

__all__ = ["Outcome", "OutcomeKind"]
