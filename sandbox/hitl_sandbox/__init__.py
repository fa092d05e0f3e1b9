"""A local stand-in for Slack's Web API, for tests and the offline demo.

Slack cannot be reached from tests or from ``hitl dev``; ``SlackStandIn`` serves the Web
API methods the product uses over real HTTP, backed by an in-memory ``Workspace``, and
answers the way Slack does (errors, Block Kit validation, trigger_id rules, rate limits)
so that bugs surface here rather than in production. ``hitl_sandbox.signing`` builds the
signed requests Slack would send to the app.
"""

from __future__ import annotations

from hitl_sandbox.server import SlackStandIn
from hitl_sandbox.workspace import Workspace

__all__ = ["SlackStandIn", "Workspace"]
