"""Enqueue throughput: `Approvals.request()` against a raw redis-py SET loop.

One client, 5,000 gate requests with small params, and 5,000 plain SETs on the very same
redis-py client (same pool, same connection settings), interleaved in blocks so that
drift on a shared machine hits both alike. Target: requests/s at least a third of raw
SETs/s, i.e. a request costs at most about three SET round trips.

Also printed: the Redis commands one request really sends (counted on the client), and
how much of a request is client CPU (validation and routing, argument building) rather
than waiting on Redis. `--profile` adds a cProfile of 2,000 requests.
"""

from __future__ import annotations

import cProfile
import io
import pstats
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import redis

from bench.common import (
    bench_prefix,
    exit_code,
    header,
    parser,
    percentile,
    ping_times,
    redis_url,
    run_main,
    settings_for,
    table,
    us,
    verdict,
)
from hitl import Approvals, scripts
from hitl.client import build_doc
from hitl.store import create_args

N = 5_000
BLOCKS = 10
WARMUP = 100
COUNTED = 200
CPU_SAMPLES = 1_000
PROFILED = 2_000
TARGET_RATIO = 1 / 3
PARAMS = {"to": "ops@example.com", "template": "overdue", "n": 3}
RAW_VALUE = b"x" * 100


def file_one(approvals: Approvals, i: int) -> None:
    approvals.request(
        action="send_email", summary=f"Send reminder {i}", params=PARAMS, mode="gate", requested_by="U09"
    )


def raw_set(conn: redis.Redis, prefix: str, i: int) -> None:
    conn.set(f"{prefix}:raw:{i}", RAW_VALUE)


def count_commands(approvals: Approvals, n: int) -> Counter[str]:
    """Commands `n` requests send, counted by wrapping the client's execute_command."""
    conn = approvals.redis
    counts: Counter[str] = Counter()
    original = conn.execute_command

    def counting(*args: Any, **options: Any) -> Any:
        counts[str(args[0]).upper()] += 1
        return original(*args, **options)

    conn.execute_command = counting  # type: ignore[method-assign]
    try:
        for i in range(n):
            file_one(approvals, i)
    finally:
        del conn.execute_command  # back to the class's method
    return counts


def client_cpu(approvals: Approvals, n: int) -> tuple[float, float]:
    """Seconds per call of build_doc (validate + route) and of create_args, no Redis."""
    kwargs = {"action": "send_email", "params": PARAMS, "mode": "gate", "requested_by": "U09"}
    policy = approvals.policy.current()
    t0 = time.perf_counter()
    docs = [build_doc(approvals.settings, policy, summary=f"s{i}", **kwargs) for i in range(n)]
    t1 = time.perf_counter()
    for doc in docs:
        create_args(approvals.keys, doc, approvals.settings.retention)
    t2 = time.perf_counter()
    return (t1 - t0) / n, (t2 - t1) / n


def script_only(approvals: Approvals, n: int) -> tuple[float, float]:
    """Seconds per EVALSHA of the CREATE script with arguments built beforehand, and per
    no-op EVAL: their difference is what the script itself costs inside Redis."""
    conn = approvals.redis
    create = conn.register_script(scripts.CREATE)
    noop = conn.register_script("return 1")
    kwargs = {"action": "send_email", "params": PARAMS, "mode": "gate", "requested_by": "U09"}
    prepared = [
        create_args(
            approvals.keys,
            build_doc(approvals.settings, approvals.policy.current(), summary=f"s{i}", **kwargs),
            approvals.settings.retention,
        )
        for i in range(n)
    ]
    create(*prepared[0])
    noop()
    t0 = time.perf_counter()
    for keys, argv in prepared[1:]:
        create(keys=keys, args=argv)
    t1 = time.perf_counter()
    for _ in prepared[1:]:
        noop()
    t2 = time.perf_counter()
    return (t1 - t0) / (n - 1), (t2 - t1) / (n - 1)


def profile(approvals: Approvals, n: int) -> str:
    prof = cProfile.Profile()
    prof.enable()
    for i in range(n):
        file_one(approvals, i)
    prof.disable()
    out = io.StringIO()
    pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(18)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--profile", action="store_true", help=f"also profile {PROFILED:,} requests")
    args = p.parse_args(argv)
    header("enqueue", f"{N:,} Approvals.request() (gate, small params) vs {N:,} raw SETs, same client")
    with redis_url() as url, bench_prefix(url) as prefix:
        approvals = Approvals(settings=settings_for(url, prefix))
        conn = approvals.redis  # the raw baseline runs on the very same client
        try:
            rtt = ping_times(conn, 500)
            for i in range(WARMUP):  # loads the Lua script, fills the pool, warms caches
                file_one(approvals, -i)
                raw_set(conn, prefix, -i)
            per = N // BLOCKS
            t_req = t_raw = 0.0
            for b in range(BLOCKS):
                # alternate which goes first so drift hits both alike
                for kind in ("raw", "req") if b % 2 == 0 else ("req", "raw"):
                    t0 = time.perf_counter()
                    if kind == "req":
                        for i in range(b * per, (b + 1) * per):
                            file_one(approvals, i)
                        t_req += time.perf_counter() - t0
                    else:
                        for i in range(b * per, (b + 1) * per):
                            raw_set(conn, prefix, i)
                        t_raw += time.perf_counter() - t0
            commands = count_commands(approvals, COUNTED)
            cpu_doc, cpu_args = client_cpu(approvals, CPU_SAMPLES)
            t_script, t_noop = script_only(approvals, CPU_SAMPLES)
            prof = profile(approvals, PROFILED) if args.profile else ""
        finally:
            approvals.close()

    req_rate, raw_rate = N / t_req, N / t_raw
    ratio = req_rate / raw_rate
    per_req, per_set = t_req / N, t_raw / N
    sent = sum(commands.values()) / COUNTED
    print()
    table(
        ["measure", "value"],
        [
            [
                "Redis PING round trip p50 / p99 (us)",
                f"{us(percentile(rtt, 50))} / {us(percentile(rtt, 99))}",
            ],
            ["raw SETs/s (baseline)", f"{raw_rate:,.0f}"],
            ["requests/s", f"{req_rate:,.0f}"],
            ["ratio requests/s : raw SETs/s", f"{ratio:.3f}"],
            ["implied round trips per request (t_request / t_SET)", f"{per_req / per_set:.2f}"],
            ["Redis commands actually sent per request", f"{sent:.2f} ({_fmt_counts(commands, COUNTED)})"],
            ["time per request (us)", us(per_req)],
            ["breakdown, measured after the comparison (drifts with load):", ""],
            ["  of which client CPU: build_doc (validate + route)", us(cpu_doc)],
            ["  of which client CPU: create_args (timers, JSON)", us(cpu_args)],
            ["  the rest: EVALSHA round trip + script + handle", us(per_req - cpu_doc - cpu_args)],
            ["CREATE script alone, arguments prebuilt (us)", us(t_script)],
            ["no-op EVAL round trip (us)", us(t_noop)],
            ["  so the CREATE script itself costs about (us)", us(t_script - t_noop)],
            ["time per raw SET (us)", us(per_set)],
        ],
    )
    if prof:
        print(f"\ncProfile of {PROFILED:,} requests, by own time:\n{prof}")
    ok = verdict(
        ratio >= TARGET_RATIO,
        "requests/s >= 1/3 of raw SETs/s",
        f"{req_rate:,.0f} vs {raw_rate:,.0f}/s = {ratio:.3f} (needs >= {TARGET_RATIO:.3f})",
    )
    return exit_code(ok, args.strict)


def _fmt_counts(counts: Counter[str], n: int) -> str:
    return ", ".join(f"{name} {c / n:g}" for name, c in counts.most_common())


if __name__ == "__main__":
    run_main(main)
