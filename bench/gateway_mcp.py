"""The MCP gateway's cost: added latency of an `auto` tool call through `hitl mcp gateway`
against calling the same upstream directly (both over stdio, in one run), and 200 gated
calls parked at once on one gateway process (its memory and connections).

`python -m bench.gateway_mcp` (target: at most 2 ms added at p50 over stdio). The gateway
files into Redis directly (an operator's host); each call files one request where the
policy is evaluated, so the added time includes that round trip.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import redis
import yaml
from mcp import Client
from mcp.client.stdio import StdioServerParameters

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
    settings_for,
    table,
    verdict,
)
from hitl import Approvals
from hitl.policy import Policy

POLICY = "actions:\n  up.echo: {mode: auto}\n  up.delete_file: {mode: gate, timeout: 1h}\n"
TARGET_ADDED_P50 = 0.002
PARKED = 200


def _env(url: str, prefix: str, log: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HITL_", "REDIS_"))}
    return {**env, "REDIS_URL": url, "HITL_REDIS_PREFIX": prefix, "UPSTREAM_LOG": str(log)}


def _upstream_argv() -> list[str]:
    return [sys.executable, "-m", "tests.mcpgateway.upstream", "stdio"]


@contextlib.asynccontextmanager
async def _direct(env: dict[str, str]) -> AsyncIterator[Client]:
    argv = _upstream_argv()
    async with Client(StdioServerParameters(command=argv[0], args=argv[1:], env=env, cwd=ROOT)) as client:
        yield client


@contextlib.asynccontextmanager
async def _gateway(env: dict[str, str], config: Path) -> AsyncIterator[Client]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "hitl.cli", "mcp", "gateway", "--config", str(config)],
        env=env, cwd=ROOT,
    )
    async with Client(params, read_timeout_seconds=120) as client:
        yield client


async def _times(client: Client, n: int) -> list[float]:
    for i in range(20):  # warm-up
        await client.call_tool("echo", {"text": f"warm {i}"})
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        result = await client.call_tool("echo", {"text": f"call {i}"})
        out.append(time.perf_counter() - t0)
        assert not result.is_error, result
    return out


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _sockets(pid: int) -> int:
    n = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            n += os.readlink(fd).startswith("socket:")
    return n


def _gateway_pid(log: Path) -> int:
    """The upstream logs its parent's pid with every call: over stdio, that is the gateway."""
    import json

    return int(json.loads(log.read_text().splitlines()[-1])["parent"])


async def _parked(env: dict[str, str], config: Path, conn: redis.Redis, approvals: Approvals,
                  log: Path) -> list[object]:
    async with _gateway(env, config) as client:
        await client.call_tool("echo", {"text": "pid"})
        pid = _gateway_pid(log)
        before = _rss_kib(pid)
        calls = [
            asyncio.create_task(client.call_tool("delete_file", {"path": f"/p/{i}"})) for i in range(PARKED)
        ]
        t0 = time.monotonic()
        while conn.zcard(approvals.keys.pending) < PARKED:
            await asyncio.sleep(0.05)
        filed = time.monotonic() - t0
        parked_rss, sockets = _rss_kib(pid), _sockets(pid)
        redis_clients = len(conn.client_list())
        ids = [m.decode() for m in conn.zrange(approvals.keys.pending, 0, -1)]
        t1 = time.monotonic()
        for rid in ids:
            await asyncio.to_thread(approvals.decide, rid, "approve", "U01")
        results = await asyncio.gather(*calls)
        drained = time.monotonic() - t1
        assert all(not r.is_error for r in results), [r for r in results if r.is_error][:1]
    return [before, parked_rss, sockets, redis_clients, filed, drained]


async def _run(url: str, prefix: str, n: int) -> bool:
    tmp = Path(tempfile.mkdtemp(prefix="bench-gw-"))
    log = tmp / "upstream.jsonl"
    env = _env(url, prefix, log)
    config = tmp / "gateway.yaml"
    config.write_text(yaml.safe_dump({"upstreams": {"up": {"command": _upstream_argv(), "env": {
        "UPSTREAM_LOG": str(log)}, "cwd": str(ROOT)}}}))
    approvals = Approvals(url, settings=settings_for(url, prefix))
    approvals.policy.publish(Policy.from_yaml(POLICY), POLICY, by="bench", source="bench")
    conn = redis.Redis.from_url(url)
    try:
        async with _direct(env) as client:
            direct = await _times(client, n)
        async with _gateway(env, config) as client:
            through = await _times(client, n)
        rows: list[Sequence[Any]] = []
        for label, values in (("upstream directly", direct), ("through the gateway", through)):
            rows.append([label, *(ms(percentile(values, q)) for q in (50, 95, 99))])
        table([f"auto echo, {n} calls, stdio", "p50", "p95", "p99"], rows)
        added = percentile(through, 50) - percentile(direct, 50)
        before, parked, sockets, clients, filed, drained = await _parked(env, config, conn, approvals, log)
        table(["200 gated calls parked on one gateway", "value"], [
            ["gateway RSS before (MiB)", f"{int(before) / 1024:.1f}"],
            ["gateway RSS with 200 parked (MiB)", f"{int(parked) / 1024:.1f}"],
            ["per parked call (KiB)", f"{(int(parked) - int(before)) / PARKED:.1f}"],
            ["gateway sockets while parked", sockets],
            ["Redis clients (whole server)", clients],
            ["time to file all 200 (s)", f"{float(filed):.2f}"],
            ["approve all 200 -> all answered (s)", f"{float(drained):.2f}"],
        ])
        return verdict(added <= TARGET_ADDED_P50, "<= 2 ms added at p50 (auto, stdio)", f"{ms(added)} added")
    finally:
        conn.close()
        approvals.close()


def main(argv: Sequence[str] | None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=500, help="timed calls per side (default 500)")
    args = p.parse_args(argv)
    header("MCP gateway", "auto call latency through the gateway vs direct; 200 parked gated calls")
    with redis_url() as url, bench_prefix(url) as prefix:
        ok = asyncio.run(_run(url, prefix, args.n))
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
