"""Small helpers shared by the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent


def eventually(check: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy: for state another process changes
    that offers nothing to block on (a worker registering itself, a subprocess's port)."""
    end = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def events(conn: redis.Redis, prefix: str, request_id: str | None = None) -> list[dict[str, str]]:
    out = []
    for _id, fields in conn.xrange(f"{prefix}:events"):
        item = {k.decode(): v.decode() for k, v in fields.items()}
        if request_id is None or item.get("id") == request_id:
            out.append(item)
    return out


def hitl_env(redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "HITL_", "REDIS_"))}
    env.update({"REDIS_URL": redis_url, "HITL_REDIS_PREFIX": prefix, **extra})
    return env


def start_worker(redis_url: str, prefix: str, *, fresh: bool = False, **extra: str) -> Any:
    """A real `hitl worker` process for this prefix, returned once it listens.

    Forked from the test process's zygote (tests/zygote.py), which has the worker's imports done
    already; `fresh=True` runs the console script in a new interpreter instead, for tests about
    the process starting up. Either way the result answers as a `subprocess.Popen` does."""
    # A short feed block: the worker stops in well under a second (it waits out the read in progress).
    env = hitl_env(redis_url, prefix, HITL_TIMER_TICK="0.05", HITL_WEBHOOK_FEED_BLOCK="0.05", **extra)
    log = tempfile.NamedTemporaryFile(prefix="hitl-worker-", suffix=".log", delete=False)  # noqa: SIM115
    conn = redis.Redis.from_url(redis_url)
    registry = f"rq:workers:{prefix}-timers"
    # this process's registration: the prefix's other workers (a second one started just
    # before) must not count, or a test acts while this one is still starting; read before the
    # start, as a forked worker can register within milliseconds
    before = conn.smembers(registry)
    proc: Any
    if fresh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hitl.cli", "worker"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: RQ's scheduler runs in a child process
        )
        proc.log_path = log.name
    else:
        from tests.zygote import spawn_worker

        proc = spawn_worker(["worker"], env=env, log=log)
    try:
        eventually(
            # returns as soon as it registers (under a second on a quiet machine); the bound is
            # for a loaded one, where importing and connecting took more than 20 s
            lambda: proc.poll() is not None or bool(conn.smembers(registry) - before),
            60, "the worker to register",
        )
    finally:
        conn.close()
    if proc.poll() is not None:
        raise AssertionError(f"worker exited: {Path(log.name).read_text()}")
    return proc


def signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal a worker and its children (RQ's scheduler process) together."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a worker and everything it started, gracefully first."""
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        signal_group(proc, signal.SIGKILL)
        proc.wait()
    signal_group(proc, signal.SIGKILL)  # a scheduler child that outlived its parent


def publish_policy(approvals: Any, text: str, *, by: str = "tests") -> int:
    """Publish `text` as the policy in force, as `hitl policy apply` does, and return its
    version: requests follow the published policy, never a client's own policy file."""
    from hitl.policy import Policy

    return int(approvals.policy.publish(Policy.from_yaml(text), text, by=by, source="tests").version)
