"""One approval is one trace: the agent's request, the card post (the delivery loop), the
click (the Bolt app over signed HTTP), the transition and the waiter's wake, in parent order.

The SDK's in-memory exporter collects every span of this process; the worker's own
background loops (`workers.runner.background_loops`: the ticker firing timers, the
delivery loop posting cards) run here, in this process, so their spans are collected
too. The context crosses from one step to the next only through Redis (the request's
stored `trace`).
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from slack_sdk import WebClient

from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from hitl import Approvals, tracing
from hitl.tracing import SpanName
from tests.conftest import make_settings
from tests.helpers import ROOT, eventually, hitl_env
from tests.slack.conftest import CHANNEL, SECRET, TOKEN, Bot
from workers.health import RedisHealth
from workers.runner import background_loops, running

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The SDK with an in-memory exporter as this process's tracer provider."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


@pytest.fixture
def in_process_bot(redis_url: str, prefix: str, slack: SlackStandIn) -> Iterator[Bot]:
    """The Bolt app over HTTP, and a worker's background loops (ticker, delivery...) in
    this process, as `hitl worker` runs them."""
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
        slack_api_url=slack.url, default_channel=CHANNEL,
    )
    approvals = Approvals(settings=settings)
    app = build_app(settings, approvals=approvals, client=WebClient(token=TOKEN, base_url=slack.url))
    web = build_web_app(approvals, bolt=app, signing_secret=SECRET)
    server = WebServer(web, host="127.0.0.1", port=0).start()
    try:
        with running(background_loops(approvals.redis, settings, RedisHealth())):
            yield Bot(server.url, slack, approvals, Interactions(slack.workspace))
    finally:
        server.stop()
        approvals.close()


def test_one_click_approval_is_one_trace_in_parent_order(
    spans: InMemorySpanExporter, in_process_bot: Bot
) -> None:
    bot = in_process_bot
    agent = trace.get_tracer("agent")
    with agent.start_as_current_span("agent.deploy"):
        req = bot.approvals.request(action="deploy", summary="Deploy v1.2", mode="gate")
    bot.card(req.id, timeout=20)  # posted by the delivery loop

    decided: list[str] = []
    waiter = threading.Thread(target=lambda: decided.append(req.wait(20).status))
    waiter.start()
    status, _ = bot.click(req.id, "hitl_approve", user="U0ALICE")
    assert status == 200
    waiter.join(20)
    assert decided == ["approved"]

    def finished() -> dict[str, ReadableSpan]:
        return {s.name: s for s in spans.get_finished_spans() if s.name.startswith(("hitl.", "agent."))}

    expected = {"agent.deploy", SpanName.REQUEST, SpanName.CARD_POST, SpanName.CLICK, SpanName.TRANSITION,
                SpanName.WAKE}
    # The click's span ends in the bot's listener thread, after Slack got its ack.
    by_name = eventually(
        lambda: (lambda found: found if expected <= set(found) else None)(finished()), 10, "every span"
    )
    assert expected <= set(by_name)
    assert len({by_name[n].context.trace_id for n in expected}) == 1, "every step joins the agent's trace"

    def parent(name: str) -> str | None:
        parent_ctx = by_name[name].parent
        if parent_ctx is None:
            return None
        return next(n for n, s in by_name.items() if s.context.span_id == parent_ctx.span_id)

    # The agent was traced: its span is the parent of every step, across processes.
    assert parent(SpanName.REQUEST) == "agent.deploy"
    assert parent(SpanName.CARD_POST) == "agent.deploy"
    assert parent(SpanName.CLICK) == "agent.deploy"
    assert parent(SpanName.TRANSITION) == SpanName.CLICK
    assert parent(SpanName.WAKE) == "agent.deploy"
    ordered = sorted(by_name.values(), key=lambda s: s.start_time)
    assert [s.name for s in ordered if s.name != "agent.deploy"][:2] == [SpanName.REQUEST, SpanName.CARD_POST]
    assert by_name[SpanName.CLICK].start_time < by_name[SpanName.TRANSITION].start_time
    # The agent wakes after the transition began (its span may end first: the waiter is woken
    # by the script's audit event while the bot is still closing its own span).
    assert by_name[SpanName.TRANSITION].start_time < by_name[SpanName.WAKE].end_time
    assert by_name[SpanName.TRANSITION].attributes["hitl.status"] == "approved"
    assert by_name[SpanName.WAKE].attributes["hitl.status"] == "approved"
    assert by_name[SpanName.REQUEST].attributes["hitl.request_id"] == req.id
    # The stored context is the W3C traceparent of the caller's span.
    stored = req.fetch().trace["traceparent"]
    agent_span = by_name["agent.deploy"].context
    assert stored.split("-")[1:3] == [format(agent_span.trace_id, "032x"), format(agent_span.span_id, "016x")]


def test_an_untraced_caller_gets_a_trace_that_a_timer_expiry_joins(
    spans: InMemorySpanExporter, in_process_bot: Bot
) -> None:
    """No span in the agent: `hitl.request` starts the trace, later steps are its children."""
    bot = in_process_bot
    req = bot.approvals.request(action="deploy", summary="Deploy v1.3", mode="gate", timeout=0.2)
    # The ticker fires the expiry when the timer is due.
    eventually(lambda: req.status() == "expired", 20, "the expiry")
    assert tracing.flush()
    names = {s.name: s for s in spans.get_finished_spans()}
    assert names[SpanName.REQUEST].parent is None
    assert names[SpanName.TRANSITION].parent.span_id == names[SpanName.REQUEST].context.span_id
    assert names[SpanName.TRANSITION].attributes["hitl.status"] == "expired"


def test_without_an_sdk_requests_store_no_context(redis_url: str, prefix: str) -> None:
    """Only the API installed (no SDK): spans are no-ops and nothing is stored. In a fresh
    interpreter, since this one may have an SDK installed by the tests above."""
    code = (
        "from hitl import Approvals\n"
        "with Approvals() as a:\n"
        "    r = a.request(action='deploy', summary='Deploy', mode='gate')\n"
        "    print(repr(r.fetch().trace))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=hitl_env(redis_url, prefix), cwd=ROOT, capture_output=True,
        text=True, timeout=60, check=True,
    )
    assert out.stdout.strip() == "{}"
