"""`GET /metrics`: exact figures after a scripted history, summed over every process.

The Bolt app (over HTTP, signed), two real `hitl worker` processes and the client all
count into Redis; the scrape, parsed with prometheus_client's own text parser, must show
exactly what happened, and the Slack figures must match the stand-in's own call log.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions
from hitl_sandbox.workspace import Call, Message
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.gateway.metrics import metrics_routes
from bot.gateway.web import WebServer, build_web_app
from bot.main import learn_privacy
from bot.slack.app import build_app
from bot.slack.client import web_client
from hitl import Approvals
from tests.conftest import make_settings
from tests.helpers import eventually, start_worker, stop
from tests.slack.conftest import CHANNEL, SECRET, TOKEN, Bot, decidable
from workers.health import RedisHealth
from workers.runner import background_loops, running

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def scrape(approvals: Approvals) -> Samples:
    """{sample name: {sorted labels: value}} from GET /metrics."""
    app = Starlette(routes=metrics_routes(approvals.redis, approvals.keys))
    with TestClient(app) as http:
        resp = http.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/plain")
    out: Samples = {}
    for family in text_string_to_metric_families(resp.text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[tuple(sorted(sample.labels.items()))] = sample.value
    return out


@dataclass
class Workers:
    """Real `hitl worker` processes for the test's prefix, started on demand."""

    redis_url: str
    prefix: str
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def start(self) -> subprocess.Popen[bytes]:
        proc = start_worker(self.redis_url, self.prefix, **self.env)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            stop(proc)


@pytest.fixture
def counted_bot(redis_url: str, prefix: str, slack: SlackStandIn) -> Iterator[tuple[Bot, Workers]]:
    """The Bolt app with the product's own (counted) Slack client; workers on demand."""
    settings = make_settings(
        redis_url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET,
        slack_api_url=slack.url, default_channel=CHANNEL, admins=["U0ALICE"],
    )
    approvals = Approvals(settings=settings)
    learn_privacy(approvals, settings)  # as `hitl bot` does at start: the channel is public
    app = build_app(settings, approvals=approvals, client=web_client(settings))
    web = build_web_app(approvals, bolt=app, signing_secret=SECRET)
    server = WebServer(web, host="127.0.0.1", port=0).start()
    env = {"SLACK_BOT_TOKEN": TOKEN, "SLACK_API_URL": slack.url, "HITL_DEFAULT_CHANNEL": CHANNEL,
           "HITL_TIMER_LEASE": "2"}
    workers = Workers(redis_url, prefix, env)
    try:
        yield Bot(server.url, slack, approvals, Interactions(slack.workspace)), workers
    finally:
        workers.stop_all()
        server.stop()
        approvals.close()


def settled(msg: Message) -> bool:
    """The card shows a final state: no decision is offered any more."""
    return not decidable(msg)


def outcome(call: Call) -> str:
    return "ratelimited" if call.status == 429 else ("ok" if call.ok else "error")


def slack_counts(m: Samples) -> dict[tuple[str, str], float]:
    return {(dict(k)["method"], dict(k)["outcome"]): v for k, v in m.get("hitl_slack_calls_total", {}).items()}


def test_metrics_show_exact_counts_summed_over_processes(counted_bot: tuple[Bot, Workers]) -> None:
    """A first worker posts the first cards (one post answered 429) and exits; a second
    does the rest. The scrape shows both processes' work: the figures live in Redis,
    not in a process's memory. Each request that must be clicked or watched gets its own
    card: it is filed once the card before it is out (a burst would share a digest)."""
    bot, workers = counted_bot
    approvals = bot.approvals
    first = workers.start()
    bot.slack.faults.ratelimit("chat.postMessage", times=1, retry_after=1)

    # The first worker alone.
    approved = approvals.request(action="deploy", summary="Deploy v1", mode="gate")
    bot.card(approved.id, timeout=20)
    assert bot.click(approved.id, "hitl_approve", user="U0ALICE")[0] == 200
    assert approved.wait(20).status == "approved"
    rejected = approvals.request(action="deploy", summary="Deploy v2", mode="gate")
    bot.card(rejected.id, timeout=20)
    approvals.decide(rejected.id, "reject", by="U0BOB", comment="not today")
    for req in (approved, rejected):
        bot.card_when(req.id, settled, timeout=20)

    second_started = time.time()
    workers.start()
    stop(first)
    first_gone = time.time()

    # The second worker alone.
    expired = approvals.request(action="deploy", summary="Deploy v3", mode="gate", timeout=1)
    bot.card(expired.id, timeout=20)
    vetoed = approvals.request(action="send_email", summary="Mail 200 customers", mode="override", window=600)
    bot.card(vetoed.id, timeout=20)
    approvals.decide(vetoed.id, "veto", by="U0BOB", comment="wrong list")
    approvals.request(action="search_web", summary="Look it up", mode="auto")
    waiting = approvals.request(action="send_email", summary="Mail 3 customers", mode="gate")
    bot.card(waiting.id, timeout=20)
    # A burst: these may share a digest card, which is fine (nobody clicks them).
    extra = [approvals.request(action="post_update", summary=f"Update {n}", mode="notify") for n in range(8)]
    assert expired.wait(20).status == "expired"
    # Every card shows its final state: the Slack calls are over.
    for req in (expired, vetoed):
        bot.card_when(req.id, settled, timeout=20)
    for req in extra:
        bot.card(req.id, timeout=30)

    # Slack: exactly what the stand-in answered, 429 included, from the bot and both
    # workers (a worker counts just after Slack answered: wait for its last count).
    def seen() -> dict[tuple[str, str], int]:
        return dict(Counter((c.method, outcome(c)) for c in bot.slack.workspace.calls()))

    eventually(lambda: slack_counts(scrape(approvals)) == seen(), 20, "the Slack counts to match the log")
    m = scrape(approvals)
    counted = slack_counts(m)
    assert counted == seen()
    assert counted[("chat.postMessage", "ratelimited")] == 1
    # Both workers posted cards in the channel (the bot never does): the counts above are
    # the sum of two processes, one of which has exited.
    posts = [c for c in bot.slack.workspace.calls("chat.postMessage") if c.args.get("channel") == CHANNEL]
    assert [c for c in posts if c.at < second_started and c.ok], "the first worker posted cards"
    assert [c for c in posts if c.status == 429 and c.at < second_started], "the first worker was answered 429"
    assert [c for c in posts if c.at > first_gone and c.ok], "the second worker posted cards"

    created = m["hitl_requests_created_total"]
    assert created == {
        (("action", "deploy"), ("mode", "gate")): 3,
        (("action", "send_email"), ("mode", "override")): 1,
        (("action", "send_email"), ("mode", "gate")): 1,
        (("action", "search_web"), ("mode", "auto")): 1,
        (("action", "post_update"), ("mode", "notify")): 8,
    }
    assert m["hitl_requests_final_total"] == {
        (("action", "deploy"), ("status", "approved")): 1,
        (("action", "deploy"), ("status", "rejected")): 1,
        (("action", "deploy"), ("status", "expired")): 1,
        (("action", "send_email"), ("status", "vetoed")): 1,
        (("action", "search_web"), ("status", "approved")): 1,
        (("action", "post_update"), ("status", "approved")): 8,
    }
    assert m["hitl_pending"] == {(("channel", CHANNEL), ("mode", "gate")): 1}
    assert m["hitl_oldest_pending_seconds"][()] > 0
    # Decided through a transition: 3 deploys and 1 send_email; the expiry took >= 1 s.
    assert m["hitl_decision_seconds_count"] == {(("action", "deploy"),): 3, (("action", "send_email"),): 1}
    inf = m["hitl_decision_seconds_bucket"][(("action", "deploy"), ("le", "+Inf"))]
    under_1s = m["hitl_decision_seconds_bucket"][(("action", "deploy"), ("le", "1.0"))]
    assert inf == 3 and under_1s <= 2  # the expiry took at least its 1 s timeout
    assert m["hitl_decision_seconds_sum"][(("action", "deploy"),)] >= 1.0
    # Two timers fired (by the second worker's ticker): the 1 s request's reminder
    # (halfway) and its expiry; the veto removed the window's timer.
    assert m["hitl_timer_lateness_seconds_count"][()] == 2
    assert m["hitl_paused"] == {(("scope", "*"),): 0}
    assert waiting.status() == "pending"


def test_metrics_off_counts_nothing(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, metrics=False)
    with Approvals(settings=settings) as approvals:
        req = approvals.request(action="deploy", summary="Deploy", mode="gate")
        approvals.decide(req.id, "approve", by="U1")
        m = scrape(approvals)
    assert m.get("hitl_requests_created_total", {}) == {}
    assert m.get("hitl_requests_final_total", {}) == {}


def test_paused_scopes_and_two_processes_writing(redis_url: str, prefix: str) -> None:
    """The kill switch shows per scope; counters written from two clients add up."""
    settings = make_settings(redis_url, prefix)
    with Approvals(settings=settings) as one, Approvals(settings=settings) as two:
        one.store.pause("*", "U0ALICE")
        one.store.pause("deploy", "U0ALICE")
        for client in (one, two, two):
            client.request(action="deploy", summary="Deploy", mode="auto")
        m = scrape(one)
    assert m["hitl_paused"] == {(("scope", "*"),): 1, (("scope", "deploy"),): 1}
    # Paused: auto requests wait at a gate, so they count as gate.
    assert m["hitl_requests_created_total"] == {(("action", "deploy"), ("mode", "gate")): 3}
    assert m["hitl_pending"] == {(("channel", ""), ("mode", "gate")): 3}


def test_metrics_off_the_workers_ticker_counts_nothing(redis_url: str, prefix: str) -> None:
    """HITL_METRICS=false holds in the worker too: an expiry fired by its ticker (run here,
    as `hitl worker` runs it) adds no outcome, decision time or timer lateness."""
    settings = make_settings(redis_url, prefix, metrics=False)
    with Approvals(settings=settings) as approvals, running(
        background_loops(approvals.redis, settings, RedisHealth())
    ):
        req = approvals.request(action="deploy", summary="Deploy", mode="gate", timeout=0.2)
        assert req.wait(20).status == "expired"
        eventually(lambda: approvals.redis.zcard(approvals.keys.timers) == 0, 20, "the timers to be acked")
        m = scrape(approvals)
    assert m.get("hitl_requests_final_total", {}) == {}
    assert m.get("hitl_decision_seconds_count", {}) == {}
    assert m.get("hitl_timer_lateness_seconds_count", {}).get((), 0) == 0
