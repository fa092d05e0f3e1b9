"""Log lines from the delivery path carry the request they are about.

The worker's own background loops (`workers.runner.background_loops`: the ticker and
the delivery loop) run in this process against the Slack stand-in; a JSON handler on
`bot.slack.delivery` records what an operator's log pipeline would receive
(HITL_LOG_FORMAT=json), formatted in the delivery thread that wrote it.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from hitl_sandbox import SlackStandIn
from opentelemetry.sdk.trace import TracerProvider

from hitl import Approvals, tracing
from hitl.logs import JsonFormatter
from tests.conftest import make_settings
from tests.helpers import eventually
from tests.slack.conftest import CHANNEL, TOKEN
from workers.health import RedisHealth
from workers.runner import background_loops, running


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What `bot.slack.delivery` logs, one JSON object per line."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("bot.slack.delivery")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


@pytest.fixture
def traced() -> Iterator[None]:
    """An SDK provider, so requests store a trace context (no exporter needed)."""
    tracing.use_provider(TracerProvider())
    try:
        yield
    finally:
        tracing.use_provider(None)


def test_a_card_slack_refuses_logs_its_request_action_and_trace(
    redis_url: str, prefix: str, slack: SlackStandIn, json_lines: io.StringIO, traced: None
) -> None:
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_api_url=slack.url, default_channel=CHANNEL,
    )
    with Approvals(settings=settings) as approvals, running(
        background_loops(approvals.redis, settings, RedisHealth())
    ):
        req = approvals.request(action="deploy", summary="Deploy v2", channel="C0NOSUCH")
        eventually(lambda: "not delivered" in json_lines.getvalue(), 20, "the delivery failure's log line")
        stored = req.fetch().trace
    failed = [json.loads(x) for x in json_lines.getvalue().splitlines() if "not delivered" in x]
    assert failed[0]["message"] == f"card for {req.id} not delivered: channel_not_found"
    assert failed[0]["level"] == "error"
    assert failed[0]["request_id"] == req.id
    assert failed[0]["action"] == "deploy"
    # the line joins the approval's trace, though no span is current in the delivery thread
    assert failed[0]["trace_id"] == stored["traceparent"].split("-")[1]
