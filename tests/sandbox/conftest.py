"""Fixtures for the Slack stand-in's own tests: a running server and clients for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hitl_sandbox import SlackStandIn
from slack_sdk import WebClient

BOT_TOKEN = "xoxb-test"


@pytest.fixture
def stand_in() -> Iterator[SlackStandIn]:
    """A fresh stand-in (free port, seeded workspace) for one test."""
    with SlackStandIn(bot_token=BOT_TOKEN) as slack:
        yield slack


@pytest.fixture
def client(stand_in: SlackStandIn) -> WebClient:
    """slack_sdk's WebClient pointed at the stand-in, without retry handlers (errors surface at once)."""
    return WebClient(token=BOT_TOKEN, base_url=stand_in.url, retry_handlers=[])
