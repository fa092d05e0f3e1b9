"""A burst of 1,000 requests into one channel, with Slack's rate limit enforced.

The Slack stand-in allows 1 chat.postMessage per second per channel (answering 429 with
Retry-After beyond that, as Slack does). Two real workers deliver the cards. Measured:
time until every request is visible on a card (its card ts is recorded only after Slack
accepted the post), posts made, 429s received, and requests shown twice. Baseline in the
same run: the time one card per request would need at Slack's 1 post/s.

Run: `.venv/bin/python -m bench.burst`
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from hitl_sandbox import SlackStandIn

from bench import common
from hitl import Approvals

TOKEN = "xoxb-bench"
CHANNEL = "C0APPROVALS"
REQUESTS = 1_000
WORKERS = 2
# Target: every request visible within this many seconds.
TARGET = 30.0
# Give up waiting after this long.
LIMIT = 120.0


def main(argv: Sequence[str] | None = None) -> int:
    args = common.parser(__doc__ or "").parse_args(argv)
    common.header("burst", f"{REQUESTS:,} requests into one channel, Slack limited to 1 post/s per channel")
    with (
        common.redis_url() as url,
        common.bench_prefix(url) as prefix,
        SlackStandIn(bot_token=TOKEN) as slack,
        tempfile.TemporaryDirectory(prefix="hitl-burst-") as logs,
    ):
        slack.faults.set_rate_limit("chat.postMessage", limit=1, per=1.0, per_channel=True)
        approvals = Approvals(settings=common.settings_for(url, prefix, default_channel=CHANNEL))
        procs = common.start_workers(
            url, prefix, WORKERS, Path(logs) / "worker",
            SLACK_BOT_TOKEN=TOKEN, SLACK_API_URL=slack.url, HITL_DEFAULT_CHANNEL=CHANNEL,
        )
        try:
            t0 = time.monotonic()
            ids = [approvals.request(action="send_reminder", summary=f"Remind customer {n}").id
                   for n in range(REQUESTS)]
            filed = time.monotonic() - t0
            key = approvals.keys.req

            def visible() -> int:
                pipe = approvals.redis.pipeline(transaction=False)
                for rid in ids:
                    pipe.hexists(key(rid), "card_ts")
                return sum(pipe.execute())

            seen = 0
            while time.monotonic() - t0 < LIMIT:
                seen = visible()
                if seen == REQUESTS:
                    break
                time.sleep(0.25)
            elapsed = time.monotonic() - t0
        finally:
            common.stop_workers(procs)
        calls = slack.workspace.calls("chat.postMessage")
        shown: dict[str, int] = {}
        for msg in slack.workspace.messages(CHANNEL, include_replies=False):
            payload = (msg.metadata or {}).get("event_payload") or {}
            for rid in payload.get("ids") or [payload.get("id")]:
                shown[rid] = shown.get(rid, 0) + 1
        twice = sum(1 for rid in ids if shown.get(rid, 0) > 1)
        common.table(
            ["measure", "value"],
            [
                ["requests filed (s)", f"{filed:.1f}"],
                ["all visible after (s)", f"{elapsed:.1f}" if seen == REQUESTS else f"not after {LIMIT:.0f}"],
                ["visible", f"{seen:,} of {REQUESTS:,}"],
                ["posts accepted", sum(1 for c in calls if c.status == 200)],
                ["429s received", sum(1 for c in calls if c.status == 429)],
                ["shown twice", twice],
                ["baseline: one card each at 1 post/s (s)", f"{REQUESTS:.0f}"],
            ],
        )
        ok = common.verdict(
            seen == REQUESTS and elapsed <= TARGET and twice == 0,
            f"all {REQUESTS:,} visible within {TARGET:.0f} s, none lost, none twice",
            f"{seen:,} visible after {elapsed:.1f} s, {twice} twice",
        )
        approvals.close()
    return common.exit_code(ok, args.strict)


if __name__ == "__main__":
    common.run_main(main)
