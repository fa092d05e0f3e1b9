"""Shared state an agent can grow: 10,000 distinct action names, each filed and decided
once, against a deployment that had seen 10.

Measures the bytes of every key under the deployment's prefix (`MEMORY USAGE`, so other
users of the same Redis do not count) and of its per-action figures (metrics, stats,
durations), and the size and time of a `/metrics` scrape (median of 5), after WARM names,
after BOUND names (twice the default HITL_METRICS_MAX_ACTIONS) and after NAMES. Action
labels are bounded (the policy's actions plus HITL_METRICS_MAX_ACTIONS others, the rest
`other`), so past the bound the scrape and the figures stop growing.
Target: the scrape after NAMES names is at most 1.1x its size after BOUND names.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import redis
from prometheus_client import generate_latest

from bench.common import (
    bench_prefix,
    exit_code,
    header,
    parser,
    redis_url,
    run_main,
    settings_for,
    table,
    verdict,
)
from bot.gateway.metrics import registry
from hitl import Approvals

NAMES = 10_000
WARM = 10
BOUND = 400
SCRAPES = 5
TARGET_RATIO = 1.1


# Keys holding per-action figures (the part labels bound), as opposed to the requests.
FIGURES = (":metrics:", ":stats:", ":durations:", ":actions")


def state_bytes(conn: redis.Redis, prefix: str) -> tuple[int, int]:
    """(bytes of every key of the prefix, bytes of its per-action figure keys)."""
    keys = [k.decode() for k in conn.scan_iter(f"{prefix}:*", count=1000)]
    pipe = conn.pipeline(transaction=False)
    for key in keys:
        pipe.memory_usage(key, samples=0)
    sizes = [int(n or 0) for n in pipe.execute()]
    figures = sum(n for k, n in zip(keys, sizes, strict=True) if any(f in k[len(prefix):] for f in FIGURES))
    return sum(sizes), figures


def scrape(approvals: Approvals) -> tuple[int, float]:
    """(bytes, median seconds) of a /metrics body, built as the route builds it."""
    reg = registry(approvals.redis, approvals.keys)
    times, size = [], 0
    for _ in range(SCRAPES):
        t0 = time.perf_counter()
        size = len(generate_latest(reg))
        times.append(time.perf_counter() - t0)
    return size, statistics.median(times)


def file(approvals: Approvals, start: int, stop: int) -> None:
    for i in range(start, stop):
        req = approvals.request(action=f"agent_made_{i:05d}", summary="Made up", mode="gate")
        approvals.decide(req.id, "approve", by="U0ALICE")


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("labels", f"{NAMES:,} distinct action names filed and decided; state and /metrics, "
                     "before and after")
    with redis_url() as url, bench_prefix(url) as prefix:
        approvals = Approvals(settings=settings_for(url, prefix))
        conn = approvals.redis
        try:
            file(approvals, 0, WARM)
            warm = *state_bytes(conn, prefix), *scrape(approvals)
            file(approvals, WARM, BOUND)
            before = *state_bytes(conn, prefix), *scrape(approvals)
            t0 = time.perf_counter()
            file(approvals, BOUND, NAMES)
            filing = time.perf_counter() - t0
            after = *state_bytes(conn, prefix), *scrape(approvals)
        finally:
            approvals.close()
    rows = [[f"{n:,} names", f"{total / 1e6:.2f}", f"{figures / 1e6:.2f}", f"{size / 1e6:.3f}", f"{secs:.3f}"]
            for n, (total, figures, size, secs) in ((WARM, warm), (BOUND, before), (NAMES, after))]
    table(["after", "Redis MB (all keys)", "MB of per-action figures", "/metrics MB", "/metrics s"], rows)
    print(f"filing and deciding {NAMES - BOUND:,} requests took {filing:.1f} s")
    ratio = after[2] / before[2]
    target = f"/metrics after {NAMES:,} names <= {TARGET_RATIO:g}x its size after {BOUND}"
    ok = verdict(ratio <= TARGET_RATIO, target, f"{ratio:.1f}x ({after[2]:,} vs {before[2]:,} bytes)")
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
