"""Timer lateness: 2,000 gate deadlines inside one 10 s window, two real workers.

Starts two `python -m hitl.cli worker` processes (REDIS_URL and HITL_REDIS_PREFIX in their
environment, everything else the product's defaults unless `--tick` is given), files
2,000 gate requests whose timeouts spread their deadlines evenly over one 10 s window
that opens after filing is done, and waits (bounded) for every one to reach `expired`.
Lateness is `decided_at - deadline` of each stored request. Each request's default
escalation step also fires, at half its timeout, and every transition queues a card sync
job: that load is part of what is measured.

Baselines from the same run: the Redis round trip (PING), and how late a plain Python
`time.sleep` loop in this process wakes at 100 targets spread over the same window,
under the same load. Target: none early, p99 at most 1.5 s late, none missed.
"""

from __future__ import annotations

import signal
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import redis

from bench.common import (
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
    start_workers,
    stop_workers,
    table,
    tail,
    verdict,
)
from hitl import Approvals, RequestNotFound
from hitl.keys import parse_timer_member

N = 2_000
WORKERS = 2
WINDOW = 10.0
# The window opens this long after filing starts (filing takes ~1-5 s on 2 busy cores).
LEAD = 8.0
# After the window closes, wait at most this long for stragglers before counting them missed.
GRACE = 20.0
SLEEP_SAMPLES = 100
TARGET_P99 = 1.5


def worker_keys(conn: redis.Redis, prefix: str) -> list[bytes]:
    """The RQ worker hashes of this prefix's workers (RQ leaves them 60 s after a clean stop)."""
    return list(conn.smembers(f"rq:workers:{prefix}-timers"))


def first_error(log: Path) -> str | None:
    """The exception line of the first traceback in the worker logs, with how often it occurs."""
    lines = []
    for f in sorted(log.parent.glob(log.stem + ".*.log")):
        lines += f.read_text(errors="replace").splitlines()
    for n, line in enumerate(lines):
        if line.startswith("Traceback"):
            for follow in lines[n + 1 :]:
                if follow and not follow.startswith((" ", "Traceback")):
                    count = sum(1 for x in lines if x == follow)
                    where = [x.strip() for x in lines[n:] if x.strip().startswith("File ")][-1:]
                    return f"{follow} (x{count}) at {where[0] if where else '?'}"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument(
        "--tick", type=float, default=None,
        help="HITL_TIMER_TICK for the workers (default: the product default, 0.2 s)",
    )
    args = p.parse_args(argv)
    header(
        "timers",
        f"{N:,} gate deadlines spread over {WINDOW:g} s, {WORKERS} real workers "
        f"(tick {args.tick if args.tick is not None else 'default'})",
    )
    with (
        redis_url() as url,
        bench_prefix(url) as prefix,
        tempfile.TemporaryDirectory(prefix="hitl-bench-") as tmp,
    ):
        log = Path(tmp) / "worker"
        approvals = Approvals(settings=settings_for(url, prefix))
        procs: list[subprocess.Popen[bytes]] = []
        rq_worker_keys: list[bytes] = []
        try:
            rtt = ping_times(approvals.redis, 500)
            t_boot = time.monotonic()
            procs = start_workers(
                url, prefix, WORKERS, log, **({"HITL_TIMER_TICK": str(args.tick)} if args.tick else {})
            )
            boot = time.monotonic() - t_boot
            rq_worker_keys = worker_keys(approvals.redis, prefix)

            # File: deadline i sits at window_start + WINDOW * (i + 0.5) / N.
            window_start = time.time() + LEAD
            ids: list[str] = []
            t_file = time.monotonic()
            for i in range(N):
                deadline = window_start + WINDOW * (i + 0.5) / N
                timeout = deadline - time.time()
                if timeout <= 0.05:
                    raise RuntimeError(f"filing overran the {LEAD:g} s lead at request {i}; raise LEAD")
                ids.append(
                    approvals.request(
                        action="deploy", summary=f"Deploy build {i}", params={"tag": f"v{i}"},
                        mode="gate", timeout=timeout,
                    ).id
                )
            filing = time.monotonic() - t_file

            # Baseline while the window runs: a sleep loop's own lateness, same machine, same load.
            overshoot = []
            for k in range(SLEEP_SAMPLES):
                target = window_start + WINDOW * (k + 0.5) / SLEEP_SAMPLES
                time.sleep(max(0.0, target - time.time()))
                overshoot.append(time.time() - target)

            # Wait (bounded) for the last deadlines to be handled.
            pending_key = approvals.keys.pending_mode("gate")
            give_up = window_start + WINDOW + GRACE
            while approvals.redis.zcard(pending_key) and time.time() < give_up:
                time.sleep(0.1)
            settled = time.time() - (window_start + WINDOW)
            all_done = approvals.redis.zcard(pending_key) == 0
            conn = approvals.redis
            failed_jobs = {q: conn.zcard(f"rq:failed:{prefix}-{q}") for q in ("timers", "slack")}
            backlog = {q: conn.llen(f"rq:queue:{prefix}-{q}") for q in ("timers", "slack")}
            left = Counter(
                parse_timer_member(m.decode())[1] for m in conn.zrange(approvals.keys.timers, 0, -1)
            )

            lateness: list[float] = []
            statuses: Counter[str] = Counter()
            for rid in ids:
                try:
                    req = approvals.get(rid).fetch()
                except RequestNotFound:
                    statuses["not found"] += 1
                    continue
                statuses[req.status.value] += 1
                if req.status.value == "expired" and req.decided_at is not None and req.deadline is not None:
                    lateness.append(req.decided_at - req.deadline)
        finally:
            stop_workers(procs)
            if rq_worker_keys:
                approvals.redis.delete(*rq_worker_keys)
            approvals.close()
        error = first_error(log)
        workers_ok = all(p.returncode in (0, -signal.SIGTERM) for p in procs)
        if not workers_ok:
            print(f"worker exit codes {[p.returncode for p in procs]}; log:\n{tail(log)}")

    early = sum(1 for x in lateness if x < 0)
    missed = N - len(lateness)
    print()
    print(
        f"workers up in {boot:.1f} s; filed {N:,} in {filing:.1f} s; "
        f"{'all handled' if all_done else 'gave up waiting'} {settled:+.1f} s after the window "
        f"closed; statuses: {dict(statuses)}"
    )
    print(
        f"RQ jobs failed: {failed_jobs}; jobs still queued at the end: {backlog}; "
        f"timer members left: {dict(left) or 0}"
    )
    if error:
        print(f"first worker error: {error}")
    table(
        ["measure", "n", "p50 ms", "p99 ms", "max ms"],
        [
            ["Redis PING round trip (baseline)", len(rtt), ms(percentile(rtt, 50)),
             ms(percentile(rtt, 99)), ms(max(rtt))],
            ["time.sleep loop wake-up lateness (baseline)", len(overshoot),
             ms(percentile(overshoot, 50)), ms(percentile(overshoot, 99)), ms(max(overshoot))],
            ["expiry lateness (decided_at - deadline)", len(lateness), ms(percentile(lateness, 50)),
             ms(percentile(lateness, 99)), ms(max(lateness) if lateness else float("nan"))],
        ],
    )
    p99 = percentile(lateness, 99)
    print(f"count {len(lateness):,} expired; early (<0): {early}; missed (not expired): {missed}")
    ok = verdict(
        early == 0 and missed == 0 and p99 <= TARGET_P99 and workers_ok,
        f"none early, p99 <= {TARGET_P99:g} s late, none missed",
        f"early {early}, p99 {ms(p99)} ms, max {ms(max(lateness)) if lateness else '-'} ms, missed {missed}",
    )
    return exit_code(ok, args.strict)


if __name__ == "__main__":
    run_main(main)
