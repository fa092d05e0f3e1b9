"""Redis memory per pending request carrying 1 KB of params.

Always on an embedded redis-server of its own, so nothing else moves `used_memory`.
Files 10,000 gate requests whose params are exactly 1,024 bytes of JSON and measures two
ways: `MEMORY USAGE` (SAMPLES 0, exact) summed over each request's own keys plus its share
of the growth of the shared keys (events stream, timers, indexes), and the `INFO memory
used_memory` delta before/after. The payload itself is the baseline: 1,024 bytes.
Target: at most 3 KB (3,072 bytes) per request by both measures.

Then the steady state (item 20): the same requests are decided, and the bytes each leaves
behind are measured in two parts: its hash and done list, kept `HITL_RETENTION` after the
decision, and its audit events (the `created` event holds the document), kept
`HITL_AUDIT_RETENTION`. Steady-state memory for 100,000 requests a day is
rate x (request retention x hash bytes + audit retention x audit bytes), printed for the
defaults (30 and 90 days) next to the raw payload kept as long (the baseline). Finally the
benchmark lets its (short) request retention pass, runs the real trim as the worker would
once the audit retention has passed, and checks that `used_memory` returns to where it was
before the 10,000 requests were filed: nothing lives forever.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence

import redis

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
from hitl import Approvals
from hitl.retention import Retention

N = 10_000
# Requests a day and the retentions (days) of the steady-state estimate.
PER_DAY = 100_000
DEFAULT_RETENTION_DAYS, DEFAULT_AUDIT_DAYS = 30, 90
# This run's own request retention (s): short, so the benchmark can watch everything go.
BENCH_RETENTION = 60
GIB = 1024**3
WARMUP = 50
PAYLOAD = 1_024
TARGET = 3 * 1_024


def payload() -> dict[str, str]:
    """Params whose compact JSON is exactly PAYLOAD bytes (hex: incompressible, ASCII)."""
    filler = PAYLOAD - len(json.dumps({"blob": ""}, separators=(",", ":")))
    params = {"blob": os.urandom(filler).hex()[:filler]}
    assert len(json.dumps(params, separators=(",", ":")).encode()) == PAYLOAD
    return params


def used_memory(conn: redis.Redis) -> int:
    return int(conn.info("memory")["used_memory"])


def usage(conn: redis.Redis, keys: Iterable[str]) -> dict[str, int]:
    """Exact MEMORY USAGE (SAMPLES 0) of each key, pipelined; missing keys are left out."""
    keys = list(keys)
    pipe = conn.pipeline(transaction=False)
    for k in keys:
        pipe.memory_usage(k, samples=0)
    return {k: int(v) for k, v in zip(keys, pipe.execute(), strict=True) if v is not None}


def shared_keys(conn: redis.Redis, prefix: str) -> list[str]:
    """Keys of the prefix that belong to no single request."""
    own = (f"{prefix}:req:", f"{prefix}:idem:")
    names = (k.decode() for k in conn.scan_iter(match=f"{prefix}:*", count=1000))
    return [k for k in names if not k.startswith(own)]


def request_keys(conn: redis.Redis, prefix: str, ids: set[str]) -> dict[str, list[str]]:
    """The filed requests' own keys (`{p}:req:{id}` and `{p}:req:{id}:*`), grouped by kind."""
    head = f"{prefix}:req:"
    kinds: dict[str, list[str]] = defaultdict(list)
    for raw in conn.scan_iter(match=f"{head}*", count=1000):
        key = raw.decode()
        rid, _, suffix = key[len(head) :].partition(":")
        if rid in ids:
            kinds[f"req:{{id}}:{suffix}" if suffix else "req:{id}"].append(key)
    return kinds


def decided_footprint(
    approvals: Approvals, ids: set[str], events_before: int, events_filed: int
) -> dict[str, float]:
    """Approve every request; bytes per request of its hash + done list, and of its audit
    events (`events_before`/`events_filed`: the stream's MEMORY USAGE before and after filing)."""
    conn, keys = approvals.redis, approvals.keys
    for rid in ids:
        approvals.decide(rid, "approve", by="U01")
    own = sum(sum(usage(conn, k).values()) for k in request_keys(conn, keys.prefix, ids).values())
    events_decided = usage(conn, [keys.events])[keys.events]
    return {
        "own": own / N,
        "audit": (events_decided - events_before) / N,
        "audit_created": (events_filed - events_before) / N,
    }


def drained(approvals: Approvals, used_before: int) -> dict[str, float]:
    """Let the request retention pass, trim as the worker would once the audit retention
    has passed, and read `used_memory` again (less the card-sync timers a worker would
    have settled: none runs here)."""
    conn, keys = approvals.redis, approvals.keys
    names = [k.decode() for k in conn.scan_iter(match=f"{keys.prefix}:req:*", count=1000)]
    t0 = time.perf_counter()
    while any(conn.exists(*names[n : n + 500]) for n in range(0, len(names), 500)):
        time.sleep(1)  # Redis expires the hashes on its own clock; nothing to block on
    waited = time.perf_counter() - t0
    trim = Retention(conn, keys, retention=BENCH_RETENTION, audit_retention=DEFAULT_AUDIT_DAYS * 86400)
    done = trim.trim_audit(now=time.time() + DEFAULT_AUDIT_DAYS * 86400 + 1)
    time.sleep(0.2)
    syncs = usage(conn, [keys.timers]).get(keys.timers, 0)
    if done.held_back_by:
        print(f"trim held back by request {done.held_back_by}, still stored")
    return {"waited": waited, "trimmed": done.trimmed, "used": used_memory(conn) - syncs - used_before}


def steady_state(final: dict[str, float], after: dict[str, float]) -> None:
    hashes = PER_DAY * DEFAULT_RETENTION_DAYS * final["own"]
    audit = PER_DAY * DEFAULT_AUDIT_DAYS * final["audit"]
    payload_only = PER_DAY * DEFAULT_AUDIT_DAYS * PAYLOAD
    print()
    table(
        ["decided request, bytes each", "bytes"],
        [
            [f"hash + done list (HITL_RETENTION, {DEFAULT_RETENTION_DAYS} d)", f"{final['own']:,.0f}"],
            [f"audit events (HITL_AUDIT_RETENTION, {DEFAULT_AUDIT_DAYS} d)", f"{final['audit']:,.0f}"],
            ["  of which the created event (the document)", f"{final['audit_created']:,.0f}"],
        ],
    )
    print()
    budget = 4 * GIB - hashes
    fits = budget / (PER_DAY * final["audit"]) if budget > 0 else 0
    table(
        [f"steady state at {PER_DAY:,} requests/day", "GiB"],
        [
            [f"request hashes, {DEFAULT_RETENTION_DAYS} d", f"{hashes / GIB:,.2f}"],
            [f"audit stream, {DEFAULT_AUDIT_DAYS} d", f"{audit / GIB:,.2f}"],
            ["total", f"{(hashes + audit) / GIB:,.2f}"],
            [f"baseline: the 1 KB payloads alone for {DEFAULT_AUDIT_DAYS} d", f"{payload_only / GIB:,.2f}"],
        ],
    )
    print(
        f"a 4 GiB Redis holds {DEFAULT_RETENTION_DAYS} d of requests plus {fits:,.1f} d of audit at this "
        "rate: size Redis for it, or lower HITL_AUDIT_RETENTION and archive with `hitl audit export`"
    )
    print(
        f"after the request retention ({after['waited']:.0f} s here) and the audit trim "
        f"({after['trimmed']:,.0f} events): used_memory {after['used'] / N:+,.0f} B per request "
        "against before filing"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("memory", f"{N:,} pending gate requests with {PAYLOAD:,} B of params, embedded Redis")
    with redis_url(embedded=True) as url, bench_prefix(url) as prefix:
        approvals = Approvals(settings=settings_for(url, prefix, retention=BENCH_RETENTION))
        conn = approvals.redis
        params = payload()

        def file(i: int) -> str:
            return approvals.request(
                action="send_invoice", summary=f"Send invoice {i} to the customer", params=params,
                mode="gate", requested_by="U09",
            ).id

        try:
            for i in range(WARMUP):  # script loaded, shared keys created, connection open
                approvals.get(file(-i)).cancel()  # final, so it ages out with the rest
            shared = shared_keys(conn, prefix)
            shared_before = usage(conn, shared)
            time.sleep(0.2)
            used_before = used_memory(conn)
            t0 = time.perf_counter()
            ids = {file(i) for i in range(N)}
            filing = time.perf_counter() - t0
            time.sleep(0.2)
            used_after = used_memory(conn)
            shared = shared_keys(conn, prefix)
            shared_after = usage(conn, shared)
            own = {kind: usage(conn, keys) for kind, keys in request_keys(conn, prefix, ids).items()}
            sample = next(iter(ids))
            doc_bytes = conn.hstrlen(approvals.keys.req(sample), "doc")
            hash_fields = conn.hlen(approvals.keys.req(sample))
            encoding = conn.object("encoding", approvals.keys.req(sample))
            events_key = approvals.keys.events
            final = decided_footprint(
                approvals, ids, shared_before.get(events_key, 0), shared_after.get(events_key, 0)
            )
            after_trim = drained(approvals, used_before)
        finally:
            approvals.close()

    rows: list[list[object]] = []
    own_total = 0.0
    for kind, sizes in sorted(own.items()):
        per = sum(sizes.values()) / N
        own_total += per
        rows.append([f"{kind} ({len(sizes):,} keys)", f"{per:,.0f}"])
    shared_total = 0.0
    for key in sorted(set(shared_before) | set(shared_after)):
        per = (shared_after.get(key, 0) - shared_before.get(key, 0)) / N
        shared_total += per
        if abs(per) >= 0.5:
            rows.append([f"share of {key.removeprefix(prefix)} growth", f"{per:,.0f}"])
    key_sum = own_total + shared_total
    used_per = (used_after - used_before) / N
    rows += [
        ["MEMORY USAGE sum per request", f"{key_sum:,.0f}"],
        ["INFO used_memory delta per request", f"{used_per:,.0f}"],
        ["params payload (baseline)", f"{PAYLOAD:,}"],
    ]
    print()
    print(
        f"filed {N:,} in {filing:.1f} s; one request hash: {hash_fields} fields, encoding "
        f"{encoding.decode() if isinstance(encoding, bytes) else encoding}, doc JSON {doc_bytes:,} B"
    )
    table(["bytes per request", "bytes"], rows)
    print(
        f"ratio to payload: MEMORY USAGE {key_sum / PAYLOAD:.2f}x, used_memory {used_per / PAYLOAD:.2f}x"
    )
    steady_state(final, after_trim)
    worst = max(key_sum, used_per)
    ok = verdict(
        worst <= TARGET,
        f"<= {TARGET:,} B per pending request with {PAYLOAD:,} B params (both measures)",
        f"MEMORY USAGE {key_sum:,.0f} B, used_memory {used_per:,.0f} B per request",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
