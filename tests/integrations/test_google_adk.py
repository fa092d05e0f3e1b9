"""Google ADK specifics beyond the shared guarantees (tests/integrations/test_guarantees.py)."""

from __future__ import annotations

import asyncio

import pytest
from google.adk.agents import LlmAgent
from google.adk.apps import App
from google.adk.runners import Runner
from google.adk.sessions import InMemorySessionService
from google.adk.tools import FunctionTool

from hitl import Approvals, InvalidRequest
from hitl.integrations.google_adk import args_hash, run_with_confirmations
from hitl.queries import pending
from tests.integrations.fakes import adk_model


def test_a_runner_without_the_enforcing_plugin_is_refused_before_anything_is_filed(approvals: Approvals) -> None:
    sent: list[str] = []

    def send_email(to: str) -> str:
        """Send an email."""
        sent.append(to)
        return f"sent to {to}"

    agent = LlmAgent(name="mailer", model=adk_model([("send_email", {"to": "a@example.com"})]),
                     tools=[FunctionTool(send_email, require_confirmation=True)])
    runner = Runner(app=App(name="mail", root_agent=agent), session_service=InMemorySessionService())
    with pytest.raises(InvalidRequest) as err:
        asyncio.run(run_with_confirmations(runner, user_id="u", session_id="s", message="hi", approvals=approvals))
    assert err.value.field == "runner.plugins" and "SlackConfirmation" in str(err.value)
    assert pending(approvals.store) == [] and sent == []


def test_the_argument_hash_is_canonical() -> None:
    """Key order and spacing do not change it; any value does (100 is not 999)."""
    assert args_hash({"a": 1, "b": [1, 2]}) == args_hash({"b": [1, 2], "a": 1})
    assert args_hash({"amount": 100}) != args_hash({"amount": 999})
