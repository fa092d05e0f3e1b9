"""Slack surface: click -> agent wake through the HTTP endpoint, and `/hitl status` p99.

1. A reviewer's click, signed like Slack's, POSTed to the real Bolt app behind `hitl bot`'s
   HTTP server, until the agent blocked in `req.wait()` returns; next to the engine's own
   decide -> wake hand-off measured in the same run.
2. `/hitl status` through the same endpoint with 100,000 stored requests of which 10,000
   pending (target: p99 under 100 ms), next to a Redis PING.

Run: `.venv/bin/python -m bench.slack`
"""

from __future__ import annotations

import threading
import time
import urllib.request
from collections.abc import Callable, Sequence

import redis
from hitl_sandbox import SlackStandIn
from hitl_sandbox.signing import Interactions, SignedRequest, signed_command, signed_interaction
from slack_sdk import WebClient

from bench import common
from bot.gateway.web import WebServer, build_web_app
from bot.slack.app import build_app
from bot.slack.blocks.cards import ACTION_APPROVE, build_card
from hitl import Approvals

SECRET = "bench-secret"
TOKEN = "xoxb-bench"
ROUNDS = 200
STORED, PENDING = 100_000, 10_000
STATUS_CALLS = 200


def _post(url: str, signed: SignedRequest) -> int:
    req = urllib.request.Request(url, data=signed.body, headers=signed.headers, method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        resp.read()
        return resp.status


def _wake(
    approvals: Approvals, prepare: Callable[[str], object], decide: Callable[[str, object], object]
) -> float:
    """Seconds from `decide(id, prepared)` being called to the waiter's return.

    `prepare(id)` runs first, untimed (posting the card for a click), while nobody waits.
    """
    handle = approvals.request(action="bench", summary="s")
    prepared = prepare(handle.id)
    woke: list[float] = []
    blocked = threading.Event()

    def waiter() -> None:
        blocked.set()
        handle.wait(timeout=10)
        woke.append(time.perf_counter())

    t = threading.Thread(target=waiter)
    t.start()
    blocked.wait()
    dispatcher = approvals.dispatcher()
    common.deadline_loop(  # the wait is registered and its first read done (hitl.waiters)
        2, lambda: dispatcher.registered().get(handle.id, 0) > 0 and dispatcher.checks_queued() == 0
    )
    t0 = time.perf_counter()
    decide(handle.id, prepared)
    t.join()
    return woke[0] - t0


def click_latency(approvals: Approvals, slack: SlackStandIn, url: str) -> tuple[list[float], list[float]]:
    interactions = Interactions(slack.workspace)
    client = WebClient(token=TOKEN, base_url=slack.url)

    def post_card(rid: str) -> SignedRequest:
        text, blocks = build_card(approvals.store.get(rid))
        posted = client.chat_postMessage(channel="C0APPROVALS", text=text, blocks=blocks)
        payload = interactions.click("C0APPROVALS", posted["ts"], ACTION_APPROVE, user_id="U0ALICE")
        return signed_interaction(SECRET, payload)

    engine, http = [], []
    for _ in range(ROUNDS):
        engine.append(
            _wake(approvals, lambda rid: None, lambda rid, _: approvals.decide(rid, "approve", by="U0ALICE"))
        )
        http.append(_wake(approvals, post_card, lambda rid, signed: _post(url, signed)))
    return engine, http


def seed(approvals: Approvals) -> None:
    """STORED requests, STORED - PENDING of them decided, in pipelined batches."""
    store = approvals.store
    from hitl.client import build_doc
    from hitl.store import transition_args

    channels = [f"C0BENCH{i}" for i in range(20)]
    ids: list[str] = []
    batch = 1000
    for start in range(0, STORED, batch):
        docs = [
            build_doc(
                approvals.settings, approvals.policy.current(), action=f"action{n % 30}", summary="s",
                channel=channels[n % len(channels)], mode="override" if n % 5 == 0 else "gate",
            )
            for n in range(start, min(start + batch, STORED))
        ]
        store.create_many(docs)
        ids += [d["id"] for d in docs]
    decided = ids[: STORED - PENDING]
    for start in range(0, len(decided), batch):
        pipe = approvals.redis.pipeline(transaction=False)
        for rid in decided[start : start + batch]:
            keys_, argv = transition_args(
                approvals.keys, rid, "expire", by=None, groups=(), comment=None, params=None,
                version=None, retention=approvals.settings.retention,
            )
            store._transition(keys=keys_, args=argv, client=pipe)
        pipe.execute()
    approvals.redis.delete(approvals.keys.timers)  # no worker here; keep the zset from growing the run


def status_latency(url: str, slack: SlackStandIn) -> list[float]:
    interactions = Interactions(slack.workspace)
    out = []
    for _ in range(STATUS_CALLS):
        signed = signed_command(SECRET, interactions.command("/hitl", "status"))
        t0 = time.perf_counter()
        assert _post(url, signed) == 200
        out.append(time.perf_counter() - t0)
    return out


def _row(name: str, values: list[float]) -> list[str]:
    return [name, *(common.ms(common.percentile(values, q)) for q in (50, 99, 100))]


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    common.header("slack", "click -> wake via HTTP; /hitl status p99 with 100k stored")
    ok = True
    with (
        common.redis_url() as url,
        common.bench_prefix(url) as prefix,
        SlackStandIn(bot_token=TOKEN) as slack,
    ):
        settings = common.settings_for(
            url, prefix, slack_bot_token=TOKEN, slack_signing_secret=SECRET, slack_api_url=slack.url
        )
        approvals = Approvals(settings=settings)
        app = build_app(settings, approvals=approvals, client=WebClient(token=TOKEN, base_url=slack.url))
        web = build_web_app(approvals, bolt=app, signing_secret=SECRET)
        server = WebServer(web, host="127.0.0.1", port=0).start()
        try:
            engine, http = click_latency(approvals, slack, server.url)
            common.table(["path", "p50 ms", "p99 ms", "max ms"], [_row("engine decide -> wake", engine),
                                                                  _row("HTTP click -> wake", http)])
            ratio = common.percentile(http, 50) / common.percentile(engine, 50)
            print(f"click adds {common.ms(common.percentile(http, 50) - common.percentile(engine, 50))} ms "
                  f"at p50 ({ratio:.1f}x the engine hand-off)")
            t0 = time.perf_counter()
            seed(approvals)
            print(f"seeded {STORED:,} requests ({PENDING:,} pending) in {time.perf_counter() - t0:.1f} s")
            pings = common.ping_times(redis.Redis.from_url(url))
            status = status_latency(server.url, slack)
            common.table(["call", "p50 ms", "p99 ms", "max ms"], [_row("redis PING", pings),
                                                                  _row("/hitl status (HTTP)", status)])
            p99 = common.percentile(status, 99)
            ok = common.verdict(p99 < 0.1, "/hitl status p99 < 100 ms", f"{common.ms(p99)} ms")
        finally:
            server.stop()
            approvals.close()
    return common.exit_code(ok, args.strict)


if __name__ == "__main__":
    common.run_main(main)
