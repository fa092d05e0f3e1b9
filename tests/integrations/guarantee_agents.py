"""The agent processes of the shared guarantee suite: `python -m tests.integrations.guarantee_agents KIND PHASE DIR`.

The same contract as `tests.integrations.agent_process` (whose kinds it also runs), for
the adapters added since: ``pai`` (pydantic-ai, `run_with_approvals`, a
``requires_approval`` tool) and ``adk`` (Google ADK, `run_with_confirmations`, a
``require_confirmation`` tool, the session in ADK's `SqliteSessionService` in DIR). PHASE ``start`` runs until the agent waits on Slack (the
test SIGKILLs it), ``resume`` is the new process that finishes the run; every tool run
appends to DIR/tool.log; the result is printed as JSON.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from hitl import Approvals
from tests.integrations.agent_process import ARGS, KINDS, THREAD, record


def pydantic_ai_agent(phase: str, folder: Path, approvals: Approvals) -> dict[str, Any]:
    from pydantic_ai import Agent
    from pydantic_ai.tools import DeferredToolRequests

    from hitl.integrations.pydantic_ai import run_with_approvals
    from tests.integrations.fakes import pydantic_ai_model

    agent: Agent[None, Any] = Agent(pydantic_ai_model([("send_email", ARGS)]), output_type=[str, DeferredToolRequests])

    @agent.tool_plain(requires_approval=True)
    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        return record(folder, {"to": to, "subject": subject})

    result = asyncio.run(run_with_approvals(agent, "email bob the invoice", approvals=approvals, run_id=THREAD))
    return {"result": result.output}


def adk_agent(phase: str, folder: Path, approvals: Approvals) -> dict[str, Any]:
    from google.adk.agents import LlmAgent
    from google.adk.apps import App
    from google.adk.runners import Runner
    from google.adk.sessions.sqlite_session_service import SqliteSessionService
    from google.adk.tools import FunctionTool

    from hitl.integrations.google_adk import SlackConfirmation, run_with_confirmations
    from tests.integrations.fakes import adk_model

    def send_email(to: str, subject: str) -> str:
        """Send an email."""
        return record(folder, {"to": to, "subject": subject})

    tool = FunctionTool(send_email, require_confirmation=True)
    agent = LlmAgent(name="mailer", model=adk_model([("send_email", ARGS)]), tools=[tool])
    app = App(name="mail", root_agent=agent, plugins=[SlackConfirmation(approvals)])
    # The paused session lives in ADK's own SQLite session store in DIR, as it would in production.
    runner = Runner(app=app, session_service=SqliteSessionService(str(folder / "sessions.db")))
    events = asyncio.run(run_with_confirmations(
        runner, user_id="u", session_id=THREAD, approvals=approvals,
        message="email bob the invoice" if phase == "start" else None,  # the new process only resumes
    ))
    texts = [p.text for e in events if e.content for p in (e.content.parts or []) if p.text]
    return {"result": " ".join(texts)}


ALL_KINDS = {**KINDS, "pai": pydantic_ai_agent, "adk": adk_agent}


def main() -> None:
    kind, phase, folder = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    with Approvals() as approvals:
        out = ALL_KINDS[kind](phase, folder, approvals)
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
