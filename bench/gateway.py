"""HTTP API cost: `POST /v1/requests` against `Approvals.request()`, and the `GET ?wait=`
long-poll's wake latency against `wait()`, in the same run on the same Redis.

The web process is a real `hitl bot` subprocess (uvicorn), so client and server do not
share a GIL. Filing: N requests from one Python client calling Redis directly, then N over
HTTP on one keep-alive connection, then N over HTTP from CONCURRENCY connections at once.
Waking: SAMPLES requests, each decided while a waiter holds it; decide-to-answer time for
`RequestHandle.wait()` and for `GET /v1/requests/{id}?wait=30`.
Burst: BURST clients at once (in BURST_PROCS client processes) against the one web
process, half filing (`POST`), half long-polling requests that are decided together
meanwhile, so their polls wake together; answers by status and p50/p99 time, against
Redis's own round trip (PING) in the same run.
Targets: the concurrent HTTP rate is at least a third of the direct client's (the mean of
its two runs): parsing HTTP and JSON in Python may cost at most twice what Redis and
policy routing cost, on a machine whose cores also run the HTTP clients; and no answer of
the burst is "Redis is unreachable" (Redis is up: load must never look like an outage).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.common import (
    ROOT,
    bench_prefix,
    exit_code,
    header,
    ms,
    parser,
    percentile,
    ping_times,
    redis_url,
    run_main,
    settings_for,
    table,
    tail,
    verdict,
    worker_env,
)
from hitl import Approvals
from hitl.embedded import free_port

N = 2_000
CONCURRENCY = 4
SAMPLES = 50
KEY, KEY_NAME = "bench-key-0123456789", "bench"
BODY = {"action": "send_email", "summary": "Send reminder", "params": {"to": "ops@example.com", "n": 3},
        "mode": "gate", "requested_by": "U09"}
TARGET_RATIO = 1 / 3
# Clients at once in the burst: half POST, half long-poll; client processes they run in.
BURST = 500
BURST_PROCS = 5


def start_bot(url: str, prefix: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = worker_env(url, prefix, PORT=str(port), SLACK_SIGNING_SECRET="bench", SLACK_BOT_TOKEN="xoxb-bench",
                     SLACK_API_URL="http://127.0.0.1:9/", HITL_API_KEYS=f"{KEY_NAME}:{KEY}",
                     # One key files everything here: measure the API, not the key's rate limit.
                     HITL_API_RATE="1000000/s")
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "hitl.cli", "bot"], env=env, cwd=ROOT, stdout=out,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    end = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > end:
            proc.kill()
            raise RuntimeError(f"hitl bot did not start; log:\n{tail(log)}")
        time.sleep(0.05)


def direct(approvals: Approvals, n: int) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        approvals.request(**{**BODY, "summary": f"Send reminder {i}"})
    return n / (time.perf_counter() - t0)


def http_serial(base: str, n: int) -> float:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}) as http:
        t0 = time.perf_counter()
        for i in range(n):
            resp = http.post("/v1/requests", json={**BODY, "summary": f"Send reminder {i}"})
            assert resp.status_code == 201, resp.text
        return n / (time.perf_counter() - t0)


def _http_share(base: str, start: int, n: int) -> None:
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as http:
        for i in range(start, start + n):
            resp = http.post("/v1/requests", json={**BODY, "summary": f"Send reminder {i}"})
            assert resp.status_code == 201, resp.text


def http_concurrent(base: str, n: int, clients: int) -> float:
    """`clients` processes (a Python HTTP client is CPU-bound: threads would measure the GIL)."""
    share = n // clients
    with multiprocessing.get_context("spawn").Pool(clients) as pool:
        pool.apply(_http_share, (base, 0, 1))  # processes started and imports done before timing
        t0 = time.perf_counter()
        pool.starmap(_http_share, [(base, k * share, share) for k in range(clients)])
        return share * clients / (time.perf_counter() - t0)


def wake_times(approvals: Approvals, base: str, samples: int, over_http: bool) -> list[float]:
    """Decide-to-answer seconds for a waiter already holding each request."""
    out = []
    http = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60)
    try:
        for i in range(samples):
            # Filed as the bench key: a key reads (and long-polls) only its own requests.
            handle = approvals.request(**{**BODY, "summary": f"Wake {i}"}, via=KEY_NAME)
            answered: list[float] = []

            def waiter(rid: str = handle.id, done: list[float] = answered) -> None:
                if over_http:
                    resp = http.get(f"/v1/requests/{rid}", params={"wait": 30})
                    assert resp.status_code == 200 and resp.json()["decision"], resp.text
                else:
                    approvals.get(rid).wait(30)
                done.append(time.perf_counter())

            t = threading.Thread(target=waiter)
            t.start()
            time.sleep(0.05)  # let the waiter park (a benchmark may pace itself)
            decided = time.perf_counter()
            approvals.decide(handle.id, "approve", by="U01")
            t.join(60)
            out.append(answered[0] - decided)
    finally:
        http.close()
    return out


Answer = tuple[str, int, str, float]  # (what, status, body, seconds)
POSTS, POLLS = "POST /v1/requests", "GET ?wait=60 (woken together)"


async def _burst_share(base: str, ids: list[str], posts: int, ready: Any, go: Any) -> list[Answer]:
    """One client process's share: long-poll `ids`, say so, then (on `go`) file `posts`."""
    clients = len(ids) + posts
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=clients + 10)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, limits=limits, timeout=90) as http:

        async def timed(what: str, call: Awaitable[httpx.Response]) -> Answer:
            t0 = time.perf_counter()
            try:
                resp = await call
                return what, resp.status_code, resp.text, time.perf_counter() - t0
            except httpx.HTTPError as exc:
                return what, 0, f"{type(exc).__name__}: {exc}", time.perf_counter() - t0

        waiting = [
            asyncio.ensure_future(timed(POLLS, http.get(f"/v1/requests/{rid}", params={"wait": 60})))
            for rid in ids
        ]
        await asyncio.sleep(1.0)  # the polls park (a benchmark may pace itself)
        ready.put(len(ids))
        await asyncio.to_thread(go.wait)
        bodies = [{**BODY, "summary": f"Post {i}"} for i in range(posts)]
        filing = [asyncio.ensure_future(timed(POSTS, http.post("/v1/requests", json=b))) for b in bodies]
        return list(await asyncio.gather(*filing, *waiting))


def _burst_process(base: str, ids: list[str], posts: int, ready: Any, go: Any) -> list[Answer]:
    return asyncio.run(_burst_share(base, ids, posts, ready, go))


def burst(base: str, approvals: Approvals, clients: int) -> tuple[list[list[str]], int, int]:
    """`clients // 2` POSTs and as many long-polls woken together, from BURST_PROCS client
    processes (one asyncio client with hundreds of connections measures itself); table rows
    by kind of call, how many answers said Redis is unreachable, and how many answers were
    other than 201 (POST) or 200 (poll)."""
    polls = clients - clients // 2
    # Filed as the bench's key, which the polls send: a key reads only its own requests.
    ids = [approvals.request(**{**BODY, "summary": f"Burst wait {i}"}, via=KEY_NAME).id for i in range(polls)]
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ctx.Pool(BURST_PROCS) as pool:
        ready, go = manager.Queue(), manager.Event()
        shares = [(base, ids[k::BURST_PROCS], len(range(k, clients // 2, BURST_PROCS)), ready, go)
                  for k in range(BURST_PROCS)]
        pending = pool.starmap_async(_burst_process, shares)
        for _ in range(BURST_PROCS):
            ready.get(timeout=120)
        go.set()  # POSTs start while every poll is decided, so they wake together
        for rid in ids:
            approvals.decide(rid, "approve", by="U01")
        answers = [a for share in pending.get(300) for a in share]
    rows, unreachable, wrong = [], 0, 0
    for name, expected in ((POSTS, 201), (POLLS, 200)):
        mine = [a for a in answers if a[0] == name]
        by_status = Counter(status for _w, status, _b, _s in mine)
        wrong += sum(n for st, n in by_status.items() if st != expected)
        unreachable += sum(1 for _w, status, body, _s in mine if status == 503 and "unreachable" in body)
        busy = sum(1 for _w, status, body, _s in mine if status in (429, 503) and "busy" in body)
        times = [s for _w, _st, _b, s in mine]
        statuses = ", ".join(f"{st or 'error'}: {n}" for st, n in sorted(by_status.items()))
        rows.append([name, str(len(mine)), statuses, str(busy), ms(percentile(times, 50)),
                     ms(percentile(times, 99))])
    return rows, unreachable, wrong


def main(argv: Sequence[str] | None = None) -> int:
    args = parser(__doc__.splitlines()[0]).parse_args(argv)
    header("gateway", f"{N:,} requests filed directly, over HTTP serially and {CONCURRENCY} at once; "
                      f"{SAMPLES} wakes each way; {BURST} clients at once")
    with redis_url() as url, bench_prefix(url) as prefix, tempfile.TemporaryDirectory() as tmp:
        approvals = Approvals(settings=settings_for(url, prefix))
        proc, base = start_bot(url, prefix, Path(tmp) / "bot.log")
        try:
            direct(approvals, 100)  # warm-up: scripts loaded, pools filled
            http_serial(base, 100)
            rate_direct = direct(approvals, N)
            rate_serial = http_serial(base, N)
            rate_conc = http_concurrent(base, N, CONCURRENCY)
            rate_direct2 = direct(approvals, N)  # again, so drift on a shared machine shows
            rows = [
                ("Approvals.request() (1 thread)", rate_direct),
                ("POST /v1/requests (1 connection)", rate_serial),
                (f"POST /v1/requests ({CONCURRENCY} connections)", rate_conc),
                ("Approvals.request() (1 thread, again)", rate_direct2),
            ]
            table(["path", "requests/s", "vs direct"],
                  [[name, f"{rate:,.0f}", f"{rate / rate_direct:.2f}x"] for name, rate in rows])
            w_direct = wake_times(approvals, base, SAMPLES, over_http=False)
            w_http = wake_times(approvals, base, SAMPLES, over_http=True)
            table(["decide -> waiter answered", "p50 ms", "p99 ms", "max ms"], [
                ["RequestHandle.wait()", ms(percentile(w_direct, 50)), ms(percentile(w_direct, 99)),
                 ms(max(w_direct))],
                ["GET /v1/requests/{id}?wait=30", ms(percentile(w_http, 50)), ms(percentile(w_http, 99)),
                 ms(max(w_http))],
            ])
            pings = ping_times(approvals.redis)
            burst_rows, unreachable, wrong = burst(base, approvals, BURST)
            burst_rows.append(["Redis PING (baseline, same run)", str(len(pings)), "-", "-",
                               ms(percentile(pings, 50)), ms(percentile(pings, 99))])
            print(f"{BURST} clients at once against one web process:")
            table(["answers to", "n", "by status", "busy", "p50 ms", "p99 ms"], burst_rows)
            baseline = (rate_direct + rate_direct2) / 2
            ok = verdict(rate_conc >= TARGET_RATIO * baseline,
                         f"concurrent HTTP >= {TARGET_RATIO:.0%} of direct requests/s",
                         f"{rate_conc:,.0f}/s vs {baseline:,.0f}/s")
            target = f"no 'Redis is unreachable' among {BURST} concurrent answers (Redis up)"
            ok = verdict(unreachable == 0, target, f"{unreachable}") and ok
            expected = f"every one of the {BURST} answers is its 201 or 200"
            ok = verdict(wrong == 0, expected, f"{wrong} others") and ok
        finally:
            proc.terminate()
            proc.wait(30)
            approvals.close()
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
