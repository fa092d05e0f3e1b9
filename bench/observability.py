"""The cost of instrumentation: enqueue and decide -> wake with metrics and tracing on vs off.

"on" = the Redis counters (HITL_METRICS, written inside the CREATE and TRANSITION
scripts) plus the OpenTelemetry SDK installed with a batch span processor (every span
recorded and handed to an exporter, which drops them: the cost of tracing without the
network). "off" = HITL_METRICS=0 and only the OpenTelemetry API (no-op spans). Blocks
with only one of the two show where the cost goes.

A tracer provider can be set once per process, so each block runs in a fresh child
process; blocks alternate off, on, off, on... in the same run so drift on this shared
machine hits both alike. Per block: 1,000 `request()` calls timed back to back, then 100
decide -> `wait()` wake rounds (bench.wake's method: the waiter is seen registered
before the decision). Target: on is less than 10 % slower than off, on both.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from bench.common import (
    ROOT,
    bench_prefix,
    exit_code,
    header,
    ms,
    parser,
    percentile,
    redis_url,
    run_main,
    table,
    verdict,
)

BLOCKS = 4  # per mode
# off and on are compared; metrics only and tracing only show where the cost goes.
MODES = ("off", "on", "metrics", "tracing")
ENQUEUE = 1_000
WAKE_ROUNDS = 100
WARMUP = 50
TARGET = 0.10
PARAMS = {"to": "ops@example.com", "template": "overdue", "n": 3}


def child(mode: str, url: str, prefix: str) -> dict[str, object]:
    """One block in this process: returns {"enqueue_s": [...], "wake_s": [...]}."""
    counting = mode in ("on", "metrics")
    if mode in ("on", "tracing"):
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Drop(SpanExporter):
            def export(self, spans: object) -> SpanExportResult:
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Drop()))
        trace.set_tracer_provider(provider)
    from bench.wake import Bench

    b = Bench(url, prefix)
    for client in (b.agent, b.bot):
        client.store.metrics = counting
    try:
        for i in range(WARMUP):
            b.agent.request(action="send_email", summary=f"warm {i}", params=PARAMS, mode="gate")
            b.hitl_round(-i - 1)
        enqueue = []
        for i in range(ENQUEUE):
            t0 = time.perf_counter()
            b.agent.request(action="send_email", summary=f"Send reminder {i}", params=PARAMS, mode="gate")
            enqueue.append(time.perf_counter() - t0)
        wake = [b.hitl_round(i)[0] for i in range(WAKE_ROUNDS)]
        counted = b.agent.redis.hlen(b.agent.keys.metrics("created"))
    finally:
        b.close()
    return {"enqueue_s": enqueue, "wake_s": wake, "unconfirmed": b.unconfirmed, "counted": counted}


def run_block(mode: str, url: str, prefix: str) -> dict[str, list[float]]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.observability", "--child", mode, "--url", url, "--prefix", prefix],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--url", help=argparse.SUPPRESS)
    p.add_argument("--prefix", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.url, args.prefix)))
        return 0
    header(
        "observability",
        f"request() and decide -> wait() with metrics + tracing on vs off, {BLOCKS} alternating blocks each",
    )
    runs: dict[str, list[dict[str, list[float]]]] = {m: [] for m in MODES}
    with redis_url() as url, bench_prefix(url) as prefix:
        for n in range(BLOCKS):
            for mode in MODES if n % 2 == 0 else MODES[::-1]:
                runs[mode].append(run_block(mode, url, f"{prefix}:{mode}{n}"))
    figures = {}
    for mode, blocks in runs.items():
        enqueue = [x for b in blocks for x in b["enqueue_s"]]
        wake = [x for b in blocks for x in b["wake_s"]]
        rates = sorted(len(b["enqueue_s"]) / sum(b["enqueue_s"]) for b in blocks)
        figures[mode] = {
            "rate": rates[len(rates) // 2],
            "enq_p50": percentile(enqueue, 50), "enq_p99": percentile(enqueue, 99),
            "wake_p50": percentile(wake, 50), "wake_p99": percentile(wake, 99),
            "unconfirmed": sum(int(b["unconfirmed"]) for b in blocks),  # type: ignore[call-overload]
            "counted": max(int(b["counted"]) for b in blocks),  # type: ignore[call-overload]
        }
    off, on = figures["off"], figures["on"]
    print()
    table(
        ["mode", "request()/s (median block)", "request p50 ms", "p99 ms", "wake p50 ms", "wake p99 ms",
         "counter fields"],
        [[m, f"{f['rate']:,.0f}", ms(f["enq_p50"]), ms(f["enq_p99"]), ms(f["wake_p50"]), ms(f["wake_p99"]),
          f["counted"]] for m, f in figures.items()],
    )
    enq_cost = off["rate"] / on["rate"] - 1
    wake_cost = on["wake_p50"] / off["wake_p50"] - 1
    print(f"enqueue: on is {enq_cost:+.1%} slower; decide -> wake p50: on is {wake_cost:+.1%} slower")
    print(f"rounds where the waiter was not seen waiting first: {off['unconfirmed'] + on['unconfirmed']}")
    ok = verdict(
        enq_cost < TARGET and wake_cost < TARGET and off["counted"] == 0 and on["counted"] > 0,
        f"metrics + tracing cost under {TARGET:.0%} on enqueue and on decide -> wake p50",
        f"enqueue {enq_cost:+.1%}, wake p50 {wake_cost:+.1%}",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
