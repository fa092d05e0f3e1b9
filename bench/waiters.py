"""Waiting at scale: 10,000 concurrent `AsyncApprovals` waits in one process, all decided.

One asyncio process files N gate requests and holds a `wait()` on each. A second process
(the "bot") decides them with `store.transition` at a steady rate, noting the wall-clock
time each transition returned; each waiter notes when its `wait()` returned. Measured:

- Redis connections the waiting process holds (CLIENT LIST, by client name: the waiter
  dispatcher's connections plus the agent's own client), sampled all through the run;
- wake latency, decided -> wait() returned, p50 / p99 / max, against the single-waiter
  figure measured the same way in the same run (one wait held, one decision).

Targets: at most 4 connections; p99 of the N-waiter run within 10x the single-waiter p99.
The decision rate is an option (default 1,000/s); `--burst` decides as fast as one
process can, to show the queueing a burst adds.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import threading
import time
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis

from bench.common import (
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
from hitl import AsyncApprovals, waiters
from hitl.client import Approvals, AsyncRequestHandle
from hitl.status import Mode

WAITERS = 10_000
SINGLE_ROUNDS = 200
RATE = 1_000.0  # decisions per second
MAX_CONNECTIONS = 4
TARGET_FACTOR = 10.0
WAIT_TIMEOUT = 300.0
# How often the connection sampler looks at CLIENT LIST (seconds).
SAMPLE_EVERY = 0.25


def _decider(url: str, prefix: str, commands: Any, results: Any) -> None:
    """The bot's side, in its own process: decide each batch of ids, paced, and report
    (id, wall time the transition returned) for each."""
    approvals = Approvals(settings=settings_for(url, prefix))
    try:
        while (cmd := commands.get()) is not None:
            ids, rate = cmd
            out = []
            start = time.perf_counter()
            for n, rid in enumerate(ids):
                if rate:
                    delay = start + n / rate - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                approvals.store.transition(rid, "approve", by="U0BENCH")
                out.append((rid, time.time()))
            results.put(out)
    finally:
        approvals.close()


class Sampler(threading.Thread):
    """Counts the waiting process's Redis connections until stopped; keeps the maximum."""

    def __init__(self, url: str, names: Sequence[str]) -> None:
        super().__init__(name="bench-sampler", daemon=True)
        self.conn = redis.Redis.from_url(url)
        self.names = set(names)
        self.stop = threading.Event()
        self.max = 0
        self.samples = 0

    def count(self) -> int:
        return sum(1 for c in self.conn.client_list(_type="normal") if c.get("name") in self.names)

    def run(self) -> None:
        while not self.stop.is_set():
            self.max = max(self.max, self.count())
            self.samples += 1
            self.stop.wait(SAMPLE_EVERY)
        self.conn.close()


async def _until(check: Any, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        await asyncio.sleep(0.005)


async def _timed_wait(handle: Any) -> tuple[str, float, bool]:
    d = await handle.wait(timeout=WAIT_TIMEOUT)
    return handle.id, time.time(), d.approved


async def run(url: str, prefix: str, n: int, rate: float | None) -> dict[str, Any]:
    agent_name = f"{prefix}-agent"
    ctx = mp.get_context("spawn")
    commands, results = ctx.Queue(), ctx.Queue()
    bot = ctx.Process(target=_decider, args=(url, prefix, commands, results), daemon=True)
    bot.start()
    client = aioredis.Redis.from_url(url, client_name=agent_name)
    aio = AsyncApprovals(settings=settings_for(url, prefix), client=client)
    sampler = Sampler(url, [waiters.client_name(), agent_name])
    out: dict[str, Any] = {}
    try:
        d = waiters.dispatcher(url, prefix)

        async def decide(ids: list[str], pace: float | None) -> dict[str, float]:
            commands.put((ids, pace))
            got = await asyncio.to_thread(results.get, True, WAIT_TIMEOUT)
            return dict(got)

        async def registered(count: int) -> None:
            await _until(lambda: len(d.registered()) == count and d.checks_queued() == 0, 120, "registration")

        # Single waiter: one wait held, one decision, SINGLE_ROUNDS times.
        single: list[float] = []
        for i in range(SINGLE_ROUNDS):
            h = await aio.request(action="deploy", summary=f"single {i}", mode="gate", timeout=3600)
            task = asyncio.create_task(_timed_wait(h))
            await registered(1)
            decided = await decide([h.id], None)
            rid, woke, _ok = await task
            single.append(woke - decided[rid])
        out["single"] = single

        # N waiters held at once, decided at `rate`.
        # Filed over a client of its own (4 at a time), closed before the waits start: the
        # connections counted below are the ones waiting needs.
        t0 = time.perf_counter()
        sem = asyncio.Semaphore(4)
        async with AsyncApprovals(settings=settings_for(url, prefix)) as filer:

            async def file(i: int) -> str:
                async with sem:
                    h = await filer.request(action="deploy", summary=f"many {i}", mode="gate", timeout=3600)
                    return h.id

            ids = await asyncio.gather(*(file(i) for i in range(n)))
        handles = [AsyncRequestHandle(aio, rid, Mode.GATE) for rid in ids]
        out["filed_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        tasks = [asyncio.create_task(_timed_wait(h)) for h in handles]
        await registered(n)
        out["registered_s"] = time.perf_counter() - t0
        sampler.start()
        await asyncio.sleep(SAMPLE_EVERY * 2)  # a few samples with every wait held, none decided
        out["held_connections"] = sampler.max
        t0 = time.perf_counter()
        decided_task = asyncio.create_task(decide([h.id for h in handles], rate))
        woken = await asyncio.gather(*tasks)
        decided = await decided_task
        out["decide_s"] = time.perf_counter() - t0
        out["many"] = [woke - decided[rid] for rid, woke, _ok in woken]
        out["wrong"] = sum(1 for *_x, ok in woken if not ok)
        out["left_registered"] = len(d.registered())
    finally:
        sampler.stop.set()
        if sampler.is_alive():
            sampler.join(5)
        out["max_connections"] = sampler.max
        out["samples"] = sampler.samples
        commands.put(None)
        bot.join(10)
        await aio.aclose()
        waiters.shutdown()
    return out


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=WAITERS, help=f"concurrent waits (default {WAITERS:,})")
    p.add_argument("--rate", type=float, default=RATE, help=f"decisions per second (default {RATE:g})")
    p.add_argument("--burst", action="store_true", help="decide as fast as possible instead")
    args = p.parse_args(argv)
    rate = None if args.burst else args.rate
    pace = "as fast as possible" if rate is None else f"at {rate:g}/s"
    header("waiters", f"{args.n:,} concurrent AsyncApprovals waits in one process, decided {pace}")
    with redis_url() as url, bench_prefix(url) as prefix:
        r = asyncio.run(run(url, prefix, args.n, rate))

    single, many = r["single"], r["many"]
    print(
        f"filed {args.n:,} requests in {r['filed_s']:.1f} s; all waits registered and checked in "
        f"{r['registered_s']:.2f} s; decided and woken in {r['decide_s']:.1f} s"
    )
    print()
    table(
        ["decided -> wait() returned", "n", "p50 ms", "p99 ms", "max ms"],
        [
            [label, len(data), ms(percentile(data, 50)), ms(percentile(data, 99)), ms(max(data))]
            for label, data in (("single waiter (baseline)", single), (f"{args.n:,} waiters held", many))
        ],
    )
    print()
    print(
        f"Redis connections of the waiting process: {r['held_connections']} with every wait held, "
        f"{r['max_connections']} at most over {r['samples']} samples (the waiter dispatcher's "
        f"{waiters.CONNECTIONS} plus the agent's own client, idle since it filed the single-waiter rounds)"
    )
    ratio = percentile(many, 99) / percentile(single, 99)
    print(
        f"p99 ratio {args.n:,} waiters : single = {ratio:.2f}; p50 ratio = "
        f"{percentile(many, 50) / percentile(single, 50):.2f}; wrong outcomes: {r['wrong']}; "
        f"left registered: {r['left_registered']}"
    )
    ok = verdict(
        r["max_connections"] <= MAX_CONNECTIONS and ratio <= TARGET_FACTOR and r["wrong"] == 0
        and r["left_registered"] == 0,
        f"<= {MAX_CONNECTIONS} connections, p99 within {TARGET_FACTOR:g}x the single waiter",
        f"{r['max_connections']} connections, p99 {ms(percentile(many, 99))} ms vs "
        f"{ms(percentile(single, 99))} ms = {ratio:.2f}x",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
