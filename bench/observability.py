"""The cost of instrumentation: enqueue and decide -> wake with metrics and tracing on vs off.

"on" = the Redis counters (HITL_METRICS, written inside the CREATE and TRANSITION
scripts) plus the OpenTelemetry SDK with a batch span processor (every span recorded and
handed to an exporter, which drops them: the cost of tracing without the network).
"off" = HITL_METRICS=0 and only the OpenTelemetry API (no-op spans). Blocks with only
one of the two show where the cost goes.

The agent works inside a span of its own when tracing is on (an agent traced with
OpenTelemetry, whose context `request()` stores). One process, the same clients
throughout; blocks of each mode alternate (the order reversed every other round) so
drift on this shared machine hits all alike. Per block:
50 `request()` calls timed one by one, then 10 decide -> `wait()` rounds (bench.wake's
method: the waiter is seen registered with the dispatcher before the decision).
Target: on is less than 10 % slower than off, on enqueue and on decide -> wake (p50).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.common import (
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
from bench.wake import Bench
from hitl import tracing

ROUNDS = 60
ENQUEUE = 50
WAKE = 10
WARMUP = 50
TARGET = 0.10
PARAMS = {"to": "ops@example.com", "template": "overdue", "n": 3}
# off and on are compared; metrics only and tracing only show where the cost goes.
MODES = ("off", "on", "metrics", "tracing")


class Drop(SpanExporter):
    """Receives every finished span and keeps none."""

    def export(self, spans: object) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("observability", f"request() and decide -> wait(), metrics + tracing on vs off, {ROUNDS} rounds")
    sdk = TracerProvider()
    sdk.add_span_processor(BatchSpanProcessor(Drop()))
    enqueue: dict[str, list[float]] = {m: [] for m in MODES}
    wake: dict[str, list[float]] = {m: [] for m in MODES}
    counted = {}
    with redis_url() as url, bench_prefix(url) as prefix:
        b = Bench(url, prefix)

        def agent_task(name: str) -> contextlib.AbstractContextManager[object]:
            """The agent's own span around its work when tracing is on (a traced agent)."""
            if name in ("on", "tracing"):
                return sdk.get_tracer("bench-agent").start_as_current_span("agent.task")
            return contextlib.nullcontext()

        def mode(name: str) -> None:
            for client in (b.agent, b.bot):
                client.store.metrics = name in ("on", "metrics")
            tracing.use_provider(sdk if name in ("on", "tracing") else None)

        try:
            for name in MODES:
                mode(name)
                for i in range(WARMUP):
                    b.agent.request(action="send_email", summary=f"warm {i}", params=PARAMS, mode="gate")
                    b.hitl_round(-i - 1)
            for r in range(ROUNDS):
                for name in MODES if r % 2 == 0 else MODES[::-1]:
                    mode(name)
                    with agent_task(name):
                        for i in range(ENQUEUE):
                            t0 = time.perf_counter()
                            b.agent.request(action="email", summary=f"Mail {i}", params=PARAMS, mode="gate")
                            enqueue[name].append(time.perf_counter() - t0)
                        wake[name] += [b.hitl_round(r * WAKE + i)[0] for i in range(WAKE)]
            for name in MODES:
                counted[name] = b.agent.redis.hlen(b.agent.keys.metrics("created"))
        finally:
            tracing.use_provider(None)
            sdk.shutdown()
            b.close()
    print()
    rows = []
    for name in MODES:
        e, w = enqueue[name], wake[name]
        rows.append([name, f"{len(e) / sum(e):,.0f}", ms(percentile(e, 50)), ms(percentile(e, 99)),
                     ms(percentile(w, 50)), ms(percentile(w, 99))])
    table(["mode", "request()/s", "request p50 ms", "p99 ms", "decide->wake p50 ms", "p99 ms"], rows)
    enq = percentile(enqueue["on"], 50) / percentile(enqueue["off"], 50) - 1
    wk = percentile(wake["on"], 50) / percentile(wake["off"], 50) - 1
    print(f"on vs off, p50: request() {enq:+.1%}, decide -> wake {wk:+.1%}")
    print(f"rounds where the waiter was not seen waiting first: {b.unconfirmed}; wrong outcomes: {b.wrong}")
    ok = verdict(
        enq < TARGET and wk < TARGET and b.unconfirmed == 0 and b.wrong == 0 and counted["on"] > 0,
        f"metrics + tracing cost under {TARGET:.0%} on request() and on decide -> wake (p50)",
        f"request() {enq:+.1%}, decide -> wake {wk:+.1%}",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
