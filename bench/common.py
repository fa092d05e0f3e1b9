"""What the benchmarks share: Redis selection, key cleanup, percentiles, output."""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import platform
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import redis

from hitl.embedded import EmbeddedRedis, redis_answers
from hitl.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
# Database 12: the test suite uses 11 and developers 0.
LOCAL_REDIS = "redis://127.0.0.1:6379/12"
# Overrides the Redis choice (never used by bench.memory, which needs a Redis of its own).
URL_ENV = "HITL_BENCH_REDIS_URL"
# RQ registries (rq:<kind>:<queue>) whose members are job ids.
_RQ_REGISTRIES = ("finished", "failed", "wip", "deferred", "scheduled", "canceled", "ready", "registry")
# Exit status when a target is missed and --strict was given.
EXIT_MISS = 1


# --------------------------------------------------------------------------- Redis


@contextlib.contextmanager
def redis_url(*, embedded: bool = False) -> Iterator[str]:
    """The Redis to benchmark: `HITL_BENCH_REDIS_URL`, else 127.0.0.1:6379/12 when it
    answers, else an embedded redis-server started (and stopped) here."""
    url = None if embedded else (os.environ.get(URL_ENV) or None)
    if url is None and not embedded and redis_answers(LOCAL_REDIS):
        url = LOCAL_REDIS
    if url is not None:
        print(f"redis: {url} ({server_version(url)})")
        yield url
        return
    with EmbeddedRedis() as server:
        print(f"redis: embedded {server.url} ({server_version(server.url)})")
        yield server.url


def server_version(url: str) -> str:
    conn = redis.Redis.from_url(url)
    try:
        return f"Redis {conn.info('server')['redis_version']}"
    finally:
        conn.close()


def new_prefix() -> str:
    return f"bench-{uuid.uuid4().hex[:10]}"


def settings_for(url: str, prefix: str, **overrides: object) -> Settings:
    """Settings that ignore any `.env` and environment: only what the benchmark says."""
    values: dict[str, object] = {"redis_url": url, "prefix": prefix, **overrides}
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def _delete(conn: redis.Redis, keys: Sequence[str | bytes]) -> int:
    deleted = 0
    for n in range(0, len(keys), 1000):
        deleted += int(conn.delete(*keys[n : n + 1000]))
    return deleted


def _our_jobs(conn: redis.Redis, prefix: str) -> set[str]:
    """Ids of RQ jobs whose queue (`origin`) is one of this prefix's: also the ones in no
    queue or registry any more (a job popped by a worker that was stopped meanwhile)."""
    keys = [k for k in conn.scan_iter(match="rq:job:*", count=1000) if k.count(b":") == 2]
    pipe = conn.pipeline(transaction=False)
    for k in keys:
        pipe.hget(k, "origin")
    origins = pipe.execute(raise_on_error=False)
    ours = f"{prefix}-".encode()
    return {
        k.decode().removeprefix("rq:job:")
        for k, origin in zip(keys, origins, strict=True)
        if isinstance(origin, bytes) and origin.startswith(ours)
    }


def cleanup(conn: redis.Redis, prefix: str) -> int:
    """Delete every key of `prefix`: its own (`{prefix}:*`), its RQ queues and registries
    (`rq:*{prefix}-*`), and the RQ job hashes, results and executions of its jobs (job keys
    carry no prefix; they are found through the queues, the registries and their `origin`).
    Also forgets its queues in `rq:queues`. Returns how many keys went."""
    rq_keys = list(conn.scan_iter(match=f"rq:*{prefix}-*", count=1000))
    job_ids = _our_jobs(conn, prefix)
    for key in rq_keys:
        name = key.decode()
        kind = conn.type(key).decode()
        if name.startswith("rq:queue:") and kind == "list":
            job_ids.update(m.decode() for m in conn.lrange(key, 0, -1))
        elif kind == "zset" and name.split(":")[1] in _RQ_REGISTRIES:
            # wip members may be "job_id:execution_id"
            job_ids.update(m.decode().split(":")[0] for m in conn.zrange(key, 0, -1))
    job_keys = [
        f"rq:{kind}:{jid}" for jid in sorted(job_ids) for kind in ("job", "results", "executions")
    ] + [f"rq:job:{jid}:dependents" for jid in job_ids]
    queues = list(conn.sscan_iter("rq:queues", match=f"rq:queue:{prefix}-*"))
    if queues:
        conn.srem("rq:queues", *queues)
    own = list(conn.scan_iter(match=f"{prefix}:*", count=1000))
    return _delete(conn, own) + _delete(conn, rq_keys) + _delete(conn, job_keys)


@contextlib.contextmanager
def bench_prefix(url: str) -> Iterator[str]:
    """A fresh key prefix whose keys are deleted on the way out, whatever happens."""
    prefix = new_prefix()
    print(f"prefix: {prefix}")
    try:
        yield prefix
    finally:
        conn = redis.Redis.from_url(url)
        try:
            print(f"cleanup: deleted {cleanup(conn, prefix)} keys")
        finally:
            conn.close()


def ping_times(conn: redis.Redis, n: int = 500) -> list[float]:
    """Round-trip times (seconds) of `n` PINGs."""
    conn.ping()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        conn.ping()
        out.append(time.perf_counter() - t0)
    return out


# --------------------------------------------------------------------------- workers

# Seconds real workers get to register with RQ before a benchmark gives up.
WORKER_START_TIMEOUT = 30.0


def worker_env(url: str, prefix: str, **extra: str) -> dict[str, str]:
    """The machine's environment without any hitl, Slack or Redis setting, plus ours."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HITL_", "REDIS_"))}
    env.update({"REDIS_URL": url, "HITL_REDIS_PREFIX": prefix, **extra})
    return env


def start_workers(
    url: str, prefix: str, count: int, log: Path, **extra_env: str
) -> list[subprocess.Popen[bytes]]:
    """`count` real `hitl worker` processes, returned once all have registered with RQ.

    Logs go to `log.<n>.log` (a pipe nobody reads would fill and block them). Each worker
    gets its own process group, because RQ runs its scheduler in a child process.
    """
    env = worker_env(url, prefix, **extra_env)
    procs = []
    for n in range(count):
        with open(log.with_suffix(f".{n}.log"), "wb") as out:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "hitl.cli", "worker"], env=env, cwd=ROOT,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            ))
    conn = redis.Redis.from_url(url)
    try:
        end = time.monotonic() + WORKER_START_TIMEOUT
        while conn.scard(f"rq:workers:{prefix}-timers") < count:
            dead = [p for p in procs if p.poll() is not None]
            if dead or time.monotonic() > end:
                stop_workers(procs)
                raise RuntimeError(f"workers did not start ({len(dead)} exited); log:\n{tail(log)}")
            time.sleep(0.05)
    finally:
        conn.close()
    return procs


def stop_workers(procs: Sequence[subprocess.Popen[bytes]]) -> None:
    """Stop workers and their scheduler children: gracefully, then by force."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of every worker log next to `log`."""
    out = []
    for f in sorted(log.parent.glob(log.stem + ".*.log")):
        out.append(f"--- {f.name}\n" + "\n".join(f.read_text(errors="replace").splitlines()[-lines:]))
    return "\n".join(out)


# --------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; NaN for no values."""
    if not values:
        return math.nan
    data = sorted(values)
    pos = (len(data) - 1) * q / 100
    lo = math.floor(pos)
    hi = min(lo + 1, len(data) - 1)
    return data[lo] + (data[hi] - data[lo]) * (pos - lo)


def ms(seconds: float) -> str:
    """Seconds as milliseconds, three significant-ish digits."""
    if math.isnan(seconds):
        return "-"
    value = seconds * 1000
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def us(seconds: float) -> str:
    return "-" if math.isnan(seconds) else f"{seconds * 1e6:.0f}"


def deadline_loop(timeout: float, check: Callable[[], bool], interval: float = 0.0005) -> bool:
    """Poll `check` until it is true or `timeout` seconds pass; returns the last answer."""
    end = time.monotonic() + timeout
    while True:
        if check():
            return True
        if time.monotonic() > end:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------- output


def header(title: str, what: str) -> None:
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"== {title}")
    print(f"   {what}")
    print(
        f"host: {platform.node()} {os.cpu_count()} cpus, load {load}; "
        f"Python {platform.python_version()}; redis-py {redis.__version__}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """Print an aligned table: first column left-aligned, the others right-aligned."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)
        ).rstrip()

    print(line(cells[0]))
    print("  ".join("-" * w for w in widths))
    for row in cells[1:]:
        print(line(row))


def verdict(ok: bool, target: str, measured: str) -> bool:
    """The last line of every benchmark: PASS or MISS, the target, what was measured."""
    print(f"{'PASS' if ok else 'MISS'}  target: {target}; measured: {measured}")
    return ok


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--strict", action="store_true", help="exit 1 when the target is missed")
    return p


def exit_code(ok: bool, strict: bool) -> int:
    return 0 if ok or not strict else EXIT_MISS


def run_main(main: Callable[[Sequence[str] | None], int]) -> None:
    sys.exit(main(None))
