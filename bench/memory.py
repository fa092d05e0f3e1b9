"""Redis memory per pending request carrying 1 KB of params.

Always on an embedded redis-server of its own, so nothing else moves `used_memory`.
Files 10,000 gate requests whose params are exactly 1,024 bytes of JSON and measures two
ways: `MEMORY USAGE` (SAMPLES 0, exact) summed over each request's own keys plus its share
of the growth of the shared keys (events stream, timers, indexes), and the `INFO memory
used_memory` delta before/after. The payload itself is the baseline: 1,024 bytes.
Target: at most 3 KB (3,072 bytes) per request by both measures.
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

N = 10_000
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("memory", f"{N:,} pending gate requests with {PAYLOAD:,} B of params, embedded Redis")
    with redis_url(embedded=True) as url, bench_prefix(url) as prefix:
        approvals = Approvals(settings=settings_for(url, prefix))
        conn = approvals.redis
        params = payload()

        def file(i: int) -> str:
            return approvals.request(
                action="send_invoice", summary=f"Send invoice {i} to the customer", params=params,
                mode="gate", requested_by="U09",
            ).id

        try:
            for i in range(WARMUP):  # script loaded, shared keys created, connection open
                file(-i)
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
    worst = max(key_sum, used_per)
    ok = verdict(
        worst <= TARGET,
        f"<= {TARGET:,} B per pending request with {PAYLOAD:,} B params (both measures)",
        f"MEMORY USAGE {key_sum:,.0f} B, used_memory {used_per:,.0f} B per request",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
