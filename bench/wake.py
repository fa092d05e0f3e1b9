"""Wake latency: `approvals.decide()` -> the waiting agent's `req.wait()` returns.

A waiter thread blocks in `req.wait()` (its own `Approvals`, as an agent would have); the
main thread (a second `Approvals`, as the bot would have) checks that the wait is
registered with the process's waiter dispatcher and its first read is done (`hitl.waiters`:
the dispatcher's listener is then blocked in XREAD on the audit stream), records t0 and
calls `decide()`; the waiter records t1 the moment `wait()` returns. The baseline is the bare Redis hand-off
between the same two threads: LPUSH from the main thread, BLPOP in the waiter, checked
and timed the same way. Rounds alternate between the two. Target: p50 within 3x raw.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis

from bench.common import (
    bench_prefix,
    deadline_loop,
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
from hitl import Approvals, waiters

ROUNDS = 500
WARMUP = 20
TARGET_FACTOR = 3.0
# Seconds to wait for the waiter to block, and for a woken waiter to report.
BLOCK_TIMEOUT = 5.0
REPORT_TIMEOUT = 10.0
# The same connection settings `Approvals` uses for its own client.
CONNECT = {"socket_connect_timeout": 5, "socket_keepalive": True, "health_check_interval": 30}


class Waiter(threading.Thread):
    """Runs one blocking call at a time and reports when it returned."""

    def __init__(self) -> None:
        super().__init__(name="bench-waiter", daemon=True)
        self.jobs: queue.Queue[Callable[[], Any] | None] = queue.Queue()
        self.results: queue.Queue[tuple[float, Any]] = queue.Queue()
        self.ready = threading.Event()

    def run(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            self.ready.set()
            try:
                value = job()
                self.results.put((time.perf_counter(), value))
            except Exception as exc:
                self.results.put((time.perf_counter(), exc))


class Bench:
    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.agent_name = f"{prefix}-agent"
        self.raw_name = f"{prefix}-rawwait"
        agent_client = redis.Redis.from_url(url, client_name=self.agent_name, **CONNECT)
        self.agent = Approvals(settings=settings_for(url, prefix), client=agent_client)
        self.bot = Approvals(settings=settings_for(url, prefix))
        self.raw_wait = redis.Redis.from_url(url, client_name=self.raw_name, **CONNECT)
        self.raw_push = redis.Redis.from_url(url, **CONNECT)
        self.probe = redis.Redis.from_url(url, **CONNECT)
        self.waiter = Waiter()
        self.waiter.start()
        self.unconfirmed = 0
        self.wrong = 0
        self.dispatcher = waiters.dispatcher(url, prefix)

    def close(self) -> None:
        waiters.shutdown()
        self.waiter.jobs.put(None)
        self.waiter.join(5)
        for c in (self.agent, self.bot):
            c.close()
        for r in (self.raw_wait, self.raw_push, self.probe):
            r.close()

    def blocked(self, name: str, command: str) -> bool:
        """Is a connection named `name` blocked (flag b) in `command` right now?"""
        return any(
            c.get("name") == name and "b" in c.get("flags", "") and c.get("cmd") == command
            for c in self.probe.client_list(_type="normal")
        )

    def waiting(self, request_id: str) -> bool:
        """Is a wait on the request registered with the dispatcher, its first read done?"""
        d = self.dispatcher
        return d.registered().get(request_id, 0) > 0 and d.checks_queued() == 0

    def round(
        self, job: Callable[[], Any], ready: Callable[[], bool], fire: Callable[[], Any]
    ) -> tuple[float, float, float, Any]:
        """One hand-off: (t0 before firing, when fire() returned, t1 when the waiter woke, value)."""
        w = self.waiter
        w.ready.clear()
        w.jobs.put(job)
        if not w.ready.wait(BLOCK_TIMEOUT) or not deadline_loop(BLOCK_TIMEOUT, ready, 0.0002):
            self.unconfirmed += 1
        t0 = time.perf_counter()
        fire()
        fired = time.perf_counter()
        t1, value = w.results.get(timeout=REPORT_TIMEOUT)
        if isinstance(value, Exception):
            raise value
        return t0, fired, t1, value

    def hitl_round(self, i: int) -> tuple[float, float]:
        """(decide -> wait() returned, decide() call)."""
        req = self.agent.request(
            action="deploy", summary=f"Deploy build {i}", params={"tag": f"v{i}"}, mode="gate", timeout=600
        )
        t0, fired, t1, decision = self.round(
            lambda: req.wait(timeout=REPORT_TIMEOUT),
            lambda: self.waiting(req.id),
            lambda: self.bot.decide(req.id, "approve", by="U01"),
        )
        if not decision.approved:
            self.wrong += 1
        return t1 - t0, fired - t0

    def raw_round(self, i: int) -> float:
        key = f"{self.prefix}:raw:{i}"
        t0, _fired, t1, value = self.round(
            lambda: self.raw_wait.blpop([key], timeout=REPORT_TIMEOUT),
            lambda: self.blocked(self.raw_name, "blpop"),
            lambda: self.raw_push.lpush(key, "x"),
        )
        if value is None:
            self.wrong += 1
        return t1 - t0

    def reread(self, n: int) -> list[float]:
        """What a woken waiter does before returning: re-read the request (HGETALL + parse)."""
        rid = self.agent.request(action="deploy", summary="reread", mode="gate", timeout=600).id
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            self.agent.store.get(rid).decision()
            out.append(time.perf_counter() - t0)
        return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("wake", f"decide -> wait() wake latency vs LPUSH -> BLPOP, {ROUNDS} rounds each, alternating")
    with redis_url() as url, bench_prefix(url) as prefix:
        b = Bench(url, prefix)
        try:
            for i in range(WARMUP):
                b.raw_round(-i - 1)
                b.hitl_round(-i - 1)
            b.unconfirmed = b.wrong = 0
            raw: list[float] = []
            hitl: list[float] = []
            decide: list[float] = []

            def one_hitl(i: int) -> None:
                total, dec = b.hitl_round(i)
                hitl.append(total)
                decide.append(dec)

            t_start = time.perf_counter()
            for i in range(ROUNDS):
                if i % 2 == 0:
                    raw.append(b.raw_round(i))
                    one_hitl(i)
                else:
                    one_hitl(i)
                    raw.append(b.raw_round(i))
            elapsed = time.perf_counter() - t_start
            reread = b.reread(200)
        finally:
            b.close()

    print()
    rows = [
        [label, len(data), ms(percentile(data, 50)), ms(percentile(data, 99)), ms(max(data))]
        for label, data in (
            ("raw LPUSH -> BLPOP returns (baseline)", raw),
            ("decide() -> wait() returns", hitl),
            ("  decide() call itself (transition + re-read)", decide),
            ("  re-read after wake alone: HGETALL + parse", reread),
        )
    ]
    table(["measure", "n", "p50 ms", "p99 ms", "max ms"], rows)
    ratio = percentile(hitl, 50) / percentile(raw, 50)
    ratio99 = percentile(hitl, 99) / percentile(raw, 99)
    print(f"p50 ratio decide->wait : raw = {ratio:.2f}; p99 ratio = {ratio99:.2f}")
    print(
        f"rounds where the waiter was not seen waiting before the decision: {b.unconfirmed}; "
        f"wrong outcomes: {b.wrong}; {elapsed:.1f} s for {2 * ROUNDS} rounds"
    )
    ok = verdict(
        ratio <= TARGET_FACTOR and b.unconfirmed == 0 and b.wrong == 0,
        f"p50 wake latency within {TARGET_FACTOR:g}x raw (every round blocked first, every outcome right)",
        f"p50 {ms(percentile(hitl, 50))} ms vs raw {ms(percentile(raw, 50))} ms = {ratio:.2f}x",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
